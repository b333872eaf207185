#include "backends/cuda/epilogue.h"

#include <algorithm>
#include <string>

#include "backends/cuda/common.cuh"

namespace fswap::cuda {
namespace {

// Rows × cols work: a block spans up to kBlock columns of one row, or several rows when rows are
// short, so narrow rows (a 4×4 plane, a 5-wide Gemm) do not leave most threads idle. Row indices
// come from the grid, so the per-element work needs no 64-bit division.
struct RowLaunch {
  dim3 grid, block;
};

RowLaunch row_launch(std::int64_t rows, std::int64_t cols) {
  constexpr std::int64_t kMaxBlocks = 65535 * 8;
  const std::int64_t bx = std::clamp<std::int64_t>((cols + 31) / 32 * 32, 32, kBlock);
  const std::int64_t by = kBlock / bx;
  const std::int64_t gx = std::min<std::int64_t>((cols + bx - 1) / bx, kMaxBlocks);
  const std::int64_t gy =
      std::clamp<std::int64_t>((rows + by - 1) / by, 1, std::min<std::int64_t>(65535, kMaxBlocks / gx));
  return {dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy)),
          dim3(static_cast<unsigned>(bx), static_cast<unsigned>(by))};
}

#define FSWAP_ROW_STRIDE(r, rows)                                                                           \
  for (std::int64_t r = blockIdx.y * static_cast<std::int64_t>(blockDim.y) + threadIdx.y; r < (rows); \
       r += static_cast<std::int64_t>(blockDim.y) * gridDim.y)
#define FSWAP_COL_STRIDE(c, cols)                                                                           \
  for (std::int64_t c = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; c < (cols); \
       c += static_cast<std::int64_t>(blockDim.x) * gridDim.x)

template <class T>
__global__ void bias_activation_kernel(T* y, const T* bias, const T* residual, const T* slope, std::int64_t rows,
                                       std::int64_t cols, std::int64_t residual_rows, BiasLayout layout,
                                       FusedActivation act) {
  FSWAP_ROW_STRIDE(r, rows) {
    T* row = y + r * cols;
    const std::int64_t channel_row = (r % layout.period) * layout.row_stride;
    const T* bias_row = bias == nullptr ? nullptr : bias + channel_row;
    const T* slope_row = slope == nullptr ? nullptr : slope + channel_row;
    const T* residual_row = residual == nullptr ? nullptr : residual + (r % residual_rows) * cols;
    FSWAP_COL_STRIDE(c, cols) {
      float v = to_float(row[c]);
      if (bias_row != nullptr) v += layout.scale * to_float(bias_row[c * layout.col_stride]);
      if (residual_row != nullptr) v += to_float(residual_row[c]);
      // A fused PRelu is LeakyRelu with the channel's slope as alpha (the CPU's bias_and_activation).
      if (slope_row != nullptr) v = v >= 0.0f ? v : v * to_float(slope_row[c * layout.col_stride]);
      else v = activate(v, act);
      row[c] = from_float<T>(v);
    }
  }
}

// Element bits only: a copy needs no arithmetic, and all-zero bits are 0.0 in float32 and float16.
template <class Bits>
__global__ void copy_window_kernel(const Bits* src, Bits* dst, WindowCopy w) {
  const std::int64_t rows = w.planes * w.dst[0] * w.dst[1], cols = w.dst[2];
  FSWAP_ROW_STRIDE(r, rows) {
    const std::int64_t plane = r / (w.dst[0] * w.dst[1]), i0 = (r / w.dst[1]) % w.dst[0], i1 = r % w.dst[1];
    const std::int64_t s0 = i0 - w.offset[0], s1 = i1 - w.offset[1];
    const bool row_inside = s0 >= 0 && s0 < w.src[0] && s1 >= 0 && s1 < w.src[1];
    const Bits* src_row = row_inside ? src + ((plane * w.src[0] + s0) * w.src[1] + s1) * w.src[2] : nullptr;
    Bits* dst_row = dst + r * cols;
    FSWAP_COL_STRIDE(c, cols) {
      const std::int64_t s2 = c - w.offset[2];
      dst_row[c] = src_row != nullptr && s2 >= 0 && s2 < w.src[2] ? src_row[s2] : Bits(0);
    }
  }
}

constexpr int kWarp = 32;

template <class T>
__global__ void row_gemv_kernel(const T* x, const T* w, const T* c, const T* bias, T* y, std::int64_t n,
                                std::int64_t k, float alpha, float beta, bool relu) {
  const std::int64_t warps = static_cast<std::int64_t>(gridDim.x) * (blockDim.x / kWarp);
  const int lane = static_cast<int>(threadIdx.x % kWarp);
  for (std::int64_t j = blockIdx.x * static_cast<std::int64_t>(blockDim.x / kWarp) + threadIdx.x / kWarp; j < n;
       j += warps) {
    const T* row = w + j * k;
    float sum = 0;
    for (std::int64_t i = lane; i < k; i += kWarp) sum += to_float(x[i]) * to_float(row[i]);
    for (int offset = kWarp / 2; offset > 0; offset /= 2) sum += __shfl_down_sync(0xffffffffu, sum, offset);
    if (lane != 0) continue;
    float v = alpha * sum;
    if (c != nullptr) v += beta * to_float(c[j]);
    if (bias != nullptr) v += to_float(bias[j]);
    y[j] = from_float<T>(relu ? fmaxf(v, 0.0f) : v);
  }
}

}  // namespace

Result<DType> linear_dtype(const CudaKernelArgs& args, const char* op) {
  const DType dtype = args.outputs[0].dtype;
  if (dtype != DType::kFloat32 && dtype != DType::kFloat16)
    return unsupported(std::string(op) + " on CUDA: dtype " + dtype_name(dtype));
  for (const TensorView& t : args.inputs)
    if (t.data != nullptr && t.dtype != dtype)
      return unsupported(std::string(op) + " on CUDA: mixed dtypes " + dtype_name(t.dtype) + " and " +
                         dtype_name(dtype));
  return dtype;
}

Status bias_activation(DType dtype, void* y, const void* bias, std::int64_t rows, std::int64_t cols,
                       const BiasLayout& layout, const FusedActivation& act, CUstream_st* stream, const char* op,
                       const void* residual, const void* slope, std::int64_t residual_rows) {
  if ((bias == nullptr && residual == nullptr && act.kind == Activation::kNone) || rows <= 0 || cols <= 0)
    return Status::ok();
  if ((act.kind == Activation::kPRelu) != (slope != nullptr))
    return internal_error(std::string(op) + " on CUDA: a fused PRelu and its slope go together");
  if (residual_rows == 0) residual_rows = rows;
  if (residual_rows < 0 || rows % residual_rows != 0)
    return internal_error(std::string(op) + " on CUDA: a residual of " + std::to_string(residual_rows) +
                          " rows does not tile y's " + std::to_string(rows));
  return dispatch_float(dtype, op, [&]<class T>() {
    const RowLaunch l = row_launch(rows, cols);
    bias_activation_kernel<T><<<l.grid, l.block, 0, stream>>>(static_cast<T*>(y), static_cast<const T*>(bias),
                                                               static_cast<const T*>(residual),
                                                               static_cast<const T*>(slope), rows, cols,
                                                               residual_rows, layout, act);
    return check_launch(op);
  });
}

Status row_gemv(DType dtype, const void* x, const void* w, const void* c, const void* bias, void* y, std::int64_t n,
                std::int64_t k, float alpha, float beta, bool relu, CUstream_st* stream, const char* op) {
  if (n <= 0) return Status::ok();
  return dispatch_float(dtype, op, [&]<class T>() {
    constexpr std::int64_t kWarpsPerBlock = kBlock / kWarp;
    const auto blocks = static_cast<unsigned>(std::min<std::int64_t>((n + kWarpsPerBlock - 1) / kWarpsPerBlock, 65535));
    row_gemv_kernel<T><<<blocks, kBlock, 0, stream>>>(static_cast<const T*>(x), static_cast<const T*>(w),
                                                      static_cast<const T*>(c), static_cast<const T*>(bias),
                                                      static_cast<T*>(y), n, k, alpha, beta, relu);
    return check_launch(op);
  });
}

Status copy_window(DType dtype, const void* src, void* dst, const WindowCopy& window, CUstream_st* stream,
                   const char* op) {
  const std::int64_t rows = window.planes * window.dst[0] * window.dst[1], cols = window.dst[2];
  if (rows <= 0 || cols <= 0) return Status::ok();
  const RowLaunch l = row_launch(rows, cols);
  switch (dtype) {
    case DType::kFloat32:
      copy_window_kernel<<<l.grid, l.block, 0, stream>>>(static_cast<const std::uint32_t*>(src),
                                                         static_cast<std::uint32_t*>(dst), window);
      return check_launch(op);
    case DType::kFloat16:
      copy_window_kernel<<<l.grid, l.block, 0, stream>>>(static_cast<const std::uint16_t*>(src),
                                                         static_cast<std::uint16_t*>(dst), window);
      return check_launch(op);
    default:
      return unsupported(std::string(op) + " on CUDA: dtype " + dtype_name(dtype));
  }
}

}  // namespace fswap::cuda
