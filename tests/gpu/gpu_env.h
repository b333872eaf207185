// Where the GPU tests find their models and media on the GPU machine (scripts/gpu_run.sh sets
// these): FSWAP_GPU_MODELS, a folder with the default models and the generated replicas;
// FSWAP_GPU_PHOTO, a photo as a uint8 [H, W, 3] RGB .npy file.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "core/half.h"
#include "core/tensor.h"

namespace fswap::test {

inline std::string gpu_env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

// models/<name>.onnx, or "" when absent.
inline std::string gpu_model(const std::string& name) {
  const std::filesystem::path p = std::filesystem::path(gpu_env("FSWAP_GPU_MODELS")) / (name + ".onnx");
  return std::filesystem::exists(p) ? p.string() : "";
}

// A float32 (or float64) tensor of uniform values in [low, high] from `seed`.
inline Tensor random_tensor(const Shape& shape, unsigned seed, float low = -1, float high = 1,
                            DType dtype = DType::kFloat32) {
  Tensor t = Tensor::zeros(dtype, shape);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(low, high);
  for (std::int64_t i = 0; i < t.elements(); ++i) {
    if (dtype == DType::kFloat64) t.data<double>()[i] = u(rng);
    else t.data<float>()[i] = u(rng);
  }
  return t;
}

// The float32 inputs as an fp16 graph sees them (its boundary casts them to half): the CPU
// reference then computes on the same values, so input rounding is not counted as error.
inline std::vector<Tensor> rounded_to_half(std::vector<Tensor> tensors) {
  for (Tensor& t : tensors) {
    if (t.dtype() != DType::kFloat32) continue;
    for (std::int64_t i = 0; i < t.elements(); ++i) t.data<float>()[i] = half_to_float(float_to_half(t.data<float>()[i]));
  }
  return tensors;
}

}  // namespace fswap::test
