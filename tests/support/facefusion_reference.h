// Independent computations of FaceFusion's pre- and post-processing, for the tests that check
// fswap's against it (face swappers, face enhancer, masks): random test crops, the BGR picture
// FaceFusion holds, prepare_crop_frame's tensor, normalize_crop_frame, pixel boost's numpy
// reshape/transpose, and the masks' Gaussian and soft threshold.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <array>
#include <random>
#include <vector>

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

// prepare_crop_frame with per-channel mean/std (in FaceFusion's RGB order, after [:, :, ::-1]).
inline double prepare_crop_error(const Tensor& t, int index, const Image& rgb, const std::array<double, 3>& mean,
                                 const std::array<double, 3>& std) {
  const Image bgr = to_bgr(rgb);
  const int w = rgb.width, h = rgb.height;
  const float* v = t.data<float>() + static_cast<std::size_t>(index) * 3 * w * h;
  double worst = 0;
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const double rgb_value = bgr.at(x, y, 2 - c) / 255.0;  // crop[:, :, ::-1][y, x, c]
        worst = std::max(worst, std::abs(v[(c * h + y) * w + x] - (rgb_value - mean[c]) / std[c]));
      }
  return worst;
}

// numpy's x.reshape(dims).transpose(perm) of a flat row-major array, made contiguous.
inline std::vector<double> reshape_transpose(const std::vector<double>& x, const std::vector<int>& dims,
                                             const std::vector<int>& perm) {
  const std::size_t n = dims.size();
  std::vector<std::size_t> stride(n, 1);
  for (std::size_t i = n - 1; i > 0; --i) stride[i - 1] = stride[i] * dims[i];
  std::vector<int> out_dims(n);
  for (std::size_t i = 0; i < n; ++i) out_dims[i] = dims[perm[i]];
  std::vector<double> out(x.size());
  std::vector<int> idx(n, 0);  // index in the output
  for (std::size_t k = 0; k < out.size(); ++k) {
    std::size_t src = 0;
    for (std::size_t i = 0; i < n; ++i) src += idx[i] * stride[perm[i]];
    out[k] = x[src];
    for (std::size_t i = n; i-- > 0;) {
      if (++idx[i] < out_dims[i]) break;
      idx[i] = 0;
    }
  }
  return out;
}

inline int reflect101_index(int i, int n) {
  if (n == 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * n - 2 - i;
  return i;
}

// cv2.GaussianBlur(m, (0, 0), sigma) on a w × h float image as a direct 2-D convolution with
// OpenCV's kernel (ksize round(8σ + 1) | 1, reflect-101), no separability assumed.
inline std::vector<double> reference_gaussian_blur(const std::vector<double>& m, int w, int h, double sigma) {
  const int k = static_cast<int>(std::lround(sigma * 8 + 1)) | 1, r = k / 2;
  std::vector<double> g(k);
  double s = 0;
  for (int i = 0; i < k; ++i) s += g[i] = std::exp(-double(i - r) * (i - r) / (2 * sigma * sigma));
  std::vector<double> out(m.size());
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      double acc = 0;
      for (int j = 0; j < k; ++j)
        for (int i = 0; i < k; ++i)
          acc += g[j] * g[i] / (s * s) * m[reflect101_index(y + j - r, h) * w + reflect101_index(x + i - r, w)];
      out[y * w + x] = acc;
    }
  return out;
}

// The masks' soft threshold: (GaussianBlur(clip(m, 0, 1), σ 5).clip(0.5, 1) − 0.5) · 2.
inline std::vector<double> reference_soft_threshold(std::vector<double> m, int w, int h) {
  for (double& v : m) v = std::clamp(v, 0.0, 1.0);
  m = reference_gaussian_blur(m, w, h, 5.0);
  for (double& v : m) v = (std::clamp(v, 0.5, 1.0) - 0.5) * 2;
  return m;
}

}  // namespace fswap::test
