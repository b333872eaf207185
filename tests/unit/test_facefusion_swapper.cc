// FaceFusion model support, first slice: arcface_w600k_r50, inswapper_128, the box mask and
// paste-back. Pre/post-processing is checked against FaceFusion's formulas (reference/
// facefusion.md §2.1–2.5) recomputed here independently — in FaceFusion's own BGR terms where its
// code flips channels — and the models run end to end on replicas (random weights, real I/O)
// on both engines.
#include <gtest/gtest.h>

#include "support/replicas.h"
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>

#include "core/npy.h"
#include "face/analyser.h"
#include "face/paste_back.h"
#include "face/recognizer.h"
#include "face/recognizer_arcface.h"
#include "face/swapper.h"
#include "face/swapper_facefusion.h"
#include "imaging/transform.h"
#include "video/media.h"
#include "support/facefusion_reference.h"

#ifdef FSWAP_HAVE_OPENCV
#include <opencv2/imgproc.hpp>
#endif

namespace fswap {
namespace {

using test::random_image;
using test::to_bgr;

namespace fs = std::filesystem;

const std::string kMedia = std::string(FSWAP_THIRD_PARTY_DIR) + "/media/";
const std::string kModels = std::string(FSWAP_THIRD_PARTY_DIR) + "/models";

FaceSwapperModelSpec spec_of(const std::string& name) { return face_swapper_model_spec(name).value(); }

// ---------------------------------------------------------------------------------------------
// (a) Box mask: §2.5 by hand — zero bands, then a direct 2-D convolution with OpenCV's float
// Gaussian (ksize = round(8σ+1)|1, reflect-101), no separability assumed.

std::vector<double> reference_box_mask(int w, int h, double blur, const std::array<double, 4>& pad) {
  const int blur_amount = static_cast<int>(w * 0.5 * blur);
  const int blur_area = std::max(blur_amount / 2, 1);
  const int top = std::max(blur_area, int(h * pad[0] / 100)), right = std::max(blur_area, int(w * pad[1] / 100));
  const int bottom = std::max(blur_area, int(h * pad[2] / 100)), left = std::max(blur_area, int(w * pad[3] / 100));
  std::vector<double> m(static_cast<std::size_t>(w) * h, 1.0);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      if (y < top || y >= h - bottom || x < left || x >= w - right) m[y * w + x] = 0;
  if (blur_amount <= 0) return m;
  return test::reference_gaussian_blur(m, w, h, blur_amount * 0.25);
}

TEST(BoxMask, MatchesFaceFusionsFormula) {
  struct Case {
    int w, h;
    float blur;
    FaceMaskPadding pad;
  };
  for (const Case& c : {Case{128, 128, 0.3f, {0, 0, 0, 0}}, Case{96, 80, 0.5f, {10, 0, 25, 5}},
                        Case{64, 64, 0.f, {0, 0, 0, 0}}, Case{64, 64, 0.f, {20, 30, 0, 0}}}) {
    const ImageF got = create_box_mask(c.w, c.h, c.blur, c.pad);
    const auto want = reference_box_mask(c.w, c.h, c.blur, {c.pad[0], c.pad[1], c.pad[2], c.pad[3]});
    ASSERT_EQ(got.width, c.w);
    ASSERT_EQ(got.height, c.h);
    double worst = 0;
    for (int i = 0; i < c.w * c.h; ++i) worst = std::max(worst, std::abs(got.pixels[i] - want[i]));
    EXPECT_LT(worst, 1e-4) << c.w << "x" << c.h << " blur " << c.blur;
  }
  // Hand values at 128, blur 0.3: blur_amount = int(19.2) = 19, blur_area = 9, σ = 4.75.
  const ImageF m = create_box_mask(128, 128, 0.3f, {});
  EXPECT_NEAR(m.at(64, 64), 1.0, 1e-6);  // 55 px (11σ) inside the zero band
  // On the first row of ones at the middle column, the vertical kernel sees rows −10..28
  // reflected to 10..1 (ones from 9 on): weight of rows 9..28 plus that of reflected −10..−9.
  {
    const double sigma = 4.75;
    const int k = 39, r = 19;
    double s = 0, ones = 0;
    for (int i = 0; i < k; ++i) {
      const double g = std::exp(-double(i - r) * (i - r) / (2 * sigma * sigma));
      s += g;
      if (test::reflect101_index(9 + i - r, 128) >= 9) ones += g;
    }
    EXPECT_NEAR(m.at(64, 9), ones / s, 1e-4);
  }
  // Blur 0: ones with a 1 px zero frame.
  const ImageF sharp = create_box_mask(16, 16, 0.f, {});
  EXPECT_EQ(sharp.at(0, 5), 0.f);
  EXPECT_EQ(sharp.at(1, 5), 1.f);
  EXPECT_EQ(sharp.at(15, 5), 0.f);
  EXPECT_EQ(sharp.at(14, 14), 1.f);
}

#ifdef FSWAP_HAVE_OPENCV
TEST(BoxMask, MatchesOpenCvGaussianBlur) {
  const int w = 256, h = 256;
  const float blur = 0.3f;  // §2.5's example: blur_amount 38, 19 px band, σ 9.5
  cv::Mat raw(h, w, CV_32F, cv::Scalar(1));
  raw.rowRange(0, 19).setTo(0), raw.rowRange(h - 19, h).setTo(0);
  raw.colRange(0, 19).setTo(0), raw.colRange(w - 19, w).setTo(0);
  cv::Mat want;
  cv::GaussianBlur(raw, want, cv::Size(0, 0), 9.5);
  const ImageF got = create_box_mask(w, h, blur, {});
  double worst = 0;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) worst = std::max(worst, double(std::abs(got.at(x, y) - want.at<float>(y, x))));
  EXPECT_LT(worst, 1e-5);
}
#endif

// ---------------------------------------------------------------------------------------------
// (a) Model pre/post-processing, per pixel, in FaceFusion's BGR terms.

TEST(InswapperProcessing, TargetTensorIsFaceFusionsPrepareCropFrame) {
  const Image rgb = random_image(128, 128, 3, 1);
  const Tensor t = face_swapper_target_tensor({rgb}, spec_of("inswapper_128"));
  ASSERT_EQ(t.shape(), (Shape{1, 3, 128, 128}));
  // FaceFusion: crop[:, :, ::-1] / 255, (x − 0) / 1, transpose(2, 0, 1).
  EXPECT_LT(test::prepare_crop_error(t, rgb, 0.0, 1.0), 1e-6);
}

TEST(InswapperProcessing, OutputCropIsFaceFusionsNormalizeCropFrame) {
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> d(-0.3f, 1.3f);
  Tensor out = Tensor::zeros(DType::kFloat32, {1, 3, 128, 128});
  for (std::int64_t i = 0; i < out.elements(); ++i) out.data<float>()[i] = d(rng);
  const ImageF crop = face_swapper_output_to_crop(out, 0, spec_of("inswapper_128"));
  ASSERT_EQ(crop.width, 128);
  ASSERT_EQ(crop.channels, 3);
  const float* v = out.data<float>();
  // FaceFusion: transpose(1, 2, 0); inswapper is not de-normalised; clip(0, 1); [:, :, ::-1] · 255
  // gives BGR. Our crop is RGB, so channel c is FaceFusion's channel 2 − c.
  double worst = 0;
  for (int y = 0; y < 128; ++y)
    for (int x = 0; x < 128; ++x)
      for (int ff = 0; ff < 3; ++ff) {
        const int model_channel = 2 - ff;  // ::-1 on the model's RGB output
        const double want = std::clamp<double>(v[(model_channel * 128 + y) * 128 + x], 0, 1) * 255;
        worst = std::max(worst, std::abs(crop.at(x, y, 2 - ff) - want));
      }
  EXPECT_LT(worst, 1e-4);
}

TEST(ArcfaceProcessing, InputTensorIsFaceFusionsFormula) {
  const Image rgb = random_image(112, 112, 3, 3);
  const Image bgr = to_bgr(rgb);
  const Tensor t = arcface_input_tensor(rgb);
  ASSERT_EQ(t.shape(), (Shape{1, 3, 112, 112}));
  const float* v = t.data<float>();
  // FaceFusion: crop / 127.5 − 1, then [:, :, ::-1].transpose(2, 0, 1).
  double worst = 0;
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 112; ++y)
      for (int x = 0; x < 112; ++x)
        worst = std::max(worst, std::abs(v[(c * 112 + y) * 112 + x] - (bgr.at(x, y, 2 - c) / 127.5 - 1)));
  EXPECT_LT(worst, 1e-6);
}

TEST(InswapperProcessing, SourceLatentIsEmbeddingTimesEmapOverItsNorm) {
  std::mt19937 rng(4);
  std::normal_distribution<float> d(0, 1);
  std::vector<float> emb(512), emap(512 * 512);
  for (float& x : emb) x = 3 * d(rng);  // raw embeddings are not unit length
  for (float& x : emap) x = d(rng) / 20;
  const auto got = inswapper_source_latent(emb, emap);
  ASSERT_EQ(got.size(), 512u);
  double norm = 0;
  for (float x : emb) norm += double(x) * x;
  norm = std::sqrt(norm);
  for (int i = 0; i < 512; ++i) {
    double dot = 0;  // (emb @ emap)[i] = Σ_j emb[j] · emap[j, i]
    for (int j = 0; j < 512; ++j) dot += double(emb[j]) * emap[j * 512 + i];
    ASSERT_NEAR(got[i], dot / norm, 1e-4) << i;
  }
  // No re-normalisation after emap (insightface's own code would make this 1).
  double latent_norm = 0;
  for (float x : got) latent_norm += double(x) * x;
  EXPECT_GT(std::abs(std::sqrt(latent_norm) - 1), 0.05);
}

// insightface's norm_crop2 at 128 shifts arcface_dst by +8 px in x only (diff_x = 8·ratio).
TEST(FaceFusionTemplates, Arcface128IsArcface112ShiftedBy8InX) {
  for (int i = 0; i < 5; ++i) {
    EXPECT_NEAR(kFaceFusionArcface128[i].x * 128, kArcface112Template[i].x + 8, 0.01);
    EXPECT_NEAR(kFaceFusionArcface128[i].y * 128, kArcface112Template[i].y, 0.01);
    EXPECT_NEAR(kFaceFusionArcface112V2[i].x * 112, kArcface112Template[i].x, 0.01);
    EXPECT_NEAR(kFaceFusionArcface112V2[i].y * 112, kArcface112Template[i].y, 0.01);
  }
}

TEST(InswapperProcessing, CropMapsTheLandmarksOntoTheTemplate) {
  // Landmarks that are an exact similarity image of the template come out exactly on it.
  const Affine place{0.9 * std::cos(0.3), -0.9 * std::sin(0.3), 210, 0.9 * std::sin(0.3), 0.9 * std::cos(0.3), 95};
  std::array<Point2f, 5> lmk;
  for (int i = 0; i < 5; ++i)
    lmk[i] = place.apply({kFaceFusionArcface128[i].x * 128, kFaceFusionArcface128[i].y * 128});
  const Image frame = random_image(400, 300, 3, 5);
  Affine m;
  const Image crop = face_swapper_crop(frame, lmk, spec_of("inswapper_128"), 128, &m);
  ASSERT_EQ(crop.width, 128);
  for (int i = 0; i < 5; ++i) {
    const Point2f p = m.apply(lmk[i]);
    EXPECT_NEAR(p.x, kFaceFusionArcface128[i].x * 128, 1e-2);
    EXPECT_NEAR(p.y, kFaceFusionArcface128[i].y * 128, 1e-2);
  }
  // Per pixel: crop(x, y) = bilinear sample of the frame at m⁻¹(x, y) (warpAffine's convention).
  const Affine inv = *m.inverse();
  for (int y = 10; y < 128; y += 23)
    for (int x = 7; x < 128; x += 19) {
      const double sx = inv.a * x + inv.b * y + inv.c, sy = inv.d * x + inv.e * y + inv.f;
      const int x0 = int(std::floor(sx)), y0 = int(std::floor(sy));
      const double fx = sx - x0, fy = sy - y0;
      for (int c = 0; c < 3; ++c) {
        const double want = (1 - fy) * ((1 - fx) * frame.at(x0, y0, c) + fx * frame.at(x0 + 1, y0, c)) +
                            fy * ((1 - fx) * frame.at(x0, y0 + 1, c) + fx * frame.at(x0 + 1, y0 + 1, c));
        EXPECT_NEAR(crop.at(x, y, c), want, 1.0) << x << "," << y;
      }
    }
}

// ---------------------------------------------------------------------------------------------
// (c) paste_back.

TEST(PasteBack, TranslationPutsTheCropInItsRectangleAndNothingElse) {
  const Image original = random_image(200, 150, 3, 6);
  Image frame = original;
  const ImageF crop(64, 64, 3, 200.f);
  const ImageF ones(64, 64, 1, 1.f);
  const Affine frame_to_crop{1, 0, -50, 0, 1, -40};
  const Rect r = paste_rect(200, 150, 64, 64, frame_to_crop);
  EXPECT_EQ(r.x, 50);
  EXPECT_EQ(r.y, 40);
  EXPECT_EQ(r.width, 64);
  EXPECT_EQ(r.height, 64);
  paste_back(frame, crop, ones, frame_to_crop);
  for (int y = 0; y < 150; ++y)
    for (int x = 0; x < 200; ++x)
      for (int c = 0; c < 3; ++c) {
        const bool inside = x >= 50 && x < 114 && y >= 40 && y < 104;
        ASSERT_EQ(frame.at(x, y, c), inside ? 200 : original.at(x, y, c)) << x << "," << y;
      }
}

TEST(PasteBack, BlendTruncatesLikeNumpy) {
  Image frame(20, 20, 3, 101);
  const ImageF crop(8, 8, 3, 200.f);
  const ImageF half(8, 8, 1, 0.5f);
  paste_back(frame, crop, half, Affine{1, 0, -6, 0, 1, -6});
  // 101·0.5 + 200·0.5 = 150.5 → astype(uint8) = 150 (rounding would give 151).
  EXPECT_EQ(frame.at(9, 9, 0), 150);
  EXPECT_EQ(frame.at(2, 2, 0), 101);
}

// paste_back warps and blends row by row on the worker threads: the same bytes as warping the
// whole crop and mask into the rectangle first (warp_affine_into) and blending after, on a rotated
// crop over a 1000-row rectangle (many rows per thread) with a soft mask.
TEST(PasteBack, RowByRowEqualsTheWholeWarpedPatch) {
  const Image original = random_image(1400, 1100, 3, 9);
  ImageF crop(256, 256, 3), mask = create_box_mask(256, 256, 0.3f, {});
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0.f, 255.f);
  for (float& v : crop.pixels) v = u(rng);
  const double s = 256.0 / 1000, a = -0.3;
  Affine frame_to_crop{s * std::cos(a), s * std::sin(a), 0, -s * std::sin(a), s * std::cos(a), 0};
  const Point2f centre = frame_to_crop.apply({700, 540});
  frame_to_crop.c = 128 - centre.x;
  frame_to_crop.f = 128 - centre.y;
  const Rect r = paste_rect(1400, 1100, 256, 256, frame_to_crop);
  ASSERT_GT(r.height, 1000);

  Affine crop_to_patch = *frame_to_crop.inverse();
  crop_to_patch.c -= r.x;
  crop_to_patch.f -= r.y;
  ImageF patch_mask(r.width, r.height, 1), patch(r.width, r.height, 3);
  warp_affine_into(mask, crop_to_patch, patch_mask, Rect{0, 0, r.width, r.height}, Border::kConstant);
  warp_affine_into(crop, crop_to_patch, patch, Rect{0, 0, r.width, r.height}, Border::kReplicate);
  Image want = original;
  for (int y = 0; y < r.height; ++y)
    for (int x = 0; x < r.width; ++x) {
      const float alpha = std::clamp(patch_mask.at(x, y, 0), 0.f, 1.f);
      for (int c = 0; c < 3; ++c) {
        std::uint8_t& out = want.at(r.x + x, r.y + y, c);
        out = static_cast<std::uint8_t>(std::clamp(out * (1.f - alpha) + patch.at(x, y, c) * alpha, 0.f, 255.f));
      }
    }
  Image got = original;
  paste_back(got, crop, mask, frame_to_crop);
  EXPECT_EQ(got.pixels, want.pixels);
  EXPECT_NE(got.pixels, original.pixels);
}

TEST(PasteBack, RotatedScaledCropTouchesOnlyItsBoundingRectangle) {
  const Image original = random_image(300, 240, 3, 7);
  Image frame = original;
  const ImageF crop(128, 128, 3, 17.f);
  const ImageF mask = create_box_mask(128, 128, 0.3f, {});
  // A face at about (150, 110), 1.3× larger than the crop, rotated by 0.4 rad.
  const double s = 1 / 1.3, a = 0.4;
  Affine frame_to_crop{s * std::cos(a), s * std::sin(a), 0, -s * std::sin(a), s * std::cos(a), 0};
  const Point2f centre = frame_to_crop.apply({150, 110});
  frame_to_crop.c = 64 - centre.x;
  frame_to_crop.f = 64 - centre.y;
  const Rect r = paste_rect(300, 240, 128, 128, frame_to_crop);
  // Hand bounding box: the crop's corners through the inverse.
  const Affine inv = *frame_to_crop.inverse();
  double min_x = 1e9, max_x = -1e9, min_y = 1e9, max_y = -1e9;
  for (auto [cx, cy] : {std::pair{0., 0.}, {128., 0.}, {128., 128.}, {0., 128.}}) {
    const double x = inv.a * cx + inv.b * cy + inv.c, y = inv.d * cx + inv.e * cy + inv.f;
    min_x = std::min(min_x, x), max_x = std::max(max_x, x), min_y = std::min(min_y, y), max_y = std::max(max_y, y);
  }
  EXPECT_EQ(r.x, int(std::floor(min_x)));
  EXPECT_EQ(r.y, int(std::floor(min_y)));
  EXPECT_EQ(r.x + r.width, int(std::ceil(max_x)));
  EXPECT_EQ(r.y + r.height, int(std::ceil(max_y)));
  paste_back(frame, crop, mask, frame_to_crop);
  int changed_inside = 0;
  for (int y = 0; y < 240; ++y)
    for (int x = 0; x < 300; ++x) {
      const bool inside = x >= r.x && x < r.x + r.width && y >= r.y && y < r.y + r.height;
      const Point2f p = frame_to_crop.apply({float(x), float(y)});
      for (int c = 0; c < 3; ++c) {
        if (!inside) {
          ASSERT_EQ(frame.at(x, y, c), original.at(x, y, c)) << x << "," << y;
        } else if (p.x > 40 && p.x < 88 && p.y > 40 && p.y < 88) {
          ASSERT_EQ(frame.at(x, y, c), 17) << x << "," << y;  // mask 1 in the middle
          ++changed_inside;
        } else if (p.x < -1 || p.y < -1 || p.x > 128 || p.y > 128) {
          // Beyond the bilinear reach of the crop the warped mask is exactly 0. (Just inside it the
          // blurred mask is tiny but not 0, and truncation then lowers a pixel by 1, as in FaceFusion.)
          ASSERT_EQ(frame.at(x, y, c), original.at(x, y, c)) << x << "," << y;
        }
      }
    }
  EXPECT_GT(changed_inside, 1000);
}

TEST(PasteBack, ClipsToTheFrame) {
  const Image original = random_image(50, 40, 3, 8);
  Image frame = original;
  const ImageF crop(64, 64, 3, 9.f);
  const ImageF ones(64, 64, 1, 1.f);
  const Affine frame_to_crop{1, 0, 30, 0, 1, 20};  // crop origin at (−30, −20)
  const Rect r = paste_rect(50, 40, 64, 64, frame_to_crop);
  EXPECT_EQ(r.x, 0);
  EXPECT_EQ(r.y, 0);
  EXPECT_EQ(r.width, 34);
  EXPECT_EQ(r.height, 40);
  paste_back(frame, crop, ones, frame_to_crop);
  EXPECT_EQ(frame.at(33, 39, 0), 9);
  EXPECT_EQ(frame.at(34, 0, 0), original.at(34, 0, 0));
  // Entirely outside: nothing happens.
  Image untouched = original;
  paste_back(untouched, crop, ones, Affine{1, 0, 500, 0, 1, 0});
  EXPECT_EQ(untouched.pixels, original.pixels);
}

// ---------------------------------------------------------------------------------------------
// The FaceSwapper seam over the classical swapper (default models, no replicas).

TEST(FaceSwapperInterface, ClassicalAdapterSwapsThroughTheInterface) {
  const Image astronaut = read_image(kMedia + "astronaut.png").value();
  auto ort = make_engine("ort").value();
  AnalyserOptions o;
  o.models_dir = kModels;
  auto analyser = FaceAnalyser::load(*ort, o);
  ASSERT_TRUE(analyser.is_ok()) << analyser.status().to_string();
  auto faces = (*analyser)->analyse(astronaut, /*embed=*/false);
  ASSERT_TRUE(faces.is_ok() && !faces->empty());
  const Image flipped = warp_affine(astronaut, Affine{-1, 0, 511, 0, 1, 0}, 512, 512);  // a different source
  auto source_faces = (*analyser)->analyse(flipped, false);
  ASSERT_TRUE(source_faces.is_ok() && !source_faces->empty());
  auto classical = ClassicalSwapper::create(flipped, source_faces->front());
  ASSERT_TRUE(classical.is_ok()) << classical.status().to_string();
  std::unique_ptr<FaceSwapper> swapper = std::make_unique<ClassicalFaceSwapper>(std::move(*classical), SwapOptions{});
  Image frame = astronaut;
  TimeLedger ledger;
  ASSERT_TRUE(swapper->swap(frame, faces->front(), &ledger).is_ok());
  EXPECT_NE(frame.pixels, astronaut.pixels);
  EXPECT_GT(ledger.seconds("swap"), 0.0);
  Image untouched = astronaut;
  EXPECT_FALSE(swapper->swap(untouched, Face{}, nullptr).is_ok());
  EXPECT_EQ(untouched.pixels, astronaut.pixels);
}

// ---------------------------------------------------------------------------------------------
// (b), (d) On replicas.

TEST(InswapperReplica, EmapIsTheLastInitializer) {
  std::string why;
  const std::string dir = test::replica_dir(&why);
  if (dir.empty()) GTEST_SKIP() << why;
  auto got = read_last_initializer(dir + "/inswapper_128.onnx");
  ASSERT_TRUE(got.is_ok()) << got.status().to_string();
  auto want = read_npy(dir + "/emap.npy");
  ASSERT_TRUE(want.is_ok()) << want.status().to_string();
  ASSERT_EQ(got->shape(), (Shape{512, 512}));
  ASSERT_EQ(want->shape(), got->shape());
  ASSERT_EQ(std::memcmp(got->raw(), want->raw(), 512 * 512 * sizeof(float)), 0);
  std::FILE* f = std::fopen((dir + "/emap.name").c_str(), "r");
  ASSERT_NE(f, nullptr);
  char name[64] = {};
  ASSERT_GT(std::fread(name, 1, sizeof(name) - 1, f), 0u);
  std::fclose(f);
  EXPECT_STREQ(name, "emap");
}

TEST(InswapperReplica, RejectsAModelWithTheWrongContract) {
  std::string why;
  const std::string dir = test::replica_dir(&why);
  if (dir.empty()) GTEST_SKIP() << why;
  auto engine = make_engine("ort").value();
  FaceSwapperModelSpec as_arcface = spec_of("inswapper_128");
  as_arcface.name = "arcface_w600k_r50";  // the file exists, its contract is not a swapper's
  auto wrong = FaceSwapperModel::load(*engine, dir, as_arcface, {});
  ASSERT_FALSE(wrong.is_ok());
  EXPECT_NE(wrong.status().to_string().find("arcface_w600k_r50.onnx: not a arcface_w600k_r50 face swapper model"),
            std::string::npos)
      << wrong.status().to_string();
  auto missing = FaceSwapperModel::load(*engine, dir, spec_of("hyperswap_1a_256"), {});
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().to_string().find("hyperswap_1a_256.onnx: no such file"), std::string::npos)
      << missing.status().to_string();
  auto model = FaceSwapperModel::load(*engine, dir, spec_of("inswapper_128"), {});
  ASSERT_TRUE(model.is_ok()) << model.status().to_string();
  std::shared_ptr<FaceSwapperModel> shared = std::move(*model);
  auto short_source = FaceFusionFaceSwapper::create(shared, {std::vector<float>(128, 1.f)}, FaceMasker{}, 128);
  EXPECT_FALSE(short_source.is_ok());
  auto bad_boost = FaceFusionFaceSwapper::create(shared, {std::vector<float>(512, 1.f)}, FaceMasker{}, 200);
  EXPECT_FALSE(bad_boost.is_ok());
  // A target without landmarks is refused, and the frame is left alone.
  auto swapper = FaceFusionFaceSwapper::create(shared, {std::vector<float>(512, 1.f)}, FaceMasker{}, 128);
  ASSERT_TRUE(swapper.is_ok());
  Image frame = random_image(64, 64, 3, 9);
  const Image before = frame;
  EXPECT_FALSE((*swapper)->swap(frame, Face{}, nullptr).is_ok());
  EXPECT_EQ(frame.pixels, before.pixels);
}

struct EngineRun {
  ArcfaceEmbedding id;
  ImageF crop;  // the model's swapped crop, 0..255
  Image frame;  // after paste-back
  double ms_per_face = 0;
};

TEST(InswapperReplica, EndToEndOnBothEnginesAgrees) {
  std::string why;
  const std::string dir = test::replica_dir(&why);
  if (dir.empty()) GTEST_SKIP() << why;
  const Image astronaut = read_image(kMedia + "astronaut.png").value();
  Face face;
  {
    auto ort = make_engine("ort").value();
    AnalyserOptions o;
    o.models_dir = kModels;
    auto analyser = FaceAnalyser::load(*ort, o);
    ASSERT_TRUE(analyser.is_ok()) << analyser.status().to_string();
    auto faces = (*analyser)->analyse(astronaut, /*embed=*/false);
    ASSERT_TRUE(faces.is_ok() && !faces->empty());
    face = faces->front();
  }
  std::vector<EngineRun> runs;
  for (const char* name : {"ort", "native"}) {
    SCOPED_TRACE(name);
    auto engine = make_engine(name).value();
    SessionOptions so;
    auto arcface = ArcfaceRecognizer::load(*engine, dir + "/arcface_w600k_r50.onnx", so);
    ASSERT_TRUE(arcface.is_ok()) << arcface.status().to_string();
    auto model = FaceSwapperModel::load(*engine, dir, spec_of("inswapper_128"), so);
    ASSERT_TRUE(model.is_ok()) << model.status().to_string();
    EngineRun run;
    auto id = (*arcface)->embed(astronaut, face.landmarks5);  // the astronaut is her own source
    ASSERT_TRUE(id.is_ok()) << id.status().to_string();
    run.id = *id;
    ASSERT_EQ(run.id.embedding.size(), 512u);
    std::shared_ptr<FaceSwapperModel> shared = std::move(*model);
    // The swapped crop itself, for a tight comparison (the frame is truncated to uint8); this
    // first run also warms the session up before the timed one.
    const Image crop = face_swapper_crop(astronaut, face.landmarks5, shared->spec(), 128);
    auto source = shared->source_tensor({run.id.embedding});
    ASSERT_TRUE(source.is_ok()) << source.status().to_string();
    auto swapped = shared->swap(crop, *source);
    ASSERT_TRUE(swapped.is_ok()) << swapped.status().to_string();
    run.crop = *swapped;
    auto swapper = FaceFusionFaceSwapper::create(shared, {run.id.embedding}, FaceMasker{}, 128);
    ASSERT_TRUE(swapper.is_ok()) << swapper.status().to_string();
    TimeLedger ledger;
    run.frame = astronaut;
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE((*swapper)->swap(run.frame, face, &ledger).is_ok());
    run.ms_per_face = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("inswapper_128 replica, engine %s: %.1f ms per face (crop + model %.1f ms, mask + paste %.2f ms)\n",
                name, run.ms_per_face, 1e3 * ledger.seconds("swap"), 1e3 * ledger.seconds("blend"));
    runs.push_back(std::move(run));
  }
  ASSERT_EQ(runs.size(), 2u);
  const EngineRun &a = runs[0], &b = runs[1];
  double worst_emb = 0, scale = 0;
  for (int i = 0; i < 512; ++i) {
    worst_emb = std::max(worst_emb, double(std::abs(a.id.embedding[i] - b.id.embedding[i])));
    scale = std::max(scale, double(std::abs(a.id.embedding[i])));
  }
  // Random weights make the raw embedding large, so its agreement is relative to its size.
  EXPECT_LT(worst_emb / scale, 1e-3) << "arcface raw embeddings differ (max |value| " << scale << ")";
  double worst_crop = 0;
  for (std::size_t i = 0; i < a.crop.pixels.size(); ++i)
    worst_crop = std::max(worst_crop, double(std::abs(a.crop.pixels[i] - b.crop.pixels[i])) / 255);
  EXPECT_LT(worst_crop, 1e-3) << "inswapper outputs differ (0..1 scale)";
  // The frames: same sub-rectangle changed, pixels within 1 (truncation may flip at .0 edges).
  int worst_px = 0, changed = 0;
  for (std::size_t i = 0; i < a.frame.pixels.size(); ++i) {
    worst_px = std::max(worst_px, std::abs(int(a.frame.pixels[i]) - int(b.frame.pixels[i])));
    changed += a.frame.pixels[i] != astronaut.pixels[i];
  }
  EXPECT_LE(worst_px, 1);
  EXPECT_GT(changed, 1000) << "the swap changed (almost) nothing";
  std::printf("engines agree: embedding max |diff| %.2e of max |value| %.2e, crop max |diff| %.2e, frame max |diff| %d\n", worst_emb,
              scale, worst_crop, worst_px);
}

}  // namespace
}  // namespace fswap
