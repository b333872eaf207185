// FaceFusion's landmarkers 2dfan4, peppa_wutz and fan_68_5 (face_landmarker.py;
// reference/facefusion.md §2.3): the crop transform and input, the output decoding and scores on
// probes with known formulas (tests/support/make_swapper_probes.py) on both engines, contract
// errors, and the replicas on both engines.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include <unistd.h>

#include <filesystem>
#include <vector>

#include "face/analyser.h"
#include "face/face_templates.h"
#include "face/landmarker_facefusion.h"
#include "face/recognizer.h"
#include "imaging/transform.h"
#include "support/facefusion_reference.h"
#include "support/replicas.h"
#include "video/media.h"

namespace fswap {
namespace {

using test::random_image;

const FaceBox kBox{120.f, 90.f, 260.f, 250.f};  // taller than wide: the height sets the scale

TEST(FaceFusionLandmarker, CropIsWarpFaceByTranslation) {
  const Affine m = facefusion_landmarker_transform(kBox);
  // scale = 195 / max(w, h); translation = (256 − (x1 + x2, y1 + y2) · scale) · 0.5.
  const double scale = 195.0 / 160.0;
  EXPECT_NEAR(m.a, scale, 1e-9);
  EXPECT_NEAR(m.e, scale, 1e-9);
  EXPECT_EQ(m.b, 0.0);
  EXPECT_EQ(m.d, 0.0);
  EXPECT_NEAR(m.c, (256 - 380 * scale) * 0.5, 1e-9);
  EXPECT_NEAR(m.f, (256 - 340 * scale) * 0.5, 1e-9);
  // The box centre lands on the crop centre.
  const Point2f c = m.apply(kBox.centre());
  EXPECT_NEAR(c.x, 128, 1e-3);
  EXPECT_NEAR(c.y, 128, 1e-3);
  const Image crop = random_image(256, 256, 3, 1);
  const Tensor t = facefusion_landmarker_input(crop);
  // FaceFusion: the BGR crop transposed to CHW, / 255.
  EXPECT_LT(test::prepare_crop_error(t, 0, test::to_bgr(crop), {0, 0, 0}, {1, 1, 1}), 1e-6);
}

std::string probe_dir() {
  std::string why;
  const std::string dir = test::swapper_probe_dir(&why);
  if (dir.empty()) ADD_FAILURE() << why;
  return dir;
}

TEST(FaceFusionLandmarker, DecodingAndScoresAreFaceFusionsOnProbes) {
  const std::string dir = probe_dir();
  if (dir.empty()) return;
  const Image frame = random_image(400, 330, 3, 2);
  const Affine m = facefusion_landmarker_transform(kBox);
  const Image crop = warp_affine(frame, m, 256, 256, Border::kConstant);
  double mean = 0;  // of the probe's input, BGR / 255 (the channel order does not change the mean)
  for (std::uint8_t v : crop.pixels) mean += v / 255.0 / crop.pixels.size();
  std::vector<double> out(204);
  for (int i = 0; i < 204; ++i) out[i] = mean * (1 + i / 50.0) + i / 10.0;
  const Affine back = *m.inverse();
  for (const char* engine_name : {"ort", "native"}) {
    auto engine = make_engine(engine_name).value();
    for (const char* name : {"2dfan4", "peppa_wutz"}) {
      SCOPED_TRACE(std::string(engine_name) + " " + name);
      auto landmarker = FaceFusionLandmarker::load(*engine, dir, name, {});
      ASSERT_TRUE(landmarker.is_ok()) << landmarker.status().to_string();
      auto got = (*landmarker)->detect(frame, kBox, 0);
      ASSERT_TRUE(got.is_ok()) << got.status().to_string();
      double worst = 0, third = 0;
      for (int k = 0; k < 68; ++k) {
        const double x = out[3 * k] / 64 * 256, y = out[3 * k + 1] / 64 * 256;  // [:, :2] / 64 · 256
        const double fx = back.a * x + back.b * y + back.c, fy = back.d * x + back.e * y + back.f;
        worst = std::max({worst, std::abs(got->points[k].x - fx), std::abs(got->points[k].y - fy)});
        third += out[3 * k + 2] / 68;
      }
      EXPECT_LT(worst, 2e-3);  // pixels
      // peppa_wutz: interp(mean of the third column, [0, 0.95], [0, 1]); 2dfan4: interp(mean of
      // each point's heatmap maximum 0.5 + k/200, [0, 0.9], [0, 1]).
      const double want = std::string(name) == "peppa_wutz" ? std::clamp(third / 0.95, 0.0, 1.0) : (0.5 + 33.5 / 200) / 0.9;
      EXPECT_NEAR(got->score, want, 1e-5);
    }
    // fan_68_5: the five points into ffhq_512's unit square, point k = input[k % 5] · (1 + k/100), back.
    auto fan = FaceLandmarkEstimator::load(*engine, dir, {});
    ASSERT_TRUE(fan.is_ok()) << fan.status().to_string();
    const std::array<Point2f, 5> lmk5 = {{{150, 160}, {230, 150}, {195, 205}, {160, 250}, {225, 245}}};
    auto estimated = (*fan)->estimate(lmk5);
    ASSERT_TRUE(estimated.is_ok()) << estimated.status().to_string();
    const Affine to_unit = align_to_template(lmk5, kFaceFusionFfhq512, 1.f);
    const Affine from_unit = *to_unit.inverse();
    double worst = 0;
    for (int k = 0; k < 68; ++k) {
      const Point2f q = to_unit.apply(lmk5[k % 5]);
      const double ux = q.x * (1 + k / 100.0), uy = q.y * (1 + k / 100.0);
      const double fx = from_unit.a * ux + from_unit.b * uy + from_unit.c, fy = from_unit.d * ux + from_unit.e * uy + from_unit.f;
      worst = std::max({worst, std::abs((*estimated)[k].x - fx), std::abs((*estimated)[k].y - fy)});
    }
    EXPECT_LT(worst, 1e-2) << engine_name;
    // In the unit square the five points are close to the template itself.
    for (int i = 0; i < 5; ++i) EXPECT_NEAR(to_unit.apply(lmk5[i]).x, kFaceFusionFfhq512[i].x, 0.05);
  }
}

TEST(FaceFusionLandmarker, ContractErrorsNameTheFile) {
  const std::string dir = probe_dir();
  if (dir.empty()) return;
  auto engine = make_engine("ort").value();
  auto missing = FaceFusionLandmarker::load(*engine, "/nonexistent", "peppa_wutz", {});
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().to_string().find("/nonexistent/peppa_wutz.onnx"), std::string::npos);
  EXPECT_FALSE(FaceFusionLandmarker::load(*engine, dir, "3dfan", {}).is_ok());
  EXPECT_EQ(FaceLandmarkEstimator::load(*engine, "/nonexistent", {}).status().code(), StatusCode::kNotFound);
}

namespace fs = std::filesystem;

// A models folder of the embedded default models plus `extra` (linked under their own names).
fs::path models_with(const std::vector<fs::path>& extra) {
  const fs::path models = fs::path(FSWAP_TEST_TMP) / ("landmarker-models-" + std::to_string(::getpid()));
  fs::remove_all(models);
  fs::create_directories(models);
  for (const auto& e : fs::directory_iterator(std::string(FSWAP_THIRD_PARTY_DIR) + "/models"))
    fs::create_symlink(e.path(), models / e.path().filename());
  for (const fs::path& p : extra) fs::create_symlink(p, models / p.filename());
  return models;
}

// --face-landmarker-model peppa_wutz through the analyser: the landmarker's points for each
// detected face, and FaceFusion's 5/68 points from them (its score passes the default 0.5).
TEST(FaceFusionLandmarker, AnalyserUsesTheChosenLandmarker) {
  const std::string dir = probe_dir();
  if (dir.empty()) return;
  const std::filesystem::path models = models_with({fs::path(dir) / "peppa_wutz.onnx"});
  auto engine = make_engine("ort").value();
  AnalyserOptions o;
  o.models_dir = models.string();
  o.landmarker = "peppa_wutz";
  auto analyser = FaceAnalyser::load(*engine, o);
  ASSERT_TRUE(analyser.is_ok()) << analyser.status().to_string();
  const Image astronaut = read_image(std::string(FSWAP_THIRD_PARTY_DIR) + "/media/astronaut.png").value();
  auto faces = (*analyser)->analyse(astronaut, /*embed=*/false);
  ASSERT_TRUE(faces.is_ok() && !faces->empty()) << faces.status().to_string();
  auto peppa = FaceFusionLandmarker::load(*engine, dir, "peppa_wutz", {}).value();
  for (const Face& f : *faces) {
    ASSERT_TRUE(f.has_landmarks);
    const FaceLandmarks68 want = peppa->detect(astronaut, f.box, 0).value();
    ASSERT_GE(want.score, 0.5f);
    for (int k = 0; k < 68; ++k) EXPECT_EQ(f.landmarks68[k].x, want.points[k].x);
    const auto five = facefusion_landmarks5_from_68(want.points);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(f.landmarks5[i].y, five[i].y);
    // convert_to_face_landmark_5: the mouth corners are points 48 and 54 themselves.
    EXPECT_EQ(five[3].x, want.points[48].x);
    EXPECT_NEAR(five[0].x, (want.points[36].x + want.points[37].x + want.points[38].x + want.points[39].x +
                            want.points[40].x + want.points[41].x) / 6, 1e-3);
  }
  fs::remove_all(models);
}

// A landmarker whose outputs are NaN (what a model overflowing fp16 gives) is a failed landmarker:
// score 0 (the analyser's cue for the detector's five points, where it has them), and the
// analyser leaves out a face it cannot align instead of passing NaN points on.
TEST(FaceFusionLandmarker, NotFiniteOutputsScoreZeroAndNoFaceCarriesThem) {
  const std::string dir = probe_dir();
  if (dir.empty()) return;
  auto engine = make_engine("ort").value();
  auto poisoned = FaceFusionLandmarker::load(*engine, dir + "/nan", "2dfan4", {});
  ASSERT_TRUE(poisoned.is_ok()) << poisoned.status().to_string();
  const FaceLandmarks68 got = (*poisoned)->detect(random_image(400, 330, 3, 2), kBox, 0).value();
  EXPECT_TRUE(std::isnan(got.points[0].x));
  EXPECT_EQ(got.score, 0.f);

  // The default detector gives BlazeFace's six keypoints, so nothing to fall back to.
  const fs::path models = models_with({fs::path(dir) / "nan" / "2dfan4.onnx"});
  const Image astronaut = read_image(std::string(FSWAP_THIRD_PARTY_DIR) + "/media/astronaut.png").value();
  for (const char* landmarker : {"fr_landmark", "2dfan4"}) {
    SCOPED_TRACE(landmarker);
    AnalyserOptions o;
    o.models_dir = models.string();
    o.landmarker = landmarker;
    auto analyser = FaceAnalyser::load(*engine, o);
    ASSERT_TRUE(analyser.is_ok()) << analyser.status().to_string();
    auto faces = (*analyser)->analyse(astronaut, /*embed=*/false);
    ASSERT_TRUE(faces.is_ok()) << faces.status().to_string();
    EXPECT_EQ(faces->size(), std::string(landmarker) == "fr_landmark" ? 1u : 0u);
    auto followed = (*analyser)->follow(astronaut, *faces);
    ASSERT_TRUE(followed.is_ok());
    EXPECT_EQ(followed->size(), faces->size());
  }
  fs::remove_all(models);
}

TEST(FaceFusionLandmarkerReplica, AgreeOnBothEngines) {
  std::string why;
  const std::string dir = test::landmarker_replica_dir(&why);
  if (dir.empty()) GTEST_SKIP() << why;
  const Image frame = random_image(400, 330, 3, 3);
  const std::array<Point2f, 5> lmk5 = {{{150, 160}, {230, 150}, {195, 205}, {160, 250}, {225, 245}}};
  std::vector<FaceLandmarks68> fan2d, peppa;
  std::vector<std::array<Point2f, 68>> fan5;
  for (const char* name : {"ort", "native"}) {
    SCOPED_TRACE(name);
    auto engine = make_engine(name).value();
    auto a = FaceFusionLandmarker::load(*engine, dir, "2dfan4", {});
    ASSERT_TRUE(a.is_ok()) << a.status().to_string();
    fan2d.push_back((*a)->detect(frame, kBox, 0).value());
    auto b = FaceFusionLandmarker::load(*engine, dir, "peppa_wutz", {});
    ASSERT_TRUE(b.is_ok()) << b.status().to_string();
    peppa.push_back((*b)->detect(frame, kBox, 0).value());
    auto c = FaceLandmarkEstimator::load(*engine, dir, {});
    ASSERT_TRUE(c.is_ok()) << c.status().to_string();
    fan5.push_back((*c)->estimate(lmk5).value());
  }
  const auto worst = [](const std::array<Point2f, 68>& a, const std::array<Point2f, 68>& b) {
    double w = 0;
    for (int k = 0; k < 68; ++k) w = std::max({w, double(std::abs(a[k].x - b[k].x)), double(std::abs(a[k].y - b[k].y))});
    return w;
  };
  std::printf("landmarker replicas ort vs native: 2dfan4 %.2e px (score %.4f / %.4f), peppa_wutz %.2e px, fan_68_5 %.2e px\n",
              worst(fan2d[0].points, fan2d[1].points), fan2d[0].score, fan2d[1].score, worst(peppa[0].points, peppa[1].points),
              worst(fan5[0], fan5[1]));
  EXPECT_LT(worst(fan2d[0].points, fan2d[1].points), 0.05);
  EXPECT_NEAR(fan2d[0].score, fan2d[1].score, 1e-3);
  EXPECT_LT(worst(peppa[0].points, peppa[1].points), 0.05);
  EXPECT_NEAR(peppa[0].score, peppa[1].score, 1e-3);
  EXPECT_LT(worst(fan5[0], fan5[1]), 0.05);
}

// The native engine loads 2dfan4 to take batches (its Reshape to [1, 68, 4096] keeps each face
// together): the faces of two frames in one run get each face's landmarks of a run of its own.
// ONNX Runtime keeps the model's batch of 1 and runs the faces one at a time.
TEST(FaceFusionLandmarkerReplica, OneBatchedRunGivesEachFaceItsLandmarks) {
  std::string why;
  const std::string dir = test::landmarker_replica_dir(&why);
  if (dir.empty()) GTEST_SKIP() << why;
  const Image a = random_image(400, 330, 3, 3), b = random_image(360, 300, 3, 4);
  const FaceBox other{60.f, 40.f, 220.f, 230.f};
  const std::vector<LandmarkTarget> targets = {{&a, kBox, 0}, {&b, other, 90}, {&a, other, 0}};
  for (const char* name : {"ort", "native"}) {
    SCOPED_TRACE(name);
    auto engine = make_engine(name).value();
    auto landmarker = FaceFusionLandmarker::load(*engine, dir, "2dfan4", {});
    ASSERT_TRUE(landmarker.is_ok()) << landmarker.status().to_string();
    EXPECT_EQ((*landmarker)->takes_batches(), std::string(name) == "native");
    auto together = (*landmarker)->detect(targets);
    ASSERT_TRUE(together.is_ok()) << together.status().to_string();
    ASSERT_EQ(together->size(), targets.size());
    for (std::size_t i = 0; i < targets.size(); ++i) {
      auto alone = (*landmarker)->detect(*targets[i].rgb, targets[i].box, targets[i].angle);
      ASSERT_TRUE(alone.is_ok()) << alone.status().to_string();
      double worst = 0;
      for (int k = 0; k < 68; ++k)
        worst = std::max({worst, double(std::abs((*together)[i].points[k].x - alone->points[k].x)),
                          double(std::abs((*together)[i].points[k].y - alone->points[k].y))});
      EXPECT_LT(worst, 1e-3) << "face " << i;
      EXPECT_NEAR((*together)[i].score, alone->score, 1e-5) << "face " << i;
    }
  }
}

}  // namespace
}  // namespace fswap
