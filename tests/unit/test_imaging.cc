// Imaging: conversions, warps, resizing, filters, colour and blending, against OpenCV where
// it is available (OpenCV images are used as plain arrays: channel order is irrelevant).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "imaging/blend.h"
#include "imaging/filter.h"
#include "imaging/geometry.h"
#include "imaging/image.h"
#include "imaging/transform.h"

#if FSWAP_HAVE_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#endif

namespace fswap {
namespace {

// Smooth content (gradient ≤ 15 grey levels per pixel), so sub-pixel rounding differences
// between implementations stay far below one grey level.
Image smooth_image(int w, int h, int channels) {
  Image img(w, h, channels);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < channels; ++c) {
        const double v = 128 + 60 * std::sin(0.11 * x + 0.07 * y + c) + 50 * std::cos(0.05 * x - 0.13 * y + 2 * c);
        img.at(x, y, c) = static_cast<std::uint8_t>(std::clamp(std::lround(v), 0L, 255L));
      }
  return img;
}

ImageF random_float_image(int w, int h, int channels, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0, 255);
  ImageF img(w, h, channels);
  for (float& v : img.pixels) v = u(rng);
  return img;
}

Affine similarity(double scale, double angle, double tx, double ty) {
  Affine m;
  m.a = scale * std::cos(angle);
  m.b = -scale * std::sin(angle);
  m.d = scale * std::sin(angle);
  m.e = scale * std::cos(angle);
  m.c = tx;
  m.f = ty;
  return m;
}

#if FSWAP_HAVE_OPENCV
template <class T>
cv::Mat to_mat(const ImageT<T>& img) {
  const int depth = std::is_same_v<T, float> ? CV_32F : CV_8U;
  return cv::Mat(img.height, img.width, CV_MAKETYPE(depth, img.channels), const_cast<T*>(img.pixels.data())).clone();
}
cv::Mat to_cv_affine(const Affine& m) { return (cv::Mat_<double>(2, 3) << m.a, m.b, m.c, m.d, m.e, m.f); }

template <class T>
double mat_value(const cv::Mat& m, int x, int y, int c) {
  return static_cast<double>(m.ptr<T>(y)[x * m.channels() + c]);
}
#endif

TEST(Image, IntersectConvertCrop) {
  const Rect r = intersect({10, 20, 30, 40}, {25, 5, 100, 30});
  EXPECT_EQ(r.x, 25);
  EXPECT_EQ(r.y, 20);
  EXPECT_EQ(r.width, 15);
  EXPECT_EQ(r.height, 15);
  EXPECT_TRUE(intersect({0, 0, 5, 5}, {5, 0, 5, 5}).empty());
  EXPECT_TRUE(intersect({0, 0, 5, 5}, {20, 20, 5, 5}).empty());

  ImageF f(4, 1, 1);
  f.pixels = {-3.0f, 12.49f, 12.5f, 300.0f};
  const Image u = to_u8(f);
  EXPECT_EQ(u.pixels, (std::vector<std::uint8_t>{0, 12, 13, 255}));
  const ImageF back = to_float(u);
  EXPECT_EQ(back.pixels, (std::vector<float>{0, 12, 13, 255}));
  f.pixels[0] = std::nanf("");
  EXPECT_EQ(to_u8(f).pixels[0], 0);

  const Image img = smooth_image(20, 10, 3);
  const Image c = crop(img, {3, 2, 5, 4});
  ASSERT_EQ(c.width, 5);
  ASSERT_EQ(c.height, 4);
  ASSERT_EQ(c.channels, 3);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 5; ++x)
      for (int ch = 0; ch < 3; ++ch) EXPECT_EQ(c.at(x, y, ch), img.at(x + 3, y + 2, ch));
  const ImageF cf = crop(to_float(img), {0, 0, 20, 10});
  EXPECT_EQ(cf.pixels, to_float(img).pixels);
}

// place is crop's way back: a crop placed where it came from gives the image again, and only
// its rectangle changes.
TEST(Image, PlaceWritesTheRectangleAlone) {
  const Image img = smooth_image(20, 10, 3);
  Image blank(20, 10, 3);
  place(crop(img, {3, 2, 5, 4}), blank, 3, 2);
  for (int y = 0; y < 10; ++y)
    for (int x = 0; x < 20; ++x)
      for (int ch = 0; ch < 3; ++ch) {
        const bool inside = x >= 3 && x < 8 && y >= 2 && y < 6;
        EXPECT_EQ(blank.at(x, y, ch), inside ? img.at(x, y, ch) : 0) << x << "," << y;
      }
  Image copy(20, 10, 3);
  place(img, copy, 0, 0);
  EXPECT_EQ(copy.pixels, img.pixels);
}

#if FSWAP_HAVE_OPENCV
template <class T>
void check_warp_against_opencv(Border border, double tol) {
  const Image src8 = smooth_image(160, 120, 3);
  ImageT<T> src;
  if constexpr (std::is_same_v<T, float>) src = to_float(src8);
  else src = src8;
  // Rotate, scale and shift so part of the output samples outside src.
  const Affine m = similarity(0.85, 0.3, 20.5, -10.25);
  const ImageT<T> ours = warp_affine(src, m, 150, 130, border);
  cv::Mat theirs;
  cv::warpAffine(to_mat(src), theirs, to_cv_affine(m), cv::Size(150, 130), cv::INTER_LINEAR,
                 border == Border::kReplicate ? cv::BORDER_REPLICATE : cv::BORDER_CONSTANT, cv::Scalar::all(0));
  const Affine inv = *m.inverse();
  int compared = 0, outside = 0;
  for (int y = 0; y < 130; ++y)
    for (int x = 0; x < 150; ++x) {
      const Point2f s = inv.apply({static_cast<float>(x), static_cast<float>(y)});
      const bool interior = s.x >= 1 && s.y >= 1 && s.x <= 158 && s.y <= 118;
      const bool far_out = s.x < -1.5 || s.y < -1.5 || s.x > 160.5 || s.y > 120.5;
      for (int c = 0; c < 3; ++c) {
        const double a = static_cast<double>(ours.at(x, y, c)), b = mat_value<T>(theirs, x, y, c);
        if (interior) {
          ASSERT_NEAR(a, b, tol) << "at " << x << "," << y;
          ++compared;
        } else if (far_out && border == Border::kConstant) {
          ASSERT_EQ(a, 0);
          ++outside;
        } else if (far_out) {
          ASSERT_NEAR(a, b, tol) << "replicated border at " << x << "," << y;
        }
      }
    }
  EXPECT_GT(compared, 3 * 10000);
  if (border == Border::kConstant) {
    EXPECT_GT(outside, 100);
  }
}

TEST(WarpAffine, MatchesOpenCvU8) {
  check_warp_against_opencv<std::uint8_t>(Border::kReplicate, 1.0);
  check_warp_against_opencv<std::uint8_t>(Border::kConstant, 1.0);
}
TEST(WarpAffine, MatchesOpenCvFloat) {
  check_warp_against_opencv<float>(Border::kReplicate, 0.5);
  check_warp_against_opencv<float>(Border::kConstant, 0.5);
}
#else
TEST(WarpAffine, MatchesOpenCvU8) { GTEST_SKIP() << "built without OpenCV"; }
TEST(WarpAffine, MatchesOpenCvFloat) { GTEST_SKIP() << "built without OpenCV"; }
#endif

// Straightforward per-pixel bilinear reference, for transforms OpenCV isn't needed to judge.
double reference_sample(const Image& src, double sx, double sy, int c, bool replicate) {
  const int x0 = static_cast<int>(std::floor(sx)), y0 = static_cast<int>(std::floor(sy));
  const double fx = sx - x0, fy = sy - y0;
  auto tap = [&](int x, int y) -> double {
    if (replicate) return src.at(std::clamp(x, 0, src.width - 1), std::clamp(y, 0, src.height - 1), c);
    if (x < 0 || y < 0 || x >= src.width || y >= src.height) return 0.0;
    return src.at(x, y, c);
  };
  const double top = tap(x0, y0) * (1 - fx) + tap(x0 + 1, y0) * fx;
  const double bottom = tap(x0, y0 + 1) * (1 - fx) + tap(x0 + 1, y0 + 1) * fx;
  return top * (1 - fy) + bottom * fy;
}

TEST(WarpAffine, RandomTransformsMatchReference) {
  std::mt19937 rng(21);
  std::uniform_real_distribution<double> u(-1, 1);
  for (int channels : {1, 2, 3, 4}) {
    Image src(23, 17, channels);
    for (auto& v : src.pixels) v = static_cast<std::uint8_t>(rng());
    for (int trial = 0; trial < 40; ++trial) {
      Affine m;  // general affine: shear, flips, strong down- and up-scaling
      m.a = u(rng) * 3, m.b = u(rng) * 3, m.c = u(rng) * 40;
      m.d = u(rng) * 3, m.e = u(rng) * 3, m.f = u(rng) * 40;
      const auto inv = m.inverse();
      if (!inv) continue;
      const bool replicate = trial % 2 == 0;
      const Image out = warp_affine(src, m, 45, 37, replicate ? Border::kReplicate : Border::kConstant);
      for (int y = 0; y < 37; ++y)
        for (int x = 0; x < 45; ++x) {
          const double sx = inv->a * x + inv->b * y + inv->c, sy = inv->d * x + inv->e * y + inv->f;
          for (int c = 0; c < channels; ++c)
            ASSERT_NEAR(out.at(x, y, c), reference_sample(src, sx, sy, c, replicate), 1.0)
                << "trial " << trial << " at " << x << "," << y;
        }
    }
  }
}

TEST(WarpAffine, IdentityAndHalfPixelShift) {
  const Image src = smooth_image(33, 17, 1);
  EXPECT_EQ(warp_affine(src, Affine{}, 33, 17).pixels, src.pixels);
  ImageF ramp(8, 1, 1);
  for (int x = 0; x < 8; ++x) ramp.at(x, 0) = 10.0f * x;
  Affine shift;
  shift.c = 0.5;  // dst(x) = src(x − 0.5)
  const ImageF out = warp_affine(ramp, shift, 8, 1, Border::kReplicate);
  EXPECT_FLOAT_EQ(out.at(0, 0), 0.0f);  // replicated left edge
  for (int x = 1; x < 8; ++x) EXPECT_FLOAT_EQ(out.at(x, 0), 10.0f * x - 5.0f);
}

TEST(WarpAffine, IntoWritesOnlyTheClippedRegion) {
  const Image src = smooth_image(64, 48, 3);
  const Affine m = similarity(1.5, -0.2, 30, 40);
  Image dst(100, 80, 3, 77);
  const Rect region{60, 50, 70, 20};  // partly outside dst
  warp_affine_into(src, m, dst, region, Border::kReplicate);
  const Image full = warp_affine(src, m, 100, 80, Border::kReplicate);
  for (int y = 0; y < 80; ++y)
    for (int x = 0; x < 100; ++x)
      for (int c = 0; c < 3; ++c) {
        const bool inside = x >= 60 && y >= 50 && y < 70;
        ASSERT_EQ(dst.at(x, y, c), inside ? full.at(x, y, c) : 77) << x << "," << y;
      }
  // A singular transform clears the region instead of sampling garbage.
  Affine singular;
  singular.a = 0;
  Image dst2(10, 10, 3, 9);
  warp_affine_into(src, singular, dst2, {2, 2, 3, 3});
  EXPECT_EQ(dst2.at(3, 3, 1), 0);
  EXPECT_EQ(dst2.at(0, 0, 1), 9);
}

// Renders each triangle into its own layer and counts how often each pixel is written.
ImageF triangle_coverage(const std::vector<Point2f>& pts, const std::vector<Triangle>& tris, int w, int h) {
  const ImageF ones(w, h, 1, 1.0f);
  ImageF count(w, h, 1);
  for (const Triangle& t : tris) {
    ImageF layer(w, h, 1);
    warp_mesh(ones, pts, layer, pts, {t});
    for (std::size_t i = 0; i < layer.pixels.size(); ++i) count.pixels[i] += layer.pixels[i];
  }
  return count;
}

TEST(WarpMesh, SharedEdgesCoverEachPixelExactlyOnce) {
  // Two triangles sharing a diagonal whose line passes through many pixel centres.
  const std::vector<Point2f> quad{{2, 3}, {40, 3}, {40, 41}, {2, 41}};
  const ImageF c1 = triangle_coverage(quad, {{0, 1, 2}, {0, 2, 3}}, 48, 48);
  for (int y = 0; y < 48; ++y)
    for (int x = 0; x < 48; ++x) {
      const float want = (x >= 2 && x <= 40 && y >= 3 && y <= 41) ? 1.0f : 0.0f;
      const bool on_outer_edge = x == 2 || x == 40 || y == 3 || y == 41;
      if (on_outer_edge) EXPECT_LE(c1.at(x, y), 1.0f);
      else EXPECT_EQ(c1.at(x, y), want) << x << "," << y;
    }
  // A whole Delaunay mesh with fractional vertices, including points on pixel centres.
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> u(0, 90);
  std::vector<Point2f> pts{{0, 0}, {90, 0}, {90, 90}, {0, 90}, {45, 45}, {30, 60}, {60, 30}};
  for (int i = 0; i < 40; ++i) pts.push_back({u(rng), u(rng)});
  const auto tris = delaunay(pts);
  const ImageF c2 = triangle_coverage(pts, tris, 100, 100);
  for (int y = 0; y < 100; ++y)
    for (int x = 0; x < 100; ++x) {
      if (x <= 90 && y <= 90 && x > 0 && y > 0 && x < 90 && y < 90) EXPECT_EQ(c2.at(x, y), 1.0f) << x << "," << y;
      else EXPECT_LE(c2.at(x, y), 1.0f) << x << "," << y;
    }
}

TEST(WarpMesh, SamplesLikeWarpAffine) {
  const Image src = smooth_image(80, 80, 3);
  const Affine m = similarity(1.2, 0.25, 5, -8);
  const std::vector<Point2f> src_tri{{10, 12}, {70, 20}, {30, 75}};
  const std::vector<Point2f> dst_tri{m.apply(src_tri[0]), m.apply(src_tri[1]), m.apply(src_tri[2])};
  Image dst(100, 100, 3, 0);
  warp_mesh(src, src_tri, dst, dst_tri, {{0, 1, 2}});
  const Image full = warp_affine(src, m, 100, 100);
  int covered = 0;
  for (int y = 0; y < 100; ++y)
    for (int x = 0; x < 100; ++x)
      if (dst.at(x, y, 0) != 0 || dst.at(x, y, 1) != 0) {
        ++covered;
        for (int c = 0; c < 3; ++c) ASSERT_NEAR(dst.at(x, y, c), full.at(x, y, c), 1);
      }
  // Area of the dst triangle, 1.44 × the src triangle's 1830.
  EXPECT_NEAR(covered, 1.44 * 1830, 80);
}

// The whole mesh in one pass writes what its triangles write one after another, folded
// (overlapping) triangles included: the later triangle wins in both.
TEST(WarpMesh, OnePassEqualsTheTrianglesInTurn) {
  const Image src = smooth_image(120, 120, 3);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(5, 115), jitter(-9, 9);
  std::vector<Point2f> src_pts{{0, 0}, {119, 0}, {119, 119}, {0, 119}};
  for (int i = 0; i < 30; ++i) src_pts.push_back({u(rng), u(rng)});
  const std::vector<Triangle> mesh = delaunay(src_pts);
  // Jittered by up to 9 px, so some triangles fold over their neighbours, and shifted so part
  // of the mesh falls outside dst.
  std::vector<Point2f> dst_pts;
  for (const Point2f& p : src_pts) dst_pts.push_back({p.x * 1.3f + jitter(rng) - 20, p.y * 1.3f + jitter(rng) + 4});
  Image one_pass(140, 150, 3, 17), in_turn(140, 150, 3, 17);
  warp_mesh(src, src_pts, one_pass, dst_pts, mesh);
  for (const Triangle& t : mesh) warp_mesh(src, src_pts, in_turn, dst_pts, {t});
  EXPECT_EQ(one_pass.pixels, in_turn.pixels);
  int written = 0;
  for (std::uint8_t v : one_pass.pixels) written += v != 17;
  EXPECT_GT(written, 140 * 150);  // most of the frame is covered
}

#if FSWAP_HAVE_OPENCV
template <class T>
void check_resize(int sw, int sh, int dw, int dh, Interp interp, double tol) {
  const Image src8 = smooth_image(sw, sh, 3);
  ImageT<T> src;
  if constexpr (std::is_same_v<T, float>) src = to_float(src8);
  else src = src8;
  const ImageT<T> ours = resize(src, dw, dh, interp);
  ASSERT_EQ(ours.width, dw);
  ASSERT_EQ(ours.height, dh);
  cv::Mat theirs;
  cv::resize(to_mat(src), theirs, cv::Size(dw, dh), 0, 0, interp == Interp::kArea ? cv::INTER_AREA : cv::INTER_LINEAR);
  double worst = 0;
  for (int y = 0; y < dh; ++y)
    for (int x = 0; x < dw; ++x)
      for (int c = 0; c < 3; ++c)
        worst = std::max(worst, std::abs(static_cast<double>(ours.at(x, y, c)) - mat_value<T>(theirs, x, y, c)));
  EXPECT_LE(worst, tol) << sw << "x" << sh << " -> " << dw << "x" << dh;
}

TEST(Resize, BilinearMatchesOpenCv) {
  check_resize<std::uint8_t>(160, 120, 97, 61, Interp::kBilinear, 1);
  check_resize<std::uint8_t>(64, 48, 150, 111, Interp::kBilinear, 1);
  check_resize<float>(160, 120, 97, 61, Interp::kBilinear, 0.05);
  check_resize<float>(64, 48, 150, 111, Interp::kBilinear, 0.05);
}

TEST(Resize, AreaMatchesOpenCvWhenShrinking) {
  check_resize<std::uint8_t>(160, 120, 80, 60, Interp::kArea, 1);
  check_resize<std::uint8_t>(192, 108, 56, 41, Interp::kArea, 1);
  check_resize<float>(160, 120, 80, 60, Interp::kArea, 0.01);
  check_resize<float>(192, 108, 56, 41, Interp::kArea, 0.01);
}
#else
TEST(Resize, BilinearMatchesOpenCv) { GTEST_SKIP() << "built without OpenCV"; }
TEST(Resize, AreaMatchesOpenCvWhenShrinking) { GTEST_SKIP() << "built without OpenCV"; }
#endif

TEST(Resize, NearestAndIdentity) {
  const Image src = smooth_image(30, 20, 3);
  EXPECT_EQ(resize(src, 30, 20, Interp::kBilinear).pixels, src.pixels);
  EXPECT_EQ(resize(src, 30, 20, Interp::kArea).pixels, src.pixels);
  const Image up = resize(src, 60, 40, Interp::kNearest);
  for (int y = 0; y < 40; ++y)
    for (int x = 0; x < 60; ++x) ASSERT_EQ(up.at(x, y, 2), src.at(x / 2, y / 2, 2));
  const Image flat(17, 9, 3, 200);
  for (const Image& r : {resize(flat, 5, 4, Interp::kArea), resize(flat, 40, 31), resize(flat, 6, 3)})
    for (auto v : r.pixels) ASSERT_EQ(v, 200);
}

#if FSWAP_HAVE_OPENCV
void check_blur(int w, int h, int channels, float sigma) {
  ImageF img = random_float_image(w, h, channels, 5);
  const int radius = static_cast<int>(std::ceil(3.0 * sigma));
  cv::Mat theirs;
  cv::GaussianBlur(to_mat(img), theirs, cv::Size(2 * radius + 1, 2 * radius + 1), sigma, sigma, cv::BORDER_REFLECT_101);
  gaussian_blur(img, sigma);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < channels; ++c) {
        const double b = mat_value<float>(theirs, x, y, c);
        ASSERT_NEAR(img.at(x, y, c), b, 1e-3 * std::max(1.0, std::abs(b))) << w << "x" << h << " σ=" << sigma;
      }
}

TEST(GaussianBlur, MatchesOpenCvReflect101) {
  check_blur(120, 90, 1, 8.0f);
  check_blur(64, 50, 3, 1.5f);
  check_blur(31, 27, 1, 0.6f);
  check_blur(40, 35, 1, 5.0f);  // radius 15: the kernel spans most of the image
}
#else
TEST(GaussianBlur, MatchesOpenCvReflect101) { GTEST_SKIP() << "built without OpenCV"; }
#endif

TEST(GaussianBlur, PreservesConstantAndMass) {
  ImageF flat(20, 10, 2, 3.5f);
  gaussian_blur(flat, 4.0f);
  for (float v : flat.pixels) ASSERT_NEAR(v, 3.5f, 1e-5);
  ImageF impulse(41, 41, 1);
  impulse.at(20, 20) = 1.0f;
  gaussian_blur(impulse, 2.0f);
  double sum = 0;
  for (float v : impulse.pixels) sum += v;
  EXPECT_NEAR(sum, 1.0, 1e-5);
  EXPECT_NEAR(impulse.at(20, 20), 1.0 / (2 * M_PI * 4), 1e-3);
  ImageF same = impulse;
  gaussian_blur(same, 0.0f);
  EXPECT_EQ(same.pixels, impulse.pixels);
}

TEST(Colour, GrayAndLabReferenceValues) {
  Image rgb(4, 1, 3);
  const std::uint8_t px[4][3] = {{255, 255, 255}, {255, 0, 0}, {0, 0, 0}, {10, 200, 30}};
  for (int x = 0; x < 4; ++x)
    for (int c = 0; c < 3; ++c) rgb.at(x, 0, c) = px[x][c];
  const Image gray = rgb_to_gray(rgb);
  EXPECT_EQ(gray.at(0, 0), 255);
  EXPECT_EQ(gray.at(1, 0), 76);  // 0.299 · 255
  EXPECT_EQ(gray.at(2, 0), 0);
  EXPECT_EQ(gray.at(3, 0), 124);  // 2.99 + 117.4 + 3.42
  const ImageF lab = rgb_to_lab(rgb);
  EXPECT_NEAR(lab.at(0, 0, 0), 100.0, 0.01);
  EXPECT_NEAR(lab.at(0, 0, 1), 0.0, 0.01);
  EXPECT_NEAR(lab.at(0, 0, 2), 0.0, 0.01);
  EXPECT_NEAR(lab.at(1, 0, 0), 53.24, 0.05);  // sRGB red
  EXPECT_NEAR(lab.at(1, 0, 1), 80.09, 0.1);
  EXPECT_NEAR(lab.at(1, 0, 2), 67.20, 0.1);
  EXPECT_NEAR(lab.at(2, 0, 0), 0.0, 1e-4);
}

TEST(Colour, LabRoundTripIsExact) {
  std::mt19937 rng(8);
  Image rgb(256, 64, 3);
  for (auto& v : rgb.pixels) v = static_cast<std::uint8_t>(rng());
  for (int x = 0; x < 256; ++x)
    for (int c = 0; c < 3; ++c) rgb.at(x, 0, c) = static_cast<std::uint8_t>(x);  // the grey ramp
  EXPECT_EQ(lab_to_rgb(rgb_to_lab(rgb)).pixels, rgb.pixels);
  // Out-of-gamut Lab clamps instead of wrapping.
  ImageF lab(2, 1, 3);
  lab.pixels = {150, 0, 0, 50, 300, -300};
  const Image out = lab_to_rgb(lab);
  EXPECT_EQ(out.at(0, 0, 0), 255);
  EXPECT_EQ(out.at(1, 0, 1), 0);
}

#if FSWAP_HAVE_OPENCV
TEST(Colour, MatchesOpenCv) {
  Image rgb(128, 64, 3);
  std::mt19937 rng(6);
  for (auto& v : rgb.pixels) v = static_cast<std::uint8_t>(rng());
  cv::Mat gray;
  cv::cvtColor(to_mat(rgb), gray, cv::COLOR_RGB2GRAY);
  const Image ours_gray = rgb_to_gray(rgb);
  cv::Mat unit;
  to_mat(rgb).convertTo(unit, CV_32FC3, 1.0 / 255);
  cv::Mat lab;
  cv::cvtColor(unit, lab, cv::COLOR_RGB2Lab);
  const ImageF ours_lab = rgb_to_lab(rgb);
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 128; ++x) {
      ASSERT_NEAR(ours_gray.at(x, y), gray.at<std::uint8_t>(y, x), 1);
      // OpenCV's float RGB2Lab goes through an interpolated lookup table (errors up to ~0.35);
      // the exact formula is pinned by the reference values in GrayAndLabReferenceValues.
      for (int c = 0; c < 3; ++c) ASSERT_NEAR(ours_lab.at(x, y, c), mat_value<float>(lab, x, y, c), 0.5) << c;
    }
}
#else
TEST(Colour, MatchesOpenCv) { GTEST_SKIP() << "built without OpenCV"; }
#endif

TEST(FillPolygon, PixelCentresAndEvenOdd) {
  ImageF img(10, 8, 2);
  fill_polygon(img, {{1.5f, 1.5f}, {5.5f, 1.5f}, {5.5f, 4.5f}, {1.5f, 4.5f}}, 0.75f);
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 10; ++x) {
      const float want = (x >= 2 && x <= 5 && y >= 2 && y <= 4) ? 0.75f : 0.0f;
      ASSERT_EQ(img.at(x, y, 0), want) << x << "," << y;
      ASSERT_EQ(img.at(x, y, 1), want);
    }
  // A pentagram: its centre is enclosed twice, so even-odd leaves it empty.
  ImageF star(41, 41, 1);
  std::vector<Point2f> poly;
  for (int i = 0; i < 5; ++i) {
    const double t = -M_PI / 2 + i * 4 * M_PI / 5;
    poly.push_back({static_cast<float>(20 + 18 * std::cos(t)), static_cast<float>(20 + 18 * std::sin(t))});
  }
  fill_polygon(star, poly, 1.0f);
  EXPECT_EQ(star.at(20, 20), 0.0f);
  EXPECT_EQ(star.at(20, 5), 1.0f);   // inside the top point
  EXPECT_EQ(star.at(0, 0), 0.0f);
  // Clipping: a polygon larger than the image fills all of it.
  ImageF all(5, 5, 1);
  fill_polygon(all, {{-10, -10}, {30, -10}, {30, 30}, {-10, 30}}, 2.0f);
  for (float v : all.pixels) ASSERT_EQ(v, 2.0f);
}

TEST(AlphaBlend, PastesThePatchUnderItsMask) {
  Image dst(6, 4, 3, 100);
  Image patch(10, 2, 3, 200);  // at (2, 1): overhangs the right edge
  ImageF mask(10, 2, 1, 0.25f);
  alpha_blend(dst, patch, mask, 2, 1);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 6; ++x) {
      const bool inside = x >= 2 && y >= 1 && y < 3;
      for (int c = 0; c < 3; ++c) ASSERT_EQ(dst.at(x, y, c), inside ? 125 : 100);
    }
  Image full(6, 4, 3, 200);
  ImageF full_mask(6, 4, 1, 0.25f);
  full_mask.at(0, 0) = 1.0f;
  full_mask.at(1, 0) = 0.0f;
  alpha_blend(dst, full, full_mask, 0, 0);
  EXPECT_EQ(dst.at(0, 0, 0), 200);
  EXPECT_EQ(dst.at(1, 0, 0), 100);
  EXPECT_EQ(dst.at(2, 1, 0), 144);  // 125 + 0.25 · 75 = 143.75
  // A patch entirely outside changes nothing; a negative offset is clipped.
  const Image before = dst;
  alpha_blend(dst, full, full_mask, 6, 0);
  EXPECT_EQ(dst.pixels, before.pixels);
  alpha_blend(dst, patch, ImageF(10, 2, 1, 1.0f), -9, 0);
  EXPECT_EQ(dst.at(0, 0, 0), 200);
  EXPECT_EQ(dst.at(1, 0, 0), 100);
}

#if FSWAP_HAVE_OPENCV
TEST(Pyramid, MatchesOpenCv) {
  for (auto [w, h] : {std::pair{64, 48}, std::pair{37, 29}, std::pair{10, 7}}) {
    const ImageF src = random_float_image(w, h, 3, 12);
    const ImageF down = pyr_down(src);
    ASSERT_EQ(down.width, (w + 1) / 2);
    ASSERT_EQ(down.height, (h + 1) / 2);
    cv::Mat cv_down;
    cv::pyrDown(to_mat(src), cv_down);
    for (int y = 0; y < down.height; ++y)
      for (int x = 0; x < down.width; ++x)
        for (int c = 0; c < 3; ++c) ASSERT_NEAR(down.at(x, y, c), mat_value<float>(cv_down, x, y, c), 1e-3) << w << " " << x << "," << y;
    const ImageF up = pyr_up(down, 2 * down.width, 2 * down.height);
    cv::Mat cv_up;
    cv::pyrUp(to_mat(down), cv_up);
    for (int y = 0; y < up.height; ++y)
      for (int x = 0; x < up.width; ++x)
        for (int c = 0; c < 3; ++c) ASSERT_NEAR(up.at(x, y, c), mat_value<float>(cv_up, x, y, c), 1e-3) << w << " " << x << "," << y;
  }
}
#else
TEST(Pyramid, MatchesOpenCv) { GTEST_SKIP() << "built without OpenCV"; }
#endif

TEST(Pyramid, OddSizesAndConstants) {
  const ImageF flat(13, 9, 2, 42.0f);
  const ImageF down = pyr_down(flat);
  EXPECT_EQ(down.width, 7);
  EXPECT_EQ(down.height, 5);
  for (float v : down.pixels) ASSERT_NEAR(v, 42.0f, 1e-4);
  const ImageF up = pyr_up(down, 13, 9);
  EXPECT_EQ(up.width, 13);
  for (float v : up.pixels) ASSERT_NEAR(v, 42.0f, 1e-4);
}

TEST(MultibandBlend, MaskExtremesReturnTheInputs) {
  const ImageF bg = random_float_image(101, 77, 3, 1), fg = random_float_image(101, 77, 3, 2);
  const ImageF ones(101, 77, 1, 1.0f), zeros(101, 77, 1, 0.0f);
  for (int levels : {1, 3, 6, 20}) {
    const ImageF a = multiband_blend(bg, fg, ones, levels);
    const ImageF b = multiband_blend(bg, fg, zeros, levels);
    ASSERT_EQ(a.width, 101);
    ASSERT_EQ(a.height, 77);
    for (std::size_t i = 0; i < a.pixels.size(); ++i) {
      ASSERT_NEAR(a.pixels[i], fg.pixels[i], 0.5) << levels;
      ASSERT_NEAR(b.pixels[i], bg.pixels[i], 0.5) << levels;
    }
  }
}

TEST(MultibandBlend, SeamBetweenFlatColoursIsSmooth) {
  const int w = 128, h = 32;
  const ImageF bg(w, h, 1, 50.0f), fg(w, h, 1, 200.0f);
  ImageF mask(w, h, 1);
  for (int y = 0; y < h; ++y)
    for (int x = w / 2; x < w; ++x) mask.at(x, y) = 1.0f;
  const ImageF hard = multiband_blend(bg, fg, mask, 1);
  EXPECT_EQ(hard.at(w / 2, 5) - hard.at(w / 2 - 1, 5), 150.0f);
  const ImageF out = multiband_blend(bg, fg, mask, 5);
  for (int y = 0; y < h; ++y) {
    float worst_step = 0;
    for (int x = 1; x < w; ++x) {
      const float step = out.at(x, y) - out.at(x - 1, y);
      ASSERT_GE(step, -1e-3) << "not monotone at " << x;
      worst_step = std::max(worst_step, step);
    }
    EXPECT_LT(worst_step, 25.0f);  // the 150-level jump is spread over dozens of pixels
    EXPECT_NEAR(out.at(0, y), 50.0f, 0.5f);
    EXPECT_NEAR(out.at(w - 1, y), 200.0f, 0.5f);
    EXPECT_GT(out.at(w / 2 - 4, y), 60.0f);
    EXPECT_LT(out.at(w / 2 + 3, y), 190.0f);
  }
}

}  // namespace
}  // namespace fswap
