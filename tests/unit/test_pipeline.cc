// The swap job on a small clip made in the test: frame count and order, cancellation, and
// that a failed or cancelled run leaves nothing at the output path.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>

#include "imaging/transform.h"
#include "pipeline/swap_job.h"
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
    const Image photo = read_image(kMedia + "astronaut.png").value();
    VideoInfo info;
    info.width = info.height = 256;
    info.time_base = {1, 20};
    info.frame_rate = {20, 1};
    auto writer = VideoWriter::open(p, info, {}, {}).value();
    for (int i = 0; i < 40; ++i) {
      VideoFrame f;
      f.image = warp_affine(photo, Affine{0.5, 0, 2.0 * i, 0, 0.5, 0}, 256, 256);
      f.pts = i;
      f.index = i;
      EXPECT_TRUE(writer->write(f).is_ok());
    }
    EXPECT_TRUE(writer->finish().is_ok());
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

}  // namespace
}  // namespace fswap
