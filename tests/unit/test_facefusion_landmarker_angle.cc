// FaceFusion's face angle and contrast step in the 2dfan4 / peppa_wutz landmarkers
// (face_landmarker.py::detect_with_2dfan4, reference/facefusion.md §2.3 step 2): the angle from
// the 68/5 points, the crop turned by getRotationMatrix2D about (128, 128), the points mapped back
// through the turn (a probe that finds a bright spot must find it in the frame at every angle, and
// follow it when the frame turns), and CLAHE on L for a dark crop only.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

#include "face/analyser.h"
#include "face/detector_facefusion.h"
#include "face/landmarker_facefusion.h"
#include "imaging/filter.h"
#include "imaging/transform.h"
#include "support/replicas.h"

#ifdef FSWAP_HAVE_OPENCV
#include <opencv2/imgproc.hpp>
#endif

namespace fswap {
namespace {

std::string spot_probe_dir(std::string* why) {
  return test::generated_replicas("facefusion-landmarker-angle-probe-v1", "",
                                  {"/usr/bin/python3 " + std::string(FSWAP_SOURCE_DIR) +
                                   "/tests/support/make_landmarker_angle_probe.py {dir}"},
                                  why);
}

Image random_image(int w, int h, int lo, int hi, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(lo, hi);
  Image img(w, h, 3);
  for (auto& v : img.pixels) v = static_cast<std::uint8_t>(d(rng));
  return img;
}

std::array<Point2f, 68> jaw(Point2f from, Point2f to) {
  std::array<Point2f, 68> p{};
  p[0] = from;
  p[16] = to;
  return p;
}

TEST(FacefusionFaceAngle, JawDirectionRoundedToAQuarterTurn) {
  const Point2f o{100, 100};
  EXPECT_EQ(facefusion_face_angle(jaw(o, {150, 100})), 0);
  EXPECT_EQ(facefusion_face_angle(jaw(o, {100, 150})), 90);  // jaw pointing down: turned clockwise
  EXPECT_EQ(facefusion_face_angle(jaw(o, {50, 100})), 180);
  EXPECT_EQ(facefusion_face_angle(jaw(o, {100, 50})), 270);
  EXPECT_EQ(facefusion_face_angle(jaw(o, {150, 145})), 0);    // 42°
  EXPECT_EQ(facefusion_face_angle(jaw(o, {150, 155})), 90);   // 47.7°
  EXPECT_EQ(facefusion_face_angle(jaw(o, {150, 45})), 270);   // 312.3°
  EXPECT_EQ(facefusion_face_angle(jaw(o, {150, 55})), 0);     // 318°: nearer 360 than 270
  EXPECT_EQ(facefusion_face_angle(jaw(o, {55, 150})), 90);    // 132°
  EXPECT_EQ(facefusion_face_angle(jaw(o, {45, 150})), 180);   // 137.7°
}

// getRotationMatrix2D((128, 128), angle, 1) for quarter turns, written out, applied to a pixel
// centre (integer coordinates) of the crop: where it lands in the turned crop.
Point2f turned(Point2f p, int angle) {
  switch (angle) {
    case 90: return {p.y, 256 - p.x};
    case 180: return {256 - p.x, 256 - p.y};
    case 270: return {256 - p.y, p.x};
    default: return p;
  }
}

TEST(FacefusionLandmarkerCrop, TurnedCropIsTheCropTurnedAbout128) {
  const Image frame = random_image(300, 260, 60, 255, 1);  // bright: no contrast step
  const FaceBox box{40, 30, 250, 220};
  const Image upright = facefusion_landmarker_crop(frame, box, 0).value();
  EXPECT_EQ(upright.pixels, warp_affine(frame, facefusion_landmarker_transform(box), 256, 256, Border::kConstant).pixels);
  for (int angle : {90, 180, 270}) {
    SCOPED_TRACE(angle);
    const Image crop = facefusion_landmarker_crop(frame, box, angle).value();
    ASSERT_EQ(crop.width, 256);
    int bad = 0, zeros = 0;
    for (int y = 0; y < 256; ++y)
      for (int x = 0; x < 256; ++x) {
        const Point2f at = turned({float(x), float(y)}, angle);
        const int u = static_cast<int>(at.x), v = static_cast<int>(at.y);
        for (int c = 0; c < 3; ++c) {
          if (u > 255 || v > 255) continue;  // off the turned crop
          bad += crop.at(u, v, c) != upright.at(x, y, c);
        }
      }
    // The row or column the turn about (128, 128) leaves uncovered is zero.
    for (int i = 0; i < 256; ++i) {
      const int u = angle == 270 ? 0 : i, v = angle == 90 ? 0 : angle == 180 ? 0 : i;
      zeros += crop.at(u, v, 0) == 0 && crop.at(u, v, 1) == 0 && crop.at(u, v, 2) == 0;
    }
    EXPECT_EQ(bad, 0);
    EXPECT_EQ(zeros, 256);
  }
  EXPECT_EQ(facefusion_landmarker_crop(frame, box, 45).status().code(), StatusCode::kInvalidInput);
}

// A grey frame with a white spot: the probe's points land on the spot in the frame whatever the
// angle (a turn or its inverse the wrong way would throw them across the crop), and follow the
// spot when the frame itself is turned.
TEST(FacefusionLandmarkerAngle, PointsMapBackThroughTheTurn) {
  std::string why;
  const std::string dir = spot_probe_dir(&why);
  if (dir.empty()) GTEST_SKIP() << why;
  Image frame(320, 240, 3);
  std::fill(frame.pixels.begin(), frame.pixels.end(), std::uint8_t{110});
  const Point2f spot{205, 92};  // pixel centre, off the crop's centre
  for (int y = 0; y < frame.height; ++y)
    for (int x = 0; x < frame.width; ++x)
      if (std::hypot(x - spot.x, y - spot.y) <= 6)
        for (int c = 0; c < 3; ++c) frame.at(x, y, c) = 255;
  const FaceBox box{100, 40, 280, 220};
  for (const char* engine_name : {"ort", "native"}) {
    SCOPED_TRACE(engine_name);
    auto engine = make_engine(engine_name).value();
    auto landmarker = FaceFusionLandmarker::load(*engine, dir, "2dfan4", {});
    ASSERT_TRUE(landmarker.is_ok()) << landmarker.status().to_string();
    for (int angle : {0, 90, 180, 270}) {
      SCOPED_TRACE(angle);
      auto found = (*landmarker)->detect(frame, box, angle);
      ASSERT_TRUE(found.is_ok()) << found.status().to_string();
      EXPECT_NEAR(found->points[0].x, spot.x, 2.5f);
      EXPECT_NEAR(found->points[0].y, spot.y, 2.5f);
      EXPECT_NEAR(found->score, 1.f, 1e-3f);
    }
    // The frame turned a quarter counter-clockwise: the spot's centre moves to (y, w − 1 − x) and
    // the box with it; the face in it is turned, so its angle is 270.
    const Image ccw = rotate_frame(frame, 90);
    const Point2f spot_ccw{spot.y, frame.width - 1 - spot.x};
    const FaceBox box_ccw{box.y1, frame.width - box.x2, box.y2, frame.width - box.x1};
    auto followed = (*landmarker)->detect(ccw, box_ccw, 270);
    ASSERT_TRUE(followed.is_ok()) << followed.status().to_string();
    EXPECT_NEAR(followed->points[0].x, spot_ccw.x, 2.5f);
    EXPECT_NEAR(followed->points[0].y, spot_ccw.y, 2.5f);
    std::printf("%s: spot (%.0f, %.0f) found at (%.2f, %.2f) in the upright frame; turned: (%.0f, %.0f) found at (%.2f, %.2f)\n",
                engine_name, spot.x, spot.y, (*landmarker)->detect(frame, box, 0)->points[0].x,
                (*landmarker)->detect(frame, box, 0)->points[0].y, spot_ccw.x, spot_ccw.y, followed->points[0].x,
                followed->points[0].y);
  }
}

// The analyser turns each face's crop by the angle of fan_68_5's 68/5 points from the detector's
// five: its 68 points are the landmarker's at that angle (yunet replica: random keypoints, so
// several angles occur; fan_68_5 probe: point k = the k % 5-th unit-square point · (1 + k/100)).
TEST(FacefusionLandmarkerAngle, AnalyserTurnsEachCropByItsFacesAngle) {
  std::string why;
  const std::string spot = spot_probe_dir(&why);
  if (spot.empty()) GTEST_SKIP() << why;
  const std::string probes = test::swapper_probe_dir(&why);
  if (probes.empty()) GTEST_SKIP() << why;
  const std::string yunet = test::generated_replicas("facefusion-yunet-replica-v1", "yunet_2023_mar", {}, &why);
  if (yunet.empty()) GTEST_SKIP() << why;
  namespace fs = std::filesystem;
  const fs::path models = fs::path(FSWAP_TEST_TMP) / ("landmarker-angle-models-" + std::to_string(::getpid()));
  fs::remove_all(models);
  fs::create_directories(models);
  for (const auto& e : fs::directory_iterator(std::string(FSWAP_THIRD_PARTY_DIR) + "/models"))
    fs::create_symlink(e.path(), models / e.path().filename());
  fs::create_symlink(fs::path(yunet) / "yunet_2023_mar.onnx", models / "yunet_2023_mar.onnx");
  fs::create_symlink(fs::path(spot) / "2dfan4.onnx", models / "2dfan4.onnx");
  fs::create_symlink(fs::path(probes) / "fan_68_5.onnx", models / "fan_68_5.onnx");
  auto engine = make_engine("ort").value();
  AnalyserOptions o;
  o.models_dir = models.string();
  o.detector = "yunet";
  o.landmarker = "2dfan4";
  o.landmarker_score = 0.f;  // always the landmarker's points
  o.detect.score_threshold = 0.3f;
  auto analyser = FaceAnalyser::load(*engine, o);
  ASSERT_TRUE(analyser.is_ok()) << analyser.status().to_string();
  const Image frame = random_image(480, 360, 0, 255, 5);
  auto faces = (*analyser)->analyse(frame, /*embed=*/false);
  ASSERT_TRUE(faces.is_ok()) << faces.status().to_string();
  ASSERT_FALSE(faces->empty());
  auto fan = FaceLandmarkEstimator::load(*engine, models.string(), {}).value();
  auto landmarker = FaceFusionLandmarker::load(*engine, models.string(), "2dfan4", {}).value();
  std::array<int, 4> angles{};
  for (const Face& f : *faces) {
    ASSERT_EQ(f.keypoints.size(), 5u);
    std::array<Point2f, 5> five;
    std::copy(f.keypoints.begin(), f.keypoints.end(), five.begin());
    const int angle = facefusion_face_angle(fan->estimate(five).value());
    ++angles[angle / 90];
    const FaceLandmarks68 want = landmarker->detect(frame, f.box, angle).value();
    for (int k = 0; k < 68; k += 17) {
      EXPECT_EQ(f.landmarks68[k].x, want.points[k].x) << "angle " << angle;
      EXPECT_EQ(f.landmarks68[k].y, want.points[k].y) << "angle " << angle;
    }
  }
  std::printf("%zu faces; angles 0/90/180/270: %d/%d/%d/%d\n", faces->size(), angles[0], angles[1], angles[2],
              angles[3]);
  EXPECT_LT(angles[0], static_cast<int>(faces->size())) << "some face is turned";
  fs::remove_all(models);
}

double mean(const Image& img) {
  double m = 0;
  for (auto v : img.pixels) m += v;
  return m / static_cast<double>(img.pixels.size());
}

// conditional_optimize_contrast: a bright crop passes unchanged; a dark one (mean 8-bit L < 30)
// gets CLAHE on L, which brightens it; hue is kept (a and b unchanged up to rounding).
TEST(FacefusionLandmarkerContrast, OnlyADarkCropGetsClahe) {
  const Image bright = random_image(256, 256, 40, 200, 2);
  EXPECT_EQ(facefusion_optimize_contrast(bright).pixels, bright.pixels);
  const Image dark = random_image(256, 256, 0, 25, 3);
  const Image lifted = facefusion_optimize_contrast(dark);
  ASSERT_EQ(lifted.width, 256);
  EXPECT_GT(mean(lifted), mean(dark) + 10) << "CLAHE raised the dark crop";
  // Its L is what CLAHE on the 8-bit L gives (the Lab of the channels in BGR order, as FaceFusion).
  Image bgr_dark = dark, bgr_lifted = lifted;
  for (Image* img : {&bgr_dark, &bgr_lifted})
    for (std::size_t i = 0; i < img->pixels.size(); i += 3) std::swap(img->pixels[i], img->pixels[i + 2]);
  const ImageF lab_dark = rgb_to_lab(bgr_dark), lab_lifted = rgb_to_lab(bgr_lifted);
  Image light(256, 256, 1);
  for (std::size_t i = 0; i < light.pixels.size(); ++i)
    light.pixels[i] = static_cast<std::uint8_t>(std::lround(lab_dark.pixels[3 * i] * 2.55));
  EXPECT_LT(mean(light), 30.0);
  const Image even = clahe(light, 2.0, 8, 8);
  double worst_l = 0;
  for (std::size_t i = 0; i < even.pixels.size(); ++i)
    worst_l = std::max(worst_l, std::fabs(lab_lifted.pixels[3 * i] * 2.55 - even.pixels[i]));
  std::printf("dark crop: mean %.1f → %.1f; L off CLAHE's by at most %.2f levels (RGB rounding)\n", mean(dark),
              mean(lifted), worst_l);
  EXPECT_LT(worst_l, 4.0);
#ifdef FSWAP_HAVE_OPENCV
  // FaceFusion's own steps with OpenCV on its BGR array: cvtColor(RGB2Lab), CLAHE(2) on L, back.
  cv::Mat m(256, 256, CV_8UC3, const_cast<std::uint8_t*>(bgr_dark.pixels.data())), lab;
  cv::cvtColor(m, lab, cv::COLOR_RGB2Lab);
  std::vector<cv::Mat> planes;
  cv::split(lab, planes);
  EXPECT_LT(cv::mean(planes[0])[0], 30.0);
  int light_differs = 0;
  for (int y = 0; y < 256; ++y)
    for (int x = 0; x < 256; ++x) light_differs += planes[0].at<std::uint8_t>(y, x) != light.at(x, y);
  cv::createCLAHE(2.0)->apply(planes[0], planes[0]);
  cv::merge(planes, lab);
  cv::Mat back;
  cv::cvtColor(lab, back, cv::COLOR_Lab2RGB);
  int worst = 0;
  double sum = 0;
  for (int y = 0; y < 256; ++y)
    for (int x = 0; x < 256; ++x)
      for (int c = 0; c < 3; ++c) {
        const int e = std::abs(back.at<cv::Vec3b>(y, x)[c] - bgr_lifted.at(x, y, c));
        worst = std::max(worst, e);
        sum += e;
      }
  std::printf("dark crop vs OpenCV's uint8 Lab + CLAHE: 8-bit L differs on %d of 65536 pixels; result: worst %d "
              "levels, mean %.3f\n",
              light_differs, worst, sum / (256.0 * 256 * 3));
  EXPECT_LT(sum / (256.0 * 256 * 3), 3.0);
#endif
}

// Through the landmarker: on a dark frame the probe's points follow the mean of the contrast-
// optimised crop, not of the raw one (swapper probe 2dfan4: points = mean(input)·(1 + i/50) + i/10).
TEST(FacefusionLandmarkerContrast, DarkFrameReachesTheModelWithClahe) {
  std::string why;
  const std::string dir = test::swapper_probe_dir(&why);
  if (dir.empty()) GTEST_SKIP() << why;
  auto engine = make_engine("ort").value();
  auto landmarker = FaceFusionLandmarker::load(*engine, dir, "2dfan4", {}).value();
  const Image dark = random_image(300, 300, 0, 25, 4);
  const FaceBox box{20, 20, 280, 280};
  const Image raw = warp_affine(dark, facefusion_landmarker_transform(box), 256, 256, Border::kConstant);
  const Image fed = facefusion_landmarker_crop(dark, box, 0).value();
  ASSERT_GT(mean(fed), mean(raw) + 10);
  const auto point0_x = [&](const Image& crop) {
    const double m = mean(crop) / 255.0;  // the input tensor's mean (BGR/255, all channels)
    return facefusion_landmarker_transform(box).inverse()->apply({float(m / 64 * 256), 0.f}).x;
  };
  auto found = landmarker->detect(dark, box, 0);
  ASSERT_TRUE(found.is_ok()) << found.status().to_string();
  EXPECT_NEAR(found->points[0].x, point0_x(fed), 1e-3);
  EXPECT_GT(std::fabs(found->points[0].x - point0_x(raw)), 0.1);
}

}  // namespace
}  // namespace fswap
