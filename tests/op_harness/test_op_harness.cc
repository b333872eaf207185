// One test per generated op case: the native CPU engine against ONNX Runtime on the same
// seeded random inputs, within the case's stated tolerance. Cases come from
// tools/replicas/generate_op_cases.py (cases.json lists file, op, tolerance and seed).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <fstream>
#include <nlohmann/json.hpp>

#include "runtime/engine.h"

namespace fswap {
namespace {

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

Result<DType> dtype_named(const std::string& name) {
  for (DType d : {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kInt64, DType::kInt32, DType::kInt8,
                  DType::kUInt8, DType::kBool})
    if (name == dtype_name(d)) return d;
  return unsupported("dtype " + name);
}

// Uniform values in [low, high] (integers rounded down), from the case's seed.
std::vector<Tensor> case_inputs(const OpCase& c) {
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

// Elements outside numpy's allclose band; NaN must match NaN.
std::int64_t mismatches(const Tensor& want, const Tensor& got, double rtol, double atol, double* worst) {
  std::int64_t bad = 0;
  *worst = 0;
  if (want.dtype() != DType::kFloat32) return std::memcmp(want.raw(), got.raw(), want.bytes()) == 0 ? 0 : 1;
  const float* w = want.data<float>();
  const float* g = got.data<float>();
  for (std::int64_t i = 0; i < want.elements(); ++i) {
    if (std::isnan(w[i]) || std::isnan(g[i])) {
      bad += std::isnan(w[i]) != std::isnan(g[i]);
      continue;
    }
    const double err = std::abs(double(w[i]) - g[i]);
    *worst = std::max(*worst, err);
    bad += err > atol + rtol * std::abs(double(w[i]));
  }
  return bad;
}

class OpCaseTest : public ::testing::Test {
 public:
  explicit OpCaseTest(OpCase c) : case_(std::move(c)) {}
  void TestBody() override {
    auto native = make_engine("native").value()->load(case_.file, {});
    ASSERT_TRUE(native.is_ok()) << native.status().to_string();
    auto ort = make_engine("ort").value()->load(case_.file, {});
    ASSERT_TRUE(ort.is_ok()) << ort.status().to_string();
    const auto inputs = case_inputs(case_);
    auto expected = (*ort)->run(inputs);
    ASSERT_TRUE(expected.is_ok()) << expected.status().to_string();
    auto got = (*native)->run(inputs);
    ASSERT_TRUE(got.is_ok()) << got.status().to_string();
    ASSERT_EQ(got->size(), expected->size());
    for (std::size_t i = 0; i < got->size(); ++i) {
      const std::string& name = (*ort)->outputs()[i].name;
      ASSERT_EQ((*got)[i].shape(), (*expected)[i].shape()) << name;
      ASSERT_EQ((*got)[i].dtype(), (*expected)[i].dtype()) << name;
      double worst = 0;
      EXPECT_EQ(mismatches((*expected)[i], (*got)[i], case_.rtol, case_.atol, &worst), 0)
          << name << ": elements outside rtol " << case_.rtol << " atol " << case_.atol << "; max abs error " << worst;
    }
  }

 private:
  OpCase case_;
};

void register_cases() {
  std::ifstream in(FSWAP_OP_CASES_JSON);
  if (!in) return;
  const auto json = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  const auto& cases = json.is_object() && json.contains("cases") ? json["cases"] : json;
  if (!cases.is_array()) return;
  const auto dir = std::filesystem::path(FSWAP_OP_CASES_JSON).parent_path();
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
    ::testing::RegisterTest("OpHarness", oc.name.c_str(), nullptr, nullptr, __FILE__, __LINE__,
                            [oc]() -> ::testing::Test* { return new OpCaseTest(oc); });
  }
}

}  // namespace
}  // namespace fswap

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  fswap::register_cases();
  return RUN_ALL_TESTS();
}
