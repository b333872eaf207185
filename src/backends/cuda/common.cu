#include "backends/cuda/common.cuh"

namespace fswap::cuda {

Status check_launch(const char* op) {
  const cudaError_t error = cudaGetLastError();
  if (error == cudaSuccess) return Status::ok();
  return internal_error(std::string(op) + " on CUDA: kernel launch failed: " + cudaGetErrorName(error) + ": " +
                        cudaGetErrorString(error));
}

Dims dense_dims(const Shape& shape) {
  Dims d;
  d.rank = static_cast<int>(shape.size());
  std::int64_t stride = 1;
  for (int i = d.rank - 1; i >= 0; --i) {
    d.size[i] = shape[static_cast<std::size_t>(i)];
    d.stride[i] = stride;
    stride *= d.size[i];
  }
  return d;
}

Dims broadcast_dims(const Shape& in, const Shape& out) {
  Dims d;
  d.rank = static_cast<int>(out.size());
  const int shift = d.rank - static_cast<int>(in.size());
  std::int64_t stride = 1;
  for (int i = d.rank - 1; i >= 0; --i) {
    d.size[i] = out[static_cast<std::size_t>(i)];
    const int j = i - shift;
    const std::int64_t n = j >= 0 ? in[static_cast<std::size_t>(j)] : 1;
    d.stride[i] = n == 1 ? 0 : stride;
    stride *= n;
  }
  return d;
}

}  // namespace fswap::cuda
