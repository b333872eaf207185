// The op harness on the CUDA backend: every generated op case (tools/replicas/generate_op_cases.py)
// on the native engine's CUDA backend against its CPU backend, same seeded inputs, in fp32
// (within 1e-4 relative, or the case's own tolerance when looser) and fp16 (within 1e-2, the CPU
// reference fed the same half-rounded inputs). The *Nhwc suites run every 4-D island of the case
// channels-last on the GPU (runtime/channels_last.h: cuDNN's NHWC descriptors and our NHWC
// kernels) against the same CPU reference.
// Runs on the GPU machine (label gpu); FSWAP_OP_CASES_JSON may point at another cases.json.
#include <gtest/gtest.h>

#include <cstdlib>

#include "runtime/engines/native_engine.h"
#include "support/op_cases.h"
#include "gpu/compare.h"
#include "gpu/gpu_env.h"

namespace fswap {
namespace {

class CudaOpCase : public ::testing::Test {
 public:
  CudaOpCase(test::OpCase c, Precision precision, Layout layout)
      : case_(std::move(c)), precision_(precision), layout_(layout) {}
  void TestBody() override {
    NativeEngine engine;
    auto cpu = engine.load(case_.file, {});
    ASSERT_TRUE(cpu.is_ok()) << cpu.status().to_string();
    auto cuda = engine.load(case_.file, {.device = {DeviceKind::kCuda, 0}, .precision = precision_, .layout = layout_});
    ASSERT_TRUE(cuda.is_ok()) << cuda.status().to_string();
    const bool fp16 = precision_ == Precision::kFloat16;
    const auto inputs = fp16 ? test::rounded_to_half(test::case_inputs(case_)) : test::case_inputs(case_);
    auto want = (*cpu)->run(inputs);
    ASSERT_TRUE(want.is_ok()) << want.status().to_string();
    // The second run is a CUDA graph (captured from the first run's kernels): it must agree too
    // (not bitwise: some cuDNN algorithms accumulate in a run-dependent order, and in fp16 that
    // can move a stored result by one half-precision step, 2^-10 relative).
    auto first = (*cuda)->run(inputs);
    ASSERT_TRUE(first.is_ok()) << first.status().to_string();
    auto got = (*cuda)->run(inputs);
    ASSERT_TRUE(got.is_ok()) << got.status().to_string();
    ASSERT_EQ(got->size(), want->size());
    for (std::size_t i = 0; i < got->size(); ++i)
      EXPECT_EQ(test::compare((*first)[i], (*got)[i], fp16 ? 2e-3 : 1e-3).bad, 0)
          << "output " << i << ": the graph launch differs from the node-by-node run";
    const double rtol = fp16 ? 1e-2 : std::max(1e-4, case_.rtol);
    for (std::size_t i = 0; i < got->size(); ++i) {
      const std::string& name = (*cpu)->outputs()[i].name;
      ASSERT_EQ((*got)[i].shape(), (*want)[i].shape()) << name;
      ASSERT_EQ((*got)[i].dtype(), (*want)[i].dtype()) << name;
      const test::Comparison c = test::compare((*want)[i], (*got)[i], rtol);
      const bool is_float = (*want)[i].dtype() == DType::kFloat32 || (*want)[i].dtype() == DType::kFloat64;
      // In fp16, indices and comparisons may flip where two inputs round to the same half.
      const std::int64_t allowed = fp16 && !is_float ? c.elements / 50 : 0;
      EXPECT_LE(c.bad, allowed) << name << ": " << c.describe() << " (rtol " << rtol << ")";
    }
  }

 private:
  test::OpCase case_;
  Precision precision_;
  Layout layout_;
};

void register_cases() {
  const char* env = std::getenv("FSWAP_OP_CASES_JSON");
  const std::string json = env != nullptr ? env : FSWAP_OP_CASES_JSON;
  for (const test::OpCase& oc : test::load_op_cases(json)) {
    for (Precision p : {Precision::kFloat32, Precision::kFloat16})
      for (Layout layout : {Layout::kAuto, Layout::kNhwc}) {
        const std::string suite = std::string(p == Precision::kFloat32 ? "CudaOpsFp32" : "CudaOpsFp16") +
                                  (layout == Layout::kNhwc ? "Nhwc" : "");
        ::testing::RegisterTest(suite.c_str(), oc.name.c_str(), nullptr, nullptr, __FILE__, __LINE__,
                                [oc, p, layout]() -> ::testing::Test* { return new CudaOpCase(oc, p, layout); });
      }
  }
}

}  // namespace
}  // namespace fswap

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  fswap::register_cases();
  return RUN_ALL_TESTS();
}
