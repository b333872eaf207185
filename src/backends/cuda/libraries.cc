#include "backends/cuda/libraries.h"

#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <string>
#include <string_view>

namespace fswap::cuda {
namespace {

// "cudnnConvolutionForward(handle, ...)" → "cudnnConvolutionForward": the arguments say nothing useful.
std::string_view function_name(const char* call) {
  const std::string_view text(call);
  return text.substr(0, text.find('('));
}

std::string failure(const char* op, const char* call, std::string_view name, std::string_view detail) {
  std::string m = std::string(op) + " on CUDA: " + std::string(function_name(call)) + " failed: " + std::string(name);
  if (!detail.empty()) m += ": " + std::string(detail);
  return m;
}

}  // namespace

namespace detail {
void CudnnDeleter::operator()(cudnnContext* handle) const { cudnnDestroy(handle); }
void CublasLtDeleter::operator()(cublasLtContext* handle) const { cublasLtDestroy(handle); }
}  // namespace detail

Result<CudaLibraries> CudaLibraries::create(CUstream_st* stream) {
  cudnnHandle_t raw_cudnn = nullptr;
  if (const cudnnStatus_t s = cudnnCreate(&raw_cudnn); s != CUDNN_STATUS_SUCCESS)
    return unsupported(std::string("cuDNN could not be initialised (cudnnCreate: ") + cudnnGetErrorString(s) +
                       "): check that a GPU is visible and libcudnn 9 is on the library path");
  CudnnHandle cudnn(raw_cudnn);
  FSWAP_CUDNN_CHECK("cuDNN setup", cudnnSetStream(cudnn.get(), stream));
  cublasLtHandle_t raw_cublaslt = nullptr;
  if (const cublasStatus_t s = cublasLtCreate(&raw_cublaslt); s != CUBLAS_STATUS_SUCCESS)
    return unsupported(std::string("cuBLASLt could not be initialised (cublasLtCreate: ") + cublasLtGetStatusName(s) +
                       "): check that a GPU is visible and libcublasLt is on the library path");
  return CudaLibraries(std::move(cudnn), CublasLtHandle(raw_cublaslt));
}

CudaLibraries::CudaLibraries(CudnnHandle cudnn, CublasLtHandle cublaslt)
    : cudnn_(std::move(cudnn)), cublaslt_(std::move(cublaslt)) {}

std::size_t CudaLibraries::cudnn_version() const { return cudnnGetVersion(); }

Status cudnn_status(int status, const char* op, const char* call) {
  if (status == CUDNN_STATUS_SUCCESS) return Status::ok();
  const auto s = static_cast<cudnnStatus_t>(status);
  char detail[512] = {};
  cudnnGetLastErrorString(detail, sizeof(detail));
  std::string message = failure(op, call, cudnnGetErrorString(s), detail);
  // cuDNN 9 codes are families: 3xxx = not supported; 4003/4004 = host/device allocation failed.
  if (status / 1000 == CUDNN_STATUS_NOT_SUPPORTED / 1000) return unsupported(std::move(message));
  if (s == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED ||
      s == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED)
    return out_of_memory(std::move(message));
  return internal_error(std::move(message));
}

Status cublas_status(int status, const char* op, const char* call) {
  if (status == CUBLAS_STATUS_SUCCESS) return Status::ok();
  const auto s = static_cast<cublasStatus_t>(status);
  std::string message = failure(op, call, cublasLtGetStatusName(s), cublasLtGetStatusString(s));
  if (s == CUBLAS_STATUS_NOT_SUPPORTED) return unsupported(std::move(message));
  if (s == CUBLAS_STATUS_ALLOC_FAILED) return out_of_memory(std::move(message));
  return internal_error(std::move(message));
}

Status cuda_runtime_status(int error, const char* op, const char* call) {
  if (error == cudaSuccess) return Status::ok();
  const auto e = static_cast<cudaError_t>(error);
  (void)cudaGetLastError();
  std::string message = failure(op, call, cudaGetErrorName(e), cudaGetErrorString(e));
  if (e == cudaErrorMemoryAllocation) return out_of_memory(std::move(message));
  return internal_error(std::move(message));
}

}  // namespace fswap::cuda
