// One test per generated op case: the native CPU engine against ONNX Runtime on the same
// seeded random inputs, within the case's stated tolerance. Cases come from
// tools/replicas/generate_op_cases.py (cases.json lists file, op, tolerance and seed).
// OpHarness.* runs ONNX's layout; OpHarnessNhwc.* the same cases with every 4-D island
// channels-last (runtime/channels_last.h: the pass's rewrites and the CPU's NHWC kernels).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "runtime/engine.h"
#include "support/op_cases.h"

namespace fswap {
namespace {

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
  OpCaseTest(test::OpCase c, Layout layout) : case_(std::move(c)), layout_(layout) {}
  void TestBody() override {
    SessionOptions options;
    options.layout = layout_;
    auto native = make_engine("native").value()->load(case_.file, options);
    ASSERT_TRUE(native.is_ok()) << native.status().to_string();
    auto ort = make_engine("ort").value()->load(case_.file, {});
    ASSERT_TRUE(ort.is_ok()) << ort.status().to_string();
    const auto inputs = test::case_inputs(case_);
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
  test::OpCase case_;
  Layout layout_;
};

void register_cases() {
  for (const test::OpCase& oc : test::load_op_cases(FSWAP_OP_CASES_JSON))
    for (const auto& [suite, layout] : {std::pair{"OpHarness", Layout::kNchw}, std::pair{"OpHarnessNhwc", Layout::kNhwc}})
      ::testing::RegisterTest(suite, oc.name.c_str(), nullptr, nullptr, __FILE__, __LINE__,
                              [oc, layout]() -> ::testing::Test* { return new OpCaseTest(oc, layout); });
}

}  // namespace
}  // namespace fswap

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  fswap::register_cases();
  return RUN_ALL_TESTS();
}
