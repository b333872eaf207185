// Independent computations of FaceFusion's pre-processing, for the tests that check fswap's
// against it (face swapper, face enhancer): random test crops, the BGR picture FaceFusion holds,
// and prepare_crop_frame's tensor.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>

#include "core/tensor.h"
#include "imaging/image.h"

namespace fswap::test {

inline Image random_image(int w, int h, int c, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(0, 255);
  Image img(w, h, c);
  for (auto& v : img.pixels) v = static_cast<std::uint8_t>(d(rng));
  return img;
}

// FaceFusion holds BGR frames; this is the same picture as FaceFusion would hold it.
inline Image to_bgr(const Image& rgb) {
  Image bgr = rgb;
  for (int y = 0; y < rgb.height; ++y)
    for (int x = 0; x < rgb.width; ++x)
      for (int c = 0; c < 3; ++c) bgr.at(x, y, c) = rgb.at(x, y, 2 - c);
  return bgr;
}

// The largest difference between `t` ([1, 3, H, W]) and FaceFusion's prepare_crop_frame of the
// RGB crop: crop[:, :, ::-1] / 255, (x − mean) / std, transpose(2, 0, 1).
inline double prepare_crop_error(const Tensor& t, const Image& rgb, double mean, double std) {
  const Image bgr = to_bgr(rgb);
  const float* v = t.data<float>();
  const int w = rgb.width, h = rgb.height;
  double worst = 0;
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const double want = (bgr.at(x, y, 2 - c) / 255.0 - mean) / std;
        worst = std::max(worst, std::abs(v[(c * h + y) * w + x] - want));
      }
  return worst;
}

}  // namespace fswap::test
