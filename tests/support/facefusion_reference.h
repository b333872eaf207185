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

// numpy.pad(frame, ((top, bottom), (left, right), (0, 0))) with zeros.
inline Image reference_zero_pad(const Image& f, int top, int bottom, int left, int right) {
  Image out(f.width + left + right, f.height + top + bottom, f.channels);
  for (int y = 0; y < f.height; ++y)
    for (int x = 0; x < f.width; ++x)
      for (int c = 0; c < f.channels; ++c) out.at(x + left, y + top, c) = f.at(x, y, c);
  return out;
}

// frame[top:bottom, left:right] (bounds inside the frame).
inline Image reference_slice(const Image& f, int top, int bottom, int left, int right) {
  Image out(right - left, bottom - top, f.channels);
  for (int y = top; y < bottom; ++y)
    for (int x = left; x < right; ++x)
      for (int c = 0; c < f.channels; ++c) out.at(x - left, y - top, c) = f.at(x, y, c);
  return out;
}

// FaceFusion's vision.create_tile_frames(frame, (tile, pad, overlap)), statement by statement.
struct ReferenceTiles {
  std::vector<Image> tiles;
  int pad_width = 0, pad_height = 0;
};
inline ReferenceTiles reference_create_tile_frames(const Image& frame, int tile, int pad, int overlap) {
  const Image padded = reference_zero_pad(frame, pad, pad, pad, pad);
  const int tile_width = tile - 2 * overlap;
  const int pad_size_bottom = overlap + tile_width - padded.height % tile_width;
  const int pad_size_right = overlap + tile_width - padded.width % tile_width;
  const Image pad_frame = reference_zero_pad(padded, overlap, pad_size_bottom, overlap, pad_size_right);
  ReferenceTiles out;
  out.pad_height = pad_frame.height;
  out.pad_width = pad_frame.width;
  for (int row = overlap; row < out.pad_height - overlap; row += tile_width)  // range(o, pad_height − o, tw)
    for (int col = overlap; col < out.pad_width - overlap; col += tile_width)
      out.tiles.push_back(reference_slice(pad_frame, row - overlap, row + overlap + tile_width, col - overlap,
                                          col + overlap + tile_width));
  return out;
}

// FaceFusion's vision.merge_tile_frames(tiles, temp_width, temp_height, pad_width, pad_height,
// (tile, pad, overlap)), statement by statement.
inline Image reference_merge_tile_frames(const std::vector<Image>& tiles, int temp_width, int temp_height,
                                         int pad_width, int pad_height, int pad, int overlap) {
  Image merged(pad_width, pad_height, 3);
  const int tile_width = tiles[0].width - 2 * overlap;
  const int tiles_per_row = std::min(pad_width / tile_width, static_cast<int>(tiles.size()));
  for (int index = 0; index < static_cast<int>(tiles.size()); ++index) {
    const Image core = reference_slice(tiles[index], overlap, tiles[index].height - overlap, overlap,
                                       tiles[index].width - overlap);
    const int top = index / tiles_per_row * core.height, left = index % tiles_per_row * core.width;
    for (int y = 0; y < core.height && top + y < pad_height; ++y)  // numpy clips slices at the edge
      for (int x = 0; x < core.width && left + x < pad_width; ++x)
        for (int c = 0; c < 3; ++c) merged.at(left + x, top + y, c) = core.at(x, y, c);
  }
  return reference_slice(merged, pad, pad + temp_height, pad, pad + temp_width);
}

}  // namespace fswap::test
