// The NVIDIA libraries behind the CUDA kernels: one cuDNN handle bound to the compute stream and
// one cuBLASLt handle, owned together; plus the checkers that turn their status codes into Status.
//
//   FSWAP_ASSIGN_OR_RETURN(cuda::CudaLibraries libs, cuda::CudaLibraries::create(device.compute_stream()));
//   context.cudnn = libs.cudnn();
//   context.cublaslt = libs.cublaslt();
//
// Ownership: CudaLibraries owns both handles (move-only); the stream stays the caller's and must
// outlive the handles. Thread-safety: one thread at a time, like the CudaContext they serve.
// This header needs no CUDA headers: the handle types are declared opaquely, status codes are int.
#pragma once

#include <cstddef>
#include <memory>

#include "core/status.h"

struct CUstream_st;
struct cudnnContext;
struct cublasLtContext;

namespace fswap::cuda {

namespace detail {
struct CudnnDeleter { void operator()(cudnnContext* handle) const; };
struct CublasLtDeleter { void operator()(cublasLtContext* handle) const; };
}  // namespace detail
using CudnnHandle = std::unique_ptr<cudnnContext, detail::CudnnDeleter>;        // cudnnDestroy
using CublasLtHandle = std::unique_ptr<cublasLtContext, detail::CublasLtDeleter>;  // cublasLtDestroy

// The deleter of a unique_ptr owning a library descriptor, for .cc files that see the library:
//   using TensorDescriptor = std::unique_ptr<cudnnTensorStruct, DestroyWith<cudnnDestroyTensorDescriptor>>;
template <auto destroy>
struct DestroyWith {
  template <class T>
  void operator()(T* descriptor) const { destroy(descriptor); }
};

class CudaLibraries {
 public:
  // Creates both handles on the current device and binds cuDNN to `stream`.
  // kUnsupported naming the library when cuDNN or cuBLASLt cannot be initialised (no GPU, no
  // driver, a library missing or too old); kInternal for a failure after that.
  static Result<CudaLibraries> create(CUstream_st* stream);

  cudnnContext* cudnn() const { return cudnn_.get(); }
  cublasLtContext* cublaslt() const { return cublaslt_.get(); }
  // The cuDNN library loaded at run time (cudnnGetVersion: 91400 for 9.14.0).
  std::size_t cudnn_version() const;

 private:
  CudaLibraries(CudnnHandle cudnn, CublasLtHandle cublaslt);

  CudnnHandle cudnn_;
  CublasLtHandle cublaslt_;
};

// ok for a successful call (status 0); else "<op> on CUDA: <call> failed: <status name>: <detail>".
// Codes: cuDNN's NOT_SUPPORTED family and CUBLAS_STATUS_NOT_SUPPORTED → kUnsupported (the executor
// may fall back to the CPU); allocation failures → kOutOfMemory; everything else → kInternal.
Status cudnn_status(int status, const char* op, const char* call);     // cudnnStatus_t
Status cublas_status(int status, const char* op, const char* call);    // cublasStatus_t
Status cuda_runtime_status(int error, const char* op, const char* call);  // cudaError_t; clears it

}  // namespace fswap::cuda

// FSWAP_CUDNN_CHECK("Conv", cudnnConvolutionForward(...)): returns the failure's Status from the
// enclosing function (which returns Status or Result<T>). Same for cuBLASLt and the CUDA runtime.
#define FSWAP_CUDNN_CHECK(op, call) \
  FSWAP_RETURN_IF_ERROR(::fswap::cuda::cudnn_status(static_cast<int>(call), (op), #call))
#define FSWAP_CUBLAS_CHECK(op, call) \
  FSWAP_RETURN_IF_ERROR(::fswap::cuda::cublas_status(static_cast<int>(call), (op), #call))
#define FSWAP_CUDA_RUNTIME_CHECK(op, call) \
  FSWAP_RETURN_IF_ERROR(::fswap::cuda::cuda_runtime_status(static_cast<int>(call), (op), #call))
