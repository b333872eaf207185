// Device-side helpers shared by the CUDA kernel families (included only by .cu files).
//
//   FSWAP_RETURN_IF_ERROR(dispatch_float(y.dtype, [&]<class T>() {
//     scale<<<grid_for(n), kBlock, 0, stream(args)>>>(x.as<T>(), y.as<T>(), n);
//     return check_launch("Mul");
//   }));
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "backends/cuda/cuda_kernels.h"
#include "backends/cuda/launch.h"

namespace fswap::cuda {

inline constexpr int kBlock = 256;
inline constexpr int kMaxRank = 8;

// Blocks for a grid-stride loop over n items (capped; the loop covers the rest).
inline unsigned grid_for(std::int64_t n) {
  const std::int64_t blocks = (n + kBlock - 1) / kBlock;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > 65535 * 8 ? 65535 * 8 : blocks));
}

inline cudaStream_t stream_of(const CudaKernelArgs& args) { return reinterpret_cast<cudaStream_t>(args.ctx.stream); }

#define FSWAP_GRID_STRIDE(i, n) \
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x)

// Float storage types compute in float.
__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
template <class T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_float<__half>(float v) { return __float2half(v); }

// Calls f.template operator()<T>() with T = float or __half for kFloat32/kFloat16;
// kUnsupported naming `op` and the dtype otherwise.
template <class F>
Status dispatch_float(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case DType::kFloat32: return f.template operator()<float>();
    case DType::kFloat16: return f.template operator()<__half>();
    default: return unsupported(std::string(op) + " on CUDA: dtype " + dtype_name(dtype));
  }
}

// Strides of a dense row-major shape, for index arithmetic on the device (rank ≤ kMaxRank).
struct Dims {
  int rank = 0;
  std::int64_t size[kMaxRank] = {};
  std::int64_t stride[kMaxRank] = {};  // elements
};
Dims dense_dims(const Shape& shape);  // kernels check shape.size() <= kMaxRank first
// The strides of `in` broadcast to `out`'s rank (numpy rules): 0 where `in` has size 1 or lacks
// the axis. Output sizes in `size`.
Dims broadcast_dims(const Shape& in, const Shape& out);

// The input offset of output element `linear` under `in`'s (broadcast) strides, walking `out`'s sizes.
__device__ __forceinline__ std::int64_t broadcast_offset(std::int64_t linear, const Dims& out, const Dims& in) {
  std::int64_t offset = 0;
  for (int d = out.rank - 1; d >= 0; --d) {
    const std::int64_t idx = linear % out.size[d];
    linear /= out.size[d];
    offset += idx * in.stride[d];
  }
  return offset;
}

// The CPU backend's apply_activation, element by element (same comparisons, so NaN handling matches).
__device__ __forceinline__ float activate(float v, const FusedActivation& a) {
  switch (a.kind) {
    case Activation::kNone: return v;
    case Activation::kRelu: return v > 0.0f ? v : 0.0f;
    case Activation::kLeakyRelu: return v >= 0.0f ? v : v * a.alpha;
    case Activation::kSigmoid: return 1.0f / (1.0f + expf(-v));
    case Activation::kTanh: return tanhf(v);
    case Activation::kClip: {
      const float low = v < a.alpha ? a.alpha : v;
      return a.beta < low ? a.beta : low;
    }
    case Activation::kHardSigmoid: {
      const float h = a.alpha * v + a.beta;
      const float low = h < 0.0f ? 0.0f : h;
      return 1.0f < low ? 1.0f : low;
    }
    case Activation::kSilu: return v * (1.0f / (1.0f + expf(-v)));
    case Activation::kPRelu: return v;  // per channel: only bias_activation applies it (its slope)
  }
  return v;
}

}  // namespace fswap::cuda
