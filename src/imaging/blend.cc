#include "imaging/blend.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/parallel.h"
#include "core/status.h"
#include "imaging/border.h"

namespace fswap {
namespace {

// pyr_up's source index: reflect-101 before the start, clamp past the end (as OpenCV's pyrUp).
int up_index(int i, int n) { return i < 0 ? std::min(-i, n - 1) : std::min(i, n - 1); }

bool same_size(const ImageF& a, const ImageF& b) { return a.width == b.width && a.height == b.height; }

// out = b + (f − b)·m per channel; m has one channel. out may alias b.
void mix(const ImageF& b, const ImageF& f, const ImageF& m, ImageF& out) {
  const int C = b.channels;
  parallel_for(
      b.height,
      [&](int y_begin, int y_end) {
        for (int y = y_begin; y < y_end; ++y) {
          const float* pb = b.row(y);
          const float* pf = f.row(y);
          const float* pm = m.row(y);
          float* po = out.row(y);
          for (int x = 0; x < b.width; ++x)
            for (int c = 0; c < C; ++c) {
              const int i = x * C + c;
              po[i] = pb[i] + (pf[i] - pb[i]) * pm[x];
            }
        }
      },
      rows_per_chunk(b.width));
}

}  // namespace

void alpha_blend(Image& dst, const Image& src, const ImageF& mask, int x, int y) {
  FSWAP_CHECK(dst.channels == src.channels, "alpha_blend: dst and src must have the same channels");
  FSWAP_CHECK(mask.width == src.width && mask.height == src.height && mask.channels == 1,
              "alpha_blend: mask must be 1 channel of the patch's size");
  const Rect r = intersect(Rect{x, y, src.width, src.height}, Rect{0, 0, dst.width, dst.height});
  if (r.empty()) return;
  const int C = dst.channels;
  parallel_for(
      r.height,
      [&](int y_begin, int y_end) {
        for (int row = r.y + y_begin; row < r.y + y_end; ++row) {
          std::uint8_t* d = dst.row(row) + static_cast<std::size_t>(r.x) * C;
          const std::uint8_t* s = src.row(row - y) + static_cast<std::size_t>(r.x - x) * C;
          const float* m = mask.row(row - y) + (r.x - x);
          for (int i = 0; i < r.width; ++i) {
            float a = m[i];
            a = a > 0.0f ? (a < 1.0f ? a : 1.0f) : 0.0f;  // also maps NaN to 0
            for (int c = 0; c < C; ++c) {
              const int k = i * C + c;
              const float v = d[k] + (static_cast<float>(s[k]) - d[k]) * a;
              d[k] = static_cast<std::uint8_t>(v + 0.5f);
            }
          }
        }
      },
      rows_per_chunk(r.width));
}

ImageF pyr_down(const ImageF& src) {
  const int w = src.width, h = src.height, C = src.channels;
  ImageF dst((w + 1) / 2, (h + 1) / 2, C);
  if (src.empty()) return dst;
  const std::size_t row_len = static_cast<std::size_t>(w) * C;
  parallel_for(
      dst.height,
      [&](int y_begin, int y_end) {
        // Vertically filtered row with two reflected pixels either side.
        std::vector<float> pad(static_cast<std::size_t>(w + 4) * C);
        for (int y = y_begin; y < y_end; ++y) {
          const float* r0 = src.row(reflect101(2 * y - 2, h));
          const float* r1 = src.row(reflect101(2 * y - 1, h));
          const float* r2 = src.row(reflect101(2 * y, h));
          const float* r3 = src.row(reflect101(2 * y + 1, h));
          const float* r4 = src.row(reflect101(2 * y + 2, h));
          float* mid = pad.data() + 2 * C;
          for (std::size_t i = 0; i < row_len; ++i)
            mid[i] = (r0[i] + r4[i] + 4.0f * (r1[i] + r3[i]) + 6.0f * r2[i]) * (1.0f / 16.0f);
          for (int k : {-2, -1, w, w + 1}) {
            const float* s = mid + static_cast<std::ptrdiff_t>(reflect101(k, w)) * C;
            std::copy(s, s + C, mid + static_cast<std::ptrdiff_t>(k) * C);
          }
          float* out = dst.row(y);
          for (int x = 0; x < dst.width; ++x) {
            const float* p = pad.data() + static_cast<std::size_t>(2 * x) * C;  // tap −2 of column 2x
            for (int c = 0; c < C; ++c)
              out[x * C + c] = (p[c] + p[4 * C + c] + 4.0f * (p[C + c] + p[3 * C + c]) + 6.0f * p[2 * C + c]) *
                               (1.0f / 16.0f);
          }
        }
      },
      rows_per_chunk(dst.width));
  return dst;
}

ImageF pyr_up(const ImageF& src, int width, int height) {
  FSWAP_CHECK((width + 1) / 2 == src.width && (height + 1) / 2 == src.height,
              "pyr_up: the output size must be 2·src − 1 or 2·src in each dimension");
  const int w = src.width, h = src.height, C = src.channels;
  ImageF dst(width, height, C);
  if (src.empty()) return dst;
  const std::size_t row_len = static_cast<std::size_t>(w) * C;
  parallel_for(
      height,
      [&](int y_begin, int y_end) {
        // Vertically interpolated row with one border pixel either side.
        std::vector<float> pad(static_cast<std::size_t>(w + 2) * C);
        for (int y = y_begin; y < y_end; ++y) {
          const int m = y / 2;
          float* mid = pad.data() + C;
          if (y % 2 == 0) {
            const float* r0 = src.row(up_index(m - 1, h));
            const float* r1 = src.row(m);
            const float* r2 = src.row(up_index(m + 1, h));
            for (std::size_t i = 0; i < row_len; ++i) mid[i] = (r0[i] + r2[i] + 6.0f * r1[i]) * 0.125f;
          } else {
            const float* r1 = src.row(m);
            const float* r2 = src.row(up_index(m + 1, h));
            for (std::size_t i = 0; i < row_len; ++i) mid[i] = (r1[i] + r2[i]) * 0.5f;
          }
          const float* first = mid + static_cast<std::size_t>(up_index(-1, w)) * C;
          const float* last = mid + static_cast<std::size_t>(w - 1) * C;
          std::copy(first, first + C, pad.data());
          std::copy(last, last + C, mid + row_len);
          float* out = dst.row(y);
          for (int x = 0; x < width; ++x) {
            const float* p = pad.data() + static_cast<std::size_t>(x / 2) * C;  // column x/2 − 1
            if (x % 2 == 0) {
              for (int c = 0; c < C; ++c) out[x * C + c] = (p[c] + p[2 * C + c] + 6.0f * p[C + c]) * 0.125f;
            } else {
              for (int c = 0; c < C; ++c) out[x * C + c] = (p[C + c] + p[2 * C + c]) * 0.5f;
            }
          }
        }
      },
      rows_per_chunk(width));
  return dst;
}

ImageF multiband_blend(const ImageF& background, const ImageF& foreground, const ImageF& mask, int levels) {
  FSWAP_CHECK(same_size(background, foreground) && background.channels == foreground.channels,
              "multiband_blend: background and foreground must have the same size and channels");
  FSWAP_CHECK(same_size(background, mask) && mask.channels == 1,
              "multiband_blend: mask must be 1 channel of the images' size");
  FSWAP_CHECK(levels >= 1, "multiband_blend: levels must be at least 1");
  int w = background.width, h = background.height;
  int count = 1;
  while (count < levels && (w + 1) / 2 >= 4 && (h + 1) / 2 >= 4) {
    w = (w + 1) / 2;
    h = (h + 1) / 2;
    ++count;
  }
  // Gaussian pyramids; level 0 is the caller's image.
  std::vector<ImageF> gb(count), gf(count), gm(count);
  auto level = [](const std::vector<ImageF>& pyr, const ImageF& base, int k) -> const ImageF& {
    return k == 0 ? base : pyr[k];
  };
  for (int k = 1; k < count; ++k) {
    gb[k] = pyr_down(level(gb, background, k - 1));
    gf[k] = pyr_down(level(gf, foreground, k - 1));
    gm[k] = pyr_down(level(gm, mask, k - 1));
  }
  ImageF result(w, h, background.channels);
  mix(level(gb, background, count - 1), level(gf, foreground, count - 1), level(gm, mask, count - 1), result);
  // Collapse: each finer level adds its blended Laplacian band (G_k − up(G_k+1)) for both images.
  for (int k = count - 2; k >= 0; --k) {
    const ImageF& b = level(gb, background, k);
    const ImageF& f = level(gf, foreground, k);
    const ImageF& m = level(gm, mask, k);
    const ImageF up_b = pyr_up(gb[k + 1], b.width, b.height);
    const ImageF up_f = pyr_up(gf[k + 1], b.width, b.height);
    ImageF next = pyr_up(result, b.width, b.height);
    const int C = b.channels;
    parallel_for(
        b.height,
        [&](int y_begin, int y_end) {
          for (int y = y_begin; y < y_end; ++y) {
            const float *pb = b.row(y), *pf = f.row(y), *pm = m.row(y), *ub = up_b.row(y), *uf = up_f.row(y);
            float* po = next.row(y);
            for (int x = 0; x < b.width; ++x)
              for (int c = 0; c < C; ++c) {
                const int i = x * C + c;
                const float lb = pb[i] - ub[i], lf = pf[i] - uf[i];
                po[i] += lb + (lf - lb) * pm[x];
              }
          }
        },
        rows_per_chunk(b.width));
    result = std::move(next);
  }
  return result;
}

}  // namespace fswap
