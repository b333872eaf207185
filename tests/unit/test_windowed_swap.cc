// Windows of video frames (SwapJob::batch_frames): each processor over a window's frames in
// lanes, the lanes' model calls merged into batches. The windowed run gives the per-frame run's
// frames (ort: identical; native batches: within a level), in order; batching happens on the
// native engine; cancellation and errors in the face stages mid-window end the run cleanly.
//
// Models: the default ones, the swap probe as hyperswap_1a_256 (tests/support/make_swapper_probes.py:
// 0.75·target + source[0:3]) with the occluder and parser probes for its masks (three models in
// the swapper's stage, the parser a convolution), the arcface_w600k_r50 replica for the source
// identity, and the contrast probe as real_esrgan_x4 (make_frame_enhancer_probes.py), so a job
// runs two stages.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <mutex>

#include "imaging/transform.h"
#include "pipeline/face_batcher.h"
#include "pipeline/swap_job.h"
#include "support/drift_clip.h"
#include "support/replicas.h"
#include "support/scratch_dir.h"

namespace fswap {
namespace {
namespace fs = std::filesystem;

const std::string kMedia = std::string(FSWAP_THIRD_PARTY_DIR) + "/media/";
const std::string kModels = std::string(FSWAP_THIRD_PARTY_DIR) + "/models/";
constexpr int kFrames = 14;  // windows of 4: 4 + 4 + 4 + 2

std::string scratch(const std::string& name) { return test::scratch_path("windowed", name); }

// kFrames frames of the astronaut drifting right, 160×160 at 10 fps.
std::string make_clip() {
  static const std::string path = [] {
    const std::string p = scratch("drift.mp4");
    test::write_drift_clip(p, 160, kFrames, 10, 1.5);
    return p;
  }();
  return path;
}

// The default models plus the probes and the arcface replica (see the top); "" with the reason
// in *why when the replicas cannot be made.
std::string models_dir(std::string* why) {
  static std::string reason;
  static const std::string dir = [] {
    const std::string probes = test::swapper_probe_dir(&reason);
    const std::string arcface = probes.empty() ? "" : test::replica_dir(&reason);
    const std::string enhancers = arcface.empty() ? "" : test::frame_enhancer_probe_dir(&reason);
    if (enhancers.empty()) return std::string();
    const fs::path models = fs::path(scratch("models"));
    fs::create_directories(models);
    for (const auto& e : fs::directory_iterator(kModels)) fs::create_symlink(e.path(), models / e.path().filename());
    fs::create_symlink(fs::path(probes) / "swap_probe_256.onnx", models / "hyperswap_1a_256.onnx");
    for (const char* f : {"xseg_1.onnx", "bisenet_resnet_34.onnx"}) fs::create_symlink(fs::path(probes) / f, models / f);
    fs::create_symlink(fs::path(arcface) / "arcface_w600k_r50.onnx", models / "arcface_w600k_r50.onnx");
    fs::create_symlink(fs::path(enhancers) / "contrast_x4.onnx", models / "real_esrgan_x4.onnx");
    return models.string();
  }();
  *why = reason;
  return dir;
}

SwapJob job_for(const std::string& models, const std::string& engine, int batch_frames, const std::string& output) {
  SwapJob job;
  job.sources = {kMedia + "messi5.jpg"};
  job.target = make_clip();
  job.output = scratch(output);
  job.engine = engine;
  job.analyser.models_dir = models;
  job.selector.mode = SelectorMode::kOne;
  job.face_swapper_model = "hyperswap_1a_256";
  job.face_mask.types = {"box", "occlusion", "region"};
  job.processors = {"face_swapper", "frame_enhancer"};
  job.frame_enhancer_model = "real_esrgan_x4";
  job.frame_enhancer_blend = 50;
  job.batch_frames = batch_frames;
  job.encode.crf = 0;  // lossless: the decoded output is what face work produced (see test_segments)
  return job;
}

Result<SwapSummary> run_with_deadline(const SwapJob& job) {
  auto future = std::async(std::launch::async, [job] { return run_swap(job); });
  if (future.wait_for(std::chrono::seconds(90)) != std::future_status::ready) {
    ADD_FAILURE() << "run_swap did not return within 90 s (deadlock?)";
    std::abort();  // the stuck threads reference the job; nothing safe to do but stop
  }
  return future.get();
}

std::vector<VideoFrame> decode_all(const std::string& path) {
  std::vector<VideoFrame> frames;
  auto reader = VideoReader::open(path);
  EXPECT_TRUE(reader.is_ok()) << reader.status().to_string();
  if (!reader) return frames;
  VideoFrame f;
  while ((*reader)->read(f).value()) frames.push_back(f);
  return frames;
}

// Frame by frame: the same count, the same timestamps, pixels within `levels`; returns the
// largest difference seen.
int expect_same_frames(const std::string& expected, const std::string& actual, int levels) {
  const auto a = decode_all(expected), b = decode_all(actual);
  EXPECT_EQ(a.size(), static_cast<std::size_t>(kFrames));
  EXPECT_EQ(b.size(), a.size());
  int worst = 0;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    EXPECT_EQ(a[i].pts, b[i].pts) << "frame " << i;
    EXPECT_EQ(a[i].image.pixels.size(), b[i].image.pixels.size());
    int frame_worst = 0;
    for (std::size_t p = 0; p < std::min(a[i].image.pixels.size(), b[i].image.pixels.size()); ++p)
      frame_worst = std::max(frame_worst, std::abs(int{a[i].image.pixels[p]} - int{b[i].image.pixels[p]}));
    EXPECT_LE(frame_worst, levels) << "frame " << i;
    worst = std::max(worst, frame_worst);
  }
  return worst;
}

void expect_no_output(const std::string& out) {
  EXPECT_FALSE(fs::exists(out)) << out;
  for (const auto& e : fs::directory_iterator(fs::path(out).parent_path()))
    EXPECT_EQ(e.path().filename().string().find(".part"), std::string::npos) << e.path();
}

// Windows of 4 give the per-frame run's output, frame for frame and in order: identical on ort
// (its calls run one by one), within a level on the native engine (batches round differently).
TEST(WindowedSwap, GivesThePerFrameRunsFramesInOrder) {
  std::string why;
  const std::string models = models_dir(&why);
  if (models.empty()) GTEST_SKIP() << why;
  for (const std::string engine : {"ort", "native"}) {
    SCOPED_TRACE(engine);
    const SwapJob per_frame = job_for(models, engine, 1, engine + "-per-frame.mp4");
    auto alone = run_with_deadline(per_frame);
    ASSERT_TRUE(alone.is_ok()) << alone.status().to_string();
    EXPECT_EQ(alone->face_work, "window 1 frame, 1 lane (per frame)");

    SwapJob windowed = job_for(models, engine, 4, engine + "-windowed.mp4");
    std::mutex mu;
    std::vector<std::int64_t> encoded;
    windowed.fault_injection = [&](const char* stage, std::int64_t frame) {
      std::lock_guard lock(mu);
      if (std::strcmp(stage, "encode") == 0) encoded.push_back(frame);
      return Status::ok();
    };
    auto summary = run_with_deadline(windowed);
    ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
    EXPECT_EQ(summary->face_work, "window 4 frames, 4 lanes (weights fit)");
    EXPECT_EQ(summary->frames, kFrames);
    EXPECT_EQ(summary->faces_swapped, alone->faces_swapped);
    EXPECT_GE(summary->faces_swapped, kFrames - 1);
    std::vector<std::int64_t> in_order;
    for (int i = 0; i < kFrames; ++i) in_order.push_back(i);
    EXPECT_EQ(encoded, in_order);
    const int worst = expect_same_frames(per_frame.output, windowed.output, engine == "ort" ? 0 : 1);
    std::printf("%s: windows of 4 vs frame by frame: largest difference %d level(s)\n", engine.c_str(), worst);
  }
}

// On the native engine the swapper's calls of several frames run as one batch: fewer swapper
// runs than faces, each batch holding the faces of distinct frames (the lanes' calls).
TEST(WindowedSwap, TheNativeEngineBatchesTheFacesOfSeveralFrames) {
  std::string why;
  const std::string models = models_dir(&why);
  if (models.empty()) GTEST_SKIP() << why;
  std::mutex mu;
  int swapper_runs = 0, swapper_calls = 0, largest = 0;
  FaceBatcherOptions options;
  options.max_batch = 4;
  // Long enough that a loaded CI machine cannot split the lanes' calls; the wait ends as soon as
  // every lane still working has its call in (FaceBatcher::add_callers).
  options.gather_window = std::chrono::milliseconds(200);
  options.on_batch = [&](const FaceBatch& b) {
    std::lock_guard lock(mu);
    if (b.model != "hyperswap_1a_256") return;
    ++swapper_runs;
    swapper_calls += static_cast<int>(b.jobs.size());
    if (b.batched) largest = std::max(largest, static_cast<int>(b.jobs.size()));
  };
  FaceBatcher batcher(options);
  SwapJob job = job_for(models, "native", 4, "native-batched.mp4");
  job.processors = {"face_swapper"};
  job.face_batcher = &batcher;
  auto summary = run_with_deadline(job);
  ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
  std::printf("%lld faces swapped in %d swapper runs (largest batch %d); batcher: %llu calls, %llu in batches\n",
              static_cast<long long>(summary->faces_swapped), swapper_runs, largest,
              static_cast<unsigned long long>(batcher.stats().calls),
              static_cast<unsigned long long>(batcher.stats().batched_calls));
  EXPECT_EQ(swapper_calls, summary->faces_swapped);  // one call per face (pixel boost = the model's size)
  EXPECT_LT(swapper_runs, summary->faces_swapped);
  EXPECT_GE(largest, 2);
  EXPECT_GT(batcher.stats().batched_calls, 0u);
}

// A stop request or an error in a processor stage in the middle of a window (frame 5 of the
// window 4..7) ends the run with that status, no thread left behind, nothing at the output path.
TEST(WindowedSwap, CancellationAndStageErrorsMidWindowEndTheRunCleanly) {
  std::string why;
  const std::string models = models_dir(&why);
  if (models.empty()) GTEST_SKIP() << why;
  for (const char* stage : {"face", "face_swapper", "frame_enhancer"}) {
    SCOPED_TRACE(stage);
    SwapJob job = job_for(models, "native", 4, std::string("fault-") + stage + ".mp4");
    job.fault_injection = [stage](const char* s, std::int64_t frame) {
      if (std::strcmp(stage, s) == 0 && frame == 5) return internal_error(std::string("injected ") + s + " fault");
      return Status::ok();
    };
    auto summary = run_with_deadline(job);
    ASSERT_FALSE(summary.is_ok());
    EXPECT_EQ(summary.status().code(), StatusCode::kInternal);
    EXPECT_EQ(summary.status().message(), std::string("injected ") + stage + " fault");
    expect_no_output(job.output);
  }
  std::atomic<bool> cancel{false};
  SwapJob job = job_for(models, "native", 4, "cancelled.mp4");
  job.cancel = &cancel;
  std::atomic<int> swapped_after_cancel{0};
  job.fault_injection = [&](const char* s, std::int64_t frame) {
    if (std::strcmp(s, "face_swapper") != 0) return Status::ok();
    if (cancel) ++swapped_after_cancel;
    if (frame == 5) cancel = true;
    return Status::ok();
  };
  auto summary = run_with_deadline(job);
  ASSERT_FALSE(summary.is_ok());
  EXPECT_EQ(summary.status().code(), StatusCode::kCancelled);
  EXPECT_LE(swapped_after_cancel.load(), 3);  // at most the other lanes' frames already started
  expect_no_output(job.output);
}

}  // namespace
}  // namespace fswap
