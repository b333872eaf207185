#include "face/paste_back.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

#include "core/parallel.h"
#include "core/status.h"
#include "imaging/transform.h"

namespace fswap {
namespace {

int reflect101(int i, int n) {
  if (n == 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * n - 2 - i;
  return i;
}

}  // namespace

// Our imaging gaussian_blur uses a ceil(3σ) radius; OpenCV's float path uses round(8σ + 1) | 1
// taps, and FaceFusion's masks must match, so this is the OpenCV kernel (computed and normalised,
// as for ksize > 7).
std::vector<double> gaussian_taps_opencv(double sigma) {
  const int ksize = static_cast<int>(std::lround(sigma * 8 + 1)) | 1;
  const int radius = ksize / 2;
  std::vector<double> kernel(ksize);
  double sum = 0;
  for (int i = 0; i < ksize; ++i) {
    const double x = i - radius;
    kernel[i] = std::exp(-x * x / (2 * sigma * sigma));
    sum += kernel[i];
  }
  for (double& k : kernel) k /= sum;
  return kernel;
}

void gaussian_blur_opencv(ImageF& image, double sigma) {
  FSWAP_CHECK(image.channels == 1, "gaussian_blur_opencv: 1-channel images only");
  const std::vector<double> kernel = gaussian_taps_opencv(sigma);
  const int ksize = static_cast<int>(kernel.size());
  const int radius = ksize / 2;
  const int w = image.width, h = image.height;
  std::vector<float> tmp(static_cast<std::size_t>(w) * h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      double acc = 0;
      for (int k = 0; k < ksize; ++k) acc += kernel[k] * image.at(reflect101(x + k - radius, w), y);
      tmp[static_cast<std::size_t>(y) * w + x] = static_cast<float>(acc);
    }
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      double acc = 0;
      for (int k = 0; k < ksize; ++k) acc += kernel[k] * tmp[static_cast<std::size_t>(reflect101(y + k - radius, h)) * w + x];
      image.at(x, y) = static_cast<float>(acc);
    }
}

ImageF create_box_mask(int width, int height, float face_mask_blur, const FaceMaskPadding& padding) {
  FSWAP_CHECK(width > 0 && height > 0, "create_box_mask: empty crop");
  // FaceFusion's crop_size is (width, height); blur_amount uses the width.
  const int blur_amount = static_cast<int>(width * 0.5 * face_mask_blur);
  const int blur_area = std::max(blur_amount / 2, 1);
  const auto band = [&](int size, float pad_percent) {
    return std::max(blur_area, static_cast<int>(size * static_cast<double>(pad_percent) / 100));
  };
  const int top = band(height, padding[0]), right = band(width, padding[1]);
  const int bottom = band(height, padding[2]), left = band(width, padding[3]);
  ImageF mask(width, height, 1, 1.f);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      if (y < top || y >= height - bottom || x < left || x >= width - right) mask.at(x, y) = 0.f;
  if (blur_amount > 0) gaussian_blur_opencv(mask, blur_amount * 0.25);
  return mask;
}

Rect paste_rect(int frame_width, int frame_height, int crop_width, int crop_height, const Affine& frame_to_crop) {
  const std::optional<Affine> inv = frame_to_crop.inverse();
  if (!inv) return {};
  const double cx[4] = {0, double(crop_width), double(crop_width), 0};
  const double cy[4] = {0, 0, double(crop_height), double(crop_height)};
  double min_x = INFINITY, min_y = INFINITY, max_x = -INFINITY, max_y = -INFINITY;
  for (int i = 0; i < 4; ++i) {
    const double x = inv->a * cx[i] + inv->b * cy[i] + inv->c;
    const double y = inv->d * cx[i] + inv->e * cy[i] + inv->f;
    min_x = std::min(min_x, x), max_x = std::max(max_x, x);
    min_y = std::min(min_y, y), max_y = std::max(max_y, y);
  }
  const auto clip = [](double v, int hi) { return static_cast<int>(std::clamp<double>(v, 0, hi)); };
  const int x1 = clip(std::floor(min_x), frame_width), x2 = clip(std::ceil(max_x), frame_width);
  const int y1 = clip(std::floor(min_y), frame_height), y2 = clip(std::ceil(max_y), frame_height);
  if (x2 <= x1 || y2 <= y1) return {};
  return {x1, y1, x2 - x1, y2 - y1};
}

Rect crop_step_rect(int frame_width, int frame_height, int crop_width, int crop_height, const Affine& frame_to_crop) {
  const Rect r = paste_rect(frame_width, frame_height, crop_width, crop_height, frame_to_crop);
  if (r.empty()) return {};
  const int m = kCropTapMargin;
  return intersect({r.x - m, r.y - m, r.width + 2 * m, r.height + 2 * m}, {0, 0, frame_width, frame_height});
}

void paste_back(Image& frame, const ImageF& crop, const ImageF& mask, const Affine& frame_to_crop) {
  FSWAP_CHECK(crop.channels == frame.channels, "paste_back: crop and frame channel counts differ");
  FSWAP_CHECK(mask.channels == 1 && mask.width == crop.width && mask.height == crop.height,
              "paste_back: the mask must be 1 channel, crop-sized");
  const Rect r = paste_rect(frame.width, frame.height, crop.width, crop.height, frame_to_crop);
  if (r.empty()) return;
  // crop → sub-rectangle coordinates: the inverse, shifted by the rectangle's origin, and back (the
  // warp's own map from each sub-rectangle pixel into the crop).
  Affine crop_to_patch = *frame_to_crop.inverse();
  crop_to_patch.c -= r.x;
  crop_to_patch.f -= r.y;
  const std::optional<Affine> patch_to_crop = crop_to_patch.inverse();
  if (!patch_to_crop) return;  // the warped mask would be 0 everywhere
  const int C = frame.channels;
  // Row by row: the crop's and the mask's warped row, then the blend into the frame.
  parallel_for(
      r.height,
      [&](int y_begin, int y_end) {
        std::vector<float> p(static_cast<std::size_t>(r.width) * C), m(static_cast<std::size_t>(r.width));
        for (int y = y_begin; y < y_end; ++y) {
          warp_affine_row(mask, *patch_to_crop, y, 0, r.width, m.data(), Border::kConstant);
          warp_affine_row(crop, *patch_to_crop, y, 0, r.width, p.data(), Border::kReplicate);
          // Not alpha_blend: that rounds, and FaceFusion's astype(uint8) truncates.
          std::uint8_t* out = frame.row(r.y + y) + static_cast<std::size_t>(r.x) * C;
          for (int x = 0; x < r.width; ++x) {
            const float a = std::clamp(m[x], 0.f, 1.f);
            for (int c = 0; c < C; ++c) {
              const float v = out[x * C + c] * (1.f - a) + p[x * C + c] * a;
              out[x * C + c] = static_cast<std::uint8_t>(std::clamp(v, 0.f, 255.f));
            }
          }
        }
      },
      rows_per_chunk(r.width));
}

}  // namespace fswap
