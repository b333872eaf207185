// The op harness's cases (tools/replicas/generate_op_cases.py writes cases.json: file, op,
// tolerance, seed, input specs) and their seeded random inputs, shared by the CPU-vs-ORT harness
// (tests/op_harness) and the CUDA-vs-CPU harness (tests/gpu).
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "core/tensor.h"

namespace fswap::test {

struct InputSpec {
  DType dtype = DType::kFloat32;
  Shape shape;
  double low = -1, high = 1;
};

struct OpCase {
  std::string name;
  std::string file;
  double rtol = 1e-4, atol = 1e-5;  // numpy allclose: |got − want| ≤ atol + rtol·|want|
  std::uint64_t seed = 1;
  std::vector<InputSpec> inputs;
};

inline Result<DType> dtype_named(const std::string& name) {
  for (DType d : {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kInt64, DType::kInt32, DType::kInt8,
                  DType::kUInt8, DType::kBool})
    if (name == dtype_name(d)) return d;
  return unsupported("dtype " + name);
}

// Uniform values in [low, high] (integers rounded down), from the case's seed.
inline std::vector<Tensor> case_inputs(const OpCase& c) {
  std::mt19937_64 rng(c.seed);
  std::vector<Tensor> tensors;
  for (const auto& in : c.inputs) {
    Tensor t = Tensor::zeros(in.dtype, in.shape);
    std::uniform_real_distribution<double> u(in.low, in.high);
    for (std::int64_t i = 0; i < t.elements(); ++i) {
      const double v = u(rng);
      switch (in.dtype) {
        case DType::kFloat32: t.data<float>()[i] = static_cast<float>(v); break;
        case DType::kFloat64: t.data<double>()[i] = v; break;
        case DType::kInt64: t.data<std::int64_t>()[i] = static_cast<std::int64_t>(std::floor(v)); break;
        case DType::kInt32: t.data<std::int32_t>()[i] = static_cast<std::int32_t>(std::floor(v)); break;
        case DType::kBool: static_cast<std::uint8_t*>(t.raw())[i] = v > (in.low + in.high) / 2; break;
        case DType::kUInt8: t.data<std::uint8_t>()[i] = static_cast<std::uint8_t>(std::floor(v)); break;
        case DType::kInt8: t.data<std::int8_t>()[i] = static_cast<std::int8_t>(std::floor(v)); break;
        case DType::kFloat16: break;  // zeros: no float16 data cases
      }
    }
    tensors.push_back(std::move(t));
  }
  return tensors;
}

// Every case of cases.json (tools/replicas/generate_op_cases.py), file paths made absolute.
inline std::vector<OpCase> load_op_cases(const std::string& cases_json) {
  std::vector<OpCase> out;
  std::ifstream in(cases_json);
  if (!in) return out;
  const auto json = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  const auto& cases = json.is_object() && json.contains("cases") ? json["cases"] : json;
  if (!cases.is_array()) return out;
  const auto dir = std::filesystem::path(cases_json).parent_path();
  for (const auto& c : cases) {
    OpCase oc;
    oc.file = (dir / c.value("file", "")).string();
    oc.name = std::filesystem::path(oc.file).stem().string();
    // gtest filters treat "-" as "exclude": keep test names to letters, digits and "_".
    for (char& ch : oc.name)
      if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
    if (c.contains("tolerance")) {
      oc.rtol = c["tolerance"].value("rtol", oc.rtol);
      oc.atol = c["tolerance"].value("atol", oc.atol);
    }
    oc.seed = c.value("seed", 1u);
    for (const auto& input : c.value("inputs", nlohmann::json::array())) {
      InputSpec spec;
      spec.dtype = dtype_named(input.value("dtype", "float32")).value();
      spec.shape = input.value("shape", Shape{});
      spec.low = input.value("low", -1.0);
      spec.high = input.value("high", 1.0);
      oc.inputs.push_back(std::move(spec));
    }
    out.push_back(std::move(oc));
  }
  return out;
}

}  // namespace fswap::test
