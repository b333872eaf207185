// FaceFusion's face_enhancer (reference/facefusion.md §1.2, §2.6): pre- and post-processing
// against FaceFusion's formulas recomputed here in its own BGR terms, the blend, the `weight`
// input (fed to codeformer-like models only), the model contract, and the gfpgan_1.4 replica on
// both CPU engines. Tiny probe models (tests/support/make_enhancer_probes.py) stand in where the
// check is about what goes in and out, not about the network.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include "face/analyser.h"
#include "face/enhancer.h"
#include "face/face_masker.h"
#include "face/paste_back.h"
#include "face/face_templates.h"
#include "support/replicas.h"
#include "video/media.h"
#include "support/facefusion_reference.h"

namespace fswap {
namespace {

using test::random_image;
using test::to_bgr;

const std::string kMedia = std::string(FSWAP_THIRD_PARTY_DIR) + "/media/";
const std::string kModels = std::string(FSWAP_THIRD_PARTY_DIR) + "/models";



// numpy's round on float32: half to even.
float round_half_even(float v) {
  const float f = std::floor(v), r = v - f;
  if (r > 0.5f) return f + 1;
  if (r < 0.5f) return f;
  return std::fmod(f, 2.f) == 0 ? f : f + 1;
}

TEST(FaceEnhancerModels, FaceFusionsChoicesTemplatesAndSizes) {
  EXPECT_EQ(face_enhancer_model_names().size(), 9u);
  for (const char* name : {"gfpgan_1.2", "gfpgan_1.3", "gfpgan_1.4", "codeformer", "restoreformer_plus_plus", "gpen_bfr_512"}) {
    auto info = face_enhancer_model_info(name);
    ASSERT_TRUE(info.is_ok()) << name;
    EXPECT_EQ(info->size, 512) << name;
    EXPECT_EQ(info->face_template, &kFaceFusionFfhq512) << name;
  }
  EXPECT_EQ(face_enhancer_model_info("gpen_bfr_256")->face_template, &kFaceFusionArcface128);
  EXPECT_EQ(face_enhancer_model_info("gpen_bfr_256")->size, 256);
  EXPECT_EQ(face_enhancer_model_info("gpen_bfr_1024")->size, 1024);
  EXPECT_EQ(face_enhancer_model_info("gpen_bfr_2048")->size, 2048);
  EXPECT_FALSE(face_enhancer_model_info("gfpgan_9").is_ok());
  // ffhq_512 as FaceFusion's face_helper lists it.
  EXPECT_FLOAT_EQ(kFaceFusionFfhq512[0].x, 0.37691676f);
  EXPECT_FLOAT_EQ(kFaceFusionFfhq512[4].y, 0.72490465f);
}

TEST(FaceEnhancerProcessing, CropMapsTheLandmarksOntoTheModelsTemplate) {
  const Image frame = random_image(700, 600, 3, 5);
  for (const char* name : {"gfpgan_1.4", "gpen_bfr_256"}) {
    SCOPED_TRACE(name);
    const FaceEnhancerModelInfo info = face_enhancer_model_info(name).value();
    const float s = static_cast<float>(info.size);
    const Affine place{0.8 * std::cos(0.2), -0.8 * std::sin(0.2), 120, 0.8 * std::sin(0.2), 0.8 * std::cos(0.2), 40};
    std::array<Point2f, 5> lmk;
    for (int i = 0; i < 5; ++i) lmk[i] = place.apply({(*info.face_template)[i].x * s, (*info.face_template)[i].y * s});
    Affine m;
    const Image crop = face_enhancer_crop(frame, lmk, info, &m);
    ASSERT_EQ(crop.width, info.size);
    ASSERT_EQ(crop.height, info.size);
    for (int i = 0; i < 5; ++i) {
      const Point2f p = m.apply(lmk[i]);
      EXPECT_NEAR(p.x, (*info.face_template)[i].x * s, 1e-2);
      EXPECT_NEAR(p.y, (*info.face_template)[i].y * s, 1e-2);
    }
  }
}

TEST(FaceEnhancerProcessing, InputTensorIsFaceFusionsPrepareCropFrame) {
  const Image rgb = random_image(64, 48, 3, 1);
  const Tensor t = face_enhancer_input_tensor(rgb);
  ASSERT_EQ(t.shape(), (Shape{1, 3, 48, 64}));
  // FaceFusion: crop[:, :, ::-1] / 255.0, (x − 0.5) / 0.5, transpose(2, 0, 1).
  EXPECT_LT(test::prepare_crop_error(t, rgb, 0.5, 0.5), 1e-4);
}

TEST(FaceEnhancerProcessing, OutputCropIsFaceFusionsNormalizeCropFrame) {
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> d(-1.4f, 1.4f);
  Tensor out = Tensor::zeros(DType::kFloat32, {1, 3, 40, 56});
  for (std::int64_t i = 0; i < out.elements(); ++i) out.data<float>()[i] = d(rng);
  out.data<float>()[0] = -1.f, out.data<float>()[1] = 1.f, out.data<float>()[2] = 0.f;
  const ImageF crop = face_enhancer_output_to_crop(out);
  ASSERT_EQ(crop.width, 56);
  ASSERT_EQ(crop.height, 40);
  const float* v = out.data<float>();
  // FaceFusion: clip(−1, 1); (x + 1) / 2; transpose(1, 2, 0); (x · 255).round(); uint8;
  // [:, :, ::-1] (BGR). In float32, as numpy keeps float32 arrays. Our crop is RGB.
  double worst = 0;
  for (int y = 0; y < 40; ++y)
    for (int x = 0; x < 56; ++x)
      for (int ff = 0; ff < 3; ++ff) {
        const int model_channel = 2 - ff;
        const float clipped = std::min(std::max(v[(model_channel * 40 + y) * 56 + x], -1.f), 1.f);
        const float want = round_half_even(((clipped + 1.f) / 2.f) * 255.f);
        worst = std::max(worst, double(std::abs(crop.at(x, y, 2 - ff) - want)));
      }
  EXPECT_LT(worst, 1e-4);
  EXPECT_EQ(crop.at(0, 0, 0), 0.f);
  EXPECT_EQ(crop.at(1, 0, 0), 255.f);
  EXPECT_EQ(crop.at(2, 0, 0), 128.f);  // 127.5 rounds half to even
}

// Ties round to even, as cv2.addWeighted does: 50% of 1 and 2 is 1.5 → 2, of 2 and 3 is 2.5 → 2,
// of 254 and 255 is 254.5 → 254; and 255 stays 255.
TEST(FaceEnhancerProcessing, BlendRoundsTiesToEven) {
  Image frame(4, 1, 3), pasted(4, 1, 3);
  const int from[4] = {1, 2, 254, 255}, to[4] = {2, 3, 255, 255}, want[4] = {2, 2, 254, 255};
  for (int x = 0; x < 4; ++x)
    for (int c = 0; c < 3; ++c) {
      frame.at(x, 0, c) = static_cast<std::uint8_t>(from[x]);
      pasted.at(x, 0, c) = static_cast<std::uint8_t>(to[x]);
    }
  face_enhancer_blend(frame, pasted, 50.f, Rect{0, 0, 4, 1});
  for (int x = 0; x < 4; ++x)
    for (int c = 0; c < 3; ++c) EXPECT_EQ(frame.at(x, 0, c), want[x]) << x;
}

TEST(FaceEnhancerProcessing, BlendIsAddWeightedWithBlendOver100) {
  const Image frame = random_image(50, 40, 3, 3), pasted = random_image(50, 40, 3, 4);
  const Rect region{5, 6, 30, 20};
  for (float blend : {0.f, 35.f, 80.f, 100.f}) {
    SCOPED_TRACE(blend);
    Image out = frame;
    face_enhancer_blend(out, pasted, blend, region);
    // FaceFusion: b = 1 − blend/100; cv2.addWeighted(frame, b, pasted, 1 − b, 0) on uint8.
    const double b = 1 - blend / 100.0;
    int worst = 0;
    for (int y = 0; y < 40; ++y)
      for (int x = 0; x < 50; ++x)
        for (int c = 0; c < 3; ++c) {
          const bool inside = x >= 5 && x < 35 && y >= 6 && y < 26;
          const int want =
              inside ? int(std::lround(frame.at(x, y, c) * b + pasted.at(x, y, c) * (1 - b))) : frame.at(x, y, c);
          worst = std::max(worst, std::abs(int(out.at(x, y, c)) - want));
        }
    // lround rounds ties away from zero, OpenCV's cvRound to even: at most 1 apart, at ties only.
    EXPECT_LE(worst, 1);
    if (blend == 0.f) {
      EXPECT_EQ(out.pixels, frame.pixels);
    }
    if (blend == 100.f) {
      Image want = frame;
      for (int y = 6; y < 26; ++y)
        for (int x = 5; x < 35; ++x)
          for (int c = 0; c < 3; ++c) want.at(x, y, c) = pasted.at(x, y, c);
      EXPECT_EQ(out.pixels, want.pixels);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Models: probes and the gfpgan_1.4 replica.

class FaceEnhancerModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    dir_ = test::enhancer_replica_dir(&why);
    if (dir_.empty()) GTEST_SKIP() << why;
  }
  std::string dir_;
};

TEST_F(FaceEnhancerModelTest, WeightIsFedOnlyToModelsWithAWeightInput) {
  const FaceEnhancerModelInfo codeformer = face_enhancer_model_info("codeformer").value();
  const Image crop = random_image(512, 512, 3, 7);
  for (const char* engine_name : {"ort", "native"}) {
    SCOPED_TRACE(engine_name);
    auto engine = make_engine(engine_name).value();
    auto probe = FaceEnhancerModel::load_file(*engine, dir_ + "/weight_probe_512.onnx", codeformer, {});
    ASSERT_TRUE(probe.is_ok()) << probe.status().to_string();
    EXPECT_TRUE((*probe)->has_weight_input());
    // output = input · weight: the crop comes back as round(((x·w + 1)/2)·255).
    for (float w : {0.25f, 0.9f}) {
      auto out = (*probe)->run(crop, w);
      ASSERT_TRUE(out.is_ok()) << out.status().to_string();
      double worst = 0;
      for (int y = 0; y < 512; y += 7)
        for (int x = 0; x < 512; x += 5)
          for (int c = 0; c < 3; ++c) {
            const double in = (crop.at(x, y, c) / 255.0 - 0.5) / 0.5;
            const double want = ((in * w + 1) / 2) * 255;
            worst = std::max(worst, std::abs(out->at(x, y, c) - want));
          }
      EXPECT_LE(worst, 0.5 + 1e-3) << "weight " << w;
    }
    // A model without `weight` (gfpgan's contract) gets the image alone; the engine would refuse
    // an extra input.
    auto identity = FaceEnhancerModel::load_file(*engine, dir_ + "/identity_512.onnx",
                                                 face_enhancer_model_info("gfpgan_1.4").value(), {});
    ASSERT_TRUE(identity.is_ok()) << identity.status().to_string();
    EXPECT_FALSE((*identity)->has_weight_input());
    auto same = (*identity)->run(crop, 0.5f);
    ASSERT_TRUE(same.is_ok()) << same.status().to_string();
    double worst = 0;
    for (std::size_t i = 0; i < crop.pixels.size(); ++i)
      worst = std::max(worst, double(std::abs(same->pixels[i] - crop.pixels[i])));
    EXPECT_EQ(worst, 0.0) << "normalise then de-normalise must give the crop back";
  }
}

TEST_F(FaceEnhancerModelTest, ContractErrorsNameTheFile) {
  auto engine = make_engine("ort").value();
  const FaceEnhancerModelInfo gfpgan = face_enhancer_model_info("gfpgan_1.4").value();
  auto wrong = FaceEnhancerModel::load_file(*engine, kModels + "/fr_detect.onnx", gfpgan, {});
  ASSERT_FALSE(wrong.is_ok());
  EXPECT_EQ(wrong.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(wrong.status().message().find(kModels + "/fr_detect.onnx"), std::string::npos) << wrong.status().to_string();
  EXPECT_NE(wrong.status().message().find("not a gfpgan_1.4 face enhancer model"), std::string::npos);
  // The right names at the wrong size: a 512 model taken for gpen_bfr_256.
  auto size = FaceEnhancerModel::load_file(*engine, dir_ + "/identity_512.onnx",
                                           face_enhancer_model_info("gpen_bfr_256").value(), {});
  ASSERT_FALSE(size.is_ok());
  EXPECT_NE(size.status().message().find("identity_512.onnx"), std::string::npos) << size.status().to_string();
  // A missing file is kNotFound naming it.
  auto missing = FaceEnhancerModel::load(*engine, dir_, "codeformer", {});
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find(dir_ + "/codeformer.onnx"), std::string::npos) << missing.status().to_string();
}

Face astronaut_face(const Image& astronaut) {
  auto ort = make_engine("ort").value();
  AnalyserOptions o;
  o.models_dir = kModels;
  auto analyser = FaceAnalyser::load(*ort, o);
  EXPECT_TRUE(analyser.is_ok()) << analyser.status().to_string();
  auto faces = (*analyser)->analyse(astronaut, /*embed=*/false);
  EXPECT_TRUE(faces.is_ok() && !faces->empty());
  return faces->front();
}

TEST_F(FaceEnhancerModelTest, EnhanceIsCropRunPasteBackThenBlend) {
  // With the identity probe, every step is checked against its composition by hand.
  const Image astronaut = read_image(kMedia + "astronaut.png").value();
  const Face face = astronaut_face(astronaut);
  auto engine = make_engine("ort").value();
  const FaceEnhancerModelInfo info = face_enhancer_model_info("gfpgan_1.4").value();
  auto model = FaceEnhancerModel::load_file(*engine, dir_ + "/identity_512.onnx", info, {});
  ASSERT_TRUE(model.is_ok()) << model.status().to_string();
  FaceEnhancerOptions options;
  options.blend = 60;
  options.face_mask_blur = 0.3f;
  FaceEnhancer enhancer(std::move(*model), options);
  Image frame = astronaut;
  TimeLedger ledger;
  ASSERT_TRUE(enhancer.enhance(frame, face, &ledger).is_ok());
  EXPECT_GT(ledger.seconds("enhance"), 0);

  Affine m;
  const Image crop = face_enhancer_crop(astronaut, face.landmarks5, info, &m);
  ImageF restored(512, 512, 3);
  for (std::size_t i = 0; i < crop.pixels.size(); ++i) restored.pixels[i] = crop.pixels[i];  // identity model
  Image pasted = astronaut;
  paste_back(pasted, restored, create_box_mask(512, 512, 0.3f, {0, 0, 0, 0}), m);
  int worst = 0, changed = 0;
  for (std::size_t i = 0; i < frame.pixels.size(); ++i) {
    const int want = int(std::lround(astronaut.pixels[i] * 0.4 + pasted.pixels[i] * 0.6));
    worst = std::max(worst, std::abs(int(frame.pixels[i]) - want));
    changed += frame.pixels[i] != astronaut.pixels[i];
  }
  EXPECT_LE(worst, 1);
  EXPECT_GT(changed, 100) << "the re-warped face should differ a little from the original";
}

// --face-mask-types occlusion: FaceFusion's enhancer pastes under min(box, occlusion mask).
TEST_F(FaceEnhancerModelTest, OcclusionMaskJoinsTheBoxMask) {
  std::string why;
  const std::string probes = test::swapper_probe_dir(&why);
  ASSERT_FALSE(probes.empty()) << why;
  const Image astronaut = read_image(kMedia + "astronaut.png").value();
  const Face face = astronaut_face(astronaut);
  auto engine = make_engine("ort").value();
  const FaceEnhancerModelInfo info = face_enhancer_model_info("gfpgan_1.4").value();
  // xseg_2 probe: −1.2·(B − R) + 0.5, above the threshold where skin is redder than blue.
  std::shared_ptr<FaceOccluder> occluder = FaceOccluder::load(*engine, probes, "xseg_2", {}).value();
  FaceEnhancerOptions options;
  options.blend = 100;
  FaceEnhancer enhancer(FaceEnhancerModel::load_file(*engine, dir_ + "/identity_512.onnx", info, {}).value(), options,
                        occluder);
  Image frame = astronaut;
  ASSERT_TRUE(enhancer.enhance(frame, face, nullptr).is_ok());

  Affine m;
  const Image crop = face_enhancer_crop(astronaut, face.landmarks5, info, &m);
  ImageF restored(512, 512, 3);
  for (std::size_t i = 0; i < crop.pixels.size(); ++i) restored.pixels[i] = crop.pixels[i];  // identity model
  ImageF mask = create_box_mask(512, 512, 0.3f, {0, 0, 0, 0});
  const ImageF occlusion = occluder->mask(crop).value();
  double occlusion_mean = 0;
  for (std::size_t i = 0; i < mask.pixels.size(); ++i) {
    mask.pixels[i] = std::min(mask.pixels[i], occlusion.pixels[i]);
    occlusion_mean += occlusion.pixels[i] / occlusion.pixels.size();
  }
  EXPECT_GT(occlusion_mean, 0.02);
  EXPECT_LT(occlusion_mean, 0.98);
  Image want = astronaut;
  paste_back(want, restored, mask, m);
  int worst = 0;
  for (std::size_t i = 0; i < frame.pixels.size(); ++i) worst = std::max(worst, std::abs(int(frame.pixels[i]) - int(want.pixels[i])));
  EXPECT_LE(worst, 1);
}

TEST_F(FaceEnhancerModelTest, Gfpgan14ReplicaAgreesOnBothEngines) {
  // The replica's random weights drive its output far past [−1, 1], so the crops would both be
  // clipped flat: the raw outputs are compared, relative to their size.
  const Image astronaut = read_image(kMedia + "astronaut.png").value();
  const Face face = astronaut_face(astronaut);
  const FaceEnhancerModelInfo info = face_enhancer_model_info("gfpgan_1.4").value();
  const Tensor input = face_enhancer_input_tensor(face_enhancer_crop(astronaut, face.landmarks5, info));
  std::vector<Tensor> outputs;
  for (const char* name : {"ort", "native"}) {
    SCOPED_TRACE(name);
    auto engine = make_engine(name).value();
    auto model = FaceEnhancerModel::load(*engine, dir_, "gfpgan_1.4", {});  // the contract check
    ASSERT_TRUE(model.is_ok()) << model.status().to_string();
    EXPECT_FALSE((*model)->has_weight_input());
    model->reset();
    auto session = engine->load(dir_ + "/gfpgan_1.4.onnx", {});
    ASSERT_TRUE(session.is_ok()) << session.status().to_string();
    const auto t0 = std::chrono::steady_clock::now();
    auto out = (*session)->run({Tensor::copy_of(input.view())});
    ASSERT_TRUE(out.is_ok()) << out.status().to_string();
    std::printf("gfpgan_1.4 replica, engine %s: %.0f ms per face\n", name,
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    outputs.push_back(std::move(out->at(0)));
  }
  ASSERT_EQ(outputs.size(), 2u);
  ASSERT_EQ(outputs[0].shape(), (Shape{1, 3, 512, 512}));
  ASSERT_EQ(outputs[1].shape(), outputs[0].shape());
  const float *a = outputs[0].data<float>(), *b = outputs[1].data<float>();
  double worst = 0, scale = 0;
  for (std::int64_t i = 0; i < outputs[0].elements(); ++i) {
    worst = std::max(worst, double(std::abs(a[i] - b[i])));
    scale = std::max(scale, double(std::abs(a[i])));
  }
  std::printf("gfpgan_1.4 replica: engines differ by at most %.3g of max |value| %.3g\n", worst, scale);
  ASSERT_GT(scale, 0);
  EXPECT_LT(worst / scale, 1e-3);
}

}  // namespace
}  // namespace fswap
