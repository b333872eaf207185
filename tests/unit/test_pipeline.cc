// The swap job on a small clip made in the test: frame count and order, cancellation, and
// that a failed or cancelled run leaves nothing at the output path.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

#include "imaging/transform.h"
#include "pipeline/swap_job.h"
#include "video/media.h"
#include "support/drift_clip.h"
#include "support/scratch_dir.h"

namespace fswap {
namespace {
namespace fs = std::filesystem;

const std::string kMedia = std::string(FSWAP_THIRD_PARTY_DIR) + "/media/";

std::string scratch(const std::string& name) { return test::scratch_path("pipeline", name); }

// 40 frames of the astronaut photo drifting right, 256×256, 20 fps, pts 0..39 (time base 1/20).
std::string make_clip() {
  static const std::string path = [] {
    const std::string p = scratch("drift.mp4");
    test::write_drift_clip(p, 256, 40, 20, 2.0);
    return p;
  }();
  return path;
}

SwapJob job_for(const std::string& output) {
  SwapJob job;
  job.sources = {kMedia + "messi5.jpg"};
  job.target = make_clip();
  job.output = output;
  job.analyser.models_dir = std::string(FSWAP_THIRD_PARTY_DIR) + "/models";
  job.selector.mode = SelectorMode::kOne;
  return job;
}

TEST(SwapJob, SwapsEveryFrameInOrderWithTimestampsKept) {
  const std::string out = scratch("swapped.mp4");
  std::int64_t last_done = 0;
  bool monotonic = true;
  auto summary = run_swap(job_for(out), [&](const SwapProgress& p) {
    monotonic &= p.frames_done == last_done + 1;
    last_done = p.frames_done;
  });
  ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
  EXPECT_EQ(summary->frames, 40);
  EXPECT_EQ(summary->faces_swapped, 40);
  EXPECT_TRUE(monotonic);
  auto reader = VideoReader::open(out).value();
  VideoFrame f;
  std::vector<std::int64_t> pts;
  while (reader->read(f).value()) pts.push_back(f.pts);
  ASSERT_EQ(pts.size(), 40u);
  // The 1/20 time base may be rescaled by the muxer; the spacing must stay uniform.
  const double tb = reader->info().time_base.value();
  for (std::size_t i = 0; i < pts.size(); ++i) EXPECT_NEAR(pts[i] * tb, i / 20.0, 1e-3);
}

// --output-video-fps 10 from 20: as FaceFusion, which extracts the frames at the output rate, only
// the frames the output shows are swapped (every other one here); the output has its 10 fps.
TEST(SwapJob, ALowerOutputFpsSwapsOnlyTheFramesItShows) {
  const std::string out = scratch("fps10.mp4");
  SwapJob job = job_for(out);
  job.encode.frame_rate = {10, 1};
  auto summary = run_swap(job);
  ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
  EXPECT_EQ(summary->frames, 40);  // target frames taken
  EXPECT_EQ(summary->faces_swapped, 20);
  auto reader = VideoReader::open(out).value();
  EXPECT_NEAR(reader->info().frame_rate.value(), 10.0, 1e-6);
  VideoFrame f;
  int frames = 0;
  while (reader->read(f).value()) ++frames;
  EXPECT_EQ(frames, 20);
}

TEST(SwapJob, CancellationStopsAndLeavesNoOutput) {
  const std::string out = scratch("cancelled.mp4");
  std::atomic<bool> cancel{false};
  SwapJob job = job_for(out);
  job.cancel = &cancel;
  auto summary = run_swap(job, [&](const SwapProgress& p) {
    if (p.frames_done >= 5) cancel = true;
  });
  ASSERT_FALSE(summary.is_ok());
  EXPECT_EQ(summary.status().code(), StatusCode::kCancelled);
  EXPECT_FALSE(fs::exists(out));
  for (const auto& e : fs::directory_iterator(fs::path(out).parent_path()))
    EXPECT_EQ(e.path().filename().string().find(".part"), std::string::npos) << e.path();
}

TEST(SwapJob, PassThroughCopiesFramesWithoutModels) {
  const std::string out = scratch("copy.mp4");
  SwapJob job = job_for(out);
  job.swap_faces = false;
  job.analyser.models_dir = "/nonexistent";  // not needed for decode + encode
  auto summary = run_swap(job);
  ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
  EXPECT_EQ(summary->frames, 40);
  EXPECT_EQ(summary->faces_swapped, 0);
}

TEST(SwapJob, ValidationRejectsBadJobsBeforeWork) {
  SwapJob job = job_for(scratch("x.mp4"));
  job.output = scratch("x.png");
  EXPECT_EQ(validate_job(job).code(), StatusCode::kInvalidInput);  // video target, image output
  job.output = job.target;
  EXPECT_EQ(validate_job(job).code(), StatusCode::kInvalidInput);  // overwrite the input
  job.output = scratch("x.mp4");
  job.sources = {kMedia + "missing.png"};
  EXPECT_EQ(validate_job(job).code(), StatusCode::kNotFound);
  job.sources = {job.target};
  EXPECT_EQ(validate_job(job).code(), StatusCode::kInvalidInput);  // a video as source
  job.sources = {};
  EXPECT_EQ(validate_job(job).code(), StatusCode::kInvalidInput);
}

TEST(SwapJob, TrimRangeOutsideTheVideoIsRejected) {
  SwapJob job = job_for(scratch("trim.mp4"));
  job.trim_frame_start = 500;
  auto s = run_swap(job);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidInput);
  EXPECT_FALSE(fs::exists(job.output));
}

// Nothing at the output path and no temporary beside it.
void expect_no_output(const std::string& out) {
  EXPECT_FALSE(fs::exists(out)) << out;
  for (const auto& e : fs::directory_iterator(fs::path(out).parent_path()))
    EXPECT_EQ(e.path().filename().string().find(".part"), std::string::npos) << e.path();
}

// Runs the job on another thread; fails the test (instead of hanging) if it does not return.
Result<SwapSummary> run_with_deadline(const SwapJob& job, std::chrono::seconds deadline = std::chrono::seconds(60)) {
  auto future = std::async(std::launch::async, [job] { return run_swap(job); });
  if (future.wait_for(deadline) != std::future_status::ready) {
    ADD_FAILURE() << "run_swap did not return within " << deadline.count() << " s (deadlock?)";
    std::abort();  // the stuck threads reference the job; nothing safe to do but stop
  }
  return future.get();
}

class SwapJobFault : public ::testing::TestWithParam<std::tuple<const char*, bool>> {};

// An error in any stage at frame 5 ends the run with that error, leaving no partial output.
TEST_P(SwapJobFault, ErrorInAStageEndsTheRunCleanly) {
  const auto [stage, swap_faces] = GetParam();
  const std::string out = scratch(std::string("fault_") + stage + (swap_faces ? "_swap" : "_copy") + ".mp4");
  SwapJob job = job_for(out);
  job.swap_faces = swap_faces;
  std::atomic<int> calls{0};
  job.fault_injection = [&, stage = std::string(stage)](const char* s, std::int64_t frame) {
    if (stage == s) ++calls;
    if (stage == s && frame == 5) return internal_error(std::string("injected ") + s + " fault at frame 5");
    return Status::ok();
  };
  auto summary = run_with_deadline(job);
  ASSERT_FALSE(summary.is_ok());
  EXPECT_EQ(summary.status().code(), StatusCode::kInternal);
  EXPECT_EQ(summary.status().message(), std::string("injected ") + stage + " fault at frame 5");
  EXPECT_GE(calls.load(), 6);  // frames 0..4 went through the stage first
  expect_no_output(out);
}

std::string stage_fault_name(const ::testing::TestParamInfo<std::tuple<const char*, bool>>& param_info) {
  return std::string(std::get<0>(param_info.param)) + (std::get<1>(param_info.param) ? "Swap" : "Copy");
}

INSTANTIATE_TEST_SUITE_P(Stages, SwapJobFault,
                         ::testing::Combine(::testing::Values("decode", "face", "encode"), ::testing::Bool()),
                         stage_fault_name);

// The detector thread's error at frame 5 reaches the analysis with its frame: the run ends with
// it after frames 0..4 went through the analysis, and leaves no output.
TEST(SwapJob, ErrorAheadOfTheAnalysisEndsTheRunCleanly) {
  for (const char* stage : {"detect", "landmark"}) {
    const std::string out = scratch(std::string("fault_") + stage + ".mp4");
    SwapJob job = job_for(out);
    std::atomic<int> analysed{0};
    const std::string message = std::string("injected ") + stage + " fault at frame 5";
    job.fault_injection = [&](const char* s, std::int64_t frame) {
      if (std::strcmp(s, "face") == 0) ++analysed;
      if (std::strcmp(s, stage) == 0 && frame == 5) return internal_error(message);
      return Status::ok();
    };
    auto summary = run_with_deadline(job);
    ASSERT_FALSE(summary.is_ok()) << stage;
    EXPECT_EQ(summary.status().message(), message);
    EXPECT_EQ(analysed.load(), 5) << stage;
    expect_no_output(out);
  }
}

// With every frame detected, frames are detected and landmarked ahead of their analysis, the
// landmarks two frames at a time: the analysis of frame 3 waits (up to 10 s) for the landmark
// thread to reach frame 5 (frames 4 and 5 in one run) and the detector frame 5, which they only do
// ahead of it. With --face-detector-interval they wait for the analysis (the frames it follows
// depend on the last ones), so no "detect" or "landmark" calls are made.
TEST(SwapJob, DetectsAndLandmarksTheNextFramesWhileAnalysingThisOne) {
  for (const int interval : {1, 2}) {
    SwapJob job = job_for(scratch("detect_ahead_" + std::to_string(interval) + ".mp4"));
    job.face_detector_interval = interval;
    std::mutex mutex;
    std::condition_variable stepped;
    std::int64_t last_detected = -1, last_landmarked = -1;
    bool ahead = false;
    job.fault_injection = [&](const char* stage, std::int64_t frame) {
      std::unique_lock lock(mutex);
      if (std::strcmp(stage, "detect") == 0) {
        last_detected = frame;
        stepped.notify_all();
      } else if (std::strcmp(stage, "landmark") == 0) {
        EXPECT_LE(frame, last_detected) << "frame " << frame << " landmarked before its detection";
        last_landmarked = frame;
        stepped.notify_all();
      } else if (std::strcmp(stage, "face") == 0 && frame == 3 && interval == 1) {
        ahead = stepped.wait_for(lock, std::chrono::seconds(10),
                                 [&] { return last_detected >= 5 && last_landmarked >= 5; });
      }
      return Status::ok();
    };
    auto summary = run_with_deadline(job);
    ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
    EXPECT_EQ(summary->faces_swapped, 40) << "interval " << interval;
    long landmark_runs = 0;
    for (const TimeLedger::Entry& e : summary->stages)
      if (e.stage == "landmarks") landmark_runs = e.calls;
    if (interval == 1) {
      EXPECT_EQ(landmark_runs, 20) << "40 frames' landmarks in runs of two frames";
      EXPECT_TRUE(ahead) << "frames 4 and 5 were not landmarked and detected while frame 3 was analysed";
      EXPECT_EQ(last_detected, 39);
      EXPECT_EQ(last_landmarked, 39);
    } else {
      EXPECT_EQ(last_detected, -1);
      EXPECT_EQ(last_landmarked, -1);
    }
  }
}

TEST(SwapJob, ImageStageErrorLeavesNoOutput) {
  for (const char* stage : {"decode", "face", "encode"}) {
    SwapJob job = job_for(scratch(std::string("fault_") + stage + ".png"));
    job.target = kMedia + "astronaut.png";
    job.swap_faces = false;
    job.fault_injection = [stage](const char* s, std::int64_t) {
      return std::strcmp(stage, s) == 0 ? internal_error("injected") : Status::ok();
    };
    auto summary = run_with_deadline(job);
    ASSERT_FALSE(summary.is_ok()) << stage;
    EXPECT_EQ(summary.status().message(), "injected");
    expect_no_output(job.output);
  }
}

// Back-pressure: a slow encoder holds the decoder back; frames in flight never exceed what the
// queues hold (queue_depth each, one window between analysis and the stages, one between the
// stages and the download thread) plus one frame held by each of the five threads.
TEST(SwapJob, SlowEncoderBoundsFramesDecodedAhead) {
  SwapJob job = job_for(scratch("backpressure.mp4"));
  job.swap_faces = false;
  job.queue_depth = 1;
  std::mutex mutex;
  std::int64_t decodes = 0, encodes = 0, max_ahead = 0, last_encoded = -1;
  bool ordered = true;
  job.fault_injection = [&](const char* stage, std::int64_t frame) {
    if (std::strcmp(stage, "encode") == 0) {
      {
        std::lock_guard lock(mutex);
        ++encodes;
        ordered &= frame > last_encoded;
        last_encoded = frame;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(15));
    } else if (std::strcmp(stage, "decode") == 0) {
      std::lock_guard lock(mutex);
      ++decodes;
      max_ahead = std::max(max_ahead, decodes - encodes);
    }
    return Status::ok();
  };
  auto summary = run_with_deadline(job);
  ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
  EXPECT_EQ(summary->frames, 40);
  EXPECT_EQ(encodes, 40);
  EXPECT_TRUE(ordered);
  // Decoded ahead of encoding: 2 queues × queue_depth, the frame being analysed, one analysed
  // window (one frame here) waiting for the stage thread and the one it works on, one waiting for
  // the download thread and the one it works on, the frame the encoder has popped but not yet
  // counted, and the one being read.
  const std::int64_t bound = 2 * job.queue_depth + 7;
  std::printf("frames decoded ahead of encoding: at most %lld (bound %lld)\n", static_cast<long long>(max_ahead),
              static_cast<long long>(bound));
  EXPECT_LE(max_ahead, bound);
  EXPECT_GE(max_ahead, 1);

  // Output order: pts strictly increasing.
  auto reader = VideoReader::open(job.output).value();
  VideoFrame f;
  std::int64_t last_pts = -1;
  int n = 0;
  while (reader->read(f).value()) {
    EXPECT_GT(f.pts, last_pts);
    last_pts = f.pts;
    ++n;
  }
  EXPECT_EQ(n, 40);
}

// --face-detector-interval 4: the detector runs on frames 0, 4, 8, ...; the faces in between are
// followed from their landmarks, so every frame still has its face swapped, close to detecting on
// every frame (the astronaut drifts 1 px per frame).
TEST(SwapJob, DetectorIntervalFollowsFacesBetweenDetections) {
  SwapJob every = job_for(scratch("interval1.mp4"));
  every.trim_frame_end = 12;
  SwapJob sparse = job_for(scratch("interval4.mp4"));
  sparse.trim_frame_end = 12;
  sparse.face_detector_interval = 4;
  const auto a = run_swap(every), b = run_swap(sparse);
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  ASSERT_TRUE(b.is_ok()) << b.status().to_string();
  EXPECT_EQ(b->faces_swapped, 12);
  const auto calls = [](const SwapSummary& s, const std::string& stage) {
    for (const auto& e : s.stages)
      if (e.stage == stage) return e.calls;
    return 0L;
  };
  EXPECT_EQ(calls(*a, "detect"), 12);
  EXPECT_EQ(calls(*b, "detect"), 3);
  EXPECT_EQ(calls(*b, "landmarks"), 12);
  auto ra = VideoReader::open(every.output).value(), rb = VideoReader::open(sparse.output).value();
  VideoFrame fa, fb;
  double worst_psnr = 1e9;
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(ra->read(fa).value() && rb->read(fb).value()) << i;
    double se = 0;
    for (std::size_t k = 0; k < fa.image.pixels.size(); ++k) {
      const double d = double(fa.image.pixels[k]) - fb.image.pixels[k];
      se += d * d;
    }
    const double mse = se / fa.image.pixels.size();
    worst_psnr = std::min(worst_psnr, mse == 0 ? 99.0 : 10 * std::log10(255.0 * 255.0 / mse));
  }
  std::printf("detector interval 4 vs 1: worst frame PSNR %.1f dB\n", worst_psnr);
  EXPECT_GT(worst_psnr, 30.0);
  SwapJob bad = job_for(scratch("interval0.mp4"));
  bad.face_detector_interval = 0;
  EXPECT_EQ(run_swap(bad).status().code(), StatusCode::kInvalidInput);
}

// Two people side by side (the astronaut left, Messi right), each 320×320: a PNG target.
std::string two_faces() {
  static const std::string path = [] {
    const Image left = resize(read_image(kMedia + "astronaut.png").value(), 320, 320);
    const Image right = resize(read_image(kMedia + "messi5.jpg").value(), 320, 320);
    Image both(640, 320, 3);
    for (int y = 0; y < 320; ++y)
      for (int x = 0; x < 320; ++x)
        for (int c = 0; c < 3; ++c) both.at(x, y, c) = left.at(x, y, c), both.at(x + 320, y, c) = right.at(x, y, c);
    const std::string p = scratch("two_faces.png");
    EXPECT_TRUE(write_image(p, both).is_ok());
    return p;
  }();
  return path;
}

// How many values of each half differ between two images of the two_faces() size.
std::pair<int, int> changed_halves(const Image& a, const Image& b) {
  int left = 0, right = 0;
  for (int y = 0; y < a.height; ++y)
    for (int x = 0; x < a.width; ++x)
      for (int c = 0; c < 3; ++c)
        if (a.at(x, y, c) != b.at(x, y, c)) ++(x < a.width / 2 ? left : right);
  return {left, right};
}

// FaceFusion's --reference-face-position: the reference is that face of the reference frame in
// --face-selector-order, so position 1 in left-right order swaps the right-hand person only.
// --reference-frame-number past the target's frames is a clear error and writes nothing.
TEST(SwapJob, ReferenceFacePositionChoosesWhoIsSwapped) {
  const Image target = read_image(two_faces()).value();
  for (int position : {0, 1}) {
    SwapJob job = job_for(scratch("reference_" + std::to_string(position) + ".png"));
    job.target = two_faces();
    job.selector.mode = SelectorMode::kReference;
    job.selector.order = FaceOrder::kLeftRight;
    job.selector.reference_position = position;
    auto summary = run_swap(job);
    ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
    EXPECT_EQ(summary->faces_swapped, 1);
    const auto [left, right] = changed_halves(target, read_image(job.output).value());
    if (position == 0) EXPECT_TRUE(left > 0 && right == 0) << left << " " << right;
    else EXPECT_TRUE(left == 0 && right > 0) << left << " " << right;
  }
  SwapJob clip = job_for(scratch("reference_frame.mp4"));  // a video's frame 5 as the reference frame
  clip.selector.mode = SelectorMode::kReference;
  clip.reference_frame_number = 5;
  auto swapped = run_swap(clip);
  ASSERT_TRUE(swapped.is_ok()) << swapped.status().to_string();
  EXPECT_EQ(swapped->faces_swapped, swapped->frames);  // the one person, on every frame
  SwapJob past = job_for(scratch("reference_past.png"));
  past.target = two_faces();
  past.selector.mode = SelectorMode::kReference;
  past.reference_frame_number = 3;  // a still image has frame 0 only
  auto failed = run_swap(past);
  EXPECT_EQ(failed.status().code(), StatusCode::kNoFace) << failed.status().to_string();
  EXPECT_NE(failed.status().message().find("--reference-frame-number"), std::string::npos);
  EXPECT_FALSE(fs::exists(past.output));
}

TEST(SwapJob, LandmarkSmoothingCanBeTurnedOff) {
  SwapJob job = job_for(scratch("unsmoothed.mp4"));
  job.smooth_landmarks = false;
  job.trim_frame_end = 10;
  auto summary = run_swap(job);
  ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
  EXPECT_EQ(summary->frames, 10);
  EXPECT_EQ(summary->faces_swapped, 10);
}

}  // namespace
}  // namespace fswap
