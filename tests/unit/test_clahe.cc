// CLAHE (imaging/filter.h) against a straightforward per-pixel computation written here (padded
// copy, a histogram per tile, OpenCV's clip-and-redistribute, cumulative maps, bilinear blend of
// the four surrounding tile maps, all in double), and against OpenCV's createCLAHE when the tests
// are built with it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "imaging/filter.h"

#ifdef FSWAP_HAVE_OPENCV
#include <opencv2/imgproc.hpp>
#endif

namespace fswap {
namespace {

// A dark, low-contrast image with a gradient and noise, so clipping matters.
Image dark_image(int w, int h, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> noise(0, 12);
  Image img(w, h, 1);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) img.at(x, y) = static_cast<std::uint8_t>(x * 20 / w + y * 15 / h + noise(rng));
  return img;
}

Image random_image(int w, int h, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(0, 255);
  Image img(w, h, 1);
  for (auto& v : img.pixels) v = static_cast<std::uint8_t>(d(rng));
  return img;
}

// Mirror without repeating the edge pixel: -1 → 1, n → n − 2.
int mirror(int i, int n) {
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
  return i;
}

Image reference_clahe(const Image& src, double clip, int tiles_x, int tiles_y) {
  const int w = src.width, h = src.height;
  int pw = w, ph = h;
  if (w % tiles_x != 0 || h % tiles_y != 0) {
    pw = w + tiles_x - w % tiles_x;
    ph = h + tiles_y - h % tiles_y;
  }
  const int tw = pw / tiles_x, th = ph / tiles_y, n = tw * th;
  const int limit = clip > 0 ? std::max(1, static_cast<int>(clip * n / 256)) : 0;
  std::vector<std::vector<double>> maps(tiles_x * tiles_y, std::vector<double>(256));
  for (int ty = 0; ty < tiles_y; ++ty)
    for (int tx = 0; tx < tiles_x; ++tx) {
      std::vector<int> hist(256, 0);
      for (int y = ty * th; y < (ty + 1) * th; ++y)
        for (int x = tx * tw; x < (tx + 1) * tw; ++x) hist[src.at(mirror(x, w), mirror(y, h))] += 1;
      if (limit > 0) {
        int excess = 0;
        for (int& c : hist) {
          excess += std::max(0, c - limit);
          c = std::min(c, limit);
        }
        for (int& c : hist) c += excess / 256;
        int left = excess % 256;
        if (left > 0) {
          const int step = std::max(1, 256 / left);
          for (int i = 0; i < 256 && left > 0; i += step, --left) hist[i] += 1;
        }
      }
      double cumulative = 0;
      for (int v = 0; v < 256; ++v) {
        cumulative += hist[v];
        maps[ty * tiles_x + tx][v] = std::nearbyint(cumulative * 255.0 / n);
      }
    }
  Image out(w, h, 1);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      // Position in tile units: tile j's map is exact at x = (j + 0.5)·tw.
      const double px = static_cast<double>(x) / tw - 0.5, py = static_cast<double>(y) / th - 0.5;
      const int jx = static_cast<int>(std::floor(px)), jy = static_cast<int>(std::floor(py));
      const double wx = px - jx, wy = py - jy;
      const auto map = [&](int tx, int ty) {
        tx = std::clamp(tx, 0, tiles_x - 1);
        ty = std::clamp(ty, 0, tiles_y - 1);
        return maps[ty * tiles_x + tx][src.at(x, y)];
      };
      const double v = (1 - wy) * ((1 - wx) * map(jx, jy) + wx * map(jx + 1, jy)) +
                       wy * ((1 - wx) * map(jx, jy + 1) + wx * map(jx + 1, jy + 1));
      out.at(x, y) = static_cast<std::uint8_t>(std::clamp(std::nearbyint(v), 0.0, 255.0));
    }
  return out;
}

struct Diff {
  int worst = 0;
  int differing = 0;
};
Diff compare(const Image& a, const Image& b) {
  Diff d;
  for (std::size_t i = 0; i < a.pixels.size(); ++i) {
    const int e = std::abs(int(a.pixels[i]) - int(b.pixels[i]));
    d.worst = std::max(d.worst, e);
    d.differing += e != 0;
  }
  return d;
}

struct Case {
  int w, h;
  double clip;
  int tiles_x, tiles_y;
  bool dark;
};

TEST(Clahe, MatchesAStraightforwardComputation) {
  // Divisible and padded sizes (one side divisible pads that side by a whole tile, as OpenCV),
  // FaceFusion's 256² crop with clip 2 on 8×8, no clipping, and a non-square grid.
  for (const Case c : {Case{256, 256, 2.0, 8, 8, true}, Case{250, 130, 2.0, 8, 8, true},
                       Case{256, 100, 2.0, 8, 8, false}, Case{97, 61, 40.0, 8, 8, true},
                       Case{120, 90, 0.0, 4, 3, true}, Case{64, 48, 1.0, 2, 6, false}}) {
    SCOPED_TRACE(std::to_string(c.w) + "x" + std::to_string(c.h) + " clip " + std::to_string(c.clip));
    const Image src = c.dark ? dark_image(c.w, c.h, c.w + c.h) : random_image(c.w, c.h, c.w * c.h);
    const Image got = clahe(src, c.clip, c.tiles_x, c.tiles_y);
    ASSERT_EQ(got.width, c.w);
    ASSERT_EQ(got.height, c.h);
    ASSERT_EQ(got.channels, 1);
    const Diff d = compare(got, reference_clahe(src, c.clip, c.tiles_x, c.tiles_y));
    // float (OpenCV's arithmetic) against double: a rounding tie may land one level apart.
    EXPECT_LE(d.worst, 1);
    EXPECT_LE(d.differing, c.w * c.h / 100) << d.differing << " pixels differ";
    std::printf("clahe %dx%d clip %g vs the computation here: %d pixels differ, worst %d\n", c.w, c.h, c.clip,
                d.differing, d.worst);
  }
}

TEST(Clahe, StretchesADarkImageAndLeavesAFlatOneFlat) {
  const Image src = dark_image(256, 256, 7);
  const Image out = clahe(src, 2.0, 8, 8);
  const auto [lo, hi] = std::minmax_element(src.pixels.begin(), src.pixels.end());
  const auto [olo, ohi] = std::minmax_element(out.pixels.begin(), out.pixels.end());
  EXPECT_GT(*ohi - *olo, *hi - *lo) << "the range is stretched";
  const auto mean = [](const Image& img) {
    double m = 0;
    for (auto v : img.pixels) m += v;
    return m / img.pixels.size();
  };
  EXPECT_GT(mean(out), mean(src) + 10) << "a dark image is brightened";
  // A flat image: every histogram is one spike, clipped and spread; the map of the value is the
  // same everywhere, so the output is flat too.
  Image flat(64, 64, 1);
  std::fill(flat.pixels.begin(), flat.pixels.end(), std::uint8_t{10});
  const Image flat_out = clahe(flat, 2.0, 8, 8);
  EXPECT_TRUE(std::all_of(flat_out.pixels.begin(), flat_out.pixels.end(), [&](std::uint8_t v) { return v == flat_out.pixels[0]; }));
}

// The 8-bit L that FaceFusion's CLAHE step works on: rgb_to_lab's L · 255/100, rounded.
TEST(LabLightness8, IsRgbToLabsLRounded) {
  std::mt19937 rng(9);
  std::uniform_int_distribution<int> d(0, 255);
  Image rgb(300, 200, 3);
  for (auto& v : rgb.pixels) v = static_cast<std::uint8_t>(d(rng));
  for (int v = 0; v < 256; ++v)  // every grey level too
    for (int c = 0; c < 3; ++c) rgb.at(v, 0, c) = static_cast<std::uint8_t>(v);
  const Image light = rgb_to_lab_lightness8(rgb);
  const ImageF lab = rgb_to_lab(rgb);
  ASSERT_EQ(light.channels, 1);
  int differ = 0;
  for (std::size_t i = 0; i < light.pixels.size(); ++i)
    differ += light.pixels[i] != static_cast<std::uint8_t>(std::lround(lab.pixels[3 * i] * 2.55));
  EXPECT_EQ(differ, 0);
}

#ifdef FSWAP_HAVE_OPENCV
TEST(Clahe, MatchesOpenCV) {
  for (const Case c : {Case{256, 256, 2.0, 8, 8, true}, Case{250, 130, 2.0, 8, 8, true},
                       Case{256, 100, 2.0, 8, 8, false}, Case{97, 61, 40.0, 8, 8, true}}) {
    SCOPED_TRACE(std::to_string(c.w) + "x" + std::to_string(c.h));
    const Image src = c.dark ? dark_image(c.w, c.h, c.w + c.h) : random_image(c.w, c.h, c.w * c.h);
    cv::Mat m(src.height, src.width, CV_8UC1, const_cast<std::uint8_t*>(src.pixels.data())), dst;
    cv::createCLAHE(c.clip, cv::Size(c.tiles_x, c.tiles_y))->apply(m, dst);
    Image want(c.w, c.h, 1);
    for (int y = 0; y < c.h; ++y) std::copy_n(dst.ptr<std::uint8_t>(y), c.w, want.row(y));
    const Diff d = compare(clahe(src, c.clip, c.tiles_x, c.tiles_y), want);
    std::printf("clahe %dx%d vs OpenCV: %d pixels differ, worst %d\n", c.w, c.h, d.differing, d.worst);
    EXPECT_LE(d.worst, 1);
    EXPECT_LE(d.differing, c.w * c.h / 1000);
  }
}
#endif

}  // namespace
}  // namespace fswap
