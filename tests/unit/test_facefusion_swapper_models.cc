// FaceFusion's swapper models beyond inswapper: the model table (templates, sizes, mean/std,
// source forms, output de-normalisation), pixel boost (implode/explode against numpy's
// reshape/transpose), the source forms through converter and image probes, the whole
// FaceFusionFaceSwapper against FaceFusion's formula on tiny probes (both engines, batched and
// one after another), and the hyperswap_1a_256 replica with every mask on both engines.
// References are recomputed here from reference/facefusion.md §2.4, not from fswap's code.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include <unistd.h>

#include <filesystem>

#include "face/analyser.h"
#include "face/face_masker.h"
#include "face/recognizer.h"
#include "face/recognizer_arcface.h"
#include "face/swapper.h"
#include "face/swapper_facefusion.h"
#include "imaging/transform.h"
#include "support/facefusion_reference.h"
#include "pipeline/swap_job.h"
#include "support/replicas.h"
#include "video/media.h"

namespace fswap {
namespace {

using test::random_image;

const std::string kMedia = std::string(FSWAP_THIRD_PARTY_DIR) + "/media/";
const std::string kModels = std::string(FSWAP_THIRD_PARTY_DIR) + "/models";

FaceSwapperModelSpec spec_of(const std::string& name) { return face_swapper_model_spec(name).value(); }

// A spec with FaceFusion's processing for `model` whose file is the probe `file`.
FaceSwapperModelSpec probe_spec(const std::string& model, const std::string& file, const std::string& converter = "") {
  FaceSwapperModelSpec s = spec_of(model);
  s.name = file;
  if (!s.converter.empty()) s.converter = converter;
  return s;
}

std::vector<float> random_embedding(unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0, 2);
  std::vector<float> e(512);
  for (float& x : e) x = d(rng);
  return e;
}

// ---------------------------------------------------------------------------------------------
// The model table, as reference/facefusion.md §2.4 lists it.

TEST(FaceSwapperModels, TableIsFaceFusions) {
  using K = FaceSwapperSourceKind;
  struct Row {
    const char* name;
    const FaceTemplate* tmpl;
    int size;
    std::array<float, 3> mean, std;
    bool denormalize;
    K source;
    const char* converter;
  };
  const std::array<float, 3> zero{0, 0, 0}, one{1, 1, 1}, half{0.5f, 0.5f, 0.5f};
  const std::array<float, 3> in_mean{0.485f, 0.456f, 0.406f}, in_std{0.229f, 0.224f, 0.225f};
  const Row rows[] = {
      {"inswapper_128", &kFaceFusionArcface128, 128, zero, one, false, K::kEmap, ""},
      {"inswapper_128_fp16", &kFaceFusionArcface128, 128, zero, one, false, K::kEmap, ""},
      {"hyperswap_1a_256", &kFaceFusionArcface128, 256, half, half, true, K::kNormedEmbedding, ""},
      {"hyperswap_1b_256", &kFaceFusionArcface128, 256, half, half, true, K::kNormedEmbedding, ""},
      {"hyperswap_1c_256", &kFaceFusionArcface128, 256, half, half, true, K::kNormedEmbedding, ""},
      {"simswap_256", &kFaceFusionArcface112V1, 256, in_mean, in_std, false, K::kConvertedNormedEmbedding, "crossface_simswap"},
      {"simswap_unofficial_512", &kFaceFusionArcface112V1, 512, zero, one, false, K::kConvertedNormedEmbedding,
       "crossface_simswap"},
      {"ghost_1_256", &kFaceFusionArcface112V1, 256, half, half, true, K::kConvertedEmbedding, "crossface_ghost"},
      {"ghost_2_256", &kFaceFusionArcface112V1, 256, half, half, true, K::kConvertedEmbedding, "crossface_ghost"},
      {"ghost_3_256", &kFaceFusionArcface112V1, 256, half, half, true, K::kConvertedEmbedding, "crossface_ghost"},
      {"hififace_unofficial_256", &kFaceFusionMtcnn512, 256, half, half, true, K::kConvertedNormedEmbedding,
       "crossface_hififace"},
      {"blendswap_256", &kFaceFusionFfhq512, 256, zero, one, false, K::kImage, ""},
      {"uniface_256", &kFaceFusionFfhq512, 256, half, half, true, K::kImage, ""},
  };
  ASSERT_EQ(face_swapper_model_names().size(), std::size(rows));
  for (const Row& r : rows) {
    SCOPED_TRACE(r.name);
    auto s = face_swapper_model_spec(r.name);
    ASSERT_TRUE(s.is_ok());
    EXPECT_EQ(s->face_template, r.tmpl);
    EXPECT_EQ(s->size, r.size);
    EXPECT_EQ(s->mean, r.mean);
    EXPECT_EQ(s->std, r.std);
    EXPECT_EQ(s->denormalize_output, r.denormalize);
    EXPECT_EQ(s->source, r.source);
    EXPECT_EQ(s->converter, r.converter);
  }
  EXPECT_EQ(spec_of("blendswap_256").source_template, &kFaceFusionArcface112V2);
  EXPECT_EQ(spec_of("blendswap_256").source_size, 112);
  EXPECT_EQ(spec_of("uniface_256").source_template, &kFaceFusionFfhq512);
  EXPECT_EQ(spec_of("uniface_256").source_size, 256);
  EXPECT_FALSE(face_swapper_model_spec("hyperswap_2_256").is_ok());
  // face_helper.py's templates, × 512 for mtcnn_512 and ffhq_512.
  EXPECT_NEAR(kFaceFusionMtcnn512[2].y * 512, 0.61942959 * 512, 1e-3);
  EXPECT_NEAR(kFaceFusionArcface112V1[3].x, 0.37913393, 1e-7);
}

TEST(FaceSwapperModels, PixelBoostChoices) {
  const auto hyper = spec_of("hyperswap_1a_256");
  EXPECT_EQ(parse_pixel_boost("", hyper).value(), 256);
  EXPECT_EQ(parse_pixel_boost("256x256", hyper).value(), 256);
  EXPECT_EQ(parse_pixel_boost("1024x1024", hyper).value(), 1024);
  EXPECT_EQ(parse_pixel_boost("384x384", spec_of("inswapper_128")).value(), 384);
  for (const char* bad : {"384x384", "128x128", "512x256", "512", "axb", "4096x4096"}) {
    auto r = parse_pixel_boost(bad, hyper);
    ASSERT_FALSE(r.is_ok()) << bad;
    EXPECT_NE(r.status().to_string().find("hyperswap_1a_256 takes NxN"), std::string::npos) << r.status().to_string();
  }
}

// ---------------------------------------------------------------------------------------------
// Pre- and post-processing.

TEST(FaceSwapperProcessing, TargetTensorIsPrepareCropFramePerChannel) {
  const std::vector<Image> crops = {random_image(256, 256, 3, 11), random_image(256, 256, 3, 12)};
  for (const char* name : {"simswap_256", "hyperswap_1a_256", "simswap_unofficial_512"}) {
    SCOPED_TRACE(name);
    FaceSwapperModelSpec s = spec_of(name);
    const Tensor t = face_swapper_target_tensor(crops, s);
    ASSERT_EQ(t.shape(), (Shape{2, 3, 256, 256}));
    const std::array<double, 3> mean{s.mean[0], s.mean[1], s.mean[2]}, std{s.std[0], s.std[1], s.std[2]};
    for (int i = 0; i < 2; ++i) EXPECT_LT(test::prepare_crop_error(t, i, crops[i], mean, std), 1e-5);
  }
}

TEST(FaceSwapperProcessing, OutputIsNormalizeCropFrame) {
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> d(-1.5f, 1.5f);
  Tensor out = Tensor::zeros(DType::kFloat32, {2, 3, 64, 64});
  for (std::int64_t i = 0; i < out.elements(); ++i) out.data<float>()[i] = d(rng);
  const float* v = out.data<float>();
  for (const auto& name : face_swapper_model_names()) {
    SCOPED_TRACE(name);
    const FaceSwapperModelSpec s = spec_of(name);
    // FaceFusion: transpose(1, 2, 0); x·std + mean for ghost, hififace, hyperswap, uniface only;
    // clip(0, 1); [:, :, ::-1] · 255 (BGR; our crop is RGB, so channel c is the model's c).
    const bool denorm = s.type == "ghost" || s.type == "hififace" || s.type == "hyperswap" || s.type == "uniface";
    const ImageF crop = face_swapper_output_to_crop(out, 1, s);
    double worst = 0;
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 64; ++y)
        for (int x = 0; x < 64; ++x) {
          double m = v[((3 + c) * 64 + y) * 64 + x];
          if (denorm) m = m * s.std[c] + s.mean[c];
          worst = std::max(worst, std::abs(crop.at(x, y, c) - std::clamp(m, 0.0, 1.0) * 255));
        }
    EXPECT_LT(worst, 1e-4);
  }
}

// ---------------------------------------------------------------------------------------------
// Pixel boost.

TEST(PixelBoost, ImplodeIsFaceFusionsReshapeTranspose) {
  for (int t : {1, 2, 3, 4}) {
    SCOPED_TRACE(t);
    const int m = 8, n = m * t;
    const Image crop = random_image(n, n, 3, 20 + t);
    // implode_pixel_boost: reshape(M, T, M, T, 3).transpose(1, 3, 0, 2, 4).reshape(T², M, M, 3).
    const std::vector<double> flat(crop.pixels.begin(), crop.pixels.end());
    const std::vector<double> want = test::reshape_transpose(flat, {m, t, m, t, 3}, {1, 3, 0, 2, 4});
    const std::vector<Image> parts = implode_pixel_boost(crop, m);
    ASSERT_EQ(parts.size(), static_cast<std::size_t>(t * t));
    std::size_t k = 0;
    for (const Image& p : parts)
      for (std::uint8_t v : p.pixels) ASSERT_EQ(v, want[k++]);
    // explode_pixel_boost: stack → reshape(T, T, M, M, 3).transpose(2, 0, 3, 1, 4) → (N, N, 3).
    std::vector<ImageF> swapped;
    std::vector<double> stacked;
    for (const Image& p : parts) {
      ImageF f = to_float(p);
      for (float& v : f.pixels) v = v * 0.5f + 1.f;  // stand-in for the model
      stacked.insert(stacked.end(), f.pixels.begin(), f.pixels.end());
      swapped.push_back(std::move(f));
    }
    const std::vector<double> back = test::reshape_transpose(stacked, {t, t, m, m, 3}, {2, 0, 3, 1, 4});
    const ImageF exploded = explode_pixel_boost(swapped, n);
    ASSERT_EQ(exploded.width, n);
    for (std::size_t i = 0; i < back.size(); ++i) ASSERT_EQ(exploded.pixels[i], back[i]);
  }
}

TEST(PixelBoost, RoundTripIsExact) {
  for (int t : {1, 2, 4, 8}) {
    const Image crop = random_image(32 * t, 32 * t, 3, t);
    EXPECT_EQ(explode_pixel_boost(implode_pixel_boost(crop, 32), 32 * t).pixels, crop.pixels) << t;
    const ImageF f = to_float(crop);
    EXPECT_EQ(explode_pixel_boost(implode_pixel_boost(f, 32), 32 * t).pixels, f.pixels) << t;
  }
}

// ---------------------------------------------------------------------------------------------
// On probes: tiny models with the contracts and a fixed formula
// (tests/support/make_swapper_probes.py): swap = 0.75·target + source[0:3].

std::string probe_dir() {
  std::string why;
  const std::string dir = test::swapper_probe_dir(&why);
  if (dir.empty()) ADD_FAILURE() << why;
  return dir;
}

// FaceFusion's swap of one crop of crop_size = T·M through the swap probe, in FaceFusion's own
// steps: implode, prepare_crop_frame, the probe's formula, normalize_crop_frame, explode.
std::vector<double> reference_probe_swap(const Image& crop, const FaceSwapperModelSpec& s, const std::vector<float>& src) {
  const int n = crop.width, m = s.size, t = n / m;
  const std::vector<double> flat(crop.pixels.begin(), crop.pixels.end());
  const std::vector<double> parts = test::reshape_transpose(flat, {m, t, m, t, 3}, {1, 3, 0, 2, 4});
  std::vector<double> out(parts.size());
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const int c = static_cast<int>(i % 3);  // RGB, as our crops (FaceFusion's BGR flips cancel)
    double x = (parts[i] / 255.0 - s.mean[c]) / s.std[c];
    x = 0.75 * x + src[c];
    if (s.denormalize_output) x = x * s.std[c] + s.mean[c];
    out[i] = std::clamp(x, 0.0, 1.0) * 255;
  }
  return test::reshape_transpose(out, {t, t, m, m, 3}, {2, 0, 3, 1, 4});
}

TEST(FaceSwapperProbe, SwapIsFaceFusionsFormulaAtEveryPixelBoostOnBothEngines) {
  const std::string dir = probe_dir();
  if (dir.empty()) return;
  const std::vector<float> raw = random_embedding(5);
  for (const char* engine_name : {"ort", "native"}) {
    auto engine = make_engine(engine_name).value();
    for (const char* model : {"hyperswap_1a_256", "simswap_256"}) {
      const FaceSwapperModelSpec s = probe_spec(model, "swap_probe_256", "converter_probe");
      auto loaded = FaceSwapperModel::load(*engine, dir, s, {});
      ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
      auto batched = FaceSwapperModel::load(*engine, dir, probe_spec(model, "swap_probe_batch_256", "converter_probe"), {});
      ASSERT_TRUE(batched.is_ok()) << batched.status().to_string();
      auto fixed = FaceSwapperModel::load(*engine, dir, probe_spec(model, "swap_probe_b3_256", "converter_probe"), {});
      ASSERT_TRUE(fixed.is_ok()) << fixed.status().to_string();
      EXPECT_EQ((*loaded)->max_batch(), 1);
      EXPECT_GE((*batched)->max_batch(), 16);
      EXPECT_EQ((*fixed)->max_batch(), 3);  // runs of exactly 3, the last padded
      auto source = (*loaded)->source_tensor({raw});
      ASSERT_TRUE(source.is_ok()) << source.status().to_string();
      const std::vector<float> src(source->data<float>(), source->data<float>() + 512);
      for (int boost : {256, 512, 1024}) {
        SCOPED_TRACE(std::string(engine_name) + " " + model + " " + std::to_string(boost));
        const Image crop = random_image(boost, boost, 3, boost);
        auto one_by_one = (*loaded)->swap(crop, *source);
        ASSERT_TRUE(one_by_one.is_ok()) << one_by_one.status().to_string();
        auto in_one_batch = (*batched)->swap(crop, *source);
        ASSERT_TRUE(in_one_batch.is_ok()) << in_one_batch.status().to_string();
        auto in_threes = (*fixed)->swap(crop, *source);
        ASSERT_TRUE(in_threes.is_ok()) << in_threes.status().to_string();
        const std::vector<double> want = reference_probe_swap(crop, s, src);
        ASSERT_EQ(one_by_one->pixels.size(), want.size());
        double worst = 0, worst_batch = 0, worst_threes = 0;
        for (std::size_t i = 0; i < want.size(); ++i) {
          worst = std::max(worst, std::abs(one_by_one->pixels[i] - want[i]) / 255);
          worst_batch = std::max(worst_batch, std::abs(in_one_batch->pixels[i] - want[i]) / 255);
          worst_threes = std::max(worst_threes, std::abs(in_threes->pixels[i] - want[i]) / 255);
        }
        EXPECT_LT(worst, 1e-4);
        EXPECT_LT(worst_batch, 1e-4);
        EXPECT_LT(worst_threes, 1e-4);
      }
    }
  }
}

TEST(FaceSwapperProbe, SourcesAreFaceFusions) {
  const std::string dir = probe_dir();
  if (dir.empty()) return;
  auto engine = make_engine("ort").value();
  const std::vector<float> raw = random_embedding(7);
  const auto source_of = [&](const FaceSwapperModelSpec& s, const FaceSwapperSource& src) {
    auto model = FaceSwapperModel::load(*engine, dir, s, {});
    EXPECT_TRUE(model.is_ok()) << model.status().to_string();
    auto t = (*model)->source_tensor(src);
    EXPECT_TRUE(t.is_ok()) << t.status().to_string();
    return std::vector<float>(t->data<float>(), t->data<float>() + t->elements());
  };
  // The probe converter gives 2·e + 1.
  std::vector<double> converted(512);
  double norm_raw = 0, norm_conv = 0;
  for (int i = 0; i < 512; ++i) {
    converted[i] = 2.0 * raw[i] + 1;
    norm_raw += double(raw[i]) * raw[i];
    norm_conv += converted[i] * converted[i];
  }
  norm_raw = std::sqrt(norm_raw), norm_conv = std::sqrt(norm_conv);
  const auto hyper = source_of(probe_spec("hyperswap_1a_256", "swap_probe_256"), {raw});
  const auto sim = source_of(probe_spec("simswap_256", "swap_probe_256", "converter_probe"), {raw});
  const auto hifi = source_of(probe_spec("hififace_unofficial_256", "swap_probe_256", "converter_probe"), {raw});
  const auto ghost = source_of(probe_spec("ghost_1_256", "swap_probe_256", "converter_probe"), {raw});
  ASSERT_EQ(hyper.size(), 512u);
  for (int i = 0; i < 512; ++i) {
    EXPECT_NEAR(hyper[i], raw[i] / norm_raw, 1e-6) << i;         // embedding_norm
    EXPECT_NEAR(sim[i], converted[i] / norm_conv, 1e-6) << i;    // crossface, then L2
    EXPECT_NEAR(hifi[i], converted[i] / norm_conv, 1e-6) << i;
    EXPECT_NEAR(ghost[i], converted[i], 1e-4) << i;              // crossface, not normalised
  }
  // Image sources: the source face warped onto its template, RGB v/255 (no mean/std).
  const Image photo = random_image(300, 280, 3, 8);
  const std::array<Point2f, 5> lmk = {{{120, 130}, {180, 128}, {150, 165}, {128, 200}, {176, 198}}};
  const auto blend = source_of(probe_spec("blendswap_256", "swap_image_probe_256"), {{}, {}, &photo, lmk});
  const Image want_blend = arcface_crop(photo, lmk);  // arcface_112_v2 at 112
  ASSERT_EQ(blend.size(), 3u * 112 * 112);
  double worst = 0;
  for (int c = 0; c < 3; ++c)
    for (int p = 0; p < 112 * 112; ++p) worst = std::max(worst, std::abs(blend[c * 112 * 112 + p] - want_blend.pixels[p * 3 + c] / 255.0));
  EXPECT_LT(worst, 1e-6);
  // A missing converter names its file.
  auto no_converter = FaceSwapperModel::load(*engine, dir, probe_spec("simswap_256", "swap_probe_256", "crossface_simswap"), {});
  ASSERT_FALSE(no_converter.is_ok());
  EXPECT_NE(no_converter.status().to_string().find("crossface_simswap.onnx: no such file"), std::string::npos)
      << no_converter.status().to_string();
  // A model whose source is not the spec's form is refused, naming the file.
  auto wrong_source = FaceSwapperModel::load(*engine, dir, probe_spec("uniface_256", "swap_image_probe_256"), {});
  ASSERT_FALSE(wrong_source.is_ok());
  EXPECT_NE(wrong_source.status().to_string().find("swap_image_probe_256.onnx: not a swap_image_probe_256 face swapper"),
            std::string::npos)
      << wrong_source.status().to_string();
}

// Several sources (face_creator.average_face_identity) and --face-swapper-weight
// (balance_source_embedding).
TEST(FaceSwapperSources, AverageAndBalanceAreFaceFusions) {
  const std::vector<float> a = random_embedding(21), b = random_embedding(22);
  auto avg = average_face_swapper_sources({{a}, {b}});
  ASSERT_TRUE(avg.is_ok()) << avg.status().to_string();
  double na = 0, nb = 0;
  for (int i = 0; i < 512; ++i) na += double(a[i]) * a[i], nb += double(b[i]) * b[i];
  na = std::sqrt(na), nb = std::sqrt(nb);
  for (int i = 0; i < 512; ++i) {
    EXPECT_NEAR(avg->embedding[i], (a[i] + b[i]) / 2.0, 1e-5);
    EXPECT_NEAR(avg->normed_embedding[i], (a[i] / na + b[i] / nb) / 2, 1e-6);  // not re-normalised
  }
  EXPECT_FALSE(average_face_swapper_sources({}).is_ok());

  const std::vector<float> target = random_embedding(23);
  double nt = 0;
  for (float v : target) nt += double(v) * v;
  nt = std::sqrt(nt);
  for (const char* model : {"hyperswap_1a_256", "inswapper_128", "ghost_1_256", "simswap_256"}) {
    const FaceSwapperModelSpec s = spec_of(model);
    const bool normalised = std::string(model) != "ghost_1_256";
    for (float weight : {0.f, 0.2f, 0.5f, 1.f}) {
      SCOPED_TRACE(std::string(model) + " " + std::to_string(weight));
      const double w = 0.35 + (-0.35 - 0.35) * weight;  // numpy.interp(weight, [0, 1], [0.35, −0.35])
      const auto got = balance_source_embedding(a, target, s, weight);
      for (int i = 0; i < 512; ++i) {
        const double t = normalised ? target[i] / nt : target[i];
        ASSERT_NEAR(got[i], a[i] * (1 - w) + t * w, 1e-5) << i;
      }
    }
  }
}

// The whole FaceFusionFaceSwapper: crop at the boosted size, box mask, probe swap, paste-back.
TEST(FaceSwapperProbe, SwapperPastesFaceFusionsBoostedCrop) {
  const std::string dir = probe_dir();
  if (dir.empty()) return;
  auto engine = make_engine("ort").value();
  const FaceSwapperModelSpec s = probe_spec("hyperswap_1a_256", "swap_probe_256");
  std::shared_ptr<FaceSwapperModel> model = FaceSwapperModel::load(*engine, dir, s, {}).value();
  const std::vector<float> raw = random_embedding(9);
  FaceMaskOptions mask_options;
  mask_options.blur = 0.4f;
  mask_options.padding = {5, 0, 10, 0};
  auto masker = FaceMasker::load(*engine, dir, mask_options, {});
  ASSERT_TRUE(masker.is_ok()) << masker.status().to_string();
  auto swapper = FaceFusionFaceSwapper::create(model, {raw}, std::move(*masker), 512);
  ASSERT_TRUE(swapper.is_ok()) << swapper.status().to_string();

  Face face;
  face.has_landmarks = true;
  face.landmarks5 = {{{150, 160}, {230, 150}, {195, 205}, {160, 250}, {225, 245}}};
  for (int i = 0; i < 68; ++i) face.landmarks68[i] = {150.f + i, 160.f + i % 7};
  const Image frame = random_image(400, 360, 3, 10);
  Image got = frame;
  TimeLedger ledger;
  ASSERT_TRUE((*swapper)->swap(got, face, &ledger).is_ok());
  EXPECT_GT(ledger.seconds("swap"), 0.0);

  Affine m;
  const Image crop = face_swapper_crop(frame, face.landmarks5, s, 512, &m);
  const auto src = l2_normalized(raw);
  const std::vector<double> swapped = reference_probe_swap(crop, s, src);
  ImageF want_crop(512, 512, 3);
  for (std::size_t i = 0; i < swapped.size(); ++i) want_crop.pixels[i] = static_cast<float>(swapped[i]);
  Image want = frame;
  paste_back(want, want_crop, create_box_mask(512, 512, 0.4f, {5, 0, 10, 0}), m);
  int worst = 0, changed = 0;
  for (std::size_t i = 0; i < want.pixels.size(); ++i) {
    worst = std::max(worst, std::abs(int(want.pixels[i]) - int(got.pixels[i])));
    changed += got.pixels[i] != frame.pixels[i];
  }
  EXPECT_LE(worst, 1);  // the float crops differ by < 1e-4, which may flip a truncation
  EXPECT_GT(changed, 10000);
}

// --face-swapper-weight through the swapper: the probe's source is balanced against the target
// face's arcface_w600k_r50 embedding (replica) before each run.
TEST(FaceSwapperProbe, WeightBalancesTheSourceAgainstEachTarget) {
  const std::string dir = probe_dir();
  std::string why;
  const std::string arcface_dir = test::replica_dir(&why);
  if (dir.empty()) return;
  if (arcface_dir.empty()) GTEST_SKIP() << why;
  auto engine = make_engine("ort").value();
  const FaceSwapperModelSpec s = probe_spec("hyperswap_1a_256", "swap_probe_256");
  std::shared_ptr<FaceSwapperModel> model = FaceSwapperModel::load(*engine, dir, s, {}).value();
  std::shared_ptr<ArcfaceRecognizer> arcface =
      ArcfaceRecognizer::load(*engine, arcface_dir + "/arcface_w600k_r50.onnx", {}).value();
  const std::vector<float> raw = random_embedding(31);
  EXPECT_FALSE(FaceFusionFaceSwapper::create(model, {raw}, FaceMasker{}, 256, 0.2f, nullptr).is_ok());
  auto swapper = FaceFusionFaceSwapper::create(model, {raw}, FaceMasker{}, 256, 0.2f, arcface);
  ASSERT_TRUE(swapper.is_ok()) << swapper.status().to_string();

  Face face;
  face.has_landmarks = true;
  face.landmarks5 = {{{150, 160}, {230, 150}, {195, 205}, {160, 250}, {225, 245}}};
  for (int i = 0; i < 68; ++i) face.landmarks68[i] = {150.f + i, 160.f + i % 7};
  const Image frame = random_image(400, 360, 3, 32);
  Image got = frame;
  ASSERT_TRUE((*swapper)->swap(got, face, nullptr).is_ok());

  const std::vector<float> target = arcface->embed(frame, face.landmarks5).value().embedding;
  const std::vector<float> balanced = balance_source_embedding(l2_normalized(raw), target, s, 0.2f);
  Affine m;
  const Image crop = face_swapper_crop(frame, face.landmarks5, s, 256, &m);
  const std::vector<double> swapped = reference_probe_swap(crop, s, balanced);
  ImageF want_crop(256, 256, 3);
  for (std::size_t i = 0; i < swapped.size(); ++i) want_crop.pixels[i] = static_cast<float>(swapped[i]);
  Image want = frame;
  paste_back(want, want_crop, create_box_mask(256, 256, 0.3f, {}), m);
  int worst = 0;
  for (std::size_t i = 0; i < want.pixels.size(); ++i) worst = std::max(worst, std::abs(int(want.pixels[i]) - int(got.pixels[i])));
  EXPECT_LE(worst, 1);
  // And it differs from the unbalanced swap.
  Image plain = frame;
  ASSERT_TRUE(FaceFusionFaceSwapper::create(model, {raw}, FaceMasker{}, 256).value()->swap(plain, face, nullptr).is_ok());
  EXPECT_NE(plain.pixels, got.pixels);
}

// The whole job (run_swap): --face-swapper-model hyperswap_1a_256 (the swap probe under that
// name), pixel boost 512, every mask type, two sources averaged; and the option errors.
TEST(FaceSwapperJob, HyperswapWithPixelBoostAndEveryMaskRunsTheJob) {
  const std::string dir = probe_dir();
  std::string why;
  const std::string arcface_dir = test::replica_dir(&why);
  if (dir.empty()) return;
  if (arcface_dir.empty()) GTEST_SKIP() << why;
  namespace fs = std::filesystem;
  const fs::path root = fs::path(FSWAP_TEST_TMP) / ("swapper-job-" + std::to_string(::getpid()));
  const fs::path models = root / "models";
  fs::remove_all(root);
  fs::create_directories(models);
  for (const auto& e : fs::directory_iterator(kModels)) fs::create_symlink(e.path(), models / e.path().filename());
  fs::create_symlink(fs::path(dir) / "swap_probe_256.onnx", models / "hyperswap_1a_256.onnx");
  for (const char* f : {"xseg_1.onnx", "xseg_2.onnx", "bisenet_resnet_34.onnx"}) fs::create_symlink(fs::path(dir) / f, models / f);
  fs::create_symlink(fs::path(arcface_dir) / "arcface_w600k_r50.onnx", models / "arcface_w600k_r50.onnx");

  SwapJob job;
  job.sources = {kMedia + "astronaut.png", kMedia + "messi5.jpg"};
  job.target = kMedia + "astronaut.png";
  job.output = (root / "out.png").string();
  job.analyser.models_dir = models.string();
  job.selector.mode = SelectorMode::kOne;
  job.face_swapper_model = "hyperswap_1a_256";
  job.face_swapper_pixel_boost = "512x512";
  job.face_mask.types = {"box", "occlusion", "area", "region"};
  job.face_mask.occluder_model = "xseg_2";  // the probe that keeps skin (redder than blue)
  job.face_mask.regions = {"skin", "left-eyebrow", "right-eyebrow"};
  auto summary = run_swap(job);
  ASSERT_TRUE(summary.is_ok()) << summary.status().to_string();
  EXPECT_EQ(summary->faces_swapped, 1);
  const Image before = read_image(job.target).value();
  const Image after = read_image(job.output).value();
  ASSERT_EQ(after.pixels.size(), before.pixels.size());
  int changed = 0;
  for (std::size_t i = 0; i < after.pixels.size(); ++i) changed += after.pixels[i] != before.pixels[i];
  std::printf("hyperswap probe job, pixel boost 512, box + occlusion + area + region: %d values changed\n", changed);
  EXPECT_GT(changed, 100);

  SwapJob bad = job;
  bad.face_swapper_pixel_boost = "300x300";
  auto r = run_swap(bad);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().to_string().find("--face-swapper-pixel-boost '300x300'"), std::string::npos) << r.status().to_string();
  bad = job;
  bad.face_swapper_model = "simswap_256";
  r = run_swap(bad);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().to_string().find("simswap_256.onnx: no such file"), std::string::npos) << r.status().to_string();
  bad = job;
  bad.face_mask.occluder_model = "many";  // xseg_3 is not in the folder
  r = run_swap(bad);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().to_string().find("xseg_3.onnx: no such file"), std::string::npos) << r.status().to_string();
  fs::remove_all(root);
}

// ---------------------------------------------------------------------------------------------
// On replicas: hyperswap_1a_256 with box, occlusion (xseg), area and region (bisenet) masks,
// and the crossface_simswap converter, on both engines.

TEST(FaceSwapperReplica, HyperswapWithEveryMaskAgreesOnBothEngines) {
  std::string why;
  const std::string dir = test::swapper_replica_dir(&why);
  if (dir.empty()) GTEST_SKIP() << why;
  const Image astronaut = read_image(kMedia + "astronaut.png").value();
  Face face;
  {
    auto ort = make_engine("ort").value();
    AnalyserOptions o;
    o.models_dir = kModels;
    auto faces = FaceAnalyser::load(*ort, o).value()->analyse(astronaut, /*embed=*/false);
    ASSERT_TRUE(faces.is_ok() && !faces->empty());
    face = faces->front();
  }
  const std::vector<float> raw = random_embedding(13);
  struct Run {
    Image frame;                     // box mask only: the replicas' random masks may cover nothing
    ImageF swapped, occlusion, region, combined;
    std::vector<float> converted;
  };
  std::vector<Run> runs;
  for (const char* name : {"ort", "native"}) {
    SCOPED_TRACE(name);
    auto engine = make_engine(name).value();
    Run run;
    FaceMaskOptions o;
    o.types = {"box", "occlusion", "area", "region"};
    auto masker = FaceMasker::load(*engine, dir, o, {});
    ASSERT_TRUE(masker.is_ok()) << masker.status().to_string();
    std::shared_ptr<FaceSwapperModel> model = FaceSwapperModel::load(*engine, dir, spec_of("hyperswap_1a_256"), {}).value();
    const auto t0 = std::chrono::steady_clock::now();
    Affine m;
    const Image crop = face_swapper_crop(astronaut, face.landmarks5, model->spec(), 256, &m);
    auto combined = masker->before_swap(crop);
    ASSERT_TRUE(combined.is_ok()) << combined.status().to_string();
    const auto t1 = std::chrono::steady_clock::now();
    auto swapped = model->swap(crop, model->source_tensor({raw}).value());
    ASSERT_TRUE(swapped.is_ok()) << swapped.status().to_string();
    const auto t2 = std::chrono::steady_clock::now();
    std::array<Point2f, 68> lmk;
    for (int i = 0; i < 68; ++i) lmk[i] = m.apply(face.landmarks68[i]);
    ASSERT_TRUE(masker->after_swap(*swapped, lmk, *combined).is_ok());
    const auto t3 = std::chrono::steady_clock::now();
    const auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
    std::printf("hyperswap_1a_256 replica, engine %s: box + occlusion (xseg) %.0f ms, model %.0f ms, area + region "
                "(bisenet) %.0f ms\n", name, ms(t0, t1), ms(t1, t2), ms(t2, t3));
    run.swapped = std::move(*swapped);
    run.combined = std::move(*combined);
    run.occlusion = FaceOccluder::load(*engine, dir, "xseg_1", {}).value()->mask(crop).value();
    run.region = FaceParser::load(*engine, dir, "bisenet_resnet_34", {}).value()->region_mask(run.swapped, {1, 2, 3, 4, 5, 6, 10, 11, 12, 13}).value();
    // The whole swapper, box mask only.
    auto swapper = FaceFusionFaceSwapper::create(model, {raw}, FaceMasker{}, 256);
    ASSERT_TRUE(swapper.is_ok()) << swapper.status().to_string();
    run.frame = astronaut;
    ASSERT_TRUE((*swapper)->swap(run.frame, face, nullptr).is_ok());

    FaceSwapperModelSpec sim = spec_of("simswap_256");
    sim.name = "hyperswap_1a_256";  // a swapper file with simswap's source contract, to reach the converter
    auto with_converter = FaceSwapperModel::load(*engine, dir, sim, {});
    ASSERT_TRUE(with_converter.is_ok()) << with_converter.status().to_string();
    auto c = (*with_converter)->convert_embedding(raw);
    ASSERT_TRUE(c.is_ok()) << c.status().to_string();
    run.converted = *c;
    runs.push_back(std::move(run));
  }
  const auto max_diff = [](const ImageF& a, const ImageF& b) {
    double w = 0;
    for (std::size_t i = 0; i < a.pixels.size(); ++i) w = std::max(w, double(std::abs(a.pixels[i] - b.pixels[i])));
    return w;
  };
  const auto mean_of = [](const ImageF& a) {
    double s = 0;
    for (float v : a.pixels) s += v;
    return s / a.pixels.size();
  };
  const Run &a = runs[0], &b = runs[1];
  int worst = 0, changed = 0;
  for (std::size_t i = 0; i < a.frame.pixels.size(); ++i) {
    worst = std::max(worst, std::abs(int(a.frame.pixels[i]) - int(b.frame.pixels[i])));
    changed += a.frame.pixels[i] != astronaut.pixels[i];
  }
  double worst_conv = 0, scale = 0;
  for (int i = 0; i < 512; ++i) {
    worst_conv = std::max(worst_conv, double(std::abs(a.converted[i] - b.converted[i])));
    scale = std::max(scale, double(std::abs(a.converted[i])));
  }
  std::printf("engines agree: swapped crop max |diff| %.2e (0..255), occlusion %.2e (mean %.3f), region %.2e (mean %.3f), "
              "combined %.2e, frame %d (%d values changed), crossface %.2e of %.2e\n",
              max_diff(a.swapped, b.swapped), max_diff(a.occlusion, b.occlusion), mean_of(a.occlusion),
              max_diff(a.region, b.region), mean_of(a.region), max_diff(a.combined, b.combined), worst, changed,
              worst_conv, scale);
  EXPECT_LT(max_diff(a.swapped, b.swapped), 0.5);
  EXPECT_LT(max_diff(a.occlusion, b.occlusion), 1e-3);
  EXPECT_LT(max_diff(a.region, b.region), 1e-3);
  EXPECT_LT(max_diff(a.combined, b.combined), 1e-3);
  EXPECT_GT(changed, 1000);
  EXPECT_LE(worst, 1);
  EXPECT_LT(worst_conv / scale, 1e-4);
}

// Two more families on replicas, both engines: ghost_1_256 (crossface_ghost's raw output as the
// source, de-normalised output) and blendswap_256 (the source face's image as the source).
TEST(FaceSwapperReplica, GhostAndBlendswapAgreeOnBothEngines) {
  std::string why;
  const std::string dir =
      test::generated_replicas("facefusion-swapper-replicas-more-v1", "ghost_1_256 crossface_ghost blendswap_256", {}, &why);
  if (dir.empty()) GTEST_SKIP() << why;
  const Image photo = random_image(360, 330, 3, 41);
  const std::array<Point2f, 5> lmk = {{{140, 150}, {215, 145}, {180, 195}, {148, 235}, {210, 232}}};
  const std::vector<float> raw = random_embedding(42);
  for (const char* model : {"ghost_1_256", "blendswap_256"}) {
    std::vector<ImageF> crops;
    std::vector<std::vector<float>> sources;
    for (const char* name : {"ort", "native"}) {
      SCOPED_TRACE(std::string(model) + " " + name);
      auto engine = make_engine(name).value();
      auto m = FaceSwapperModel::load(*engine, dir, spec_of(model), {});
      ASSERT_TRUE(m.is_ok()) << m.status().to_string();
      auto source = (*m)->source_tensor({raw, {}, &photo, lmk});
      ASSERT_TRUE(source.is_ok()) << source.status().to_string();
      sources.emplace_back(source->data<float>(), source->data<float>() + source->elements());
      const Image crop = face_swapper_crop(photo, lmk, (*m)->spec(), 256);
      auto swapped = (*m)->swap(crop, *source);
      ASSERT_TRUE(swapped.is_ok()) << swapped.status().to_string();
      crops.push_back(std::move(*swapped));
    }
    double worst_src = 0, scale = 0, worst = 0, mean = 0;
    for (std::size_t i = 0; i < sources[0].size(); ++i) {
      worst_src = std::max(worst_src, double(std::abs(sources[0][i] - sources[1][i])));
      scale = std::max(scale, double(std::abs(sources[0][i])));
    }
    for (std::size_t i = 0; i < crops[0].pixels.size(); ++i) {
      worst = std::max(worst, double(std::abs(crops[0].pixels[i] - crops[1].pixels[i])));
      mean += crops[0].pixels[i] / crops[0].pixels.size();
    }
    std::printf("%s replica ort vs native: source max |diff| %.2e of %.2e, swapped crop max |diff| %.2e (0..255, mean %.1f)\n",
                model, worst_src, scale, worst, mean);
    EXPECT_LT(worst_src, 1e-4 * std::max(scale, 1.0));
    EXPECT_LT(worst, 0.5);
  }
}

}  // namespace
}  // namespace fswap
