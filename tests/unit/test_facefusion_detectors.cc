// FaceFusion's detectors yoloface_8n and scrfd_2.5g (reference/facefusion.md §2.2): decoding on
// hand-made output tensors against FaceFusion's formulas recomputed here, the input tensor
// against a per-pixel computation in FaceFusion's BGR terms, and both models end to end on
// replicas (random weights, real I/O) on both engines.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "face/detector.h"
#include "face/detector_facefusion.h"
#include "imaging/transform.h"
#include "support/face_compare.h"
#include "support/replicas.h"
#include "video/media.h"

#ifdef FSWAP_HAVE_OPENCV
#include <opencv2/imgproc.hpp>
#endif

namespace fswap {
namespace {

const std::string kMedia = std::string(FSWAP_THIRD_PARTY_DIR) + "/media/";
constexpr float kTol = 1e-4f;

Image random_image(int w, int h, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(0, 255);
  Image img(w, h, 3);
  for (auto& v : img.pixels) v = static_cast<std::uint8_t>(d(rng));
  return img;
}

// ---------------------------------------------------------------------------------------------
// (a) Decoding.

struct YoloBox {
  int anchor;
  float cx, cy, w, h, score;
  float kps[5][3];
};

Tensor yolo_output(const std::vector<YoloBox>& boxes, std::int64_t n = 8400) {
  Tensor t = Tensor::zeros(DType::kFloat32, {1, 20, n});
  float* d = t.data<float>();
  for (const YoloBox& b : boxes) {
    const float v[5] = {b.cx, b.cy, b.w, b.h, b.score};
    for (int c = 0; c < 5; ++c) d[c * n + b.anchor] = v[c];
    for (int k = 0; k < 5; ++k)
      for (int j = 0; j < 3; ++j) d[(5 + 3 * k + j) * n + b.anchor] = b.kps[k][j];
  }
  return t;
}

TEST(YolofaceDecode, TwoBoxesAreUnLetterboxed) {
  // A 1280×960 frame is shrunk by 0.5 to 640×480, so both ratios are 2.
  const Image frame(1280, 960, 3);
  const FacefusionDetectInput in = facefusion_detect_input(frame, 640, 0.f, 1.f / 255.f);
  ASSERT_FLOAT_EQ(in.ratio_width, 2.f);
  ASSERT_FLOAT_EQ(in.ratio_height, 2.f);
  const std::vector<YoloBox> boxes = {
      {5, 100.f, 200.f, 40.f, 60.f, 0.7f, {{90, 190, .9f}, {110, 190, .9f}, {100, 200, .9f}, {92, 212, .9f}, {108, 212, .9f}}},
      {4000, 400.f, 300.f, 80.f, 100.f, 0.9f, {{380, 280, .8f}, {420, 281, .8f}, {401, 300, .8f}, {385, 325, .8f}, {415, 326, .8f}}},
  };
  Tensor out = yolo_output(boxes);
  auto faces = decode_yoloface(out, 0.5f, in.ratio_width, in.ratio_height);
  ASSERT_TRUE(faces.is_ok()) << faces.status().to_string();
  ASSERT_EQ(faces->size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    const YoloBox& b = boxes[i];
    const Face& f = (*faces)[i];  // anchor order before NMS
    EXPECT_NEAR(f.box.x1, (b.cx - b.w / 2) * 2, kTol);
    EXPECT_NEAR(f.box.y1, (b.cy - b.h / 2) * 2, kTol);
    EXPECT_NEAR(f.box.x2, (b.cx + b.w / 2) * 2, kTol);
    EXPECT_NEAR(f.box.y2, (b.cy + b.h / 2) * 2, kTol);
    EXPECT_NEAR(f.score, b.score, kTol);
    ASSERT_EQ(f.keypoints.size(), 5u);
    for (int k = 0; k < 5; ++k) {
      EXPECT_NEAR(f.keypoints[k].x, b.kps[k][0] * 2, kTol);
      EXPECT_NEAR(f.keypoints[k].y, b.kps[k][1] * 2, kTol);
    }
  }
  // NMS keeps both (no overlap), best first.
  auto selected = facefusion_select_faces(*faces, {.score_threshold = 0.5f}, frame.width, frame.height);
  ASSERT_EQ(selected.size(), 2u);
  EXPECT_NEAR(selected[0].score, 0.9f, kTol);
  EXPECT_NEAR(selected[0].box.x1, 720.f, kTol);
}

TEST(YolofaceDecode, ThresholdIsStrictAndAnchorZeroAloneIsDropped) {
  YoloBox at_threshold{7, 10, 10, 4, 4, 0.5f, {}};
  auto none = decode_yoloface(yolo_output({at_threshold}), 0.5f, 1, 1);
  ASSERT_TRUE(none.is_ok());
  EXPECT_TRUE(none->empty());
  // FaceFusion's `if numpy.any(keep_indices)` is false for [0].
  YoloBox first{0, 10, 10, 4, 4, 0.9f, {}};
  auto quirk = decode_yoloface(yolo_output({first}), 0.5f, 1, 1);
  ASSERT_TRUE(quirk.is_ok());
  EXPECT_TRUE(quirk->empty());
  YoloBox second{1, 30, 30, 4, 4, 0.9f, {}};
  auto both = decode_yoloface(yolo_output({first, second}), 0.5f, 1, 1);
  ASSERT_TRUE(both.is_ok());
  EXPECT_EQ(both->size(), 2u);
  EXPECT_FALSE(decode_yoloface(Tensor::zeros(DType::kFloat32, {1, 19, 10}), 0.5f, 1, 1).is_ok());
}

// FaceFusion's create_static_anchors, spelled out: mgrid[:h, :w][::-1] → (x, y) per cell,
// row-major, times the stride, each repeated anchor_total times.
std::vector<std::array<float, 2>> static_anchors(int stride, int anchor_total, int rows, int cols) {
  std::vector<std::array<float, 2>> a;
  for (int y = 0; y < rows; ++y)
    for (int x = 0; x < cols; ++x)
      for (int k = 0; k < anchor_total; ++k) a.push_back({static_cast<float>(x * stride), static_cast<float>(y * stride)});
  return a;
}

struct ScrfdOutputs {
  std::vector<Tensor> t;  // score_8/16/32, bbox_8/16/32, kps_8/16/32
  explicit ScrfdOutputs(int size) {
    for (int part : {1, 4, 10})
      for (int s : {8, 16, 32}) t.push_back(Tensor::zeros(DType::kFloat32, {(size / s) * (size / s) * 2, part}));
  }
  std::array<const Tensor*, 9> parts() const {
    std::array<const Tensor*, 9> p{};
    for (int i = 0; i < 9; ++i) p[i] = &t[i];
    return p;
  }
};

TEST(ScrfdDecode, OneStride8AnchorFollowsTheDistanceFormula) {
  const int size = 640;
  ScrfdOutputs out(size);
  const int anchor = 2 * (10 * 80 + 20) + 1;  // row 10, column 20, second anchor of the cell
  const float dist[4] = {1.5f, 2.f, 3.f, 4.25f};
  const float kps[10] = {-1.f, -.5f, 1.f, -.5f, 0.f, .5f, -.8f, 1.5f, .8f, 1.5f};
  out.t[0].data<float>()[anchor] = 0.8f;
  out.t[0].data<float>()[anchor + 7] = 0.3f;  // below the threshold
  for (int j = 0; j < 4; ++j) out.t[3].data<float>()[4 * anchor + j] = dist[j];
  for (int j = 0; j < 10; ++j) out.t[6].data<float>()[10 * anchor + j] = kps[j];
  const float rw = 1.25f, rh = 1.5f;
  auto faces = decode_scrfd(out.parts(), size, 0.5f, rw, rh);
  ASSERT_TRUE(faces.is_ok()) << faces.status().to_string();
  ASSERT_EQ(faces->size(), 1u);
  const auto anchors = static_anchors(8, 2, 80, 80);
  const float ax = anchors[anchor][0], ay = anchors[anchor][1];
  ASSERT_EQ(ax, 160.f);
  ASSERT_EQ(ay, 80.f);
  const Face& f = faces->front();
  EXPECT_NEAR(f.box.x1, (ax - dist[0] * 8) * rw, kTol);
  EXPECT_NEAR(f.box.y1, (ay - dist[1] * 8) * rh, kTol);
  EXPECT_NEAR(f.box.x2, (ax + dist[2] * 8) * rw, kTol);
  EXPECT_NEAR(f.box.y2, (ay + dist[3] * 8) * rh, kTol);
  EXPECT_NEAR(f.score, 0.8f, kTol);
  ASSERT_EQ(f.keypoints.size(), 5u);
  for (int k = 0; k < 5; ++k) {
    EXPECT_NEAR(f.keypoints[k].x, (ax + kps[2 * k] * 8) * rw, kTol);
    EXPECT_NEAR(f.keypoints[k].y, (ay + kps[2 * k + 1] * 8) * rh, kTol);
  }
}

TEST(ScrfdDecode, StridesAreDecodedInOrderAndScoreIsInclusive) {
  const int size = 320;
  ScrfdOutputs out(size);
  // Stride 32 (10×10 cells): cell (row 3, col 4), first anchor, score exactly at the threshold.
  const int a32 = 2 * (3 * 10 + 4);
  out.t[2].data<float>()[a32] = 0.5f;
  for (int j = 0; j < 4; ++j) out.t[5].data<float>()[4 * a32 + j] = 1.f;
  // Stride 16 (20×20): cell (row 0, col 1), second anchor.
  const int a16 = 2 * 1 + 1;
  out.t[1].data<float>()[a16] = 0.95f;
  for (int j = 0; j < 4; ++j) out.t[4].data<float>()[4 * a16 + j] = 0.5f;
  auto faces = decode_scrfd(out.parts(), size, 0.5f, 1.f, 1.f);
  ASSERT_TRUE(faces.is_ok()) << faces.status().to_string();
  ASSERT_EQ(faces->size(), 2u);
  const auto anchors16 = static_anchors(16, 2, 20, 20), anchors32 = static_anchors(32, 2, 10, 10);
  EXPECT_NEAR((*faces)[0].box.x1, anchors16[a16][0] - 8.f, kTol);
  EXPECT_NEAR((*faces)[0].box.y2, anchors16[a16][1] + 8.f, kTol);
  EXPECT_NEAR((*faces)[1].box.x1, anchors32[a32][0] - 32.f, kTol);
  EXPECT_NEAR((*faces)[1].box.y1, anchors32[a32][1] - 32.f, kTol);
  // Wrong sizes are refused with the stride named.
  auto wrong = decode_scrfd(out.parts(), 640, 0.5f, 1.f, 1.f);
  ASSERT_FALSE(wrong.is_ok());
  EXPECT_NE(wrong.status().to_string().find("stride 8"), std::string::npos);
}

TEST(FacefusionSelect, NmsAtIou04ThenClampedToTheFrame) {
  std::vector<Face> faces(3);
  faces[0].box = {0, 0, 10, 10};
  faces[0].score = 0.6f;
  faces[1].box = {1, 0, 11, 10};  // IoU 9/11 with the first: dropped
  faces[1].score = 0.5f + 1e-3f;
  faces[2].box = {-5, 90, 30, 130};  // partly outside a 100×100 frame
  faces[2].score = 0.9f;
  auto kept = facefusion_select_faces(faces, {.score_threshold = 0.5f, .nms_iou = 0.4f}, 100, 100);
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[0].score, 0.9f);
  EXPECT_EQ(kept[0].box.x1, 0.f);
  EXPECT_EQ(kept[0].box.y2, 100.f);
  EXPECT_EQ(kept[1].score, 0.6f);
}

// ---------------------------------------------------------------------------------------------
// (b) Pre-processing.

void expect_input(const FacefusionDetectInput& in, const Image& placed, int size, float offset, float scale) {
  ASSERT_EQ(in.tensor.shape(), (Shape{1, 3, size, size}));
  const float* p = in.tensor.data<float>();
  int bad = 0;
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x) {
        // prepare_detect_frame: zeros, frame top-left, BGR, then normalised.
        const bool inside = x < placed.width && y < placed.height;
        const float bgr = inside ? static_cast<float>(placed.at(x, y, 2 - c)) : 0.f;
        const float want = (bgr - offset) * scale;
        if (std::fabs(p[(static_cast<std::size_t>(c) * size + y) * size + x] - want) > 1e-6f) ++bad;
      }
  EXPECT_EQ(bad, 0);
}

TEST(FacefusionDetectInput, SmallFrameIsPastedTopLeftInBgr) {
  const Image rgb = random_image(50, 30, 1);
  const auto scrfd = facefusion_detect_input(rgb, 160, 127.5f, 1.f / 128.f);
  EXPECT_EQ(scrfd.ratio_width, 1.f);
  EXPECT_EQ(scrfd.ratio_height, 1.f);
  expect_input(scrfd, rgb, 160, 127.5f, 1.f / 128.f);
  expect_input(facefusion_detect_input(rgb, 64, 0.f, 1.f / 255.f), rgb, 64, 0.f, 1.f / 255.f);
}

TEST(FacefusionDetectInput, LargeFrameIsShrunkWithItsAspectKept) {
  const Image rgb = random_image(250, 101, 2);
  const int size = 160;
  // restrict_frame: scale = min(160/101, 160/250) = 0.64 → int(250·0.64) = 160, int(101·0.64) = 64.
  const auto in = facefusion_detect_input(rgb, size, 127.5f, 1.f / 128.f);
  EXPECT_NEAR(in.ratio_width, 250.f / 160.f, 1e-6f);
  EXPECT_NEAR(in.ratio_height, 101.f / 64.f, 1e-6f);
  const Image shrunk = resize(rgb, 160, 64, Interp::kBilinear);
  expect_input(in, shrunk, size, 127.5f, 1.f / 128.f);
#ifdef FSWAP_HAVE_OPENCV
  // FaceFusion's cv2.resize (INTER_LINEAR, fixed-point for uint8): within one level.
  cv::Mat src(rgb.height, rgb.width, CV_8UC3, const_cast<std::uint8_t*>(rgb.pixels.data())), dst;
  cv::resize(src, dst, cv::Size(160, 64), 0, 0, cv::INTER_LINEAR);
  int worst = 0;
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 160; ++x)
      for (int c = 0; c < 3; ++c) worst = std::max(worst, std::abs(dst.at<cv::Vec3b>(y, x)[c] - shrunk.at(x, y, c)));
  EXPECT_LE(worst, 1);
#endif
}

// ---------------------------------------------------------------------------------------------
// (c) End to end on replicas.

void expect_well_formed(const std::vector<Face>& faces, const Image& frame, float threshold) {
  for (std::size_t i = 0; i < faces.size(); ++i) {
    const Face& f = faces[i];
    EXPECT_GE(f.box.x1, 0.f);
    EXPECT_GE(f.box.y1, 0.f);
    EXPECT_LE(f.box.x2, static_cast<float>(frame.width));
    EXPECT_LE(f.box.y2, static_cast<float>(frame.height));
    EXPECT_GT(f.box.area(), 0.f);
    EXPECT_GT(f.score, threshold);
    EXPECT_LE(f.score, 1.f);
    EXPECT_EQ(f.keypoints.size(), 5u);
    if (i > 0) {
      EXPECT_GE(faces[i - 1].score, f.score);
    }
  }
}

struct DetectorCase {
  const char* name;
  int size;
};

TEST(FacefusionDetectorReplica, BothEnginesRunAndAgree) {
  std::string why;
  const std::string dir = test::detector_replica_dir(&why);
  if (dir.empty()) GTEST_SKIP() << why;
  auto astronaut = read_image(kMedia + "astronaut.png");
  ASSERT_TRUE(astronaut.is_ok()) << astronaut.status().to_string();
  // Larger than 640 on one side, so the shrink path runs too.
  const Image frame = resize(*astronaut, 900, 512, Interp::kBilinear);
  for (const DetectorCase c : {DetectorCase{"yoloface", 640}, DetectorCase{"scrfd", 640}, DetectorCase{"scrfd", 320},
                               DetectorCase{"retinaface", 640}, DetectorCase{"retinaface", 320},
                               DetectorCase{"many", 640}}) {
    SCOPED_TRACE(std::string(c.name) + " at " + std::to_string(c.size));
    std::vector<std::vector<Face>> results;
    // Random weights give scores near 0.5: a threshold just below keeps some faces.
    float threshold = 0.f;
    for (const char* engine_name : {"ort", "native"}) {
      SCOPED_TRACE(engine_name);
      auto engine = make_engine(engine_name);
      ASSERT_TRUE(engine.is_ok()) << engine.status().to_string();
      auto detector = make_face_detector(c.name, **engine, dir, {});
      ASSERT_TRUE(detector.is_ok()) << detector.status().to_string();
      if (results.empty()) {
        // Pick the threshold from the ort run: the 20th best score before NMS.
        auto all = (*detector)->detect(frame, {.score_threshold = 0.f, .nms_iou = 1.f, .detector_size = c.size});
        ASSERT_TRUE(all.is_ok()) << all.status().to_string();
        ASSERT_FALSE(all->empty());
        threshold = (*all)[std::min<std::size_t>(19, all->size() - 1)].score - 1e-4f;
        std::printf("%s %d: %zu candidates, best score %.4f, threshold %.4f\n", c.name, c.size, all->size(),
                    all->front().score, threshold);
      }
      auto faces = (*detector)->detect(frame, {.score_threshold = threshold, .detector_size = c.size});
      ASSERT_TRUE(faces.is_ok()) << faces.status().to_string();
      expect_well_formed(*faces, frame, threshold);
      results.push_back(std::move(*faces));
    }
    ASSERT_EQ(results.size(), 2u);
    ASSERT_FALSE(results[0].empty());
    // ort's best face must be found by native too (by box: replica scores can tie at 1.0, so
    // the order among equals may differ); the rest may differ where a score sits at the threshold.
    test::expect_same_best_face(results[0], results[1], 1e-3f, 0.5f);
  }
}

// `many` = the three detectors' candidates merged, then NMS at IoU 0.1: every face it keeps is a
// candidate of one of them (same box and score), no two kept faces inside the frame overlap by
// more than 0.1, and the best candidate of all survives.
TEST(FacefusionDetectorReplica, ManyMergesTheThreeDetectorsThenSuppressesAt01) {
  std::string why;
  const std::string dir = test::detector_replica_dir(&why);
  if (dir.empty()) GTEST_SKIP() << why;
  auto astronaut = read_image(kMedia + "astronaut.png");
  ASSERT_TRUE(astronaut.is_ok());
  const Image frame = resize(*astronaut, 640, 480, Interp::kBilinear);
  auto engine = make_engine("ort").value();
  const float threshold = 0.45f;
  std::vector<Face> candidates;
  for (const char* name : {"retinaface", "scrfd", "yoloface"}) {
    auto d = make_face_detector(name, *engine, dir, {});
    ASSERT_TRUE(d.is_ok()) << d.status().to_string();
    // nms_iou 1: nothing suppressed, only the threshold and the clamp.
    auto all = (*d)->detect(frame, {.score_threshold = threshold, .nms_iou = 1.f, .detector_size = 640});
    ASSERT_TRUE(all.is_ok()) << all.status().to_string();
    candidates.insert(candidates.end(), all->begin(), all->end());
  }
  ASSERT_FALSE(candidates.empty());
  auto many = make_face_detector("many", *engine, dir, {});
  ASSERT_TRUE(many.is_ok()) << many.status().to_string();
  // The caller's nms_iou does not apply to `many`.
  auto kept = (*many)->detect(frame, {.score_threshold = threshold, .nms_iou = 0.9f, .detector_size = 640});
  ASSERT_TRUE(kept.is_ok()) << kept.status().to_string();
  ASSERT_FALSE(kept->empty());
  for (const Face& f : *kept) {
    const bool found = std::any_of(candidates.begin(), candidates.end(), [&](const Face& c) {
      return c.score == f.score && c.box.x1 == f.box.x1 && c.box.y1 == f.box.y1 && c.box.x2 == f.box.x2 &&
             c.box.y2 == f.box.y2;
    });
    EXPECT_TRUE(found) << "a kept face is no detector's candidate";
  }
  // NMS runs before the clamp to the frame, so only boxes the clamp left alone keep its bound.
  const auto inside = [&](const FaceBox& b) {
    return b.x1 > 0 && b.y1 > 0 && b.x2 < static_cast<float>(frame.width) && b.y2 < static_cast<float>(frame.height);
  };
  int checked = 0;
  for (std::size_t i = 0; i < kept->size(); ++i)
    for (std::size_t j = i + 1; j < kept->size(); ++j) {
      if (!inside((*kept)[i].box) || !inside((*kept)[j].box)) continue;
      EXPECT_LE(iou((*kept)[i].box, (*kept)[j].box), 0.1f + 1e-6f);
      ++checked;
    }
  EXPECT_GT(checked, 0);
  const float best = std::max_element(candidates.begin(), candidates.end(), [](const Face& a, const Face& b) {
                       return a.score < b.score;
                     })->score;
  EXPECT_EQ(kept->front().score, best);
  std::printf("many: %zu candidates from three detectors, %zu kept\n", candidates.size(), kept->size());
}

TEST(FacefusionDetectorReplica, RejectsUnsupportedSizesAndFrames) {
  std::string why;
  const std::string dir = test::detector_replica_dir(&why);
  if (dir.empty()) GTEST_SKIP() << why;
  auto engine = make_engine("ort").value();
  auto yolo = make_face_detector("yoloface", *engine, dir, {});
  ASSERT_TRUE(yolo.is_ok()) << yolo.status().to_string();
  const Image frame = random_image(64, 48, 3);
  EXPECT_FALSE((*yolo)->detect(frame, {.detector_size = 320}).is_ok());
  EXPECT_FALSE((*yolo)->detect(Image(8, 8, 1), {}).is_ok());
  auto scrfd = make_face_detector("scrfd", *engine, dir, {});
  ASSERT_TRUE(scrfd.is_ok()) << scrfd.status().to_string();
  EXPECT_FALSE((*scrfd)->detect(frame, {.detector_size = 100}).is_ok());
  auto unknown = make_face_detector("yolo_face", *engine, dir, {});
  ASSERT_FALSE(unknown.is_ok());
  EXPECT_NE(unknown.status().to_string().find("yoloface, scrfd"), std::string::npos);
}

// --face-detector-margin: top/bottom from the height, left/right from the width, m/100 · 0.5,
// truncated (FaceFusion's prepare_margin); outside 0..100 is refused.
TEST(FacefusionMargin, PixelsFollowFaceFusionsInterpolation) {
  auto px = facefusion_margin_pixels({10, 20, 30, 100}, 200, 100);
  ASSERT_TRUE(px.is_ok()) << px.status().to_string();
  EXPECT_EQ(*px, (std::array<int, 4>{5, 20, 15, 100}));
  EXPECT_EQ(*facefusion_margin_pixels({7, 7, 7, 7}, 33, 33), (std::array<int, 4>{1, 1, 1, 1}));  // 1.155 → 1
  EXPECT_FALSE(facefusion_margin_pixels({0, 101, 0, 0}, 10, 10).is_ok());
  EXPECT_FALSE(facefusion_margin_pixels({-1, 0, 0, 0}, 10, 10).is_ok());
}

// The turned frame is an exact pixel permutation (counter-clockwise), four quarter turns give the
// frame back, and unrotate_point sends a pixel's centre in the turned frame to its centre in the frame.
TEST(FacefusionAngles, RotationIsAnExactPermutationAndPointsMapBack) {
  const Image frame = random_image(7, 4, 3);
  const Image ccw = rotate_frame(frame, 90);
  ASSERT_EQ(ccw.width, 4);
  ASSERT_EQ(ccw.height, 7);
  for (int c = 0; c < 3; ++c) EXPECT_EQ(ccw.at(0, 0, c), frame.at(6, 0, c)) << "the top-right corner turns to the top-left";
  EXPECT_EQ(rotate_frame(rotate_frame(ccw, 90), 180).pixels, frame.pixels);
  EXPECT_EQ(rotate_frame(ccw, 270).pixels, frame.pixels);
  EXPECT_EQ(rotate_frame(frame, 0).pixels, frame.pixels);
  for (int angle : {0, 90, 180, 270}) {
    const Image turned = rotate_frame(frame, angle);
    for (int v = 0; v < turned.height; ++v)
      for (int u = 0; u < turned.width; ++u) {
        const Point2f p = unrotate_point({u + 0.5f, v + 0.5f}, angle, frame.width, frame.height);
        const int x = static_cast<int>(std::floor(p.x)), y = static_cast<int>(std::floor(p.y));
        ASSERT_EQ(p.x, x + 0.5f) << angle;
        ASSERT_EQ(p.y, y + 0.5f) << angle;
        for (int c = 0; c < 3; ++c) ASSERT_EQ(turned.at(u, v, c), frame.at(x, y, c)) << angle << " at " << u << "," << v;
      }
  }
  EXPECT_EQ(facefusion_angles_iou(1, 0.4f), 0.4f);
  EXPECT_EQ(facefusion_angles_iou(2, 0.4f), 0.3f);
  EXPECT_EQ(facefusion_angles_iou(3, 0.4f), 0.2f);
  EXPECT_EQ(facefusion_angles_iou(4, 0.4f), 0.1f);
}

// A frame turned clockwise and detected with angle 90 gives the upright frame's faces, mapped into
// the turned frame: the detector sees the very same pixels. With a margin the faces are those of the
// frame padded by hand, moved back by the margin.
TEST(FacefusionDetectorReplica, AnglesAndMarginMapFacesBackIntoTheFrame) {
  std::string why;
  const std::string dir = test::detector_replica_dir(&why);
  if (dir.empty()) GTEST_SKIP() << why;
  const Image frame = resize(read_image(kMedia + "astronaut.png").value(), 352, 288, Interp::kBilinear);
  auto engine = make_engine("ort").value();
  auto detector = make_face_detector("scrfd", *engine, dir, {}).value();
  auto all = detector->detect(frame, {.score_threshold = 0.f, .nms_iou = 1.f, .detector_size = 320});
  ASSERT_TRUE(all.is_ok() && !all->empty()) << all.status().to_string();
  const float threshold = (*all)[std::min<std::size_t>(9, all->size() - 1)].score - 1e-4f;
  const DetectOptions upright_options{.score_threshold = threshold, .detector_size = 320};
  const std::vector<Face> upright = detector->detect(frame, upright_options).value();
  ASSERT_FALSE(upright.empty());

  const Image clockwise = rotate_frame(frame, 270);
  DetectOptions turned_options = upright_options;
  turned_options.angles = {90};
  const std::vector<Face> turned = detector->detect(clockwise, turned_options).value();
  ASSERT_EQ(turned.size(), upright.size());
  const float h = static_cast<float>(frame.height);
  for (std::size_t i = 0; i < upright.size(); ++i) {
    // Clockwise: (x, y) → (h − y, x).
    const FaceBox& b = upright[i].box;
    EXPECT_FLOAT_EQ(turned[i].score, upright[i].score);
    EXPECT_NEAR(turned[i].box.x1, h - b.y2, 1e-3f);
    EXPECT_NEAR(turned[i].box.x2, h - b.y1, 1e-3f);
    EXPECT_NEAR(turned[i].box.y1, b.x1, 1e-3f);
    EXPECT_NEAR(turned[i].box.y2, b.x2, 1e-3f);
    for (int k = 0; k < 5; ++k) {
      EXPECT_NEAR(turned[i].keypoints[k].x, h - upright[i].keypoints[k].y, 1e-3f);
      EXPECT_NEAR(turned[i].keypoints[k].y, upright[i].keypoints[k].x, 1e-3f);
    }
  }

  DetectOptions margin_options = upright_options;
  margin_options.margin = {10, 0, 0, 20};  // 14 px on top, 35 px on the left
  const std::vector<Face> margined = detector->detect(frame, margin_options).value();
  Image padded(frame.width + 35, frame.height + 14, 3);
  for (int y = 0; y < frame.height; ++y) std::copy_n(frame.row(y), frame.width * 3, &padded.at(35, y + 14));
  std::vector<Face> by_hand = detector->detect(padded, upright_options).value();
  std::vector<Face> expected;
  for (Face& f : by_hand) {
    f.box = {std::clamp(f.box.x1 - 35, 0.f, float(frame.width)), std::clamp(f.box.y1 - 14, 0.f, float(frame.height)),
             std::clamp(f.box.x2 - 35, 0.f, float(frame.width)), std::clamp(f.box.y2 - 14, 0.f, float(frame.height))};
    if (f.box.area() > 0) expected.push_back(f);
  }
  ASSERT_EQ(margined.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_FLOAT_EQ(margined[i].score, expected[i].score);
    EXPECT_NEAR(margined[i].box.x1, expected[i].box.x1, 1e-3f);
    EXPECT_NEAR(margined[i].box.y1, expected[i].box.y1, 1e-3f);
    EXPECT_NEAR(margined[i].box.x2, expected[i].box.x2, 1e-3f);
    EXPECT_NEAR(margined[i].box.y2, expected[i].box.y2, 1e-3f);
  }

  DetectOptions bad = upright_options;
  bad.angles = {45};
  EXPECT_EQ(detector->detect(frame, bad).status().code(), StatusCode::kInvalidInput);
}

// fr_detect has no margin or angles: asking for them is refused, not ignored.
TEST(DetectorOptions, UprightDetectorsRefuseMarginAndAngles) {
  auto engine = make_engine("ort").value();
  auto fr = make_face_detector("fr_detect", *engine, std::string(FSWAP_THIRD_PARTY_DIR) + "/models", {});
  ASSERT_TRUE(fr.is_ok()) << fr.status().to_string();
  const Image frame = random_image(64, 48, 3);
  EXPECT_EQ((*fr)->detect(frame, {.angles = {0, 90}}).status().code(), StatusCode::kUnsupported);
  EXPECT_EQ((*fr)->detect(frame, {.margin = {1, 0, 0, 0}}).status().code(), StatusCode::kUnsupported);
  EXPECT_TRUE((*fr)->detect(frame, {}).is_ok());
  EXPECT_EQ(*parse_detector_size("640x640"), 640);
  EXPECT_EQ(*parse_detector_size("320"), 320);
  for (const char* bad : {"640x480", "100x100", "672x672", "x", "", "640x", "abcxabc"})
    EXPECT_FALSE(parse_detector_size(bad).is_ok()) << bad;
}

}  // namespace
}  // namespace fswap
