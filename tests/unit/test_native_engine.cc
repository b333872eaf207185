// The native engine end to end: the default models against ONNX Runtime, the face analysis
// on both engines, and the session's contract (errors, per-shape plans).
#include <gtest/gtest.h>

#include <cstring>

#include "face/analyser.h"
#include "runtime/engine.h"
#include "runtime/engines/executor.h"
#include "runtime/engines/model_tools.h"
#include "runtime/passes.h"
#include "onnx/onnx_loader.h"
#include "video/media.h"

namespace fswap {
namespace {

const std::string kModels = std::string(FSWAP_THIRD_PARTY_DIR) + "/models/";

class DefaultModel : public ::testing::TestWithParam<std::string> {};

TEST_P(DefaultModel, MatchesOnnxRuntime) {
  const std::string path = kModels + GetParam();
  auto native = make_engine("native").value()->load(path, {});
  ASSERT_TRUE(native.is_ok()) << native.status().to_string();
  auto ort = make_engine("ort").value()->load(path, {});
  ASSERT_TRUE(ort.is_ok());
  for (std::uint64_t seed : {1u, 2u}) {
    const auto inputs = random_inputs((*ort)->inputs(), 1, seed);
    auto want = (*ort)->run(inputs);
    auto got = (*native)->run(inputs);
    ASSERT_TRUE(want.is_ok() && got.is_ok()) << got.status().to_string();
    for (const auto& d : compare_outputs((*ort)->outputs(), *want, *got)) {
      EXPECT_FALSE(d.shape_mismatch) << d.name;
      EXPECT_LT(d.max_abs, 1e-3) << d.name << " (max rel " << d.max_rel << ")";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, DefaultModel,
                         ::testing::Values("fr_detect.onnx", "fr_landmark.onnx", "fr_feature.onnx",
                                           "blazeface_back_256.onnx", "fr_pose.onnx"));

TEST(NativeEngine, FaceAnalysisAgreesWithOnnxRuntime) {
  const Image image = read_image(std::string(FSWAP_THIRD_PARTY_DIR) + "/media/astronaut.png").value();
  std::vector<std::vector<Face>> results;
  for (const char* name : {"ort", "native"}) {
    auto engine = make_engine(name).value();
    AnalyserOptions o;
    o.models_dir = kModels;
    auto analyser = FaceAnalyser::load(*engine, o);
    ASSERT_TRUE(analyser.is_ok()) << name << ": " << analyser.status().to_string();
    auto faces = (*analyser)->analyse(image, /*embed=*/true);
    ASSERT_TRUE(faces.is_ok()) << name;
    results.push_back(*faces);
  }
  ASSERT_EQ(results[0].size(), results[1].size());
  ASSERT_FALSE(results[0].empty());
  const Face &a = results[0][0], &b = results[1][0];
  EXPECT_GT(iou(a.box, b.box), 0.999f);
  for (int i = 0; i < 68; ++i) {
    EXPECT_NEAR(a.landmarks68[i].x, b.landmarks68[i].x, 0.05f);
    EXPECT_NEAR(a.landmarks68[i].y, b.landmarks68[i].y, 0.05f);
  }
  EXPECT_GT(embedding_similarity(a.embedding, b.embedding), 0.9999f);
}

TEST(NativeEngine, SessionContract) {
  auto engine = make_engine("native").value();
  auto missing = engine->load("/nonexistent.onnx", {});
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  SessionOptions cuda;
  cuda.device = {DeviceKind::kCuda, 0};
  EXPECT_EQ(engine->load(kModels + "fr_landmark.onnx", cuda).status().code(), StatusCode::kUnsupported);

  auto session = engine->load(kModels + "fr_landmark.onnx", {}).value();
  ASSERT_EQ(session->inputs().size(), 1u);
  EXPECT_EQ(session->inputs()[0].shape, (Shape{1, 1, 64, 64}));
  auto wrong = session->run({Tensor::zeros(DType::kFloat32, {1, 1, 32, 32})});
  ASSERT_FALSE(wrong.is_ok());
  EXPECT_EQ(wrong.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(wrong.status().message().find("input"), std::string::npos);
  // Same input twice: identical outputs (the plan and arena are reused).
  const auto in = random_inputs(session->inputs(), 1, 3);
  auto first = session->run(in).value();
  auto second = session->run(in).value();
  EXPECT_EQ(std::memcmp(first[0].raw(), second[0].raw(), first[0].bytes()), 0);
}

TEST(Executor, PlansOnceAndReportsTheArena) {
  Graph g = load_onnx(kModels + "fr_detect.onnx").value();
  ASSERT_TRUE(optimize(g).is_ok());
  auto exec = Executor::create(g, {{1, 3, 240, 320}});
  ASSERT_TRUE(exec.is_ok()) << exec.status().to_string();
  const MemoryPlan& plan = (*exec)->plan();
  EXPECT_GT(plan.arena_bytes, 1u << 20);
  EXPECT_GT(plan.flops, 100'000'000);
  Tensor x = Tensor::zeros(DType::kFloat32, {1, 3, 240, 320});
  auto out = (*exec)->run({x.view()});
  ASSERT_TRUE(out.is_ok());
  EXPECT_EQ((*out)[0].shape(), (Shape{1, 4420, 2}));
}

// `fswap model bench`'s p10/median/p90: numpy's linear interpolation between ranks.
TEST(ModelTools, PercentileInterpolatesBetweenRanks) {
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 50), 2.5);
  EXPECT_DOUBLE_EQ(percentile({5, 1, 3}, 50), 3);
  EXPECT_DOUBLE_EQ(percentile({10, 20, 30, 40, 50}, 10), 14);
  EXPECT_DOUBLE_EQ(percentile({10, 20, 30, 40, 50}, 90), 46);
  EXPECT_DOUBLE_EQ(percentile({7}, 90), 7);
  EXPECT_DOUBLE_EQ(percentile({1, 2}, 0), 1);
  EXPECT_DOUBLE_EQ(percentile({1, 2}, 100), 2);
  EXPECT_DOUBLE_EQ(percentile({}, 50), 0);
}

TEST(ModelTools, MeasureLatencyCountsRunsAndOrdersPercentiles) {
  auto engine = make_engine("native").value();
  auto session = engine->load(kModels + "fr_detect.onnx", {}).value();
  const auto inputs = random_inputs(session->inputs(), 1, 5);
  auto t = measure_latency(*session, inputs, /*runs=*/0, /*warmup=*/-1);
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  EXPECT_EQ(t->runs, 1);
  EXPECT_EQ(t->warmup, 0);
  t = measure_latency(*session, inputs, /*runs=*/4, /*warmup=*/1);
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  EXPECT_GT(t->p10_ms, 0);
  EXPECT_LE(t->p10_ms, t->median_ms);
  EXPECT_LE(t->median_ms, t->p90_ms);
}

}  // namespace
}  // namespace fswap
