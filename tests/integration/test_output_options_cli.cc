// `fswap swap` with FaceFusion's output options: --output-video-scale, --output-video-fps,
// --output-audio-volume, --output-audio-quality, --output-image-scale. The target clip (a test
// pattern with a 440 Hz tone, no faces) is made with the ffmpeg CLI; outputs are read back with
// fswap's own video layer.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "server/job_options.h"
#include "support/run_fswap.h"
#include "support/scratch_dir.h"
#include "video/media.h"

namespace fswap {
namespace {
namespace fs = std::filesystem;

const std::string kMedia = std::string(FSWAP_THIRD_PARTY_DIR) + "/media/";
const std::string kModels = std::string(FSWAP_THIRD_PARTY_DIR) + "/models";

std::string scratch(const std::string& name) { return test::scratch_path("cli-output-options", name); }

// 2 s of 256x256 at 20 fps with AAC audio; empty when the ffmpeg CLI is missing.
const std::string& target_clip() {
  static const std::string path = [] {
    const std::string p = scratch("target.mp4");
    const int rc = std::system(("ffmpeg -v error -y -f lavfi -i testsrc2=s=256x256:r=20:d=2 -f lavfi -i "
                                "sine=f=440:r=48000:d=2 -c:v libx264 -preset veryfast -pix_fmt yuv420p -c:a aac " + p)
                                   .c_str());
    return rc == 0 ? p : std::string();
  }();
  return path;
}

std::string swap_args(const std::string& target, const std::string& out) {
  return "swap -s " + kMedia + "astronaut.png -t " + target + " -o " + out + " --models-dir " + kModels;
}

TEST(CliOutputOptions, VideoScaleFpsAndVolumeShapeTheOutput) {
  if (target_clip().empty()) GTEST_SKIP() << "ffmpeg CLI not installed";
  const std::string out = scratch("scaled.mp4");
  const auto r = test::run_fswap(swap_args(target_clip(), out) +
                                 " --output-video-scale 1.5 --output-video-fps 10 --output-audio-volume 0");
  ASSERT_EQ(r.code, 0) << r.output;
  auto reader = VideoReader::open(out).value();
  const VideoInfo info = reader->info();
  EXPECT_EQ(info.width, 384);
  EXPECT_EQ(info.height, 384);
  EXPECT_NEAR(info.frame_rate.value(), 10.0, 1e-6);
  EXPECT_NEAR(info.duration_s, 2.0, 0.1);
  EXPECT_FALSE(info.has_audio);
  VideoFrame f;
  int frames = 0;
  while (reader->read(f).value()) ++frames;
  EXPECT_EQ(frames, 20);
}

TEST(CliOutputOptions, AudioVolumeAndQualityReencodeTheTargetsAudio) {
  if (target_clip().empty()) GTEST_SKIP() << "ffmpeg CLI not installed";
  const std::string out = scratch("quiet.mp4");
  const auto r = test::run_fswap(swap_args(target_clip(), out) +
                                 " --output-audio-volume 50 --output-audio-quality 100 --log-level debug");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("re-encoding aac audio"), std::string::npos) << r.output;
  const VideoInfo info = VideoReader::open(out).value()->info();
  EXPECT_TRUE(info.has_audio);
  EXPECT_EQ(info.width, 256);
  EXPECT_EQ(info.frame_count, 40);
}

TEST(CliOutputOptions, ImageScale) {
  const std::string out = scratch("half.jpg");
  const auto r = test::run_fswap(swap_args(kMedia + "messi5.jpg", out) + " --output-image-scale 0.5");
  ASSERT_EQ(r.code, 0) << r.output;
  const Image in = read_image(kMedia + "messi5.jpg").value(), image = read_image(out).value();
  EXPECT_EQ(image.width, static_cast<int>(std::lround(in.width * 0.5)));
  EXPECT_EQ(image.height, static_cast<int>(std::lround(in.height * 0.5)));
}

// --output-video-fps with --segment-frames: 3 segments of 15 frames (the last 10) at 10 fps give
// the unsegmented run's 20 frames over 2 s.
TEST(CliOutputOptions, VideoFpsWithSegments) {
  if (target_clip().empty()) GTEST_SKIP() << "ffmpeg CLI not installed";
  const std::string out = scratch("segmented_fps.mp4");
  const auto r = test::run_fswap(swap_args(target_clip(), out) + " --output-video-fps 10 --segment-frames 15");
  ASSERT_EQ(r.code, 0) << r.output;
  auto reader = VideoReader::open(out).value();
  EXPECT_NEAR(reader->info().frame_rate.value(), 10.0, 1e-6);
  EXPECT_NEAR(reader->info().duration_s, 2.0, 0.1);
  EXPECT_TRUE(reader->info().has_audio);
  VideoFrame f;
  std::vector<double> times;
  while (reader->read(f).value()) times.push_back(f.pts * reader->info().time_base.value());
  ASSERT_EQ(times.size(), 20u);
  for (std::size_t k = 0; k < times.size(); ++k) EXPECT_NEAR(times[k], k / 10.0, 1e-6) << "frame " << k;
}

TEST(CliOutputOptions, BadValuesExitTwoNamingTheOptionAndWriteNothing) {
  const std::string target = target_clip().empty() ? kMedia + "messi_720p.mp4" : target_clip();
  const std::string out = scratch("never.mp4");
  for (const std::string bad : {"--output-video-scale 0.1", "--output-video-scale 9", "--output-video-fps 0",
                                "--output-audio-volume 101", "--output-audio-quality 101",
                                "--output-image-scale 0.2"}) {
    SCOPED_TRACE(bad);
    const auto r = test::run_fswap(swap_args(target, out) + " " + bad);
    EXPECT_EQ(r.code, 2) << r.output;
    const std::string option = bad.substr(0, bad.find(' '));
    EXPECT_NE(r.output.find(option), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(out));
  }
}

// The HTTP API's job options carry the same settings (POST /v1/jobs "options").
TEST(JobOptionsOutput, KeysReachTheJobAndBadValuesAreNamed) {
  auto o = server::parse_job_options(R"({"output_video_scale": 0.5, "output_video_fps": 29.97,
      "output_image_scale": 2, "output_audio_volume": 40, "output_audio_quality": 90})");
  ASSERT_TRUE(o.is_ok()) << o.status().to_string();
  SwapJob job;
  ASSERT_TRUE(o->apply_to(job).is_ok());
  EXPECT_EQ(job.encode.scale, 0.5);
  EXPECT_NEAR(job.encode.frame_rate.value(), 29.97, 1e-9);
  EXPECT_EQ(job.image_scale, 2.0);
  EXPECT_EQ(job.audio_volume, 40);
  EXPECT_EQ(job.audio_quality, 90);
  // Defaults: the target's size, rate and audio as they are.
  SwapJob defaults;
  ASSERT_TRUE(server::parse_job_options("{}")->apply_to(defaults).is_ok());
  EXPECT_EQ(defaults.encode.scale, 1.0);
  EXPECT_EQ(defaults.encode.frame_rate.num, 0);
  EXPECT_EQ(defaults.audio_volume, 100);
  EXPECT_EQ(defaults.audio_quality, -1);
  EXPECT_NE(server::parse_job_options("{}")->to_json().find("\"output_audio_volume\":100"), std::string::npos);
  for (const char* bad : {R"({"output_video_scale": 0.1})", R"({"output_image_scale": 9})", R"({"output_video_fps": -1})",
                          R"({"output_audio_volume": 101})", R"({"output_audio_quality": 101})"}) {
    auto r = server::parse_job_options(bad);
    ASSERT_FALSE(r.is_ok()) << bad;
    const std::string key = std::string(bad).substr(3, std::string(bad).find('"', 3) - 3);
    EXPECT_NE(r.status().message().find(key), std::string::npos) << r.status().message();
  }
}

}  // namespace
}  // namespace fswap
