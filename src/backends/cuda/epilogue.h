// Internal to the CUDA linear family (conv.cc, gemm.cc): the element-wise passes around cuDNN and
// cuBLASLt calls, enqueued on a stream, and the dtype rule the family shares. Host declarations
// only; the device code is in epilogue.cu.
//
//   // y = act(y + b[channel]) after a convolution writing y = [n, c, h, w]:
//   FSWAP_RETURN_IF_ERROR(
//       bias_activation(y.dtype, y.data, b.data, n * c, h * w, channel_bias(c), act, stream, "Conv"));
//   // y = act(y + b[channel] + r) with a residual r laid out as y (a fused Add, backends/op.h):
//   FSWAP_RETURN_IF_ERROR(
//       bias_activation(y.dtype, y.data, b.data, n * c, h * w, channel_bias(c), act, stream, "Conv", r.data));
//   // ... with r = [1, c, h, w], one item added to each of the n:
//   FSWAP_RETURN_IF_ERROR(bias_activation(y.dtype, y.data, b.data, n * c, h * w, channel_bias(c), act, stream,
//                                         "Conv", r.data, /*slope=*/nullptr, /*residual_rows=*/c));
//
// Tensors are float32 or float16 (compute in float32), dense row-major device memory; anything else
// is kUnsupported naming `op`. Each launch is checked (check_launch naming `op`).
#pragma once

#include <array>
#include <cstdint>

#include "backends/cuda/cuda_kernels.h"
#include "backends/op.h"
#include "core/status.h"
#include "core/tensor.h"

struct CUstream_st;

namespace fswap::cuda {

// The dtype of a linear-family node: its output's, float32 or float16, shared by every present
// input; kUnsupported naming `op` and the dtype otherwise.
Result<DType> linear_dtype(const CudaKernelArgs& args, const char* op);

// Which bias element meets y[row, col]: bias[(row % period) * row_stride + col * col_stride] * scale.
struct BiasLayout {
  std::int64_t period = 1, row_stride = 0, col_stride = 0;
  float scale = 1;
};
// y = [batch * channels, plane] (NCHW): one value per channel.
inline BiasLayout channel_bias(std::int64_t channels) { return {channels, 1, 0, 1}; }
// y = [rows, n]: one value per column (a bias over the last axis; a channels_last convolution's
// y = [batch * plane, channels]).
inline BiasLayout column_bias() { return {1, 0, 1, 1}; }

// y[r, c] = act(y[r, c] + bias element + residual[r % residual_rows, c]) in place over a row-major
// y = [rows, cols], added in that order (as the CPU kernels do); bias and residual have y's dtype,
// nullptr for none. The residual is a separate buffer in y's layout of residual_rows rows: y's
// rows (0, the default, says so), or one batch item's (rows / batch: channels in NCHW, the plane
// in NHWC) added to every item (backends/op.h). A fused PRelu (act kPRelu) takes its slope, one
// value per channel indexed as the bias is, from `slope` (y's dtype; nullptr for any other
// activation). Nothing is enqueued when there is no bias, no residual and no activation.
Status bias_activation(DType dtype, void* y, const void* bias, std::int64_t rows, std::int64_t cols,
                       const BiasLayout& layout, const FusedActivation& act, CUstream_st* stream, const char* op,
                       const void* residual = nullptr, const void* slope = nullptr, std::int64_t residual_rows = 0);

// One row through a linear layer, for latency-bound Gemms where a cuBLASLt call costs the GPU more
// than the arithmetic: y[j] = act(alpha · Σ_i x[i] · w[j, i] + beta · c[j] + bias[j]) for j < n, with
// x = [k], w = [n, k] row-major (Gemm's transB), c and bias n values or nullptr, all of y's dtype
// (float32 or float16, accumulated in float32); act is kNone or kRelu. A warp per output.
Status row_gemv(DType dtype, const void* x, const void* w, const void* c, const void* bias, void* y, std::int64_t n,
                std::int64_t k, float alpha, float beta, bool relu, CUstream_st* stream, const char* op);

// A copy between two spatial windows of the same planes: dst = [planes, dst...] and
// src = [planes, src...], 3 spatial dims (leading 1s for fewer; NHWC data is [batch planes, H, W, C]
// with offset 0 over C). dst index i reads src index
// i - offset (per dim) when that is inside src, else writes 0. Zero-pads (offset > 0) and crops
// (offset < 0) in one pass.
struct WindowCopy {
  std::int64_t planes = 1;  // batch × channels
  std::array<std::int64_t, 3> dst{1, 1, 1}, src{1, 1, 1}, offset{0, 0, 0};
};
Status copy_window(DType dtype, const void* src, void* dst, const WindowCopy& window, CUstream_st* stream,
                   const char* op);

}  // namespace fswap::cuda
