// A face step on its region of the frame (face/face_region.h): the region each processor says its
// device step touches (device_region, crop_step_rect), and the host steps of FaceFusion's swapper
// and face enhancer through run_in_region against the same steps on the whole frame, on probes
// (tests/support/make_swapper_probes.py, make_enhancer_probes.py). The device twins are compared
// on the GPU (tests/gpu/test_cuda_face.cc, CudaFace.RegionStepsMatchTheWholeFrame).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <numbers>
#include <random>
#include <vector>

#include "face/device_face.h"
#include "face/enhancer.h"
#include "face/face_masker.h"
#include "face/face_region.h"
#include "face/paste_back.h"
#include "face/swapper.h"
#include "face/swapper_facefusion.h"
#include "support/facefusion_reference.h"
#include "support/replicas.h"
#include "video/media.h"

namespace fswap {
namespace {

const std::string kMedia = std::string(FSWAP_THIRD_PARTY_DIR) + "/media/";

// A face with eyes `eyes` pixels apart centred near (cx, cy), turned by `angle` radians: five
// alignment points and 68 landmarks on an oval around them (the area mask's hulls).
Face synthetic_face(float cx, float cy, float eyes, float angle) {
  Face f;
  f.has_landmarks = true;
  const float c = std::cos(angle), s = std::sin(angle);
  const auto at = [&](float u, float v) { return Point2f{cx + eyes * (u * c - v * s), cy + eyes * (u * s + v * c)}; };
  f.landmarks5 = {at(-0.5f, -0.4f), at(0.5f, -0.4f), at(0.03f, 0.12f), at(-0.38f, 0.61f), at(0.41f, 0.6f)};
  for (int i = 0; i < 68; ++i) {
    const float t = 2 * std::numbers::pi_v<float> * static_cast<float>(i) / 68;
    f.landmarks68[i] = at(0.95f * std::cos(t), 0.25f + 1.05f * std::sin(t));
  }
  f.box = {cx - eyes, cy - eyes, cx + eyes, cy + 1.4f * eyes};
  f.keypoints = {f.landmarks5[0], f.landmarks5[1]};
  return f;
}

Rect grown(const Rect& r, int m) { return {r.x - m, r.y - m, r.width + 2 * m, r.height + 2 * m}; }

std::string to_string(const Rect& r) {
  return "[" + std::to_string(r.x) + ", " + std::to_string(r.y) + ", " + std::to_string(r.width) + "×" +
         std::to_string(r.height) + "]";
}

TEST(FaceRegion, TranslatedMovesEveryPositionAndKeepsTheRest) {
  Face f = synthetic_face(100.25f, 80.5f, 40, 0.1f);
  f.embedding = {0.6f, 0.8f};
  f.track_id = 7;
  f.score = 0.9f;
  const Face m = translated(f, -30, 12.5f);
  EXPECT_FLOAT_EQ(m.box.x1, f.box.x1 - 30);
  EXPECT_FLOAT_EQ(m.box.y2, f.box.y2 + 12.5f);
  for (int i = 0; i < 5; ++i) {
    EXPECT_FLOAT_EQ(m.landmarks5[i].x, f.landmarks5[i].x - 30);
    EXPECT_FLOAT_EQ(m.landmarks5[i].y, f.landmarks5[i].y + 12.5f);
  }
  for (int i = 0; i < 68; ++i) EXPECT_FLOAT_EQ(m.landmarks68[i].y, f.landmarks68[i].y + 12.5f);
  ASSERT_EQ(m.keypoints.size(), 2u);
  EXPECT_FLOAT_EQ(m.keypoints[1].x, f.keypoints[1].x - 30);
  EXPECT_EQ(m.embedding, f.embedding);
  EXPECT_EQ(m.track_id, 7);
  EXPECT_EQ(m.score, 0.9f);
  EXPECT_TRUE(m.has_landmarks);
}

TEST(FaceRegion, PartHoldingIsTheRegionsBoundsInsideTheFrame) {
  // Two faces' regions, one cut by the frame's right edge: the part spans both, clipped.
  EXPECT_EQ(part_holding({{100, 50, 200, 100}, {250, 120, 200, 90}}, 400, 300), (Rect{100, 50, 300, 160}));
  // One region: itself; one outside the frame or empty adds nothing.
  EXPECT_EQ(part_holding({{10, 20, 30, 40}, {500, 500, 10, 10}, {0, 0, 0, 5}}, 400, 300), (Rect{10, 20, 30, 40}));
  // Nothing to hold: the whole frame (a step without a region may touch any of it).
  EXPECT_EQ(part_holding({}, 400, 300), (Rect{0, 0, 400, 300}));
  EXPECT_EQ(part_holding({{-50, -50, 20, 20}}, 400, 300), (Rect{0, 0, 400, 300}));
}

// frame_to_crop for the same crop on a frame whose origin lies at (x, y) of this one.
Affine moved_origin(const Affine& m, double x, double y) {
  Affine o = m;
  o.c += m.a * x + m.b * y;
  o.f += m.d * x + m.e * y;
  return o;
}

TEST(CropStepRect, IsThePasteRectGrownByTheTapMarginAndClipped) {
  // A crop of 100 pixels at half scale, rotated: its footprint is about 230 pixels wide.
  const double a = 0.5 * std::cos(0.3), d = 0.5 * std::sin(0.3);
  const Affine inside{a, d, -150, -d, a, -100};
  const Rect pr = paste_rect(1000, 800, 100, 100, inside);
  ASSERT_FALSE(pr.empty());
  ASSERT_GT(pr.x, kCropTapMargin);
  ASSERT_GT(pr.y, kCropTapMargin);
  ASSERT_LT(pr.x + pr.width + kCropTapMargin, 1000);
  ASSERT_LT(pr.y + pr.height + kCropTapMargin, 800);
  EXPECT_TRUE(crop_step_rect(1000, 800, 100, 100, inside) == grown(pr, kCropTapMargin)) << to_string(pr);
  // Frames that cut the footprint 50 pixels in, on each side in turn.
  const Rect cut_right = crop_step_rect(pr.x + pr.width - 50, 800, 100, 100, inside);
  EXPECT_TRUE(cut_right == (Rect{pr.x - 2, pr.y - 2, pr.width - 50 + 2, pr.height + 4})) << to_string(cut_right);
  const Rect cut_bottom = crop_step_rect(1000, pr.y + pr.height - 50, 100, 100, inside);
  EXPECT_TRUE(cut_bottom == (Rect{pr.x - 2, pr.y - 2, pr.width + 4, pr.height - 50 + 2})) << to_string(cut_bottom);
  const Rect cut_left = crop_step_rect(1000, 800, 100, 100, moved_origin(inside, pr.x + 50, 0));
  EXPECT_TRUE(cut_left == (Rect{0, pr.y - 2, pr.width - 50 + 2, pr.height + 4})) << to_string(cut_left);
  const Rect cut_top = crop_step_rect(1000, 800, 100, 100, moved_origin(inside, 0, pr.y + 50));
  EXPECT_TRUE(cut_top == (Rect{pr.x - 2, 0, pr.width + 4, pr.height - 50 + 2})) << to_string(cut_top);
  // A singular transform, and a crop wholly outside the frame: nothing.
  EXPECT_TRUE(crop_step_rect(1000, 800, 100, 100, Affine{0, 0, 0, 0, 0, 0}).empty());
  EXPECT_TRUE(crop_step_rect(1000, 800, 100, 100, moved_origin(inside, -5000, 0)).empty());
}

// The processors on the probes: the swap probe as hyperswap_1a_256 (output = 0.75·target +
// source), every mask type (the xseg_1 and bisenet probes), and the identity enhancer with the
// xseg_2 occluder probe.
class FaceRegionSteps : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    const std::string probes = test::swapper_probe_dir(&why);
    if (probes.empty()) GTEST_SKIP() << why;
    const std::string enhancer_probes = test::enhancer_replica_dir(&why);
    if (enhancer_probes.empty()) GTEST_SKIP() << why;
    engine_ = make_engine("ort").value();
    FaceSwapperModelSpec spec = face_swapper_model_spec("hyperswap_1a_256").value();
    spec.name = "swap_probe_256";
    std::shared_ptr<FaceSwapperModel> model = FaceSwapperModel::load(*engine_, probes, spec, {}).value();
    FaceMaskOptions masks;
    masks.types = {"box", "occlusion", "area"};
    masks.padding = {4, 2, 8, 2};
    masks.occluder_model = "xseg_2";  // its probe keeps the redder-than-blue pixels
    FaceSwapperSource source;
    source.embedding.resize(512);
    for (std::size_t i = 0; i < 512; ++i) source.embedding[i] = std::sin(0.37f * static_cast<float>(i));
    swapper_ = FaceFusionFaceSwapper::create(model, source, FaceMasker::load(*engine_, probes, masks, {}).value(), 256)
                   .value();
    std::shared_ptr<FaceOccluder> occluder = FaceOccluder::load(*engine_, probes, "xseg_2", {}).value();
    info_ = face_enhancer_model_info("gfpgan_1.4").value();
    FaceEnhancerOptions options;
    options.blend = 70;
    enhancer_ = std::make_unique<FaceEnhancer>(
        FaceEnhancerModel::load_file(*engine_, enhancer_probes + "/identity_512.onnx", info_, {}).value(), options,
        occluder);
  }

  std::unique_ptr<Engine> engine_;
  std::unique_ptr<FaceFusionFaceSwapper> swapper_;
  FaceEnhancerModelInfo info_;
  std::unique_ptr<FaceEnhancer> enhancer_;
};

TEST_F(FaceRegionSteps, DeviceRegionIsTheStepsCropStepRect) {
  const int w = 640, h = 480;
  const Face faces[] = {
      synthetic_face(320.3f, 241.7f, 60, 0.2f),   // inside
      synthetic_face(20.6f, 250.1f, 50, -0.1f),   // at the left edge
      synthetic_face(300.2f, 15.4f, 50, 0.05f),   // at the top
      synthetic_face(622.9f, 230.8f, 50, 0.3f),   // at the right
      synthetic_face(310.5f, 470.2f, 50, -0.25f), // at the bottom
  };
  const Image frame(w, h, 3);
  for (const Face& f : faces) {
    Affine swap_m, enhance_m;
    face_swapper_crop(frame, f.landmarks5, face_swapper_model_spec("hyperswap_1a_256").value(), 256, &swap_m);
    face_enhancer_crop(frame, f.landmarks5, info_, &enhance_m);
    EXPECT_TRUE(swapper_->device_region(f, w, h) == crop_step_rect(w, h, 256, 256, swap_m));
    EXPECT_TRUE(enhancer_->device_region(f, w, h) == crop_step_rect(w, h, 512, 512, enhance_m));
  }
  const Rect inside = enhancer_->device_region(faces[0], w, h);
  Affine m;
  face_enhancer_crop(frame, faces[0].landmarks5, info_, &m);
  EXPECT_TRUE(inside == grown(paste_rect(w, h, 512, 512, m), kCropTapMargin)) << to_string(inside);
  EXPECT_GT(inside.x, 0);
  EXPECT_LT(inside.x + inside.width, w);
  EXPECT_EQ(enhancer_->device_region(faces[1], w, h).x, 0);
  EXPECT_EQ(enhancer_->device_region(faces[2], w, h).y, 0);
  const Rect right = enhancer_->device_region(faces[3], w, h);
  EXPECT_EQ(right.x + right.width, w);
  const Rect bottom = swapper_->device_region(faces[4], w, h);
  EXPECT_EQ(bottom.y + bottom.height, h);
  // Wholly outside the frame: nothing to touch. No landmarks: the whole frame (the step refuses it).
  EXPECT_TRUE(enhancer_->device_region(synthetic_face(-400, 100, 50, 0), w, h).empty());
  EXPECT_TRUE(swapper_->device_region(synthetic_face(900, 900, 50, 0), w, h).empty());
  EXPECT_TRUE(swapper_->device_region(Face{}, w, h) == (Rect{0, 0, w, h}));
  EXPECT_TRUE(enhancer_->device_region(Face{}, w, h) == (Rect{0, 0, w, h}));
}

// Two faces on the astronaut, the second against the bottom-right corner (its region clipped)
// and overlapping the first's region: each step face after face on the whole frame, and through
// run_in_region, give the same bytes.
void expect_same_as_whole_frame(const char* what, const std::function<Rect(const Face&, const Image&)>& region,
                                const HostFaceStep& step) {
  SCOPED_TRACE(what);
  const Image frame = read_image(kMedia + "astronaut.png").value();
  const std::vector<Face> faces = {synthetic_face(351.3f, 335.6f, 52, 0.12f), synthetic_face(471.8f, 478.4f, 44, -0.2f)};
  const Rect first = region(faces[0], frame), second = region(faces[1], frame);
  ASSERT_EQ(second.x + second.width, frame.width) << to_string(second);
  ASSERT_EQ(second.y + second.height, frame.height) << to_string(second);
  ASSERT_FALSE(intersect(first, second).empty())
      << to_string(first) << " and " << to_string(second) << " should overlap: the order must show";
  Image whole = frame, by_region = frame;
  for (const Face& f : faces) ASSERT_TRUE(step(whole, f).is_ok());
  for (const Face& f : faces) {
    const Status s = run_in_region(by_region, region(f, by_region), f, step);
    ASSERT_TRUE(s.is_ok()) << s.to_string();
  }
  std::size_t changed = 0, differing = 0;
  for (std::size_t i = 0; i < frame.pixels.size(); ++i) {
    changed += whole.pixels[i] != frame.pixels[i];
    differing += whole.pixels[i] != by_region.pixels[i];
  }
  std::printf("%s: regions %s and %s, %zu values changed, %zu differ from the whole frame's\n", what,
              to_string(first).c_str(), to_string(second).c_str(), changed, differing);
  EXPECT_GT(changed, 10000u) << "the steps changed too little to compare";
  EXPECT_EQ(differing, 0u) << "values differ between the whole frame and its regions";
}

TEST_F(FaceRegionSteps, SwapperInItsRegionsIsTheWholeFrameSwap) {
  expect_same_as_whole_frame(
      "swapper", [&](const Face& f, const Image& frame) { return swapper_->device_region(f, frame.width, frame.height); },
      [&](Image& frame, const Face& f) { return swapper_->swap(frame, f, nullptr); });
}

TEST_F(FaceRegionSteps, EnhancerInItsRegionsIsTheWholeFrameEnhance) {
  expect_same_as_whole_frame(
      "enhancer", [&](const Face& f, const Image& frame) { return enhancer_->device_region(f, frame.width, frame.height); },
      [&](Image& frame, const Face& f) { return enhancer_->enhance(frame, f, nullptr); });
}

TEST(FaceRegion, RunInRegionTranslatesTheFaceAndKeepsTheFrameOnError) {
  const Image frame = test::random_image(64, 48, 3, 4);
  const Face face = synthetic_face(30.5f, 20.25f, 10, 0);
  Image got = frame;
  // The step sees the region alone, with the face moved into it; it marks the face's first eye.
  const Status ok = run_in_region(got, {10, 8, 100, 30}, face, [&](Image& part, const Face& f) {
    EXPECT_EQ(part.width, 54);
    EXPECT_EQ(part.height, 30);
    EXPECT_FLOAT_EQ(f.landmarks5[0].x, face.landmarks5[0].x - 10);
    EXPECT_FLOAT_EQ(f.landmarks5[0].y, face.landmarks5[0].y - 8);
    part.at(static_cast<int>(f.landmarks5[0].x), static_cast<int>(f.landmarks5[0].y), 1) = 7;
    return Status::ok();
  });
  ASSERT_TRUE(ok.is_ok()) << ok.to_string();
  Image want = frame;
  want.at(static_cast<int>(face.landmarks5[0].x), static_cast<int>(face.landmarks5[0].y), 1) = 7;
  EXPECT_EQ(got.pixels, want.pixels);
  // An error leaves the frame as it was; an empty region runs nothing.
  Image kept = frame;
  const Status failed = run_in_region(kept, {0, 0, 20, 20}, face, [](Image& part, const Face&) {
    part.pixels.assign(part.pixels.size(), 0);
    return out_of_memory("no room");
  });
  EXPECT_EQ(failed.code(), StatusCode::kOutOfMemory);
  EXPECT_EQ(kept.pixels, frame.pixels);
  bool ran = false;
  EXPECT_TRUE(run_in_region(kept, {70, 0, 10, 10}, face, [&](Image&, const Face&) {
                ran = true;
                return Status::ok();
              }).is_ok());
  EXPECT_FALSE(ran);
}

// A DeviceWork whose "device" memory is host memory, its copies done at once: enough to follow a
// face's region up from the frame's rows and back into them (the CUDA runtime's staging copies
// are compared with the whole frame on the GPU, CudaFace.RegionStepsMatchTheWholeFrame).
class HostMemoryDevice final : public DeviceWork {
 public:
  std::unique_lock<std::mutex> hold() override { return std::unique_lock<std::mutex>(mutex_); }
  CUstream_st* stream() override { return nullptr; }
  Result<DeviceBuffer> allocate(std::uint64_t bytes) override {
    auto owner = std::make_unique<Bytes>(bytes);
    void* data = owner->bytes.data();
    return DeviceBuffer(data, bytes, std::move(owner));
  }
  Status upload(void* device, const void* host, HostRows rows) override {
    ++uploads;
    for (std::uint64_t r = 0; r < rows.rows; ++r)
      std::memcpy(static_cast<std::uint8_t*>(device) + r * rows.row_bytes,
                  static_cast<const std::uint8_t*>(host) + r * rows.stride, rows.row_bytes);
    return Status::ok();
  }
  Result<std::unique_ptr<PendingDownload>> download_later(const void* device, std::uint64_t bytes) override {
    return std::unique_ptr<PendingDownload>(std::make_unique<Copy>(device, bytes));
  }
  Status release_scratch() override { return Status::ok(); }
  int uploads = 0;

 private:
  struct Bytes final : DeviceBuffer::Owner {
    explicit Bytes(std::uint64_t n) : bytes(n) {}
    std::vector<std::uint8_t> bytes;
  };
  struct Copy final : PendingDownload {
    Copy(const void* from, std::uint64_t n) : bytes(static_cast<const std::uint8_t*>(from), static_cast<const std::uint8_t*>(from) + n) {}
    Status wait(void* host, HostRows rows) override {
      if (rows.bytes() != bytes.size()) return invalid_input("the rows hold a different number of bytes");
      for (std::uint64_t r = 0; r < rows.rows; ++r)
        std::memcpy(static_cast<std::uint8_t*>(host) + r * rows.stride, bytes.data() + r * rows.row_bytes, rows.row_bytes);
      return Status::ok();
    }
    std::vector<std::uint8_t> bytes;
  };
  std::mutex mutex_;
};

TEST(FaceRegionOnDevice, TheRegionsRowsGoUpFromTheFrameAndComeBackIntoThem) {
  const Image frame = test::random_image(37, 23, 3, 9);
  const Face face = synthetic_face(20.5f, 10.25f, 6, 0);
  HostMemoryDevice gpu;
  Image got = frame;
  // Clipped at the right edge: columns 25..36, rows 4..13. The step sees the region's rows packed,
  // with the face moved into it, and inverts every value.
  const Status ok = run_on_gpu_in_region(gpu, got, {25, 4, 20, 10}, face, [&](const DeviceFrame& part, const Face& f) {
    EXPECT_EQ(part.width(), 12);
    EXPECT_EQ(part.height(), 10);
    EXPECT_FLOAT_EQ(f.landmarks5[0].x, face.landmarks5[0].x - 25);
    EXPECT_FLOAT_EQ(f.landmarks5[0].y, face.landmarks5[0].y - 4);
    auto* bytes = static_cast<std::uint8_t*>(part.data());
    for (int y = 0; y < 10; ++y)
      for (int x = 0; x < 12 * 3; ++x) {
        EXPECT_EQ(bytes[y * 36 + x], frame.row(4 + y)[25 * 3 + x]) << x << "," << y;
        bytes[y * 36 + x] = static_cast<std::uint8_t>(255 - bytes[y * 36 + x]);
      }
    return Status::ok();
  }, nullptr);
  ASSERT_TRUE(ok.is_ok()) << ok.to_string();
  EXPECT_EQ(gpu.uploads, 1);
  Image want = frame;
  for (int y = 4; y < 14; ++y)
    for (int x = 25 * 3; x < 37 * 3; ++x) want.row(y)[x] = static_cast<std::uint8_t>(255 - want.row(y)[x]);
  EXPECT_EQ(got.pixels, want.pixels);
  // An error leaves the frame as it was; a region outside the frame uploads nothing.
  Image kept = frame;
  const Status failed = run_on_gpu_in_region(gpu, kept, {0, 0, 8, 8}, face, [](const DeviceFrame& part, const Face&) {
    std::memset(part.data(), 0, static_cast<std::size_t>(part.width()) * part.height() * 3);
    return out_of_memory("no room");
  }, nullptr);
  EXPECT_EQ(failed.code(), StatusCode::kOutOfMemory);
  EXPECT_EQ(kept.pixels, frame.pixels);
  EXPECT_TRUE(run_on_gpu_in_region(gpu, kept, {40, 0, 5, 5}, face, [](const DeviceFrame&, const Face&) {
                return internal_error("ran");
              }, nullptr).is_ok());
  EXPECT_EQ(gpu.uploads, 2);
  // DeviceFrame itself takes only a non-empty rectangle inside the frame.
  auto held = gpu.hold();
  EXPECT_EQ(DeviceFrame::upload(gpu, frame, {30, 0, 8, 4}).status().code(), StatusCode::kInvalidInput);
  EXPECT_EQ(DeviceFrame::upload(gpu, frame, {3, 3, 0, 4}).status().code(), StatusCode::kInvalidInput);
}

}  // namespace
}  // namespace fswap
