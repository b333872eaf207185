// FaceFusion's face classifier fairface (face_classifier.py; reference/facefusion.md §2.3): the
// crop and input against FaceFusion's formula, the categories, the ids through a probe with a
// known formula on both engines, contract errors, and the replica on both engines, alone and
// through the FaceAnalyser (the selector's filters).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "face/analyser.h"
#include "face/classifier_fairface.h"
#include "face/recognizer.h"
#include "face/recognizer_arcface.h"
#include "imaging/transform.h"
#include "support/facefusion_reference.h"
#include "support/replicas.h"
#include "support/scratch_dir.h"
#include "video/media.h"

namespace fswap {
namespace {

using test::random_image;

const std::array<Point2f, 5> kLandmarks = {{{150, 160}, {230, 150}, {195, 205}, {160, 250}, {225, 245}}};

TEST(Fairface, CategoriesAreFaceFusions) {
  EXPECT_EQ(categorize_face(0, 0, 0).gender, "male");
  EXPECT_EQ(categorize_face(0, 1, 0).gender, "female");
  const char* races[] = {"white", "black", "latino", "asian", "asian", "indian", "arabic", "white"};
  for (int id = 0; id < 8; ++id) EXPECT_EQ(categorize_face(id, 0, 0).race, races[id]) << id;
  const std::pair<int, int> ages[] = {{0, 2}, {3, 9}, {10, 19}, {20, 29}, {30, 39}, {40, 49}, {50, 59}, {60, 69}, {70, 100}};
  for (int id = 0; id < 9; ++id) {
    EXPECT_EQ(categorize_face(0, 0, id).age_first, ages[id].first) << id;
    EXPECT_EQ(categorize_face(0, 0, id).age_last, ages[id].second) << id;
  }
}

TEST(Fairface, CropAndInputAreFaceFusions) {
  const Image frame = random_image(400, 360, 3, 1);
  const Image crop = fairface_crop(frame, kLandmarks);
  ASSERT_EQ(crop.width, 224);
  // The landmarks land on arcface_112_v2 × 224.
  const Affine m = align_to_template(kLandmarks, kFaceFusionArcface112V2, 224.f);
  EXPECT_EQ(crop.pixels, warp_affine(frame, m, 224, 224, Border::kReplicate).pixels);
  // crop[:, :, ::-1] / 255 (RGB), − ImageNet mean, / std, CHW.
  EXPECT_LT(test::prepare_crop_error(fairface_input(crop), 0, crop, {0.485, 0.456, 0.406}, {0.229, 0.224, 0.225}), 1e-5);
}

TEST(Fairface, IdsThroughTheProbeOnBothEngines) {
  std::string why;
  const std::string dir = test::swapper_probe_dir(&why);
  ASSERT_FALSE(dir.empty()) << why;
  const Image frame = random_image(400, 360, 3, 2);
  // The probe: race = argmax(m0, m1, m2, 0 ×4), gender = argmax(m1, m2), age = argmax(m2, m0, m1,
  // 0.1 ×6), m the input's per-channel means.
  const Tensor input = fairface_input(fairface_crop(frame, kLandmarks));
  double m[3] = {0, 0, 0};
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 224 * 224; ++i) m[c] += input.data<float>()[c * 224 * 224 + i] / (224.0 * 224.0);
  const auto argmax = [](std::vector<double> v) { return static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin()); };
  const FaceClasses want = categorize_face(argmax({m[0], m[1], m[2], 0, 0, 0, 0}), argmax({m[1], m[2]}),
                                           argmax({m[2], m[0], m[1], 0.1, 0.1, 0.1, 0.1, 0.1, 0.1}));
  for (const char* name : {"ort", "native"}) {
    SCOPED_TRACE(name);
    auto engine = make_engine(name).value();
    auto fairface = FairfaceClassifier::load(*engine, dir, {});
    ASSERT_TRUE(fairface.is_ok()) << fairface.status().to_string();
    auto got = (*fairface)->classify(frame, kLandmarks);
    ASSERT_TRUE(got.is_ok()) << got.status().to_string();
    EXPECT_EQ(got->race, want.race);
    EXPECT_EQ(got->gender, want.gender);
    EXPECT_EQ(got->age_first, want.age_first);
  }
  auto engine = make_engine("ort").value();
  auto missing = FairfaceClassifier::load(*engine, "/nonexistent", {});
  ASSERT_FALSE(missing.is_ok());
  EXPECT_NE(missing.status().to_string().find("/nonexistent/fairface.onnx: no such file"), std::string::npos);
}

TEST(FairfaceReplica, AgreesOnBothEngines) {
  std::string why;
  const std::string dir = test::generated_replicas("facefusion-classifier-replicas-v1", "fairface", {}, &why);
  if (dir.empty()) GTEST_SKIP() << why;
  std::vector<FaceClasses> got;
  for (const char* name : {"ort", "native"}) {
    auto engine = make_engine(name).value();
    auto fairface = FairfaceClassifier::load(*engine, dir, {});
    ASSERT_TRUE(fairface.is_ok()) << fairface.status().to_string();
    for (unsigned seed = 3; seed < 6; ++seed) got.push_back((*fairface)->classify(random_image(400, 360, 3, seed), kLandmarks).value());
  }
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(got[i].race, got[i + 3].race) << i;
    EXPECT_EQ(got[i].gender, got[i + 3].gender) << i;
    EXPECT_EQ(got[i].age_first, got[i + 3].age_first) << i;
  }
}

// The analysis models of the repository plus the fairface replica, in one folder.
std::string analysis_models_with_fairface(const std::string& replicas) {
  namespace fs = std::filesystem;
  const fs::path dir = test::scratch_path("classifier", "models");
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(std::string(FSWAP_THIRD_PARTY_DIR) + "/models"))
    fs::create_symlink(e.path(), dir / e.path().filename());
  fs::create_symlink(fs::path(replicas) / "fairface.onnx", dir / "fairface.onnx");
  return dir.string();
}

// The analyser with options.classify: fairface on every detected face of a photo gives the same
// classes on both engines; without fairface.onnx load fails naming it; without classify it is
// not needed.
TEST(FairfaceReplica, ThroughTheAnalyserOnBothEngines) {
  std::string why;
  const std::string replicas = test::generated_replicas("facefusion-classifier-replicas-v1", "fairface", {}, &why);
  if (replicas.empty()) GTEST_SKIP() << why;
  const std::string models = analysis_models_with_fairface(replicas);
  const Image photo = read_image(std::string(FSWAP_THIRD_PARTY_DIR) + "/media/messi5.jpg").value();
  std::vector<std::vector<FaceClasses>> per_engine;
  for (const char* name : {"ort", "native"}) {
    SCOPED_TRACE(name);
    auto engine = make_engine(name).value();
    AnalyserOptions options;
    options.models_dir = models;
    options.classify = true;
    auto analyser = FaceAnalyser::load(*engine, options);
    ASSERT_TRUE(analyser.is_ok()) << analyser.status().to_string();
    auto faces = (*analyser)->analyse(photo, /*embed=*/false);
    ASSERT_TRUE(faces.is_ok()) << faces.status().to_string();
    ASSERT_FALSE(faces->empty());
    TimeLedger ledger;
    per_engine.emplace_back();
    for (const Face& f : *faces) {
      auto c = (*analyser)->classify(photo, f, &ledger);
      ASSERT_TRUE(c.is_ok()) << c.status().to_string();
      // The same as the classifier alone on the face's five points.
      auto alone = FairfaceClassifier::load(*engine, models, {}).value()->classify(photo, f.landmarks5).value();
      EXPECT_EQ(c->race, alone.race);
      EXPECT_EQ(c->gender, alone.gender);
      EXPECT_EQ(c->age_first, alone.age_first);
      per_engine.back().push_back(*c);
    }
    EXPECT_FALSE(ledger.entries().empty());
  }
  ASSERT_EQ(per_engine[0].size(), per_engine[1].size());
  for (std::size_t i = 0; i < per_engine[0].size(); ++i) {
    EXPECT_EQ(per_engine[0][i].race, per_engine[1][i].race) << i;
    EXPECT_EQ(per_engine[0][i].gender, per_engine[1][i].gender) << i;
    EXPECT_EQ(per_engine[0][i].age_first, per_engine[1][i].age_first) << i;
    EXPECT_EQ(per_engine[0][i].age_last, per_engine[1][i].age_last) << i;
  }

  auto engine = make_engine("ort").value();
  AnalyserOptions without;
  without.models_dir = std::string(FSWAP_THIRD_PARTY_DIR) + "/models";  // no fairface.onnx there
  EXPECT_TRUE(FaceAnalyser::load(*engine, without).is_ok()) << "no classifier is loaded unless asked for";
  without.classify = true;
  auto missing = FaceAnalyser::load(*engine, without);
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("fairface.onnx: no such file"), std::string::npos) << missing.status().message();
}

}  // namespace
}  // namespace fswap
