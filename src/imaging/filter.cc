#include "imaging/filter.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/parallel.h"
#include "core/status.h"
#include "imaging/border.h"

namespace fswap {
namespace {

}  // namespace

void gaussian_blur(ImageF& image, float sigma) {
  if (!(sigma > 0) || image.empty()) return;
  const int radius = static_cast<int>(std::ceil(3.0 * sigma));
  std::vector<float> kernel(radius + 1);  // kernel[k] = weight of offset ±k
  double sum = 0;
  for (int k = 0; k <= radius; ++k) {
    const double v = std::exp(-0.5 * k * k / (static_cast<double>(sigma) * sigma));
    kernel[k] = static_cast<float>(v);
    sum += k == 0 ? v : 2 * v;
  }
  for (float& v : kernel) v = static_cast<float>(v / sum);

  const int w = image.width, h = image.height, C = image.channels;
  const std::size_t row_len = static_cast<std::size_t>(w) * C;
  // The horizontal pass goes to a reused scratch image; the vertical pass writes back.
  thread_local std::vector<float> scratch;
  scratch.resize(row_len * h);
  float* tmp = scratch.data();

  parallel_for(
      h,
      [&](int y_begin, int y_end) {
        std::vector<float> pad(static_cast<std::size_t>(w + 2 * radius) * C);
        for (int y = y_begin; y < y_end; ++y) {
          const float* src = image.row(y);
          for (int x = -radius; x < w + radius; ++x) {
            const float* s = src + static_cast<std::size_t>(reflect101(x, w)) * C;
            std::copy(s, s + C, pad.data() + static_cast<std::size_t>(x + radius) * C);
          }
          float* out = tmp + static_cast<std::size_t>(y) * row_len;
          const float* centre = pad.data() + static_cast<std::size_t>(radius) * C;
          const float k0 = kernel[0];
          for (std::size_t i = 0; i < row_len; ++i) out[i] = k0 * centre[i];
          for (int k = 1; k <= radius; ++k) {
            const float kk = kernel[k];
            const float* left = centre - static_cast<std::size_t>(k) * C;
            const float* right = centre + static_cast<std::size_t>(k) * C;
            for (std::size_t i = 0; i < row_len; ++i) out[i] += kk * (left[i] + right[i]);
          }
        }
      },
      rows_per_chunk(w));

  parallel_for(
      h,
      [&](int y_begin, int y_end) {
        for (int y = y_begin; y < y_end; ++y) {
          float* out = image.row(y);
          const float* centre = tmp + static_cast<std::size_t>(y) * row_len;
          const float k0 = kernel[0];
          for (std::size_t i = 0; i < row_len; ++i) out[i] = k0 * centre[i];
          for (int k = 1; k <= radius; ++k) {
            const float kk = kernel[k];
            const float* up = tmp + static_cast<std::size_t>(reflect101(y - k, h)) * row_len;
            const float* down = tmp + static_cast<std::size_t>(reflect101(y + k, h)) * row_len;
            for (std::size_t i = 0; i < row_len; ++i) out[i] += kk * (up[i] + down[i]);
          }
        }
      },
      rows_per_chunk(w));
}

Image rgb_to_gray(const Image& rgb) {
  FSWAP_CHECK(rgb.channels == 3, "rgb_to_gray needs a 3-channel RGB image");
  Image gray(rgb.width, rgb.height, 1);
  // BT.601 weights in 16-bit fixed point (they sum to 65536, so white stays 255).
  constexpr std::uint32_t kR = 19595, kG = 38470, kB = 7471;
  const std::size_t n = static_cast<std::size_t>(rgb.width) * rgb.height;
  const std::uint8_t* s = rgb.pixels.data();
  std::uint8_t* d = gray.pixels.data();
  for (std::size_t i = 0; i < n; ++i)
    d[i] = static_cast<std::uint8_t>((kR * s[3 * i] + kG * s[3 * i + 1] + kB * s[3 * i + 2] + 32768) >> 16);
  return gray;
}

namespace {

// sRGB (D65) ↔ XYZ, and the D65 white point.
constexpr double kRgbToXyz[3][3] = {{0.412453, 0.357580, 0.180423},
                                    {0.212671, 0.715160, 0.072169},
                                    {0.019334, 0.119193, 0.950227}};
constexpr double kWhiteX = 0.950456, kWhiteZ = 1.088754;
constexpr double kDelta = 6.0 / 29.0;

double srgb_to_linear(double c) { return c <= 0.04045 ? c / 12.92 : std::pow((c + 0.055) / 1.055, 2.4); }

// Cube root for t in (kDelta³, ~1.1]: a bit-level first guess refined by three Newton steps
// (relative error < 1e-12), several times cheaper than std::cbrt per pixel.
double fast_cbrt(double t) {
  std::uint64_t bits;
  std::memcpy(&bits, &t, sizeof bits);
  bits = bits / 3 + 0x2A9F7893782DA1CEull;  // exponent divided by 3, bias restored
  double y;
  std::memcpy(&y, &bits, sizeof y);
  for (int i = 0; i < 3; ++i) y = (2.0 * y + t / (y * y)) / 3.0;
  return y;
}

double lab_f(double t) {
  return t > kDelta * kDelta * kDelta ? fast_cbrt(t) : t / (3 * kDelta * kDelta) + 4.0 / 29.0;
}
double lab_f_inverse(double f) { return f > kDelta ? f * f * f : 3 * kDelta * kDelta * (f - 4.0 / 29.0); }

struct ColourTables {
  std::array<float, 256> linear;       // sRGB byte → linear light
  std::array<float, 255> round_up_at;  // linear value from which the sRGB byte is ≥ k + 1
  double xyz_to_rgb[3][3];
  ColourTables() {
    for (int v = 0; v < 256; ++v) linear[v] = static_cast<float>(srgb_to_linear(v / 255.0));
    for (int k = 0; k < 255; ++k) {
      const double c = (k + 0.5) / 255.0;  // rounding boundary between bytes k and k + 1
      round_up_at[k] = static_cast<float>(srgb_to_linear(c));
    }
    for (int i = 0; i <= kBins; ++i) {
      const float v = static_cast<float>(i) / kBins;
      bin_start_byte[i] = static_cast<std::uint8_t>(
          std::upper_bound(round_up_at.begin(), round_up_at.end(), v) - round_up_at.begin());
    }
    // Inverse of kRgbToXyz by cofactors.
    const auto& m = kRgbToXyz;
    const double det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
                       m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
                       m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 3; ++c) {
        const int r1 = (c + 1) % 3, r2 = (c + 2) % 3, c1 = (r + 1) % 3, c2 = (r + 2) % 3;
        xyz_to_rgb[r][c] = (m[r1][c1] * m[r2][c2] - m[r1][c2] * m[r2][c1]) / det;
      }
  }
  // bin_start_byte[i]: the sRGB byte of linear value i / kBins; a bin spans at most ~1 byte
  // (the curve is steepest near 0), so encode() starts there and steps up at most once or twice.
  static constexpr int kBins = 4096;
  std::array<std::uint8_t, kBins + 1> bin_start_byte;

  std::uint8_t encode(double lin) const {
    // Exact rounding of 255·srgb(lin) without a pow per pixel: count the thresholds passed.
    const float v = static_cast<float>(lin);
    if (!(v > 0.0f)) return 0;  // also NaN
    if (v >= 1.0f) return 255;
    int b = bin_start_byte[static_cast<int>(v * kBins)];
    while (b < 255 && v >= round_up_at[b]) ++b;
    return static_cast<std::uint8_t>(b);
  }
};

const ColourTables& colour_tables() {
  static const ColourTables tables;
  return tables;
}

// The 8-bit L (L·255/100 rounded) from the luminance Y: L8 ≥ k + 1 exactly when Y reaches
// steps[k], where L·2.55 is k + 0.5. A table over Y in 2^16 bins holds L8 at each bin's start; the
// bins are finer than the closest steps (ΔY ≥ 4e-4 near black), so at most one step falls inside
// a bin and one comparison settles it.
struct LightnessSteps {
  static constexpr int kBins = 1 << 16;
  std::array<double, 256> steps{};  // steps[255] = +inf
  std::vector<std::uint8_t> at_bin;
  LightnessSteps() : at_bin(kBins + 1) {
    for (int k = 0; k < 255; ++k) steps[k] = lab_f_inverse(((k + 0.5) / 2.55 + 16.0) / 116.0);
    steps[255] = std::numeric_limits<double>::infinity();
    int level = 0;
    for (int b = 0; b <= kBins; ++b) {
      while (static_cast<double>(b) / kBins >= steps[level]) ++level;
      at_bin[b] = static_cast<std::uint8_t>(level);
    }
  }
};

const LightnessSteps& lightness_steps() {
  static const LightnessSteps steps;
  return steps;
}

}  // namespace

ImageF rgb_to_lab(const Image& rgb) {
  FSWAP_CHECK(rgb.channels == 3, "rgb_to_lab needs a 3-channel RGB image");
  const ColourTables& t = colour_tables();
  ImageF lab(rgb.width, rgb.height, 3);
  parallel_for(
      rgb.height,
      [&](int y_begin, int y_end) {
        for (int y = y_begin; y < y_end; ++y) {
          const std::uint8_t* s = rgb.row(y);
          float* d = lab.row(y);
          for (int x = 0; x < rgb.width; ++x, s += 3, d += 3) {
            const double r = t.linear[s[0]], g = t.linear[s[1]], b = t.linear[s[2]];
            const double fx = lab_f((kRgbToXyz[0][0] * r + kRgbToXyz[0][1] * g + kRgbToXyz[0][2] * b) / kWhiteX);
            const double fy = lab_f(kRgbToXyz[1][0] * r + kRgbToXyz[1][1] * g + kRgbToXyz[1][2] * b);
            const double fz = lab_f((kRgbToXyz[2][0] * r + kRgbToXyz[2][1] * g + kRgbToXyz[2][2] * b) / kWhiteZ);
            d[0] = static_cast<float>(116 * fy - 16);
            d[1] = static_cast<float>(500 * (fx - fy));
            d[2] = static_cast<float>(200 * (fy - fz));
          }
        }
      },
      rows_per_chunk(rgb.width));
  return lab;
}

Image rgb_to_lab_lightness8(const Image& rgb) {
  FSWAP_CHECK(rgb.channels == 3, "rgb_to_lab_lightness8 needs a 3-channel RGB image");
  const ColourTables& t = colour_tables();
  const LightnessSteps& table = lightness_steps();
  Image light(rgb.width, rgb.height, 1);
  const std::size_t n = light.pixels.size();
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint8_t* s = &rgb.pixels[3 * i];
    const double y = kRgbToXyz[1][0] * t.linear[s[0]] + kRgbToXyz[1][1] * t.linear[s[1]] + kRgbToXyz[1][2] * t.linear[s[2]];
    const int bin = std::clamp(static_cast<int>(y * LightnessSteps::kBins), 0, LightnessSteps::kBins);
    const int level = table.at_bin[bin];
    light.pixels[i] = static_cast<std::uint8_t>(level + (y >= table.steps[level]));
  }
  return light;
}

Image lab_to_rgb(const ImageF& lab) {
  FSWAP_CHECK(lab.channels == 3, "lab_to_rgb needs a 3-channel L*a*b* image");
  const ColourTables& t = colour_tables();
  Image rgb(lab.width, lab.height, 3);
  parallel_for(
      lab.height,
      [&](int y_begin, int y_end) {
        for (int y = y_begin; y < y_end; ++y) {
          const float* s = lab.row(y);
          std::uint8_t* d = rgb.row(y);
          for (int x = 0; x < lab.width; ++x, s += 3, d += 3) {
            const double fy = (s[0] + 16.0) / 116.0;
            const double X = kWhiteX * lab_f_inverse(fy + s[1] / 500.0);
            const double Y = lab_f_inverse(fy);
            const double Z = kWhiteZ * lab_f_inverse(fy - s[2] / 200.0);
            for (int c = 0; c < 3; ++c) {
              const double lin = t.xyz_to_rgb[c][0] * X + t.xyz_to_rgb[c][1] * Y + t.xyz_to_rgb[c][2] * Z;
              d[c] = t.encode(lin);
            }
          }
        }
      },
      rows_per_chunk(lab.width));
  return rgb;
}

Image clahe(const Image& gray, double clip_limit, int tiles_x, int tiles_y) {
  FSWAP_CHECK(gray.channels == 1, "clahe needs a 1-channel image");
  FSWAP_CHECK(tiles_x >= 1 && tiles_y >= 1 && gray.width >= tiles_x && gray.height >= tiles_y,
              "clahe needs a tile grid no larger than the image");
  constexpr int kBins = 256;
  const int w = gray.width, h = gray.height;
  // OpenCV pads both directions as soon as either is not a multiple of the grid.
  const bool exact = w % tiles_x == 0 && h % tiles_y == 0;
  const int tile_w = exact ? w / tiles_x : (w + tiles_x - w % tiles_x) / tiles_x;
  const int tile_h = exact ? h / tiles_y : (h + tiles_y - h % tiles_y) / tiles_y;
  const int tile_pixels = tile_w * tile_h;
  const float lut_scale = static_cast<float>(kBins - 1) / tile_pixels;
  const int limit = clip_limit > 0 ? std::max(static_cast<int>(clip_limit * tile_pixels / kBins), 1) : 0;

  std::vector<std::uint8_t> luts(static_cast<std::size_t>(tiles_x) * tiles_y * kBins);
  parallel_for(tiles_x * tiles_y, [&](int begin, int end) {
    for (int t = begin; t < end; ++t) {
      const int x0 = (t % tiles_x) * tile_w, y0 = (t / tiles_x) * tile_h;
      std::array<int, kBins> hist{};
      for (int y = y0; y < y0 + tile_h; ++y) {
        const std::uint8_t* row = gray.row(reflect101(y, h));
        for (int x = x0; x < x0 + tile_w; ++x) ++hist[row[reflect101(x, w)]];
      }
      if (limit > 0) {
        int clipped = 0;
        for (int& n : hist)
          if (n > limit) clipped += n - limit, n = limit;
        const int batch = clipped / kBins;
        int residual = clipped - batch * kBins;
        for (int& n : hist) n += batch;
        if (residual > 0) {
          const int step = std::max(kBins / residual, 1);
          for (int i = 0; i < kBins && residual > 0; i += step, --residual) ++hist[i];
        }
      }
      std::uint8_t* lut = luts.data() + static_cast<std::size_t>(t) * kBins;
      int sum = 0;
      for (int i = 0; i < kBins; ++i) {
        sum += hist[i];
        lut[i] = static_cast<std::uint8_t>(std::clamp<long>(std::lrint(sum * lut_scale), 0, 255));
      }
    }
  }, rows_per_chunk(tile_pixels));  // a "row" here is a tile

  // Per column: the two tiles' LUT offsets and weights (float, in OpenCV's order of operations).
  const float inv_tw = 1.0f / tile_w, inv_th = 1.0f / tile_h;
  std::vector<int> left(w), right(w);
  std::vector<float> right_weight(w);
  for (int x = 0; x < w; ++x) {
    const float txf = x * inv_tw - 0.5f;
    const int tx = static_cast<int>(std::floor(txf));
    right_weight[x] = txf - tx;
    left[x] = std::max(tx, 0) * kBins;
    right[x] = std::min(tx + 1, tiles_x - 1) * kBins;
  }
  Image out(w, h, 1);
  parallel_for(h, [&](int y_begin, int y_end) {
    for (int y = y_begin; y < y_end; ++y) {
      const float tyf = y * inv_th - 0.5f;
      const int ty = static_cast<int>(std::floor(tyf));
      const float ya = tyf - ty, ya1 = 1.0f - ya;
      const std::uint8_t* top = luts.data() + static_cast<std::size_t>(std::max(ty, 0)) * tiles_x * kBins;
      const std::uint8_t* bottom = luts.data() + static_cast<std::size_t>(std::min(ty + 1, tiles_y - 1)) * tiles_x * kBins;
      const std::uint8_t* src = gray.row(y);
      std::uint8_t* dst = out.row(y);
      for (int x = 0; x < w; ++x) {
        const int v = src[x];
        const float xa = right_weight[x], xa1 = 1.0f - xa;
        const float res = (top[left[x] + v] * xa1 + top[right[x] + v] * xa) * ya1 +
                          (bottom[left[x] + v] * xa1 + bottom[right[x] + v] * xa) * ya;
        dst[x] = static_cast<std::uint8_t>(std::clamp<long>(std::lrint(res), 0, 255));
      }
    }
  }, rows_per_chunk(w));
  return out;
}

void fill_polygon(ImageF& image, const std::vector<Point2f>& polygon, float value) {
  const int n = static_cast<int>(polygon.size());
  if (n < 3 || image.empty()) return;
  float min_y = polygon[0].y, max_y = polygon[0].y;
  for (const Point2f& p : polygon) {
    min_y = std::min(min_y, p.y);
    max_y = std::max(max_y, p.y);
  }
  if (!(min_y <= max_y)) return;  // NaN coordinates
  const float h = static_cast<float>(image.height);
  const int y_begin = static_cast<int>(std::ceil(std::clamp(min_y, 0.0f, h)));
  const int y_end = std::min(image.height, static_cast<int>(std::floor(std::clamp(max_y, -1.0f, h))) + 1);
  if (y_begin >= y_end) return;
  const int C = image.channels;
  parallel_for(
      y_end - y_begin,
      [&](int begin, int end) {
        std::vector<double> xs;
        xs.reserve(n);
        for (int y = y_begin + begin; y < y_begin + end; ++y) {
          xs.clear();
          // Half-open in y, so a vertex on the scanline counts once for the two edges it joins.
          for (int i = 0; i < n; ++i) {
            const Point2f& p = polygon[i];
            const Point2f& q = polygon[(i + 1) % n];
            if ((p.y <= y) == (q.y <= y)) continue;
            xs.push_back(p.x + (y - static_cast<double>(p.y)) * (static_cast<double>(q.x) - p.x) / (static_cast<double>(q.y) - p.y));
          }
          std::sort(xs.begin(), xs.end());
          float* row = image.row(y);
          for (std::size_t i = 0; i + 1 < xs.size(); i += 2) {
            // Pixel centres x with xs[i] ≤ x < xs[i + 1].
            const double lo = std::max(0.0, std::ceil(xs[i]));
            const double hi = std::min<double>(image.width, std::ceil(xs[i + 1]));
            if (!(lo < hi)) continue;
            std::fill(row + static_cast<std::size_t>(lo) * C, row + static_cast<std::size_t>(hi) * C, value);
          }
        }
      },
      rows_per_chunk(image.width));
}

}  // namespace fswap
