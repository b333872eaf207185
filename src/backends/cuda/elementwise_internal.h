// Internal to the CUDA element-wise family (elementwise.cu, reduce.cu); included only by .cu files.
//
//   if (CudaKernel k = reduce_kernel(op)) return k;           // elementwise_kernel's fallback
//   acc += widen_to<float>(x[i]);  y[j] = narrow_to<T>(acc);   // float16 storage computes in float
#pragma once

#include <cuda_fp16.h>

#include <cstddef>
#include <type_traits>

#include "backends/cuda/cuda_kernels.h"

namespace fswap::cuda {

// reduce.cu: Softmax, LogSoftmax, Reduce*, ArgMax, ArgMin and TopK; nullptr for any other op.
CudaKernel reduce_kernel(OpType op);

// dst = src (cudaMemcpyAsync on args' stream) unless they are the same buffer or empty.
Status copy_unless_aliased(const CudaKernelArgs& args, const TensorView& dst, const TensorView& src);

// Input i's host copy when it is a constant, else nullptr.
inline const TensorView* host_input(const CudaKernelArgs& args, std::size_t i) {
  return i < args.host_inputs.size() && args.host_inputs[i].data != nullptr ? &args.host_inputs[i] : nullptr;
}

// Input i when present (in range, data != nullptr), else nullptr.
inline const TensorView* device_input(const CudaKernelArgs& args, std::size_t i) {
  return i < args.inputs.size() && args.inputs[i].data != nullptr ? &args.inputs[i] : nullptr;
}

// The type a storage type computes in: float for __half, itself otherwise.
template <class T>
using Compute = std::conditional_t<std::is_same_v<T, __half>, float, T>;

template <class To, class From>
__device__ __forceinline__ To widen_to(From v) {
  if constexpr (std::is_same_v<From, __half>) {
    return static_cast<To>(__half2float(v));
  } else {
    return static_cast<To>(v);
  }
}

template <class To, class From>
__device__ __forceinline__ To narrow_to(From v) {
  if constexpr (std::is_same_v<To, __half>) {
    return __float2half(static_cast<float>(v));
  } else {
    return static_cast<To>(v);
  }
}

}  // namespace fswap::cuda
