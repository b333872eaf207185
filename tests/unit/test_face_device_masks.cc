// The CPU side of the content masks on frames kept on the GPU (face/device_masks.h): the parser's
// chosen classes as bits, OpenCV's Gaussian taps that the device blur shares with the host's, and
// the gating: a mask whose models run on the CPU never claims a GPU, and a build without the CUDA
// kernels keeps every mask on the host. (The kernels themselves: tests/gpu/test_cuda_face.cc.)
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "face/device_masks.h"
#include "face/face_masker.h"
#include "face/paste_back.h"
#include "support/replicas.h"

namespace fswap {
namespace {

// A DeviceWork that has no device: enough to ask who runs where.
class NoDevice final : public DeviceWork {
 public:
  std::unique_lock<std::mutex> hold() override { return std::unique_lock<std::mutex>(mutex_); }
  CUstream_st* stream() override { return nullptr; }
  Result<DeviceBuffer> allocate(std::uint64_t) override { return unsupported("no device"); }
  Status upload(void*, const void*, HostRows) override { return unsupported("no device"); }
  Status release_scratch() override { return Status::ok(); }
  Result<std::unique_ptr<PendingDownload>> download_later(const void*, std::uint64_t) override {
    return unsupported("no device");
  }

 private:
  std::mutex mutex_;
};

TEST(FaceDeviceMasks, ChosenClassesAreBits) {
  EXPECT_EQ(chosen_classes({}).value(), 0u);
  EXPECT_EQ(chosen_classes({1, 2, 10, 13}).value(), (1u << 1) | (1u << 2) | (1u << 10) | (1u << 13));
  EXPECT_EQ(chosen_classes({63}).value(), std::uint64_t{1} << 63);
  for (int bad : {-1, 64}) {
    auto s = chosen_classes({1, bad});
    ASSERT_FALSE(s.is_ok()) << bad;
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidInput);
    EXPECT_NE(s.status().to_string().find("class id " + std::to_string(bad)), std::string::npos) << s.status().to_string();
  }
}

// gaussian_blur_opencv convolves with gaussian_taps_opencv (the numbers the device blur gets): an
// impulse far from the borders comes out as the taps' outer product, each pass rounded to float.
TEST(FaceDeviceMasks, OpenCvTapsAreTheHostBlurs) {
  const std::vector<double> taps = gaussian_taps_opencv(5.0);
  ASSERT_EQ(taps.size(), 41u);  // round(8σ + 1) | 1
  EXPECT_NEAR(std::accumulate(taps.begin(), taps.end(), 0.0), 1.0, 1e-12);
  for (std::size_t i = 0; i < taps.size(); ++i) EXPECT_EQ(taps[i], taps[taps.size() - 1 - i]);
  EXPECT_EQ(gaussian_taps_opencv(0.25 * 19).size(), 39u);  // a box mask's σ: round(39) | 1
  const int n = 64, c = 32, r = 20;
  ImageF impulse(n, n, 1, 0.f);
  impulse.at(c, c) = 1.f;
  gaussian_blur_opencv(impulse, 5.0);
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      const bool inside = std::abs(x - c) <= r && std::abs(y - c) <= r;
      const float row = inside ? static_cast<float>(taps[x - c + r]) : 0.f;
      const float want = inside ? static_cast<float>(taps[y - c + r] * double(row)) : 0.f;
      ASSERT_EQ(impulse.at(x, y), want) << x << "," << y;
    }
}

TEST(FaceDeviceMasks, BoxAndAreaMasksGoToTheGpuOnlyWithItsKernels) {
  NoDevice gpu;
  FaceMasker box;
  EXPECT_TRUE(box.mask_is_fixed());
  EXPECT_EQ(box.runs_on(gpu), device_face_built());
  FaceMaskOptions o;
  o.types = {"box", "area"};
  auto engine = make_engine("native").value();
  auto area = FaceMasker::load(*engine, "/nonexistent", o, {});  // no model to load
  ASSERT_TRUE(area.is_ok()) << area.status().to_string();
  EXPECT_FALSE(area->mask_is_fixed());
  EXPECT_EQ(area->runs_on(gpu), device_face_built());
  if (!device_face_built()) {
    auto ones = mask_filled(gpu, 8, 1.f);
    ASSERT_FALSE(ones.is_ok());
    EXPECT_EQ(ones.status().code(), StatusCode::kUnsupported);
    EXPECT_NE(ones.status().to_string().find("no CUDA kernels for face masks"), std::string::npos);
  }
}

// The occluder and the parser on the CPU engines: their masks stay on the host whatever the build.
TEST(FaceDeviceMasks, MasksWhoseModelsRunOnTheCpuStayOnTheHost) {
  std::string why;
  const std::string dir = test::swapper_probe_dir(&why);
  ASSERT_FALSE(dir.empty()) << why;
  NoDevice gpu;
  for (const char* engine_name : {"ort", "native"}) {
    SCOPED_TRACE(engine_name);
    auto engine = make_engine(engine_name).value();
    for (const char* type : {"occlusion", "region"}) {
      FaceMaskOptions o;
      o.types = {"box", type, "area"};
      auto masker = FaceMasker::load(*engine, dir, o, {});
      ASSERT_TRUE(masker.is_ok()) << masker.status().to_string();
      EXPECT_FALSE(masker->runs_on(gpu)) << type;
      EXPECT_FALSE(masker->mask_is_fixed()) << type;
    }
    auto occluder = FaceOccluder::load(*engine, dir, "many", {});
    ASSERT_TRUE(occluder.is_ok()) << occluder.status().to_string();
    EXPECT_EQ((*occluder)->device_work(), nullptr);
    auto parser = FaceParser::load(*engine, dir, "bisenet_resnet_34", {});
    ASSERT_TRUE(parser.is_ok()) << parser.status().to_string();
    EXPECT_EQ((*parser)->device_work(), nullptr);
    auto s = (*parser)->region_mask_on_device(gpu, DeviceBuffer(), 128, {1}, DeviceBuffer());
    EXPECT_EQ(s.code(), StatusCode::kUnsupported) << s.to_string();
  }
}

}  // namespace
}  // namespace fswap
