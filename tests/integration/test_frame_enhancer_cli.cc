// FaceFusion's frame_enhancer through the CLI (`fswap swap --processors ... frame_enhancer`), on a
// still image and a few frames of a clip. The model is a probe of tests/support/
// make_frame_enhancer_probes.py linked as real_esrgan_x4.onnx (a 256 tile, FaceFusion's tiling):
// nearest ×4 gives the frame back exactly at blend 100, contrast ×4 gives a known formula.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "support/replicas.h"
#include "support/run_fswap.h"
#include "support/scratch_dir.h"
#include "video/media.h"

namespace fswap {
namespace {
namespace fs = std::filesystem;

const std::string kMedia = std::string(FSWAP_THIRD_PARTY_DIR) + "/media/";
const std::string kModels = std::string(FSWAP_THIRD_PARTY_DIR) + "/models";

using test::run_fswap;

std::string scratch(const std::string& name) { return test::scratch_path("frame_enhancer_cli", name); }

class FrameEnhancerCli : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    probes_ = test::frame_enhancer_probe_dir(&why);
    if (probes_.empty()) GTEST_SKIP() << why;
  }
  // A models folder of this test: the default models plus `probe` linked as real_esrgan_x4.onnx.
  std::string models_with(const std::string& probe) {
    const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    const fs::path models = fs::path(scratch("models_" + test + "_" + probe));
    fs::create_directories(models);
    for (const auto& e : fs::directory_iterator(kModels)) fs::create_symlink(e.path(), models / e.path().filename());
    fs::create_symlink(fs::path(probes_) / (probe + ".onnx"), models / "real_esrgan_x4.onnx");
    return models.string();
  }
  std::string probes_;
};

TEST_F(FrameEnhancerCli, StillImageThroughTheNearestProbeIsUnchanged) {
  const std::string out = scratch("nearest.png");
  const auto r = run_fswap("swap -t " + kMedia + "astronaut.png -o " + out +
                           " --processors frame_enhancer --frame-enhancer-model real_esrgan_x4"
                           " --frame-enhancer-blend 100 --models-dir " + models_with("nearest_x4"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(read_image(out).value().pixels, read_image(kMedia + "astronaut.png").value().pixels);
}

TEST_F(FrameEnhancerCli, StillImageThroughTheContrastProbeIsTheFormula) {
  const std::string out = scratch("contrast.png");
  const auto r = run_fswap("swap -t " + kMedia + "messi5.jpg -o " + out +
                           " --processors frame_enhancer --frame-enhancer-model real_esrgan_x4"
                           " --frame-enhancer-blend 60 --models-dir " + models_with("contrast_x4"));
  ASSERT_EQ(r.code, 0) << r.output;
  const Image in = read_image(kMedia + "messi5.jpg").value(), got = read_image(out).value();
  ASSERT_EQ(got.width, in.width);
  ASSERT_EQ(got.height, in.height);
  int mismatches = 0;
  for (std::size_t i = 0; i < in.pixels.size(); ++i) {
    const float e = std::floor(std::clamp((static_cast<float>(in.pixels[i]) / 255.f * 1.5f - 0.25f) * 255.f, 0.f, 255.f));
    mismatches += got.pixels[i] != std::nearbyint(in.pixels[i] * (1.f - 0.6f) + e * 0.6f);
  }
  EXPECT_EQ(mismatches, 0);
}

TEST_F(FrameEnhancerCli, AfterTheSwapperOnAFewVideoFrames) {
  // face_swapper then frame_enhancer (nearest, blend 100) gives the swap alone, frame for frame.
  const std::string models = models_with("nearest_x4");
  const std::string swapped = scratch("swapped.mp4"), both = scratch("swapped_enhanced.mp4");
  const std::string args = "swap -s " + kMedia + "astronaut.png -t " + kMedia +
                           "astronaut_720p.mp4 --trim-frame-end 3 --output-video-quality 100 --models-dir " + models;
  auto r = run_fswap(args + " -o " + swapped);
  ASSERT_EQ(r.code, 0) << r.output;
  r = run_fswap(args + " -o " + both + " --processors face_swapper frame_enhancer --frame-enhancer-model real_esrgan_x4"
                " --frame-enhancer-blend 100");
  ASSERT_EQ(r.code, 0) << r.output;
  auto a = VideoReader::open(swapped).value(), b = VideoReader::open(both).value();
  VideoFrame fa, fb;
  int frames = 0;
  while (a->read(fa).value()) {
    ASSERT_TRUE(b->read(fb).value());
    EXPECT_EQ(fa.image.pixels, fb.image.pixels) << "frame " << frames;  // same frames, same encoder
    ++frames;
  }
  EXPECT_FALSE(b->read(fb).value());
  EXPECT_EQ(frames, 3);
}

TEST_F(FrameEnhancerCli, VideoFramesAreEnhanced) {
  const std::string out = scratch("contrast.mp4");
  const auto r = run_fswap("swap -t " + kMedia + "Megamind.avi -o " + out +
                           " --trim-frame-end 2 --processors frame_enhancer --frame-enhancer-model real_esrgan_x4"
                           " --frame-enhancer-blend 100 --models-dir " + models_with("contrast_x4"));
  ASSERT_EQ(r.code, 0) << r.output;
  auto in = VideoReader::open(kMedia + "Megamind.avi").value(), got = VideoReader::open(out).value();
  VideoFrame a, b;
  int frames = 0;
  while (got->read(b).value()) {
    ASSERT_TRUE(in->read(a).value());
    ASSERT_EQ(b.image.width, a.image.width);
    double err = 0;  // against the formula, through a lossy encode
    for (std::size_t i = 0; i < a.image.pixels.size(); ++i) {
      const double e = std::floor(std::clamp((a.image.pixels[i] / 255.0 * 1.5 - 0.25) * 255, 0.0, 255.0));
      err += std::abs(b.image.pixels[i] - e);
    }
    EXPECT_LT(err / a.image.pixels.size(), 4.0) << "frame " << frames;
    ++frames;
  }
  EXPECT_EQ(frames, 2);
}

TEST_F(FrameEnhancerCli, MissingModelIsNamedAndNothingIsWritten) {
  const std::string out = scratch("missing.png");
  const auto r = run_fswap("swap -t " + kMedia + "astronaut.png -o " + out +
                           " --processors frame_enhancer --frame-enhancer-model real_esrgan_x8 --models-dir " +
                           models_with("nearest_x4"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("real_esrgan_x8.onnx"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out));
  // An unknown model name and a blend out of range are refused before any work.
  for (const std::string bad : {"--frame-enhancer-model real_esrgan_x3", "--frame-enhancer-blend 101"}) {
    const auto refused = run_fswap("swap -t " + kMedia + "astronaut.png -o " + out + " --processors frame_enhancer " + bad);
    EXPECT_NE(refused.code, 0) << bad;
    EXPECT_FALSE(fs::exists(out));
  }
}

}  // namespace
}  // namespace fswap
