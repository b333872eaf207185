// `fswap model run|compare|bench` driven as a black box on the default models: engines given as
// ENGINE[:DEVICE], the session flags (--precision, --vram-budget, --memory-mode) and their
// errors. CPU only: CUDA requests are checked for a clean usage error (exit 2) unless the
// build and the machine have CUDA.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <regex>
#include <string>

#include "support/run_fswap.h"
#include "support/scratch_dir.h"

namespace {

namespace fs = std::filesystem;

const std::string kDetector = std::string(FSWAP_THIRD_PARTY_DIR) + "/models/fr_detect.onnx";

using fswap::test::RunResult;
using fswap::test::run_fswap;

bool mentions(const std::string& text, const std::string& word) { return text.find(word) != std::string::npos; }

// Exit code 2 and a message naming each of words.
void expect_usage_error(const std::string& args, const std::vector<std::string>& words) {
  const auto r = run_fswap(args);
  EXPECT_EQ(r.code, 2) << args << "\n" << r.output;
  for (const auto& w : words) EXPECT_TRUE(mentions(r.output, w)) << "message should name " << w << ":\n" << r.output;
}

TEST(ModelBench, PrintsLatencyAndThroughputOnTheCpu) {
  const auto r = run_fswap("model bench " + kDetector + " --device cpu --runs 5 --warmup 1");
  ASSERT_EQ(r.code, 0) << r.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.output, m, std::regex(R"(median ([0-9.]+) ms, p10 ([0-9.]+) ms, p90 ([0-9.]+) ms)")))
      << r.output;
  const double median = std::stod(m[1]), p10 = std::stod(m[2]), p90 = std::stod(m[3]);
  EXPECT_GT(median, 0);
  EXPECT_LE(p10, median);
  EXPECT_LE(median, p90);
  ASSERT_TRUE(std::regex_search(r.output, m, std::regex(R"(throughput: ([0-9.]+) items/s)"))) << r.output;
  // fr_detect fixes the batch at 1: items/s = 1000 / median ms (both printed rounded).
  EXPECT_NEAR(std::stod(m[1]), 1000.0 / median, 0.01 * 1000.0 / median + 0.1) << r.output;
  EXPECT_TRUE(mentions(r.output, "native:cpu")) << r.output;
  // The CPU keeps no device-memory statistics: nothing after the throughput line.
  EXPECT_FALSE(mentions(r.output, "device arena")) << r.output;
}

TEST(ModelBench, OrtEngineToo) {
  const auto r = run_fswap("model bench " + kDetector + " --engine ort --runs 3 --warmup 0");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(mentions(r.output, "ort:cpu")) << r.output;
  EXPECT_TRUE(mentions(r.output, "items/s")) << r.output;
}

TEST(ModelBench, Fp16OnTheCpuIsAUsageError) {
  expect_usage_error("model bench " + kDetector + " --device cpu --precision fp16", {"fp16", "CPU"});
}

TEST(ModelBench, UnifiedMemoryOnTheCpuIsAUsageError) {
  expect_usage_error("model bench " + kDetector + " --memory-mode unified", {"unified", "CPU"});
}

TEST(ModelBench, BadVramBudgetOnCudaIsAUsageError) {
  // The budget's syntax is checked first; a build without CUDA would refuse the device anyway.
  const auto r = run_fswap("model bench " + kDetector + " --device cuda --vram-budget banana");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(mentions(r.output, "--vram-budget \"banana\"") || mentions(r.output, "no CUDA backend")) << r.output;
}

TEST(ModelBench, CudaRunsOrSaysWhyNot) {
  const auto r = run_fswap("model bench " + kDetector + " --device cuda --vram-budget 512MiB --runs 2 --warmup 1");
  if (r.code == 0) {
    EXPECT_TRUE(mentions(r.output, "items/s")) << r.output;
    return;
  }
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(mentions(r.output, "cuda")) << r.output;
}

TEST(ModelBench, BatchAgainstAFixedBatchIsAUsageError) {
  expect_usage_error("model bench " + kDetector + " --batch 4", {"--batch 4", "fixed at 1"});
}

TEST(ModelCompare, NativeCpuAgainstOrtCpu) {
  const auto r = run_fswap("model compare " + kDetector + " --engines native:cpu,ort:cpu --runs 2");
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* word : {"native:cpu", "ort:cpu", "scores", "boxes", "median latency"})
    EXPECT_TRUE(mentions(r.output, word)) << word << " missing:\n" << r.output;
  // Both on the CPU in fp32: the outputs agree to float32 rounding.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.output, m, std::regex(R"(scores\s+([0-9.e+-]+))"))) << r.output;
  EXPECT_LT(std::stod(m[1]), 1e-4) << r.output;
}

TEST(ModelCompare, BareEnginesRunOnTheCpu) {
  const auto r = run_fswap("model compare " + kDetector + " --runs 1");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(mentions(r.output, "native:cpu")) << r.output;
  EXPECT_TRUE(mentions(r.output, "ort:cpu")) << r.output;
}

TEST(ModelCompare, BadEnginePairIsNamed) {
  expect_usage_error("model compare " + kDetector + " --engines native:gpu7,ort:cpu", {"native:gpu7"});
  expect_usage_error("model compare " + kDetector + " --engines tensorflow:cpu,ort:cpu", {"tensorflow"});
  expect_usage_error("model compare " + kDetector + " --engines native:cpu", {"two"});
}

TEST(ModelCompare, Fp16WithNoCudaSideIsAUsageError) {
  // fp16 would apply to neither side: nothing to compare in fp16.
  expect_usage_error("model compare " + kDetector + " --engines native:cpu,ort:cpu --precision fp16", {"fp16", "CPU"});
}

TEST(ModelRun, DeviceAndPrecisionFlags) {
  const std::string dir = fswap::test::scratch_path("model_commands", "run_out");
  const auto r = run_fswap("model run " + kDetector + " --device cpu --precision fp32 --output-dir " + dir);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(fs::path(dir) / "scores.npy")) << r.output;
  expect_usage_error("model run " + kDetector + " --precision fp16 --output-dir " + dir, {"fp16", "CPU"});
  expect_usage_error("model run " + kDetector + " --device gpu7 --output-dir " + dir, {"gpu7"});
}

}  // namespace
