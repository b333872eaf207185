// Internal to the CPU backend: the nn-family kernels (kernels_nn.cc's table) and the helpers
// they share.
//
//   FSWAP_RETURN_IF_ERROR(require_float32(args, "Conv"));
//   FSWAP_ASSIGN_OR_RETURN(WindowGeometry g, window_geometry(args, "Conv", x.shape, y.shape, kernel));
//
// Kernels follow the contract in cpu_kernels.h. float32 only, except Pad, DepthToSpace and
// SpaceToDepth, which move elements of any dtype.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "backends/cpu/axis.h"
#include "backends/cpu/cpu_kernels.h"

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
Status layer_normalization_kernel(const KernelArgs& args);
Status lp_normalization_kernel(const KernelArgs& args);
Status softmax_kernel(const KernelArgs& args);
Status log_softmax_kernel(const KernelArgs& args);
// Resampling and layout (nn_resize.cc).
Status resize_kernel(const KernelArgs& args);
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

// attrs.activation applied in place to data[0, n).
void apply_activation(const FusedActivation& act, float* data, std::int64_t n);

// Per-channel bias (may be nullptr) and the fused activation over y = [batch, channels, plane].
void bias_and_activation(const FusedActivation& act, const float* bias, float* y, std::int64_t batch,
                         std::int64_t channels, std::int64_t plane);

// The sliding-window geometry of Conv and the pools, spatial dims right-aligned into 3
// (a 2-D op has in[0] = out[0] = kernel[0] = 1, stride[0] = dilation[0] = 1, pads 0).
struct WindowGeometry {
  std::int64_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1}, kernel[3] = {1, 1, 1};
  std::int64_t stride[3] = {1, 1, 1}, dilation[3] = {1, 1, 1};
  std::int64_t pad_begin[3] = {0, 0, 0}, pad_end[3] = {0, 0, 0};
  std::int64_t in_size() const { return in[0] * in[1] * in[2]; }
  std::int64_t out_size() const { return out[0] * out[1] * out[2]; }
  std::int64_t kernel_size() const { return kernel[0] * kernel[1] * kernel[2]; }
};

// Geometry from x = [N, C, spatial...], y = [N, M, spatial...] (already inferred), the kernel's
// spatial shape and the attributes strides, dilations, pads and auto_pad (SAME_* pads from the
// output size, as ONNX computes them).
Result<WindowGeometry> window_geometry(const KernelArgs& args, const char* op, const Shape& x, const Shape& y,
                                       const std::vector<std::int64_t>& kernel);

// A float scratch buffer owned by the calling thread, grown on demand, never shrunk.
// slot separates buffers that are live at the same time.
float* thread_scratch(int slot, std::size_t floats);

}  // namespace fswap
