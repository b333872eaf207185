// Batching across jobs: the native engine's SessionOptions::batch (batch N equals N batch-1 runs;
// a Reshape to [1, ...] that keeps each item together takes the batch; a graph that bakes batch 1
// is refused clearly) and FaceBatcher (one shared model, calls taken
// round-robin by job, results equal to private sessions, whole jobs equal to running alone).
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <future>
#include <mutex>
#include <thread>

#include "pipeline/face_batcher.h"
#include "pipeline/swap_job.h"
#include "runtime/engine.h"
#include "runtime/engines/model_tools.h"
#include "support/replicas.h"
#include "support/scratch_dir.h"
#include "video/media.h"

namespace fswap {
namespace {

const std::string kModels = std::string(FSWAP_THIRD_PARTY_DIR) + "/models/";
const std::string kMedia = std::string(FSWAP_THIRD_PARTY_DIR) + "/media/";

// Input i of every call stacked along dim 0.
std::vector<Tensor> stacked(const std::vector<std::vector<Tensor>>& calls) {
  std::vector<Tensor> out;
  for (std::size_t i = 0; i < calls[0].size(); ++i) {
    Shape shape = calls[0][i].shape();
    shape[0] = static_cast<std::int64_t>(calls.size());
    Tensor t = Tensor::zeros(calls[0][i].dtype(), shape);
    auto* dst = static_cast<std::byte*>(t.raw());
    for (const auto& c : calls) {
      std::memcpy(dst, c[i].raw(), c[i].bytes());
      dst += c[i].bytes();
    }
    out.push_back(std::move(t));
  }
  return out;
}

// Largest |a − b| between item k of a batched output and a batch-1 output.
double item_diff(const Tensor& batch, std::size_t k, const Tensor& single) {
  const std::size_t n = single.bytes() / sizeof(float);
  const float* a = batch.data<float>() + k * n;
  const float* b = single.data<float>();
  double worst = 0;
  for (std::size_t i = 0; i < n; ++i) worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]));
  return worst;
}

void expect_batch_matches_singles(const std::string& path, int batch) {
  auto engine = make_engine("native").value();
  auto single = engine->load(path, {});
  ASSERT_TRUE(single.is_ok()) << single.status().to_string();
  SessionOptions options;
  options.batch = batch;
  auto batched = engine->load(path, options);
  ASSERT_TRUE(batched.is_ok()) << batched.status().to_string();
  for (const TensorInfo& in : (*batched)->inputs()) EXPECT_EQ(in.shape[0], -1) << path << ": " << in.name;
  std::vector<std::vector<Tensor>> calls;
  for (int k = 0; k < batch; ++k) calls.push_back(random_inputs((*single)->inputs(), 1, 10 + k));
  auto together = (*batched)->run(stacked(calls));
  ASSERT_TRUE(together.is_ok()) << together.status().to_string();
  for (int k = 0; k < batch; ++k) {
    auto alone = (*single)->run(calls[k]);
    ASSERT_TRUE(alone.is_ok());
    for (std::size_t o = 0; o < alone->size(); ++o) {
      EXPECT_EQ((*together)[o].shape()[0], batch);
      EXPECT_LT(item_diff((*together)[o], k, (*alone)[o]), 1e-4) << path << " item " << k << " output " << o;
    }
  }
}

TEST(NativeBatch, BatchOfNEqualsNRunsOfOneOnTheDefaultModels) {
  for (const char* model : {"fr_detect.onnx", "fr_landmark.onnx"}) expect_batch_matches_singles(kModels + model, 3);
}

// fr_feature flattens to [1, -1] before its last layer: at batch 3 its output would be [1, 4608].
TEST(NativeBatch, TheRecognizerBakesBatchOne) {
  SessionOptions options;
  options.batch = 3;
  auto s = make_engine("native").value()->load(kModels + "fr_feature.onnx", options);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(s.status().message().find("fixes the batch at 1"), std::string::npos) << s.status().message();
}

TEST(NativeBatch, BatchOfNEqualsNRunsOfOneOnTheInswapperReplica) {
  std::string why;
  const std::string dir = test::replica_dir(&why);
  if (dir.empty()) GTEST_SKIP() << why;
  expect_batch_matches_singles(dir + "/inswapper_128.onnx", 2);
}

// A tiny graph: Relu of x [1, 4], then a Reshape to the constant `reshape_to`.
std::string reshape_model(const std::string& name, const std::string& reshape_to) {
  const std::string path = std::string(FSWAP_TEST_TMP) + "/" + name + "-" + std::to_string(::getpid()) + ".onnx";
  const std::string script =
      "import onnx, numpy; from onnx import helper, TensorProto, numpy_helper\n"
      "shape = numpy_helper.from_array(numpy.array(" + reshape_to + ", dtype=numpy.int64), 'shape')\n"
      "g = helper.make_graph([helper.make_node('Relu', ['x'], ['r']), helper.make_node('Reshape', ['r', 'shape'], ['y'])],"
      " 'baked', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 4])],"
      " [helper.make_tensor_value_info('y', TensorProto.FLOAT, None)], [shape])\n"
      "m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]); m.ir_version = 8\n"
      "onnx.save(m, '" + path + "')\n";
  const std::string py = std::string(FSWAP_TEST_TMP) + "/" + name + "-" + std::to_string(::getpid()) + ".py";
  std::filesystem::create_directories(FSWAP_TEST_TMP);
  {
    std::FILE* f = std::fopen(py.c_str(), "w");
    std::fputs(script.c_str(), f);
    std::fclose(f);
  }
  return test::run_quiet("/usr/bin/python3 " + py) ? path : "";
}

// [1, -1] folds the batch into dim 1; [2, 2] takes a whole batch-1 item as its two rows.
TEST(NativeBatch, AGraphThatBakesBatchOneIsUnsupported) {
  if (!test::run_quiet("/usr/bin/python3 -c 'import onnx, numpy'")) GTEST_SKIP() << "python3 lacks onnx or numpy";
  auto engine = make_engine("native").value();
  SessionOptions options;
  options.batch = 2;
  for (const auto& [name, shape] : {std::pair{"baked_flatten", "[1, -1]"}, std::pair{"baked_rows", "[2, 2]"}}) {
    const std::string path = reshape_model(name, shape);
    ASSERT_FALSE(path.empty()) << name;
    EXPECT_TRUE(engine->load(path, {}).is_ok()) << name << " loads at batch 1";
    auto s = engine->load(path, options);
    ASSERT_FALSE(s.is_ok()) << name;
    EXPECT_EQ(s.status().code(), StatusCode::kUnsupported) << s.status().to_string();
    EXPECT_NE(s.status().message().find(path), std::string::npos) << s.status().message();
    EXPECT_NE(s.status().message().find("fixes the batch at 1"), std::string::npos) << s.status().message();
  }
}

// A Reshape to the constant [1, 2, 2] keeps each item's four values together: its 1 is the batch,
// and the graph runs batches equal to runs of one (so does 2dfan4, whose heatmaps are flattened to
// [1, 68, 4096] before their softmax).
TEST(NativeBatch, AReshapeThatKeepsEachItemTogetherTakesTheBatch) {
  if (!test::run_quiet("/usr/bin/python3 -c 'import onnx, numpy'")) GTEST_SKIP() << "python3 lacks onnx or numpy";
  const std::string path = reshape_model("kept_items", "[1, 2, 2]");
  ASSERT_FALSE(path.empty());
  expect_batch_matches_singles(path, 3);
  std::string why;
  const std::string dir = test::landmarker_replica_dir(&why);
  if (dir.empty()) GTEST_SKIP() << why;
  expect_batch_matches_singles(dir + "/2dfan4.onnx", 2);
}

// Blocks the runner on its first batch until released, and records every batch.
struct BatchLog {
  std::mutex mu;
  std::condition_variable cv;
  bool released = false;
  std::vector<FaceBatch> batches;

  FaceBatcherOptions options(int max_batch) {
    FaceBatcherOptions o;
    o.max_batch = max_batch;
    o.gather_window = std::chrono::microseconds(0);
    o.on_batch = [this](const FaceBatch& b) {
      std::unique_lock lock(mu);
      batches.push_back(b);
      cv.wait(lock, [this] { return released; });
    };
    return o;
  }
  void release() {
    {
      std::lock_guard lock(mu);
      released = true;
    }
    cv.notify_all();
  }
};

// Job 1 sends one call (held in the runner's first batch), then 4 more at once; job 2 sends 2,
// job 3 sends 1. Returns the batches after the first, and checks every result against a
// private session's.
std::vector<FaceBatch> run_fairness_scenario(const std::string& engine_name, int max_batch, double tolerance) {
  BatchLog log;
  FaceBatcher batcher(log.options(max_batch));
  std::vector<std::unique_ptr<Engine>> jobs;
  std::vector<std::unique_ptr<InferenceSession>> sessions;
  for (int j = 0; j < 3; ++j) {
    jobs.push_back(batcher.job_engine(engine_name).value());
    sessions.push_back(jobs.back()->load(kModels + "fr_landmark.onnx", {}).value());
  }
  EXPECT_EQ(&sessions[0]->inputs(), &sessions[2]->inputs()) << "one shared session";
  auto reference = make_engine(engine_name).value()->load(kModels + "fr_landmark.onnx", {}).value();

  struct Sent {
    int job;
    std::vector<Tensor> inputs;
    std::future<Result<std::vector<Tensor>>> result;
  };
  std::vector<Sent> sent;
  std::uint64_t seed = 1;
  auto send = [&](int job) {
    Sent s{job, random_inputs(sessions[job]->inputs(), 1, seed++), {}};
    InferenceSession* session = sessions[job].get();
    sent.push_back(std::move(s));
    const std::vector<Tensor>* inputs = &sent.back().inputs;
    sent.back().result = std::async(std::launch::async, [session, inputs] { return session->run(*inputs); });
  };
  sent.reserve(8);
  send(0);
  while (true) {  // the runner holds job 1's first call
    std::lock_guard lock(log.mu);
    if (!log.batches.empty()) break;
  }
  for (int i = 0; i < 4; ++i) send(0);
  send(1);
  send(1);
  send(2);
  while (batcher.queued_calls() < 7) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  log.release();
  for (auto& s : sent) {
    auto got = s.result.get();
    EXPECT_TRUE(got.is_ok()) << got.status().to_string();
    if (!got.is_ok()) continue;
    auto want = reference->run(s.inputs).value();
    EXPECT_LE(item_diff((*got)[0], 0, want[0]), tolerance);
  }
  EXPECT_EQ(batcher.stats().calls, 8u);
  return {log.batches.begin() + 1, log.batches.end()};
}

TEST(FaceBatcher, OneByOneOnOrtTakesJobsRoundRobin) {
  const auto batches = run_fairness_scenario("ort", 4, 0.0);  // ort: the model's batch 1, bit for bit
  std::vector<int> order;
  for (const auto& b : batches) {
    EXPECT_FALSE(b.batched);
    order.insert(order.end(), b.jobs.begin(), b.jobs.end());
  }
  // After job 1's first call: jobs 2, 3, 1, 2, 1, then job 1's remaining calls.
  const int j1 = 1, j2 = 2, j3 = 3;
  EXPECT_EQ(order, (std::vector<int>{j2, j3, j1, j2, j1, j1, j1}));
}

TEST(FaceBatcher, NativeRunsOneBatchAcrossJobsRoundRobin) {
  const auto batches = run_fairness_scenario("native", 4, 1e-4);
  ASSERT_EQ(batches.size(), 2u);
  // One call per job per round: 2, 3, 1, then 2 again fills the batch of 4.
  EXPECT_TRUE(batches[0].batched);
  EXPECT_EQ(batches[0].jobs, (std::vector<int>{2, 3, 1, 2}));
  EXPECT_EQ(batches[1].jobs, (std::vector<int>{1, 1, 1}));
}

// One job with several calling threads (a video's lanes, SwapJob::batch_frames): with its callers
// raised to 4 the runner gathers the 4 calls of that one job into one batch; back at 1 caller a
// lone call runs without waiting for the gather window. job_weight_bytes counts the job's models.
TEST(FaceBatcher, OneJobsLanesMeetInOneBatch) {
  std::mutex mu;
  std::vector<FaceBatch> batches;
  FaceBatcherOptions options;
  options.max_batch = 4;
  options.gather_window = std::chrono::seconds(5);  // long: only the callers count ends the wait
  options.on_batch = [&](const FaceBatch& b) {
    std::lock_guard lock(mu);
    batches.push_back(b);
  };
  FaceBatcher batcher(options);
  auto job = batcher.job_engine("native").value();
  auto session = job->load(kModels + "fr_landmark.onnx", {}).value();
  EXPECT_GT(batcher.job_weight_bytes(*job), 100'000u);  // fr_landmark.onnx holds ~1.1 MB of weights
  EXPECT_EQ(batcher.job_weight_bytes(*job), session->weight_bytes());
  auto reference = make_engine("native").value()->load(kModels + "fr_landmark.onnx", {}).value();

  batcher.add_callers(*job, 3);
  std::vector<std::vector<Tensor>> inputs;
  for (int k = 0; k < 4; ++k) inputs.push_back(random_inputs(session->inputs(), 1, 40 + k));
  std::vector<std::future<Result<std::vector<Tensor>>>> results;
  const auto start = std::chrono::steady_clock::now();
  for (int k = 0; k < 4; ++k)
    results.push_back(std::async(std::launch::async, [&, k] { return session->run(inputs[k]); }));
  for (int k = 0; k < 4; ++k) {
    auto got = results[k].get();
    ASSERT_TRUE(got.is_ok()) << got.status().to_string();
    EXPECT_LT(item_diff((*got)[0], 0, reference->run(inputs[k]).value()[0]), 1e-4);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4)) << "the four calls ended the wait";
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_TRUE(batches[0].batched);
  EXPECT_EQ(batches[0].jobs.size(), 4u);

  batcher.add_callers(*job, -3);
  const auto lone = std::chrono::steady_clock::now();
  EXPECT_TRUE(session->run(inputs[0]).is_ok());
  EXPECT_LT(std::chrono::steady_clock::now() - lone, std::chrono::seconds(4)) << "one caller: no gather wait";
  EXPECT_EQ(batches.size(), 2u);

  auto ort_job = batcher.job_engine("ort").value();
  auto ort_session = ort_job->load(kModels + "fr_landmark.onnx", {}).value();
  EXPECT_EQ(batcher.job_weight_bytes(*ort_job), 0u);  // ort does not say
}

TEST(FaceBatcher, ConcurrentJobsGiveTheOutputsOfRunningAlone) {
  test::ScratchDir scratch("face_batcher");
  auto job_for = [&](const std::string& target, const std::string& out) {
    SwapJob job;
    job.sources = {kMedia + "messi5.jpg"};
    job.target = kMedia + target;
    job.output = scratch.path(out);
    job.analyser.models_dir = kModels;
    job.selector.mode = SelectorMode::kOne;
    return job;
  };
  const std::vector<std::string> targets = {"astronaut.png", "messi5.jpg", "astronaut.png"};
  for (const std::string engine : {"ort", "native"}) {
    std::vector<Image> alone;
    for (std::size_t i = 0; i < targets.size(); ++i) {
      SwapJob job = job_for(targets[i], engine + "-alone" + std::to_string(i) + ".png");
      job.engine = engine;
      ASSERT_TRUE(run_swap(job).is_ok());
      alone.push_back(read_image(job.output).value());
    }
    FaceBatcherOptions options;
    options.max_batch = 4;
    FaceBatcher batcher(options);
    std::vector<SwapJob> jobs;
    for (std::size_t i = 0; i < targets.size(); ++i) {
      jobs.push_back(job_for(targets[i], engine + "-together" + std::to_string(i) + ".png"));
      jobs.back().engine = engine;
      jobs.back().face_batcher = &batcher;
    }
    std::vector<std::future<Result<SwapSummary>>> running;
    for (auto& job : jobs) running.push_back(std::async(std::launch::async, [&job] { return run_swap(job); }));
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      auto summary = running[i].get();
      ASSERT_TRUE(summary.is_ok()) << engine << ": " << summary.status().to_string();
      EXPECT_EQ(summary->faces_swapped, 1);
      const Image together = read_image(jobs[i].output).value();
      ASSERT_EQ(together.pixels.size(), alone[i].pixels.size());
      int worst = 0;
      for (std::size_t p = 0; p < together.pixels.size(); ++p)
        worst = std::max(worst, std::abs(int{together.pixels[p]} - int{alone[i].pixels[p]}));
      // ort runs each call as alone: bit for bit. Native batches round differently (1e-4 on
      // the models' outputs), which may move a pixel by one level.
      EXPECT_LE(worst, engine == "ort" ? 0 : 1) << engine << " job " << i << " differs from running alone";
    }
    EXPECT_EQ(batcher.active_jobs(), 0);
    EXPECT_GE(batcher.stats().calls, 3u * 3u);  // detect, landmarks, embed at least per job
    if (engine == "native") {
      EXPECT_GT(batcher.stats().batched_calls, 0u);
    }
  }
}

}  // namespace
}  // namespace fswap
