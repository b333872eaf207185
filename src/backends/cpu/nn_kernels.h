// Internal to the CPU backend: the nn-family kernels (kernels_nn.cc's table) and the helpers
// they share.
//
//   FSWAP_RETURN_IF_ERROR(require_float32(args, "Conv"));
//   FSWAP_ASSIGN_OR_RETURN(WindowGeometry g, window_geometry("Conv", args.attrs, x.shape, y.shape, kernel));
//
// Kernels follow the contract in cpu_kernels.h. float32 only, except Pad, DepthToSpace and
// SpaceToDepth, which move elements of any dtype.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "backends/cpu/cpu_kernels.h"
#include "backends/op_rules.h"

namespace fswap {

// Convolution and pooling (nn_conv.cc, nn_pool.cc).
Status conv_kernel(const KernelArgs& args);
Status conv_transpose_kernel(const KernelArgs& args);
Status max_pool_kernel(const KernelArgs& args);
Status average_pool_kernel(const KernelArgs& args);
Status global_average_pool_kernel(const KernelArgs& args);
Status global_max_pool_kernel(const KernelArgs& args);
// Linear algebra (nn_gemm.cc).
Status gemm_kernel(const KernelArgs& args);
Status mat_mul_kernel(const KernelArgs& args);
// Normalisations and softmax (nn_norm.cc). Softmax/LogSoftmax use opset-13 semantics (see there).
Status batch_normalization_kernel(const KernelArgs& args);
Status instance_normalization_kernel(const KernelArgs& args);
Status filter_response_norm_kernel(const KernelArgs& args);  // internal op, backends/op.h
Status layer_normalization_kernel(const KernelArgs& args);
Status lp_normalization_kernel(const KernelArgs& args);
Status softmax_kernel(const KernelArgs& args);
Status log_softmax_kernel(const KernelArgs& args);
// Resampling and layout (nn_resize.cc).
Status resize_kernel(const KernelArgs& args);
// x resized to y's shape (scales y / x) in this mode: a fused input resize (OpAttributes::input_resize).
Status resize_input(const TensorView& x, const TensorView& y, const ResizeMode& mode);
Status upsample_kernel(const KernelArgs& args);
Status depth_to_space_kernel(const KernelArgs& args);
Status space_to_depth_kernel(const KernelArgs& args);
Status pad_kernel(const KernelArgs& args);

// kUnsupported unless every present input and output is float32.
Status require_float32(const KernelArgs& args, const char* op);

// kInvalidInput "<op>: <what>" for inconsistent shapes (shape inference should prevent these).
inline Status nn_shape_error(const char* op, const std::string& what) {
  return invalid_input(std::string(op) + ": " + what);
}

// A shape seen as [outer, len, inner] around one axis: the element (o, i, k) is at
// (o·len + i)·inner + k. Softmax, LpNormalization and friends walk outer·inner lines of len.
struct AxisLines {
  std::int64_t outer = 1, len = 1, inner = 1;
};
inline AxisLines axis_lines(const Shape& shape, int axis) {
  AxisLines l;
  for (int i = 0; i < axis; ++i) l.outer *= shape[i];
  l.len = shape[axis];
  for (std::size_t i = axis + 1; i < shape.size(); ++i) l.inner *= shape[i];
  return l;
}

// Where the channels of X lie for the normalisations and pools: [N, C, spatial...], or
// [N, H, W, C] when attribute channels_last is 1 (the layout pass's NHWC islands; contract in
// runtime/channels_last.h). Element s (a flat spatial index) of the plane of (n, c) is at
// n·C·plane + c·channel_stride + s·spatial_stride.
struct ChannelLayout {
  std::int64_t batch = 1, channels = 1, plane = 1;  // plane: spatial elements per (n, c)
  std::int64_t channel_stride = 1, spatial_stride = 1;
  Shape channels_first;  // X's shape as [N, C, spatial...]
  // The first element of the plane p = n·C + c.
  std::int64_t plane_offset(std::int64_t p) const {
    return (p / channels) * channels * plane + (p % channels) * channel_stride;
  }
};
// kInvalidInput "<op>: X must have rank >= <min_rank>, got [..]", or channels_last's errors (op_rules.h).
inline Result<ChannelLayout> channel_layout(const char* op, const OpAttributes& attrs, const Shape& x,
                                            std::size_t min_rank) {
  FSWAP_ASSIGN_OR_RETURN(const bool last, channels_last(op, attrs, x));
  if (x.size() < min_rank)
    return nn_shape_error(op, "X must have rank >= " + std::to_string(min_rank) + ", got " + shape_to_string(x));
  ChannelLayout l;
  l.channels_first = last ? nchw_from_nhwc(x) : x;
  l.batch = x[0];
  l.channels = l.channels_first[1];
  for (std::size_t d = 2; d < x.size(); ++d) l.plane *= l.channels_first[d];
  l.channel_stride = last ? 1 : l.plane;
  l.spatial_stride = last ? l.channels : 1;
  return l;
}

// attrs.activation applied in place to data[0, n).
void apply_activation(const FusedActivation& act, float* data, std::int64_t n);

// Per-channel bias (may be nullptr), then a residual of y's shape (may be nullptr), then the fused
// activation over y = [batch, channels, plane]: y = act(y + bias + residual), added in that order.
// A fused PRelu (kPRelu) reads its per-channel slope from `slope`.
void bias_and_activation(const FusedActivation& act, const float* bias, const float* residual, float* y,
                         std::int64_t batch, std::int64_t channels, std::int64_t plane,
                         const float* slope = nullptr);

// A float scratch buffer owned by the calling thread, grown on demand, never shrunk.
// slot separates buffers that are live at the same time.
float* thread_scratch(int slot, std::size_t floats);

}  // namespace fswap
