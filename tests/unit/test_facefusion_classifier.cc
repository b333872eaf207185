// FaceFusion's face classifier fairface (face_classifier.py; reference/facefusion.md §2.3): the
// crop and input against FaceFusion's formula, the categories, the ids through a probe with a
// known formula on both engines, contract errors, and the replica on both engines.
#include <gtest/gtest.h>

#include <cmath>

#include "face/classifier_fairface.h"
#include "face/recognizer.h"
#include "face/recognizer_arcface.h"
#include "imaging/transform.h"
#include "support/facefusion_reference.h"
#include "support/replicas.h"

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

}  // namespace
}  // namespace fswap
