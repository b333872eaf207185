// Conv and ConvTranspose on cuDNN's legacy convolution API, bias, the residual (input 3, a fused
// Add or a folded BatchNormalization's borders, of batch 1 then: backends/op.h) and the fused
// activation (a PRelu's slope: input 4) by one epilogue pass.
// ConvTranspose is the backward-data pass of the forward convolution it inverts. A channels_last
// depthwise Conv (group == C) runs depthwise.cu's kernel instead, and a channels_last 1×1 Conv
// (stride 1, no pads, one group) cuBLASLt's GEMM, bias, residual and activation included.
//
// A Conv with a fused input resize (OpAttributes::input_resize) convolves bands of its resized X,
// each resized into the workspace (banded_resize_conv_node).
//
// Layouts: NCHW, or with channels_last = 1 (backends/op_rules.h) NHWC tensors and filter, which
// cuDNN's tensor-core kernels read without transposing. Geometry is worked out in NCHW terms for
// both; only the descriptors' format, the staging window and the epilogue's bias index differ.
//
// cuDNN pads symmetrically. Pads it cannot express (asymmetric, SAME_*, an output_shape) go through
// the workspace: Conv convolves a zero-padded copy of X with pad 0; ConvTranspose computes the full
// output with pad 0 and copies Y's window out of it. Both then match the CPU kernels exactly: output
// position o reads input o*stride - pad_begin + k*dilation.
//
// Descriptors are created per call (cheap next to the convolution); caching them per node would save
// a few microseconds a call.
//
// Algorithms: a problem's first call searches (cudnnFind*AlgorithmEx); for float16 forward problems
// the graph API's engine configurations (conv_graph.h) are timed beside the fastest legacy
// algorithm, and an engine that beats it runs instead (ConvAlgoChoice::engine).

#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "backends/cuda/conv_algo_cache.h"
#include "backends/cuda/conv_graph.h"
#include "backends/cuda/depthwise.h"
#include "backends/cuda/epilogue.h"
#include "backends/cuda/families.h"
#include "backends/cuda/libraries.h"
#include "backends/cuda/resize_window.h"
#include "backends/cuda/stream_gate.h"
#include "backends/op_rules.h"
#include "core/log.h"

namespace fswap::cuda {

// Defined in gemm.cc; linear_kernel below joins the four.
Status gemm_kernel(const CudaKernelArgs& args);
Status mat_mul_kernel(const CudaKernelArgs& args);
// Y[rows, cols] = act(X[rows, inner] · W[cols, inner]ᵀ + bias[cols] + residual[rows, cols]) on
// cuBLASLt (bias and residual nullptr for none); pointwise_conv_node's GEMM.
Status pointwise_gemm(const CudaContext& ctx, const char* op, DType dtype, std::int64_t rows, std::int64_t inner,
                      std::int64_t cols, const void* x, const void* w, const void* bias, const void* residual, void* y,
                      const FusedActivation& act);

namespace {

// The algorithm search times candidates with up to this much workspace, less when the budget is short.
constexpr std::size_t kSearchWorkspaceCaps[] = {256u << 20, 64u << 20, 16u << 20, 0};
constexpr std::size_t kWorkspaceAlignment = 256;

using TensorDescriptor =
    std::unique_ptr<std::remove_pointer_t<cudnnTensorDescriptor_t>, DestroyWith<cudnnDestroyTensorDescriptor>>;
using FilterDescriptor =
    std::unique_ptr<std::remove_pointer_t<cudnnFilterDescriptor_t>, DestroyWith<cudnnDestroyFilterDescriptor>>;
using ConvolutionDescriptor = std::unique_ptr<std::remove_pointer_t<cudnnConvolutionDescriptor_t>,
                                              DestroyWith<cudnnDestroyConvolutionDescriptor>>;

// cuDNN's forward operands of one convolution: x [n, c, input...] * w [k, c/groups, kernel...] → y.
struct ConvDescriptors {
  TensorDescriptor x, y;
  FilterDescriptor w;
  ConvolutionDescriptor conv;
};

// Device pointers in the same forward terms (ConvTranspose reads y and writes x).
struct ConvBuffers {
  void* x = nullptr;
  const void* w = nullptr;
  void* y = nullptr;
  const void* bias = nullptr;      // a forward node's, for a plan that fuses the epilogue
  const void* residual = nullptr;  // likewise
};

// The staging buffer (the caller's) followed by the algorithm's workspace.
struct ConvWorkspace {
  void* staging = nullptr;
  void* algo = nullptr;
  std::size_t algo_bytes = 0;
  bool short_of_known = false;  // the cached choice needs more than the budget gives now
};

// A node's spatial geometry in cuDNN order: 2 or 3 dims, a 1-D op lifted to height 1.
struct SpatialGeometry {
  int rank = 2;
  std::array<std::int64_t, 3> in{}, out{}, kernel{}, stride{}, dilation{}, pad_begin{};
  std::int64_t span(int d) const { return (kernel[d] - 1) * dilation[d] + 1; }
};

Status shape_error(const char* op, const std::string& what) { return invalid_input(std::string(op) + ": " + what); }

std::size_t round_up(std::size_t bytes) {
  return (bytes + kWorkspaceAlignment - 1) / kWorkspaceAlignment * kWorkspaceAlignment;
}

cudnnDataType_t cudnn_type(DType dtype) { return dtype == DType::kFloat16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT; }

// float32 must not use TF32 tensor cores (the CPU tolerance is 1e-4); float16 uses tensor cores and
// accumulates in float32 (the descriptor's compute type).
cudnnMathType_t requested_math(DType dtype) { return dtype == DType::kFloat16 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH; }

bool uses_tensor_cores(cudnnMathType_t math) {
  return math == CUDNN_TENSOR_OP_MATH || math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

// The node's optional bias (input 2) with one value per output channel; nullptr when absent.
Result<const void*> channel_bias_data(const CudaKernelArgs& args, const char* op, std::int64_t out_channels) {
  if (args.inputs.size() < 3 || args.inputs[2].data == nullptr) return static_cast<const void*>(nullptr);
  if (args.inputs[2].elements() != out_channels)
    return shape_error(op, "bias " + shape_to_string(args.inputs[2].shape) + " does not have " +
                               std::to_string(out_channels) + " values");
  return static_cast<const void*>(args.inputs[2].data);
}

// The node's optional residual (input 3), in Y's layout: Y's shape, or Y's with batch 1 added to
// every item (broadcast).
struct ConvResidual {
  const void* data = nullptr;  // nullptr when absent
  bool broadcast = false;
};

Result<ConvResidual> residual_data(const CudaKernelArgs& args, const char* op) {
  if (args.inputs.size() < 4 || args.inputs[3].data == nullptr) return ConvResidual{};
  const Shape& r = args.inputs[3].shape;
  const Shape& y = args.outputs[0].shape;
  const bool one_item =
      r.size() == y.size() && !y.empty() && r[0] == 1 && std::equal(y.begin() + 1, y.end(), r.begin() + 1);
  if (r != y && !one_item)
    return shape_error(op, "the residual " + shape_to_string(r) + " must have the output's shape " +
                               shape_to_string(y) + " (or that with batch 1)");
  return ConvResidual{args.inputs[3].data, r != y};
}

// A fused PRelu's slope (input 4, backends/op.h): one value per output channel; nullptr for any
// other activation.
Result<const void*> slope_data(const CudaKernelArgs& args, const char* op, std::int64_t out_channels) {
  if (args.attrs.activation.kind != Activation::kPRelu) return static_cast<const void*>(nullptr);
  if (args.inputs.size() < 5 || args.inputs[4].data == nullptr || args.inputs[4].elements() != out_channels)
    return shape_error(op, "a fused PRelu needs input 4 with one slope per output channel (" +
                               std::to_string(out_channels) + ")");
  return static_cast<const void*>(args.inputs[4].data);
}

// X, W and Y's shapes in NCHW terms (a channels_last node's permuted; all three are then 4-D).
struct ConvShapes {
  Shape x, w, y;
  ConvLayout layout = ConvLayout::kNchw;
};

Result<ConvShapes> conv_shapes(const CudaKernelArgs& args, const char* op) {
  const Shape& x = args.inputs[0].shape;
  const Shape& w = args.inputs[1].shape;
  const Shape& y = args.outputs[0].shape;
  FSWAP_ASSIGN_OR_RETURN(const bool nhwc, channels_last(op, args.attrs, x));
  if (!nhwc) return ConvShapes{x, w, y, ConvLayout::kNchw};
  if (w.size() != 4 || y.size() != 4)
    return shape_error(op, "channels_last needs a 4-D weight and output, got W " + shape_to_string(w) + " and Y " +
                               shape_to_string(y));
  return ConvShapes{nchw_from_nhwc(x), nchw_from_nhwc(w), nchw_from_nhwc(y), ConvLayout::kNhwc};
}

// Strides, dilations and the begin pads as the CPU kernels read them (op_rules.cc's window_geometry and
// nn_conv.cc's ConvTranspose), with in = X's spatial sizes and out = Y's.
Result<SpatialGeometry> spatial_geometry(const CudaKernelArgs& args, const ConvShapes& shapes, const char* op,
                                         bool transpose) {
  const Shape& x = shapes.x;
  const Shape& w = shapes.w;
  const Shape& y = shapes.y;
  const std::size_t rank = x.size() < 2 ? 0 : x.size() - 2;
  if (rank < 1 || rank > 3 || w.size() != x.size() || y.size() != x.size())
    return unsupported(std::string(op) + ": input rank " + std::to_string(x.size()) +
                       " (1-D, 2-D and 3-D spatial inputs are supported)");
  const WindowAttributes a = window_attributes(args.attrs, rank);
  if (a.strides.size() != rank || a.dilations.size() != rank || a.pads.size() != 2 * rank ||
      (transpose && a.output_padding.size() != rank))
    return shape_error(op, "strides/dilations/pads do not match the spatial rank " + std::to_string(rank));
  if (!known_auto_pad(a.auto_pad)) return unsupported(std::string(op) + ": auto_pad " + a.auto_pad);
  const bool same = a.auto_pad == "SAME_UPPER" || a.auto_pad == "SAME_LOWER";
  const bool pads_from_output = transpose && (args.attrs.has("output_shape") || same);

  SpatialGeometry g;
  g.rank = rank == 3 ? 3 : 2;
  const std::size_t off = static_cast<std::size_t>(g.rank) - rank;
  for (std::size_t d = 0; d < off; ++d) g.in[d] = g.out[d] = g.kernel[d] = g.stride[d] = g.dilation[d] = 1;
  for (std::size_t i = 0; i < rank; ++i) {
    const std::size_t d = off + i;
    g.in[d] = x[2 + i];
    g.out[d] = y[2 + i];
    g.kernel[d] = w[2 + i];
    g.stride[d] = a.strides[i];
    g.dilation[d] = a.dilations[i];
    if (g.stride[d] < 1 || g.dilation[d] < 1 || g.kernel[d] < 1)
      return shape_error(op, "strides, dilations and kernel sizes must be >= 1");
    const std::int64_t span = g.span(static_cast<int>(d));
    if (pads_from_output) {
      const std::int64_t total = g.stride[d] * (g.in[d] - 1) + a.output_padding[i] + span - g.out[d];
      g.pad_begin[d] = a.auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
    } else if (a.auto_pad == "NOTSET") {
      g.pad_begin[d] = a.pads[i];
    } else if (same) {
      const std::int64_t total = std::max<std::int64_t>(0, (g.out[d] - 1) * g.stride[d] + span - g.in[d]);
      g.pad_begin[d] = a.auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
    }
  }
  return g;
}

// True when cuDNN, padding pad_begin on both sides, maps an input of `in` to exactly `out` in every dim.
bool symmetric_fits(const SpatialGeometry& g, const std::array<std::int64_t, 3>& in,
                    const std::array<std::int64_t, 3>& out) {
  for (int d = 0; d < g.rank; ++d) {
    const std::int64_t padded = in[d] + 2 * g.pad_begin[d] - g.span(d);
    if (g.pad_begin[d] < 0 || padded < 0 || padded / g.stride[d] + 1 != out[d]) return false;
  }
  return true;
}

std::int64_t spatial_elements(const std::array<std::int64_t, 3>& dims, int rank) {
  std::int64_t n = 1;
  for (int d = 0; d < rank; ++d) n *= dims[d];
  return n;
}

// The window copy between a node tensor and its staged twin, whose spatial sizes are dst and src.
// NCHW: batch × channels planes of the spatial dims (leading 1s to 3). NHWC (2-D): batch planes of
// [H, W, channels], the channel dim copied whole.
WindowCopy window_copy(ConvLayout layout, std::int64_t batch, std::int64_t channels, const SpatialGeometry& g,
                       const std::array<std::int64_t, 3>& dst, const std::array<std::int64_t, 3>& src,
                       std::int64_t offset_sign) {
  WindowCopy w;
  const bool nhwc = layout == ConvLayout::kNhwc;
  w.planes = nhwc ? batch : batch * channels;
  const int shift = nhwc ? 0 : 3 - g.rank;
  for (int d = 0; d < g.rank; ++d) {
    w.dst[d + shift] = dst[d];
    w.src[d + shift] = src[d];
    w.offset[d + shift] = offset_sign * g.pad_begin[d];
  }
  if (nhwc) w.dst[2] = w.src[2] = channels;
  return w;
}

// y = act(y + bias[channel] + residual) over Y = [batch, channels, plane] (NCHW) or [batch, plane,
// channels] (NHWC), the residual laid out as Y (one item's rows when it broadcasts), a fused
// PRelu's slope per channel.
Status conv_epilogue(const CudaKernelArgs& args, const char* op, DType dtype, ConvLayout layout, const void* bias,
                     const ConvResidual& residual, std::int64_t batch, std::int64_t channels, std::int64_t plane,
                     const void* slope = nullptr) {
  void* y = args.outputs[0].data;
  if (layout == ConvLayout::kNhwc)
    return bias_activation(dtype, y, bias, batch * plane, channels, column_bias(), args.attrs.activation,
                           args.ctx.stream, op, residual.data, slope, residual.broadcast ? plane : 0);
  return bias_activation(dtype, y, bias, batch * channels, plane, channel_bias(channels), args.attrs.activation,
                         args.ctx.stream, op, residual.data, slope, residual.broadcast ? channels : 0);
}

Result<int> to_int(const char* op, std::int64_t value) {
  if (value < 0 || value > std::numeric_limits<int>::max())
    return unsupported(std::string(op) + " on CUDA: size " + std::to_string(value) + " exceeds cuDNN's int range");
  return static_cast<int>(value);
}

// [a, b, dims...] as cuDNN's int array (2 + rank entries used).
Result<std::array<int, 5>> cudnn_dims(const char* op, std::int64_t a, std::int64_t b,
                                      const std::array<std::int64_t, 3>& dims, int rank) {
  std::array<int, 5> out{};
  FSWAP_ASSIGN_OR_RETURN(out[0], to_int(op, a));
  FSWAP_ASSIGN_OR_RETURN(out[1], to_int(op, b));
  for (int d = 0; d < rank; ++d) {
    FSWAP_ASSIGN_OR_RETURN(out[2 + d], to_int(op, dims[d]));
  }
  return out;
}

std::array<std::int64_t, 3> forward_output(const ConvProblem& p) {
  std::array<std::int64_t, 3> out{};
  for (int d = 0; d < p.spatial_rank; ++d)
    out[d] = (p.input[d] + 2 * p.pad[d] - ((p.kernel[d] - 1) * p.dilation[d] + 1)) / p.stride[d] + 1;
  return out;
}

Result<ConvDescriptors> describe(const char* op, const ConvProblem& p) {
  const int r = p.spatial_rank, dims = r + 2;
  const cudnnDataType_t type = cudnn_type(p.dtype);
  ConvDescriptors d;
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  FSWAP_CUDNN_CHECK(op, cudnnCreateTensorDescriptor(&x));
  d.x.reset(x);
  FSWAP_CUDNN_CHECK(op, cudnnCreateTensorDescriptor(&y));
  d.y.reset(y);
  cudnnFilterDescriptor_t w = nullptr;
  FSWAP_CUDNN_CHECK(op, cudnnCreateFilterDescriptor(&w));
  d.w.reset(w);
  cudnnConvolutionDescriptor_t conv = nullptr;
  FSWAP_CUDNN_CHECK(op, cudnnCreateConvolutionDescriptor(&conv));
  d.conv.reset(conv);

  FSWAP_ASSIGN_OR_RETURN(const auto x_dims, cudnn_dims(op, p.batch, p.channels, p.input, r));
  FSWAP_ASSIGN_OR_RETURN(const auto y_dims, cudnn_dims(op, p.batch, p.out_channels, forward_output(p), r));
  FSWAP_ASSIGN_OR_RETURN(const auto w_dims, cudnn_dims(op, p.out_channels, p.channels / p.groups, p.kernel, r));
  // Dims are given in N, C, H, W order whatever the format; the format says how memory holds them.
  const cudnnTensorFormat_t format = p.layout == ConvLayout::kNhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
  FSWAP_CUDNN_CHECK(op, cudnnSetTensorNdDescriptorEx(d.x.get(), format, type, dims, x_dims.data()));
  FSWAP_CUDNN_CHECK(op, cudnnSetTensorNdDescriptorEx(d.y.get(), format, type, dims, y_dims.data()));
  FSWAP_CUDNN_CHECK(op, cudnnSetFilterNdDescriptor(d.w.get(), type, format, dims, w_dims.data()));
  std::array<int, 3> pad{}, stride{}, dilation{};
  for (int i = 0; i < r; ++i) {
    FSWAP_ASSIGN_OR_RETURN(pad[i], to_int(op, p.pad[i]));
    FSWAP_ASSIGN_OR_RETURN(stride[i], to_int(op, p.stride[i]));
    FSWAP_ASSIGN_OR_RETURN(dilation[i], to_int(op, p.dilation[i]));
  }
  FSWAP_ASSIGN_OR_RETURN(const int groups, to_int(op, p.groups));
  FSWAP_CUDNN_CHECK(op, cudnnSetConvolutionNdDescriptor(d.conv.get(), r, pad.data(), stride.data(), dilation.data(),
                                                        CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  FSWAP_CUDNN_CHECK(op, cudnnSetConvolutionGroupCount(d.conv.get(), groups));
  FSWAP_CUDNN_CHECK(op, cudnnSetConvolutionMathType(d.conv.get(), static_cast<cudnnMathType_t>(p.math)));
  return d;
}

// Workspace for the staging buffer plus the algorithm: the known choice's bytes, or before a search
// as much as the budget gives up to the first cap.
Result<ConvWorkspace> conv_workspace(const CudaKernelArgs& args, const char* op, std::size_t staging_bytes,
                                     const std::optional<ConvAlgoChoice>& known) {
  const auto carve = [&](void* base, std::size_t algo_bytes) {
    return ConvWorkspace{base, static_cast<std::byte*>(base) + staging_bytes, algo_bytes};
  };
  Status refused = internal_error(std::string(op) + " on CUDA: no workspace size tried");
  if (known) {
    if (staging_bytes + known->workspace_bytes == 0) return ConvWorkspace{};
    Result<void*> base = args.ctx.workspace(staging_bytes + known->workspace_bytes);
    if (base) return carve(*base, known->workspace_bytes);
    if (base.status().code() != StatusCode::kOutOfMemory) return base.status();
    refused = base.status();  // the smaller sizes below are tried; none left means this one's refusal
  }
  for (const std::size_t cap : kSearchWorkspaceCaps) {
    if (known && cap >= known->workspace_bytes) continue;
    if (staging_bytes + cap == 0) return ConvWorkspace{.short_of_known = known.has_value()};
    Result<void*> base = args.ctx.workspace(staging_bytes + cap);
    if (base) {
      ConvWorkspace ws = carve(*base, cap);
      ws.short_of_known = known.has_value();
      return ws;
    }
    if (base.status().code() != StatusCode::kOutOfMemory || cap == 0) return base.status();
  }
  return refused;
}

// The fastest result cuDNN timed that ran, fits the workspace and keeps float32 off tensor cores.
template <class Perf>
Result<ConvAlgoChoice> fastest_usable(const char* op, const ConvProblem& p, const Perf* results, int count,
                                      std::size_t workspace_bytes) {
  for (int i = 0; i < count; ++i) {
    const Perf& r = results[i];
    if (r.status != CUDNN_STATUS_SUCCESS || r.memory > workspace_bytes) continue;
    if (p.dtype == DType::kFloat32 && uses_tensor_cores(r.mathType)) continue;
    const cudnnMathType_t math = p.dtype == DType::kFloat32 ? CUDNN_FMA_MATH : r.mathType;
    return ConvAlgoChoice{static_cast<int>(r.algo), static_cast<int>(math), r.memory, {}};
  }
  return unsupported(std::string(op) + " on CUDA: cuDNN has no usable algorithm for " + to_string(p));
}

// Times cuDNN's algorithms on the real operands (synchronises the host; the output is overwritten).
Result<ConvAlgoChoice> search_algorithm(const CudaKernelArgs& args, const char* op, const ConvProblem& p,
                                        const ConvDescriptors& d, const ConvBuffers& b, const ConvWorkspace& ws) {
  cudnnHandle_t handle = args.ctx.cudnn;
  if (p.direction == ConvDirection::kForward) {
    cudnnConvolutionFwdAlgoPerf_t results[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int count = 0;
    FSWAP_CUDNN_CHECK(op, cudnnFindConvolutionForwardAlgorithmEx(handle, d.x.get(), b.x, d.w.get(), b.w, d.conv.get(),
                                                                 d.y.get(), b.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                                 &count, results, ws.algo, ws.algo_bytes));
    return fastest_usable(op, p, results, count, ws.algo_bytes);
  }
  cudnnConvolutionBwdDataAlgoPerf_t results[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
  int count = 0;
  FSWAP_CUDNN_CHECK(op, cudnnFindConvolutionBackwardDataAlgorithmEx(
                            handle, d.w.get(), b.w, d.y.get(), b.y, d.conv.get(), d.x.get(), b.x,
                            CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, results, ws.algo, ws.algo_bytes));
  return fastest_usable(op, p, results, count, ws.algo_bytes);
}

// cuDNN's heuristic ranking (no timing, no synchronisation), for a budget too short for the
// cached choice: the first algorithm that fits the workspace there is. Not cached: the cached
// choice stays the one for when memory allows.
Result<ConvAlgoChoice> heuristic_algorithm(const CudaKernelArgs& args, const char* op, const ConvProblem& p,
                                           const ConvDescriptors& d, std::size_t workspace_bytes) {
  cudnnHandle_t handle = args.ctx.cudnn;
  int count = 0;
  if (p.direction == ConvDirection::kForward) {
    cudnnConvolutionFwdAlgoPerf_t results[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    FSWAP_CUDNN_CHECK(op, cudnnGetConvolutionForwardAlgorithm_v7(handle, d.x.get(), d.w.get(), d.conv.get(), d.y.get(),
                                                                 CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, results));
    return fastest_usable(op, p, results, count, workspace_bytes);
  }
  cudnnConvolutionBwdDataAlgoPerf_t results[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
  FSWAP_CUDNN_CHECK(op, cudnnGetConvolutionBackwardDataAlgorithm_v7(handle, d.w.get(), d.y.get(), d.conv.get(),
                                                                    d.x.get(), CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                                                                    &count, results));
  return fastest_usable(op, p, results, count, workspace_bytes);
}


ConvGraphOperands graph_operands(const ConvBuffers& b, const ConvWorkspace& ws) {
  return {.x = b.x, .w = b.w, .y = b.y, .workspace = ws.algo, .bias = b.bias, .residual = b.residual};
}

// The problem without its epilogue: the convolution alone.
ConvProblem bare(ConvProblem p) {
  p.epilogue = {};
  return p;
}

// Runs the chosen convolution; true when it computed the problem's epilogue too (a fused plan), so
// the caller's epilogue pass is skipped.
Result<bool> run_convolution(const CudaKernelArgs& args, const char* op, const ConvProblem& p, const ConvDescriptors& d,
                             const ConvAlgoChoice& choice, const ConvBuffers& b, const ConvWorkspace& ws) {
  const ConvGraphOperands operands = graph_operands(b, ws);
  if (choice.engine.index >= 0 && args.ctx.conv_plans != nullptr && graph_aligned(operands)) {
    FSWAP_ASSIGN_OR_RETURN(const ConvGraphPlan* plan, args.ctx.conv_plans->find_or_build(
                                                          args.ctx.cudnn, choice.fused ? p : bare(p), choice.engine));
    if (plan->workspace_bytes() <= ws.algo_bytes) {
      FSWAP_RETURN_IF_ERROR(plan->execute(args.ctx.cudnn, operands));
      return choice.fused;
    }
  }
  const float one = 1.0f, zero = 0.0f;  // float scalars serve float and half data alike
  FSWAP_CUDNN_CHECK(op, cudnnSetConvolutionMathType(d.conv.get(), static_cast<cudnnMathType_t>(choice.math)));
  if (p.direction == ConvDirection::kForward) {
    FSWAP_CUDNN_CHECK(op, cudnnConvolutionForward(args.ctx.cudnn, &one, d.x.get(), b.x, d.w.get(), b.w, d.conv.get(),
                                                  static_cast<cudnnConvolutionFwdAlgo_t>(choice.algo), ws.algo,
                                                  choice.workspace_bytes, &zero, d.y.get(), b.y));
  } else {
    FSWAP_CUDNN_CHECK(op, cudnnConvolutionBackwardData(
                              args.ctx.cudnn, &one, d.w.get(), b.w, d.y.get(), b.y, d.conv.get(),
                              static_cast<cudnnConvolutionBwdDataAlgo_t>(choice.algo), ws.algo,
                              choice.workspace_bytes, &zero, d.x.get(), b.x));
  }
  return false;
}

// The graph API's engine configurations tried beside the legacy algorithms, in the heuristics' order.
constexpr int kGraphCandidates = 16;
constexpr int kTimedRuns = 5;

// Milliseconds of GPU time per launch, the mean of kTimedRuns after a warm-up (synchronises the
// host). The timed launches are enqueued behind a closed StreamGate, so they run back to back as
// in the CUDA graphs the executor replays: timed as they were enqueued, a small problem (batch 1)
// measured cuDNN's host cost per launch, which exceeds its kernel's, and ranked candidates by it.
Result<float> time_launches(const char* op, cudaStream_t stream, const std::function<Status()>& launch) {
  FSWAP_RETURN_IF_ERROR(launch());
  cudaEvent_t start = nullptr, stop = nullptr;
  FSWAP_CUDA_RUNTIME_CHECK(op, cudaEventCreate(&start));
  const std::unique_ptr<CUevent_st, DestroyWith<cudaEventDestroy>> own_start(start);
  FSWAP_CUDA_RUNTIME_CHECK(op, cudaEventCreate(&stop));
  const std::unique_ptr<CUevent_st, DestroyWith<cudaEventDestroy>> own_stop(stop);
  {
    StreamGate gate;  // opened at the end of this block, on every return
    FSWAP_RETURN_IF_ERROR(gate.close(op, stream));
    FSWAP_CUDA_RUNTIME_CHECK(op, cudaEventRecord(start, stream));
    for (int i = 0; i < kTimedRuns; ++i) FSWAP_RETURN_IF_ERROR(launch());
    FSWAP_CUDA_RUNTIME_CHECK(op, cudaEventRecord(stop, stream));
  }
  FSWAP_CUDA_RUNTIME_CHECK(op, cudaEventSynchronize(stop));
  float ms = 0;
  FSWAP_CUDA_RUNTIME_CHECK(op, cudaEventElapsedTime(&ms, start, stop));
  return ms / kTimedRuns;
}

// The fastest of `plans` (by time_launches) that fits the workspace and beats `best_ms`, which it
// then lowers; nullptr when none does.
const ConvGraphPlan* fastest_plan(const CudaKernelArgs& args, const char* op, const std::vector<ConvGraphPlan>& plans,
                                  const ConvGraphOperands& operands, std::size_t workspace_bytes, float& best_ms) {
  const ConvGraphPlan* best = nullptr;
  for (const ConvGraphPlan& plan : plans) {
    if (plan.workspace_bytes() > workspace_bytes) continue;
    Result<float> ms = time_launches(op, args.ctx.stream, [&] { return plan.execute(args.ctx.cudnn, operands); });
    if (ms && *ms < best_ms) best_ms = *ms, best = &plan;
  }
  return best;
}

// The legacy choice, or the engine configuration that beats it on the real operands (the output is
// overwritten). Only float16 forward problems with aligned operands try engines: first the
// convolution alone against the legacy algorithm, then, for a problem with an epilogue, plans that
// fuse it against that winner plus the epilogue pass (`epilogue`). A problem whose candidates
// cannot be listed keeps what it has.
Result<ConvAlgoChoice> search_engine(const CudaKernelArgs& args, const char* op, const ConvProblem& p,
                                     const ConvDescriptors& d, const ConvBuffers& b, const ConvWorkspace& ws,
                                     ConvAlgoChoice choice, const std::function<Status()>& epilogue) {
  const ConvGraphOperands operands = graph_operands(b, ws);
  if (!graph_serves(p) || !graph_aligned(operands)) return choice;
  FSWAP_ASSIGN_OR_RETURN(float best_ms, time_launches(op, args.ctx.stream, [&] {
                           return run_convolution(args, op, bare(p), d, choice, b, ws).status();
                         }));
  if (Result<std::vector<ConvGraphPlan>> alone = graph_candidates(args.ctx.cudnn, bare(p), kGraphCandidates); alone) {
    if (const ConvGraphPlan* best = fastest_plan(args, op, *alone, operands, ws.algo_bytes, best_ms)) {
      choice.engine = best->engine();
      choice.workspace_bytes = std::max(choice.workspace_bytes, best->workspace_bytes());
    }
  } else {
    log_debug(std::string(op) + " on CUDA: " + alone.status().message());
  }
  if (p.epilogue.empty()) return choice;
  Result<std::vector<ConvGraphPlan>> fused = graph_candidates(args.ctx.cudnn, p, kGraphCandidates);
  if (!fused) return choice;
  FSWAP_ASSIGN_OR_RETURN(const float epilogue_ms, time_launches(op, args.ctx.stream, epilogue));
  best_ms += epilogue_ms;
  if (const ConvGraphPlan* best = fastest_plan(args, op, *fused, operands, ws.algo_bytes, best_ms)) {
    choice.engine = best->engine();
    choice.fused = true;
    choice.workspace_bytes = std::max(choice.workspace_bytes, best->workspace_bytes());
  }
  return choice;
}

// `epilogue` enqueues the node's epilogue pass (timed against plans that fuse it).
Result<ConvAlgoChoice> choose_algorithm(const CudaKernelArgs& args, const char* op, const ConvProblem& p,
                                        const ConvDescriptors& d, const ConvBuffers& b, const ConvWorkspace& ws,
                                        const std::optional<ConvAlgoChoice>& known,
                                        const std::function<Status()>& epilogue) {
  if (ws.short_of_known) return heuristic_algorithm(args, op, p, d, ws.algo_bytes);
  if (known) return *known;
  FSWAP_ASSIGN_OR_RETURN(const ConvAlgoChoice legacy, search_algorithm(args, op, p, d, b, ws));
  FSWAP_ASSIGN_OR_RETURN(const ConvAlgoChoice choice, search_engine(args, op, p, d, b, ws, legacy, epilogue));
  args.ctx.conv_algos->insert(p, choice);
  log_debug(std::string(op) + " on CUDA: cuDNN algorithm " + std::to_string(choice.algo) + " (math " +
            std::to_string(choice.math) + ", workspace " + std::to_string(choice.workspace_bytes) + " bytes" +
            (choice.engine.index >= 0 ? ", graph engine " + std::to_string(choice.engine.index) : std::string()) +
            (choice.fused ? " with the epilogue" : "") +
            ") for " + to_string(p));
  return choice;
}

Status require_context(const CudaKernelArgs& args, const char* op) {
  if (args.ctx.cudnn == nullptr || args.ctx.conv_algos == nullptr || !args.ctx.workspace)
    return internal_error(std::string(op) +
                          " on CUDA: the CudaContext lacks cuDNN, the algorithm cache or a workspace");
  return Status::ok();
}

// A Conv node's operands, validated, in NCHW terms.
struct ConvNode {
  DType dtype = DType::kFloat32;
  ConvShapes shapes;
  SpatialGeometry geometry;
  std::int64_t group = 1;
  const void* bias = nullptr;
  ConvResidual residual;
  const void* slope = nullptr;  // a fused PRelu's
};

Result<ConvNode> conv_node(const CudaKernelArgs& args, const char* op) {
  if (args.inputs.size() < 2 || args.outputs.empty()) return shape_error(op, "needs X and W");
  ConvNode node;
  FSWAP_ASSIGN_OR_RETURN(node.dtype, linear_dtype(args, op));
  FSWAP_ASSIGN_OR_RETURN(node.shapes, conv_shapes(args, op));
  FSWAP_ASSIGN_OR_RETURN(node.geometry, spatial_geometry(args, node.shapes, op, false));
  const ConvShapes& s = node.shapes;
  FSWAP_ASSIGN_OR_RETURN(node.group, conv_group(op, args.attrs, s.x, s.w, s.y));
  FSWAP_ASSIGN_OR_RETURN(node.bias, channel_bias_data(args, op, s.w[0]));
  FSWAP_ASSIGN_OR_RETURN(node.residual, residual_data(args, op));
  FSWAP_ASSIGN_OR_RETURN(node.slope, slope_data(args, op, s.w[0]));
  return node;
}

// A channels_last Conv with one group per input channel (MobileNet's depthwise layers): cuDNN's NHWC
// grouped kernels are slow there, depthwise.cu's kernel is not.
// The depthwise kernel and the 1×1 GEMM apply bias, residual and activation themselves, except a
// fused PRelu, whose slope is then a pass of its own over Y ([rows, M], NHWC), and a residual
// broadcast over the batch, which they cannot index: they then run bare and the epilogue pass
// applies it all.
struct OwnEpilogue {
  const void* bias = nullptr;
  const void* residual = nullptr;
  FusedActivation act;
};
OwnEpilogue own_epilogue(const CudaKernelArgs& args, const ConvNode& node) {
  if (node.residual.broadcast) return {};
  return {node.bias, node.residual.data, node.slope != nullptr ? FusedActivation{} : args.attrs.activation};
}
// What own_epilogue left to do, over Y = [batch, OH·OW, M].
Status after_own_epilogue(const CudaKernelArgs& args, const char* op, const ConvNode& node) {
  const std::int64_t channels = node.shapes.w[0];
  if (node.residual.broadcast)
    return conv_epilogue(args, op, node.dtype, node.shapes.layout, node.bias, node.residual, node.shapes.y[0],
                         channels, node.geometry.out[0] * node.geometry.out[1], node.slope);
  if (node.slope == nullptr) return Status::ok();
  return bias_activation(node.dtype, args.outputs[0].data, nullptr, args.outputs[0].elements() / channels, channels,
                         column_bias(), args.attrs.activation, args.ctx.stream, op, nullptr, node.slope);
}

bool nhwc_depthwise(const ConvNode& node) {
  return node.shapes.layout == ConvLayout::kNhwc && node.geometry.rank == 2 && node.group == node.shapes.x[1];
}

Status depthwise_conv_node(const CudaKernelArgs& args, const char* op, const ConvNode& node) {
  const ConvShapes& s = node.shapes;
  const SpatialGeometry& g = node.geometry;
  const DepthwiseConv p{.dtype = node.dtype, .batch = s.x[0], .channels = s.x[1], .multiplier = s.w[0] / s.x[1],
                        .in = {g.in[0], g.in[1]}, .out = {g.out[0], g.out[1]}, .kernel = {g.kernel[0], g.kernel[1]},
                        .stride = {g.stride[0], g.stride[1]}, .dilation = {g.dilation[0], g.dilation[1]},
                        .pad_begin = {g.pad_begin[0], g.pad_begin[1]}};
  const OwnEpilogue e = own_epilogue(args, node);
  FSWAP_RETURN_IF_ERROR(depthwise_conv(p, args.inputs[0].data, args.inputs[1].data, e.bias, e.residual,
                                       args.outputs[0].data, e.act, args.ctx.stream, op));
  return after_own_epilogue(args, op, node);
}

// A channels_last 1×1 Conv with stride 1, no padding and one group is a GEMM with no data moved:
// Y [N·H·W, M] = X [N·H·W, C] · W [M, C]ᵀ. cuDNN's NHWC kernels are slow on small spatial sizes
// (0.045–0.07 ms for a 14×14 or 1×1 layer on the H100, where cuBLASLt takes a few µs).
bool nhwc_pointwise(const ConvNode& node) {
  const SpatialGeometry& g = node.geometry;
  if (node.shapes.layout != ConvLayout::kNhwc || g.rank != 2 || node.group != 1) return false;
  for (int d = 0; d < 2; ++d)
    if (g.kernel[d] != 1 || g.stride[d] != 1 || g.pad_begin[d] != 0 || g.out[d] != g.in[d]) return false;
  return true;
}

Status pointwise_conv_node(const CudaKernelArgs& args, const char* op, const ConvNode& node) {
  const ConvShapes& s = node.shapes;
  const SpatialGeometry& g = node.geometry;
  const OwnEpilogue e = own_epilogue(args, node);
  FSWAP_RETURN_IF_ERROR(pointwise_gemm(args.ctx, op, node.dtype, s.x[0] * g.in[0] * g.in[1], s.x[1], s.w[0],
                                       args.inputs[0].data, args.inputs[1].data, e.bias, e.residual,
                                       args.outputs[0].data, e.act));
  return after_own_epilogue(args, op, node);
}

// The node's bias, residual and activation as a graph plan may fuse them (ConvProblem::epilogue):
// float16 only, a residual of Y's shape (the plan's residual tensor is described as Y) and an
// activation the graph API has (Relu, LeakyRelu) or none; empty otherwise, and then the epilogue
// pass runs after the convolution.
ConvEpilogue fusable_epilogue(const CudaKernelArgs& args, const ConvNode& node) {
  const FusedActivation& act = args.attrs.activation;
  if (node.dtype != DType::kFloat16 || node.slope != nullptr || node.residual.broadcast) return {};
  ConvEpilogue e{.bias = node.bias != nullptr, .residual = node.residual.data != nullptr};
  if (act.kind == Activation::kRelu) {
    e.act = ConvEpilogue::Act::kRelu;
  } else if (act.kind == Activation::kLeakyRelu) {
    e.act = ConvEpilogue::Act::kLeakyRelu;
    e.slope = act.alpha;
  } else if (act.kind != Activation::kNone) {
    return {};
  }
  return e;
}

Status cudnn_conv_node(const CudaKernelArgs& args, const char* op, const ConvNode& node) {
  FSWAP_RETURN_IF_ERROR(require_context(args, op));
  const DType dtype = node.dtype;
  const ConvShapes& s = node.shapes;
  const SpatialGeometry& g = node.geometry;
  const TensorView& x = args.inputs[0];
  const TensorView& w = args.inputs[1];
  const TensorView& y = args.outputs[0];
  const std::int64_t batch = s.x[0], channels = s.x[1], out_channels = s.w[0];

  ConvProblem p{.direction = ConvDirection::kForward, .dtype = dtype, .layout = s.layout,
                .math = requested_math(dtype),
                .spatial_rank = g.rank, .batch = batch, .channels = channels, .out_channels = out_channels,
                .groups = node.group, .input = g.in, .kernel = g.kernel, .pad = g.pad_begin, .stride = g.stride,
                .dilation = g.dilation, .epilogue = fusable_epilogue(args, node)};
  // Otherwise X is zero-padded into the workspace: pad_begin before, and after it as far as the last
  // output reads; cuDNN then convolves with pad 0.
  const bool direct = symmetric_fits(g, g.in, g.out);
  if (!direct) {
    p.pad = {};
    for (int d = 0; d < g.rank; ++d) p.input[d] = (g.out[d] - 1) * g.stride[d] + g.span(d);
  }
  const std::size_t staging_bytes =
      direct ? 0
             : round_up(static_cast<std::size_t>(batch * channels * spatial_elements(p.input, g.rank)) *
                        dtype_size(dtype));
  FSWAP_ASSIGN_OR_RETURN(const ConvDescriptors d, describe(op, p));
  const std::optional<ConvAlgoChoice> known = args.ctx.conv_algos->find(p);
  FSWAP_ASSIGN_OR_RETURN(const ConvWorkspace ws, conv_workspace(args, op, staging_bytes, known));
  // A broadcast residual is the epilogue pass's alone (fusable_epilogue), not a plan operand.
  const ConvBuffers b{direct ? x.data : ws.staging, w.data, y.data, node.bias,
                      node.residual.broadcast ? nullptr : node.residual.data};
  if (!direct)
    FSWAP_RETURN_IF_ERROR(copy_window(dtype, x.data, ws.staging,
                                      window_copy(s.layout, batch, channels, g, p.input, g.in, 1), args.ctx.stream,
                                      op));
  const auto epilogue = [&] {
    return conv_epilogue(args, op, dtype, s.layout, node.bias, node.residual, batch, out_channels,
                         spatial_elements(g.out, g.rank), node.slope);
  };
  FSWAP_ASSIGN_OR_RETURN(const ConvAlgoChoice choice, choose_algorithm(args, op, p, d, b, ws, known, epilogue));
  FSWAP_ASSIGN_OR_RETURN(const bool epilogue_done, run_convolution(args, op, p, d, choice, b, ws));
  return epilogue_done ? Status::ok() : epilogue();
}

// A band's staged input rows take at most this: the band stays in the H100's 50 MiB L2 between
// the resize writing it and cuDNN reading it.
constexpr std::size_t kBandBytes = 8u << 20;

// The output rows per band of a banded input resize: as many as keep the staged rows within
// kBandBytes (one at least), then evened out so every band but the last has the same height (two
// cuDNN problems at most).
std::int64_t band_rows(const SpatialGeometry& g, std::size_t staged_row_bytes) {
  const auto fit = static_cast<std::int64_t>(kBandBytes / std::max<std::size_t>(1, staged_row_bytes));
  const std::int64_t most = std::clamp<std::int64_t>((fit - g.span(0)) / g.stride[0] + 1, 1, g.out[0]);
  const std::int64_t bands = (g.out[0] + most - 1) / most;
  return (g.out[0] + bands - 1) / bands;
}

// A channels_last 2-D Conv with a fused input resize (OpAttributes::input_resize): the resized X
// never exists whole. Y is computed in bands of output rows, image by image; each band's input rows
// (the kernel's halo and the zero padding included) are resized into the workspace and convolved
// with pad 0, as cudnn_conv_node stages pads cuDNN cannot express. The epilogue then runs once over Y.
Status banded_resize_conv_node(const CudaKernelArgs& args, const char* op) {
  FSWAP_RETURN_IF_ERROR(require_context(args, op));
  const InputResize& resize = *args.attrs.input_resize;
  CudaKernelArgs resized = args;
  resized.inputs[0].shape = resize.resized;
  FSWAP_ASSIGN_OR_RETURN(const ConvNode node, conv_node(resized, op));
  const ConvShapes& s = node.shapes;
  const SpatialGeometry& g = node.geometry;
  if (s.layout != ConvLayout::kNhwc || g.rank != 2)
    return shape_error(op, "an input resize needs a channels_last Conv over H and W");
  const DType dtype = node.dtype;
  const std::int64_t batch = s.x[0], channels = s.x[1], out_channels = s.w[0];
  const std::int64_t staged_cols = (g.out[1] - 1) * g.stride[1] + g.span(1);
  const auto rows_read = [&](std::int64_t out_rows) { return (out_rows - 1) * g.stride[0] + g.span(0); };
  const std::size_t staged_row_bytes = static_cast<std::size_t>(staged_cols * channels) * dtype_size(dtype);
  const std::size_t out_row_bytes = static_cast<std::size_t>(g.out[1] * out_channels) * dtype_size(dtype);
  const std::int64_t band = band_rows(g, staged_row_bytes);
  for (std::int64_t image = 0; image < batch; ++image) {
    for (std::int64_t first = 0; first < g.out[0]; first += band) {
      const std::int64_t rows = std::min(band, g.out[0] - first);
      ConvProblem p{.direction = ConvDirection::kForward, .dtype = dtype, .layout = ConvLayout::kNhwc,
                    .math = requested_math(dtype), .spatial_rank = 2, .batch = 1, .channels = channels,
                    .out_channels = out_channels, .groups = node.group, .input = {rows_read(rows), staged_cols, 1},
                    .kernel = g.kernel, .pad = {}, .stride = g.stride, .dilation = g.dilation, .epilogue = {}};
      FSWAP_ASSIGN_OR_RETURN(const ConvDescriptors d, describe(op, p));
      const std::optional<ConvAlgoChoice> known = args.ctx.conv_algos->find(p);
      FSWAP_ASSIGN_OR_RETURN(const ConvWorkspace ws,
                             conv_workspace(args, op, round_up(rows_read(rows) * staged_row_bytes), known));
      const NhwcWindow window{.rows = rows_read(rows), .cols = staged_cols,
                              .row0 = first * g.stride[0] - g.pad_begin[0], .col0 = -g.pad_begin[1]};
      FSWAP_RETURN_IF_ERROR(resize_window(dtype, args.inputs[0].data, args.inputs[0].shape, resize, window, image,
                                          ws.staging, args.ctx.stream, op));
      void* y = static_cast<std::byte*>(args.outputs[0].data) + (image * g.out[0] + first) * out_row_bytes;
      const ConvBuffers b{ws.staging, args.inputs[1].data, y};
      // No epilogue in the problem: it runs once over Y after the bands.
      FSWAP_ASSIGN_OR_RETURN(const ConvAlgoChoice choice, choose_algorithm(args, op, p, d, b, ws, known, nullptr));
      FSWAP_RETURN_IF_ERROR(run_convolution(args, op, p, d, choice, b, ws).status());
    }
  }
  return conv_epilogue(args, op, dtype, s.layout, node.bias, node.residual, batch, out_channels, g.out[0] * g.out[1],
                       node.slope);
}

Status conv_kernel(const CudaKernelArgs& args) {
  constexpr const char* kOp = "Conv";
  if (args.attrs.input_resize) return banded_resize_conv_node(args, kOp);
  FSWAP_ASSIGN_OR_RETURN(const ConvNode node, conv_node(args, kOp));
  if (args.outputs[0].elements() == 0) return Status::ok();
  if (nhwc_depthwise(node)) return depthwise_conv_node(args, kOp, node);
  if (nhwc_pointwise(node)) return pointwise_conv_node(args, kOp, node);
  return cudnn_conv_node(args, kOp, node);
}

Status conv_transpose_kernel(const CudaKernelArgs& args) {
  constexpr const char* kOp = "ConvTranspose";
  if (args.inputs.size() < 2 || args.outputs.empty()) return shape_error(kOp, "needs X and W");
  FSWAP_ASSIGN_OR_RETURN(const DType dtype, linear_dtype(args, kOp));
  const TensorView& x = args.inputs[0];
  const TensorView& w = args.inputs[1];
  const TensorView& y = args.outputs[0];
  FSWAP_ASSIGN_OR_RETURN(const ConvShapes s, conv_shapes(args, kOp));
  FSWAP_ASSIGN_OR_RETURN(const SpatialGeometry g, spatial_geometry(args, s, kOp, true));
  const std::int64_t batch = s.x[0], channels = s.x[1];
  FSWAP_ASSIGN_OR_RETURN(const std::int64_t group, conv_transpose_group(kOp, args.attrs, s.x, s.w, s.y));
  const std::int64_t out_channels = s.y[1];
  FSWAP_ASSIGN_OR_RETURN(const void* bias, channel_bias_data(args, kOp, out_channels));
  FSWAP_ASSIGN_OR_RETURN(const ConvResidual residual, residual_data(args, kOp));
  if (y.elements() == 0) return Status::ok();
  FSWAP_RETURN_IF_ERROR(require_context(args, kOp));

  // The forward convolution this inverts maps Y (its input) to X (its output).
  ConvProblem p{.direction = ConvDirection::kBackwardData, .dtype = dtype, .layout = s.layout,
                .math = requested_math(dtype),
                .spatial_rank = g.rank, .batch = batch, .channels = out_channels, .out_channels = channels,
                .groups = group, .input = g.out, .kernel = g.kernel, .pad = g.pad_begin, .stride = g.stride,
                .dilation = g.dilation, .epilogue = {}};
  // Otherwise cuDNN computes the full output (pad 0) into the workspace and Y is its window from pad_begin.
  const bool direct = symmetric_fits(g, g.out, g.in);
  if (!direct) {
    p.pad = {};
    for (int d = 0; d < g.rank; ++d) p.input[d] = (g.in[d] - 1) * g.stride[d] + g.span(d);
  }
  const std::size_t staging_bytes =
      direct ? 0
             : round_up(static_cast<std::size_t>(batch * out_channels * spatial_elements(p.input, g.rank)) *
                        dtype_size(dtype));
  FSWAP_ASSIGN_OR_RETURN(const ConvDescriptors d, describe(kOp, p));
  const std::optional<ConvAlgoChoice> known = args.ctx.conv_algos->find(p);
  FSWAP_ASSIGN_OR_RETURN(const ConvWorkspace ws, conv_workspace(args, kOp, staging_bytes, known));
  const ConvBuffers b{direct ? y.data : ws.staging, w.data, x.data};
  FSWAP_ASSIGN_OR_RETURN(const ConvAlgoChoice choice, choose_algorithm(args, kOp, p, d, b, ws, known, nullptr));
  FSWAP_RETURN_IF_ERROR(run_convolution(args, kOp, p, d, choice, b, ws).status());
  if (!direct)
    FSWAP_RETURN_IF_ERROR(copy_window(dtype, ws.staging, y.data,
                                      window_copy(s.layout, batch, out_channels, g, g.out, p.input, -1),
                                      args.ctx.stream, kOp));
  return conv_epilogue(args, kOp, dtype, s.layout, bias, residual, batch, out_channels,
                       spatial_elements(g.out, g.rank));
}

}  // namespace

Status cudnn_conv_kernel(const CudaKernelArgs& args) {
  constexpr const char* kOp = "Conv";
  FSWAP_ASSIGN_OR_RETURN(const ConvNode node, conv_node(args, kOp));
  if (args.outputs[0].elements() == 0) return Status::ok();
  return cudnn_conv_node(args, kOp, node);
}

CudaKernel linear_kernel(OpType op) {
  switch (op) {
    case OpType::kConv: return conv_kernel;
    case OpType::kConvTranspose: return conv_transpose_kernel;
    case OpType::kGemm: return gemm_kernel;
    case OpType::kMatMul: return mat_mul_kernel;
    default: return nullptr;
  }
}

}  // namespace fswap::cuda
