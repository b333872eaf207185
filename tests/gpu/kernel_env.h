// GPU tests that call CUDA kernels directly (tests/gpu/test_cuda_channels_last.cc,
// test_cuda_nhwc_norm_pool.cc, test_cuda_reductions.cc): what every kernel uses besides its
// tensors — one stream, cuDNN and cuBLASLt, an in-memory convolution algorithm cache and its graph
// plans, a device
// workspace — made once per program, and device copies of host test tensors.
//
//   TEST(CudaThing, MatchesTheCpu) {
//     SKIP_WITHOUT_GPU();
//     auto x = test::upload(host_x, DType::kFloat16);
//     test::DeviceBuffer y(bytes);
//     ASSERT_TRUE(kernel({op, attrs, {{DType::kFloat16, shape, x->data}}, {{DType::kFloat16, out, y.data}}, {},
//                         test::kernel_gpu().ctx}).is_ok());
//     const Tensor got = test::download(y.data, out, DType::kFloat16);   // float32 on the host
//   }
#pragma once

#include <gtest/gtest.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backends/cuda/conv_algo_cache.h"
#include "backends/cuda/conv_graph.h"
#include "backends/cuda/cuda_kernels.h"
#include "backends/cuda/libraries.h"
#include "core/half.h"
#include "core/status.h"
#include "core/tensor.h"

namespace fswap::test {

// Device memory freed on destruction.
struct DeviceBuffer {
  void* data = nullptr;
  explicit DeviceBuffer(std::size_t bytes) { EXPECT_EQ(cudaMalloc(&data, std::max<std::size_t>(bytes, 1)), cudaSuccess); }
  ~DeviceBuffer() { cudaFree(data); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

// The kernels' context; `ready` says why not when there is no usable GPU.
struct KernelGpu {
  static constexpr std::size_t kWorkspaceBytes = 320u << 20;  // cuDNN's first search cap (256 MiB) plus staging
  cudaStream_t stream = nullptr;
  std::optional<cuda::CudaLibraries> libraries;
  cuda::ConvAlgoCache algos{std::filesystem::path()};  // in memory only
  cuda::ConvGraphPlans plans;
  std::unique_ptr<DeviceBuffer> workspace;
  cuda::CudaContext ctx;
  Status ready = Status::ok();

  KernelGpu() {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0 || cudaStreamCreate(&stream) != cudaSuccess) {
      ready = unsupported("no CUDA device");
      return;
    }
    Result<cuda::CudaLibraries> libs = cuda::CudaLibraries::create(reinterpret_cast<CUstream_st*>(stream));
    if (!libs) {
      ready = libs.status();
      return;
    }
    libraries.emplace(std::move(*libs));
    workspace = std::make_unique<DeviceBuffer>(kWorkspaceBytes);
    ctx.stream = reinterpret_cast<CUstream_st*>(stream);
    ctx.cudnn = libraries->cudnn();
    ctx.cublaslt = libraries->cublaslt();
    ctx.conv_algos = &algos;
    ctx.conv_plans = &plans;
    ctx.workspace = [this](std::size_t bytes) -> Result<void*> {
      if (bytes > kWorkspaceBytes) return out_of_memory("test workspace: " + std::to_string(bytes) + " bytes");
      return workspace->data;
    };
  }
};

inline KernelGpu& kernel_gpu() {
  static KernelGpu g;
  return g;
}

#define SKIP_WITHOUT_GPU() \
  if (!::fswap::test::kernel_gpu().ready.is_ok()) GTEST_SKIP() << ::fswap::test::kernel_gpu().ready.to_string()

// A float32 host tensor's values on the device as `dtype` (float32 or float16).
inline std::unique_ptr<DeviceBuffer> upload(const Tensor& t, DType dtype) {
  auto buffer = std::make_unique<DeviceBuffer>(static_cast<std::size_t>(t.elements()) * dtype_size(dtype));
  if (dtype == DType::kFloat32) {
    EXPECT_EQ(cudaMemcpy(buffer->data, t.raw(), t.bytes(), cudaMemcpyHostToDevice), cudaSuccess);
  } else {
    std::vector<std::uint16_t> half(static_cast<std::size_t>(t.elements()));
    for (std::size_t i = 0; i < half.size(); ++i) half[i] = float_to_half(t.data<float>()[i]);
    EXPECT_EQ(cudaMemcpy(buffer->data, half.data(), half.size() * 2, cudaMemcpyHostToDevice), cudaSuccess);
  }
  return buffer;
}

// The device bytes after the stream's work.
inline std::vector<std::uint8_t> download_bytes(const void* data, std::size_t bytes) {
  EXPECT_EQ(cudaStreamSynchronize(kernel_gpu().stream), cudaSuccess);
  std::vector<std::uint8_t> out(bytes);
  EXPECT_EQ(cudaMemcpy(out.data(), data, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
  return out;
}

// Bytes of `dtype` (float32 or float16) as a float32 tensor.
inline Tensor as_float(const std::vector<std::uint8_t>& bytes, const Shape& shape, DType dtype) {
  Tensor t = Tensor::zeros(DType::kFloat32, shape);
  if (dtype == DType::kFloat32) {
    std::memcpy(t.raw(), bytes.data(), t.bytes());
  } else {
    for (std::int64_t i = 0; i < t.elements(); ++i) {
      std::uint16_t h = 0;
      std::memcpy(&h, bytes.data() + 2 * i, 2);
      t.data<float>()[i] = half_to_float(h);
    }
  }
  return t;
}

// The device tensor of `dtype` as float32 on the host, after the stream's work.
inline Tensor download(const void* data, const Shape& shape, DType dtype) {
  return as_float(download_bytes(data, static_cast<std::size_t>(shape_elements(shape)) * dtype_size(dtype)), shape,
                  dtype);
}

// Median ms (CUDA events on the kernels' stream) of 20 runs of `launch`, after 3 warm-up runs.
template <class Launch>
double median_gpu_ms(const Launch& launch) {
  for (int i = 0; i < 3; ++i) launch();
  cudaEvent_t start = nullptr, stop = nullptr;
  EXPECT_EQ(cudaEventCreate(&start), cudaSuccess);
  EXPECT_EQ(cudaEventCreate(&stop), cudaSuccess);
  std::vector<float> ms;
  for (int i = 0; i < 20; ++i) {
    cudaEventRecord(start, kernel_gpu().stream);
    launch();
    cudaEventRecord(stop, kernel_gpu().stream);
    EXPECT_EQ(cudaEventSynchronize(stop), cudaSuccess);
    float t = 0;
    cudaEventElapsedTime(&t, start, stop);
    ms.push_back(t);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace fswap::test
