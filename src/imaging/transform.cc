#include "imaging/transform.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <type_traits>

#include "core/parallel.h"
#include "core/status.h"

namespace fswap {
namespace {

inline void store(std::uint8_t& out, float v) {
  // v is a convex combination of 0..255 values, so v + 0.5 stays inside 0..255.5.
  out = static_cast<std::uint8_t>(v + 0.5f);
}
inline void store(float& out, float v) { out = v; }

inline int floor_to_int(double v) {
  const int i = static_cast<int>(v);
  return i - (v < i);
}

// Bilinear sample of src at (sx, sy) with border handling, for pixels near or outside the edges.
template <class T, int kC>
void sample_border(const ImageT<T>& src, int C, double sx, double sy, T* out, bool replicate) {
  const int w = src.width, h = src.height;
  const std::size_t stride = static_cast<std::size_t>(w) * C;
  // Beyond these limits every tap is outside src, so clamping there changes nothing and
  // keeps the float → int conversion defined (NaN goes to the low limit).
  sx = sx > -2.0 ? (sx < w + 1.0 ? sx : w + 1.0) : -2.0;
  sy = sy > -2.0 ? (sy < h + 1.0 ? sy : h + 1.0) : -2.0;
  const int ix = floor_to_int(sx), iy = floor_to_int(sy);
  const float fx = static_cast<float>(sx - ix), fy = static_cast<float>(sy - iy);
  int x0 = ix, x1 = ix + 1, y0 = iy, y1 = iy + 1;
  bool in_x0 = x0 >= 0 && x0 < w, in_x1 = x1 >= 0 && x1 < w, in_y0 = y0 >= 0 && y0 < h, in_y1 = y1 >= 0 && y1 < h;
  if (replicate) {
    x0 = std::clamp(x0, 0, w - 1);
    x1 = std::clamp(x1, 0, w - 1);
    y0 = std::clamp(y0, 0, h - 1);
    y1 = std::clamp(y1, 0, h - 1);
    in_x0 = in_x1 = in_y0 = in_y1 = true;
  }
  const T* r0 = in_y0 ? src.pixels.data() + static_cast<std::size_t>(y0) * stride : nullptr;
  const T* r1 = in_y1 ? src.pixels.data() + static_cast<std::size_t>(y1) * stride : nullptr;
  for (int c = 0; c < C; ++c) {
    const float p00 = r0 && in_x0 ? static_cast<float>(r0[x0 * C + c]) : 0.0f;
    const float p01 = r0 && in_x1 ? static_cast<float>(r0[x1 * C + c]) : 0.0f;
    const float p10 = r1 && in_x0 ? static_cast<float>(r1[x0 * C + c]) : 0.0f;
    const float p11 = r1 && in_x1 ? static_cast<float>(r1[x1 * C + c]) : 0.0f;
    const float top = p00 + fx * (p01 - p00);
    const float bottom = p10 + fx * (p11 - p10);
    store(out[c], top + fy * (bottom - top));
  }
}

// Narrows [lo, hi) to the x where 0 ≤ r + k·x < limit, evaluated exactly as the sampling loop
// does. That set is an interval because the rounded expression is monotonic in x.
void narrow_to_interior(double r, double k, double limit, int& lo, int& hi) {
  auto inside = [&](int x) {
    const double s = r + k * x;
    return s >= 0.0 && s < limit;
  };
  if (k != 0.0) {
    double a = -r / k, b = (limit - r) / k;
    if (k < 0) std::swap(a, b);
    // Start from a slightly wider guess, then settle the ends with the exact test.
    a = std::clamp(std::floor(a) - 1.0, static_cast<double>(lo), static_cast<double>(hi));
    b = std::clamp(std::ceil(b) + 1.0, static_cast<double>(lo), static_cast<double>(hi));
    if (a == a && b == b) {  // not NaN
      lo = static_cast<int>(a);
      hi = static_cast<int>(b);
    }
  }
  while (lo < hi && !inside(lo)) ++lo;
  while (hi > lo && !inside(hi - 1)) --hi;
}

// Samples src bilinearly at (inv · (x, y)) for x in [x_begin, x_end) of dst row y.
// kC > 0 fixes the channel count at compile time so the channel loop unrolls.
template <class T, int kC>
void warp_span(const ImageT<T>& src, const Affine& inv, int y, int x_begin, int x_end, T* out, bool replicate) {
  const int C = kC > 0 ? kC : src.channels;
  const std::size_t stride = static_cast<std::size_t>(src.width) * C;
  const T* base = src.pixels.data();
  const double row_x = inv.b * y + inv.c, row_y = inv.e * y + inv.f;
  // Pixels whose four taps are all inside src take the branch-free loop below.
  int lo = x_begin, hi = x_end;
  narrow_to_interior(row_x, inv.a, src.width - 1.0, lo, hi);
  narrow_to_interior(row_y, inv.d, src.height - 1.0, lo, hi);
  if (lo >= hi) lo = hi = x_end;
  for (int x = x_begin; x < lo; ++x)
    sample_border<T, kC>(src, C, row_x + inv.a * x, row_y + inv.d * x, out + static_cast<std::size_t>(x - x_begin) * C,
                         replicate);
  T* o = out + static_cast<std::size_t>(lo - x_begin) * C;
  if constexpr (std::is_same_v<T, std::uint8_t>) {
    // 10-bit fixed point: coordinates and weights in 1/1024 pixel, exact integer rounding.
    // Coordinates go through a small block buffer first so that loop vectorises.
    constexpr int kBlock = 128;
    int bx[kBlock], by[kBlock];
    for (int x0 = lo; x0 < hi; x0 += kBlock) {
      const int n = std::min(kBlock, hi - x0);
      for (int i = 0; i < n; ++i) {
        bx[i] = static_cast<int>((row_x + inv.a * (x0 + i)) * 1024.0);
        by[i] = static_cast<int>((row_y + inv.d * (x0 + i)) * 1024.0);
      }
      for (int i = 0; i < n; ++i, o += C) {
        const int wx = bx[i] & 1023, wy = by[i] & 1023;
        const int w11 = wx * wy, w10 = (wy << 10) - w11, w01 = (wx << 10) - w11, w00 = (1 << 20) - w10 - w01 - w11;
        const T* p = base + static_cast<std::size_t>(by[i] >> 10) * stride + static_cast<std::size_t>(bx[i] >> 10) * C;
        const T* q = p + stride;
        for (int c = 0; c < C; ++c)
          o[c] = static_cast<T>((p[c] * w00 + p[c + C] * w01 + q[c] * w10 + q[c + C] * w11 + (1 << 19)) >> 20);
      }
    }
  } else {
    for (int x = lo; x < hi; ++x, o += C) {
      const double sx = row_x + inv.a * x, sy = row_y + inv.d * x;
      const int ix = static_cast<int>(sx), iy = static_cast<int>(sy);  // sx, sy ≥ 0 here
      const float fx = static_cast<float>(sx - ix), fy = static_cast<float>(sy - iy);
      const T* p = base + static_cast<std::size_t>(iy) * stride + static_cast<std::size_t>(ix) * C;
      const T* q = p + stride;
      for (int c = 0; c < C; ++c) {
        const float top = p[c] + fx * (p[c + C] - p[c]);
        const float bottom = q[c] + fx * (q[c + C] - q[c]);
        o[c] = top + fy * (bottom - top);
      }
    }
  }
  for (int x = hi; x < x_end; ++x)
    sample_border<T, kC>(src, C, row_x + inv.a * x, row_y + inv.d * x, out + static_cast<std::size_t>(x - x_begin) * C,
                         replicate);
}

template <class T>
void fill_region(ImageT<T>& dst, const Rect& r) {
  for (int y = r.y; y < r.y + r.height; ++y) {
    T* out = dst.row(y) + static_cast<std::size_t>(r.x) * dst.channels;
    std::fill(out, out + static_cast<std::size_t>(r.width) * dst.channels, T{});
  }
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  const std::int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}
std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return -floor_div(-a, b); }

// One axis of a separable resampling: dst index i reads src[start[i] + k] · weight[offset[i] + k].
struct AxisTable {
  std::vector<int> start, count, offset;
  std::vector<float> weight;
  void add(int s, const float* w, int n) {
    start.push_back(s);
    count.push_back(n);
    offset.push_back(static_cast<int>(weight.size()));
    weight.insert(weight.end(), w, w + n);
  }
};

// Half-pixel-centre linear interpolation with edge clamping (OpenCV INTER_LINEAR).
AxisTable linear_table(int src_size, int dst_size) {
  AxisTable t;
  const double scale = static_cast<double>(src_size) / dst_size;
  for (int i = 0; i < dst_size; ++i) {
    const double s = (i + 0.5) * scale - 0.5;
    int s0 = floor_to_int(s);
    float f = static_cast<float>(s - s0);
    if (s0 < 0) {
      s0 = 0;
      f = 0;
    }
    if (s0 >= src_size - 1) {
      s0 = src_size - 1;
      f = 0;
    }
    const float w[2] = {1.0f - f, f};
    t.add(s0, w, f > 0 ? 2 : 1);
  }
  return t;
}

// Box filter over the source interval each destination pixel covers (shrinking only).
AxisTable area_table(int src_size, int dst_size) {
  AxisTable t;
  const double scale = static_cast<double>(src_size) / dst_size;
  std::vector<float> w;
  for (int i = 0; i < dst_size; ++i) {
    const double a = i * scale, b = std::min<double>(src_size, a + scale);
    const int first = floor_to_int(a);
    const int last = std::min(src_size - 1, static_cast<int>(std::ceil(b)) - 1);
    w.clear();
    double sum = 0;
    for (int s = first; s <= last; ++s) {
      const double overlap = std::min<double>(s + 1, b) - std::max<double>(s, a);
      w.push_back(static_cast<float>(overlap));
      sum += overlap;
    }
    for (float& v : w) v = static_cast<float>(v / sum);
    t.add(first, w.data(), static_cast<int>(w.size()));
  }
  return t;
}

template <class T>
ImageT<T> resize_separable(const ImageT<T>& src, int width, int height, const AxisTable& tx, const AxisTable& ty) {
  ImageT<T> dst(width, height, src.channels);
  const int C = src.channels;
  const std::size_t src_row = static_cast<std::size_t>(src.width) * C;
  parallel_for(
      height,
      [&](int y_begin, int y_end) {
        std::vector<float> buf(src_row);
        for (int y = y_begin; y < y_end; ++y) {
          const float* wy = ty.weight.data() + ty.offset[y];
          std::fill(buf.begin(), buf.end(), 0.0f);
          for (int k = 0; k < ty.count[y]; ++k) {
            const T* s = src.row(ty.start[y] + k);
            const float wk = wy[k];
            for (std::size_t i = 0; i < src_row; ++i) buf[i] += wk * static_cast<float>(s[i]);
          }
          T* out = dst.row(y);
          for (int x = 0; x < width; ++x) {
            const float* wx = tx.weight.data() + tx.offset[x];
            const float* b = buf.data() + static_cast<std::size_t>(tx.start[x]) * C;
            for (int c = 0; c < C; ++c) {
              float v = 0;
              for (int k = 0; k < tx.count[x]; ++k) v += wx[k] * b[k * C + c];
              store(out[x * C + c], v);
            }
          }
        }
      },
      rows_per_chunk(std::max(width, src.width)));
  return dst;
}

template <class T, int kC>
void resize_bilinear_rows(const ImageT<T>& src, ImageT<T>& dst, const std::vector<int>& xo, const std::vector<float>& xf,
                          const AxisTable& ty, int y_begin, int y_end) {
  const int C = kC > 0 ? kC : src.channels;
  for (int y = y_begin; y < y_end; ++y) {
    const T* p = src.row(ty.start[y]);
    const T* q = ty.count[y] > 1 ? src.row(ty.start[y] + 1) : p;
    const float fy = ty.count[y] > 1 ? ty.weight[ty.offset[y] + 1] : 0.0f;
    T* out = dst.row(y);
    for (int x = 0; x < dst.width; ++x, out += C) {
      const int o0 = xo[2 * x], o1 = xo[2 * x + 1];
      const float fx = xf[x];
      for (int c = 0; c < C; ++c) {
        const float top = p[o0 + c] + fx * (static_cast<float>(p[o1 + c]) - p[o0 + c]);
        const float bottom = q[o0 + c] + fx * (static_cast<float>(q[o1 + c]) - q[o0 + c]);
        store(out[c], top + fy * (bottom - top));
      }
    }
  }
}

}  // namespace

template <class T>
void warp_affine_row(const ImageT<T>& src, const Affine& dst_to_src, int y, int x_begin, int x_end, T* out,
                     Border border) {
  const bool replicate = border == Border::kReplicate;
  switch (src.channels) {
    case 1: warp_span<T, 1>(src, dst_to_src, y, x_begin, x_end, out, replicate); break;
    case 3: warp_span<T, 3>(src, dst_to_src, y, x_begin, x_end, out, replicate); break;
    case 4: warp_span<T, 4>(src, dst_to_src, y, x_begin, x_end, out, replicate); break;
    default: warp_span<T, 0>(src, dst_to_src, y, x_begin, x_end, out, replicate); break;
  }
}

template <class T>
void warp_affine_into(const ImageT<T>& src, const Affine& src_to_dst, ImageT<T>& dst, const Rect& region, Border border) {
  FSWAP_CHECK(src.channels == dst.channels, "warp_affine_into: src and dst must have the same channel count");
  const Rect r = intersect(region, Rect{0, 0, dst.width, dst.height});
  if (r.empty()) return;
  const std::optional<Affine> inv = src_to_dst.inverse();
  if (!inv || src.empty()) {
    fill_region(dst, r);
    return;
  }
  parallel_for(
      r.height,
      [&](int y_begin, int y_end) {
        for (int y = r.y + y_begin; y < r.y + y_end; ++y) {
          warp_affine_row(src, *inv, y, r.x, r.x + r.width, dst.row(y) + static_cast<std::size_t>(r.x) * dst.channels,
                          border);
        }
      },
      rows_per_chunk(r.width));
}

template <class T>
ImageT<T> warp_affine(const ImageT<T>& src, const Affine& src_to_dst, int dst_width, int dst_height, Border border) {
  FSWAP_CHECK(dst_width >= 0 && dst_height >= 0, "warp_affine: negative output size");
  ImageT<T> dst(dst_width, dst_height, src.channels);
  warp_affine_into(src, src_to_dst, dst, Rect{0, 0, dst_width, dst_height}, border);
  return dst;
}

namespace {

// One mesh triangle on the dst grid: the affine map back to src, the rows it covers, and per
// row the span of pixel centres inside it. Exact rasterisation on a 1/256-pixel grid: adjacent
// triangles evaluate their shared edge with exactly opposite signs, so the ownership rule splits
// boundary pixels cleanly.
class TriangleRaster {
 public:
  // Empty (no rows) when either triangle is degenerate or dst_tri misses the dst rectangle.
  TriangleRaster(const std::array<Point2f, 3>& src_tri, const std::array<Point2f, 3>& dst_tri, int dst_width,
                 int dst_height) {
    const std::optional<Affine> dst_to_src = affine_from_triangles(dst_tri, src_tri);
    if (!dst_to_src) return;
    dst_to_src_ = *dst_to_src;
    constexpr double kLimit = 1 << 20;  // pixels; keeps every product below 2^60
    std::int64_t vx[3], vy[3];
    for (int i = 0; i < 3; ++i) {
      vx[i] = std::llround(std::clamp<double>(dst_tri[i].x, -kLimit, kLimit) * kSub);
      vy[i] = std::llround(std::clamp<double>(dst_tri[i].y, -kLimit, kLimit) * kSub);
    }
    const std::int64_t area = (vx[1] - vx[0]) * (vy[2] - vy[0]) - (vy[1] - vy[0]) * (vx[2] - vx[0]);
    if (area == 0) return;
    if (area < 0) {
      std::swap(vx[1], vx[2]);
      std::swap(vy[1], vy[2]);
    }
    // Inside: E_i(p) = cross(v_{i+1} − v_i, p − v_i) > 0 for all three edges; on an edge (E = 0)
    // the pixel belongs to the one of the two triangles sharing it whose direction is "owning".
    for (int i = 0; i < 3; ++i) {
      const int j = (i + 1) % 3;
      const std::int64_t dx = vx[j] - vx[i], dy = vy[j] - vy[i];
      const bool owner = dy > 0 || (dy == 0 && dx < 0);
      edges_[i] = {dx, dy, vx[i], vy[i], owner ? 0 : 1};
    }
    const std::int64_t min_vx = std::min({vx[0], vx[1], vx[2]}), max_vx = std::max({vx[0], vx[1], vx[2]});
    const std::int64_t min_vy = std::min({vy[0], vy[1], vy[2]}), max_vy = std::max({vy[0], vy[1], vy[2]});
    y_lo_ = static_cast<int>(std::max<std::int64_t>(0, ceil_div(min_vy, kSub)));
    y_hi_ = static_cast<int>(std::min<std::int64_t>(dst_height - 1, floor_div(max_vy, kSub)));
    x_lo_ = std::max<std::int64_t>(0, ceil_div(min_vx, kSub));
    x_hi_ = std::min<std::int64_t>(dst_width - 1, floor_div(max_vx, kSub));
    if (x_lo_ > x_hi_) y_hi_ = y_lo_ - 1;
  }

  bool empty() const { return y_lo_ > y_hi_; }
  int y_lo() const { return y_lo_; }
  int y_hi() const { return y_hi_; }
  const Affine& dst_to_src() const { return dst_to_src_; }

  // The pixels [x_begin, x_end) of row y inside the triangle; false when none.
  bool span(int y, int& x_begin, int& x_end) const {
    if (y < y_lo_ || y > y_hi_) return false;
    const std::int64_t py = y * kSub;
    std::int64_t xb = x_lo_, xe = x_hi_;
    for (const Edge& e : edges_) {
      // E(x) = e0 + k·x ≥ min_e
      const std::int64_t e0 = e.dx * (py - e.ay) + e.dy * e.ax;
      const std::int64_t k = -e.dy * kSub;
      const std::int64_t rhs = e.min_e - e0;
      if (k > 0) xb = std::max(xb, ceil_div(rhs, k));
      else if (k < 0) xe = std::min(xe, floor_div(rhs, k));
      else if (rhs > 0) xe = xb - 1;
    }
    if (xb > xe) return false;
    x_begin = static_cast<int>(xb), x_end = static_cast<int>(xe) + 1;
    return true;
  }

 private:
  static constexpr std::int64_t kSub = 256;
  struct Edge {
    std::int64_t dx, dy, ax, ay, min_e;
  };
  Affine dst_to_src_;
  Edge edges_[3] = {};
  int y_lo_ = 0, y_hi_ = -1;
  std::int64_t x_lo_ = 0, x_hi_ = -1;
};

}  // namespace

template <class T>
void warp_mesh(const ImageT<T>& src, const std::vector<Point2f>& src_points, ImageT<T>& dst,
               const std::vector<Point2f>& dst_points, const std::vector<Triangle>& mesh) {
  FSWAP_CHECK(src.channels == dst.channels, "warp_mesh: src and dst must have the same channel count");
  FSWAP_CHECK(src_points.size() == dst_points.size(), "warp_mesh: src and dst point lists differ in length");
  if (src.empty() || dst.empty()) return;
  std::vector<TriangleRaster> rasters;
  int y_lo = dst.height, y_hi = -1;
  for (const Triangle& t : mesh) {
    FSWAP_CHECK(std::max({t.a, t.b, t.c}) < static_cast<int>(src_points.size()) && std::min({t.a, t.b, t.c}) >= 0,
                "warp_mesh: a triangle's vertex index is out of range");
    TriangleRaster r({src_points[t.a], src_points[t.b], src_points[t.c]},
                     {dst_points[t.a], dst_points[t.b], dst_points[t.c]}, dst.width, dst.height);
    if (r.empty()) continue;
    y_lo = std::min(y_lo, r.y_lo()), y_hi = std::max(y_hi, r.y_hi());
    rasters.push_back(r);
  }
  if (y_lo > y_hi) return;
  // One pass over the rows for the whole mesh; within a row the triangles go in mesh order, so
  // where folded triangles overlap the later one wins, as if each were warped in turn.
  parallel_for(
      y_hi - y_lo + 1,
      [&](int begin, int end) {
        for (int y = y_lo + begin; y < y_lo + end; ++y)
          for (const TriangleRaster& r : rasters) {
            int xb, xe;
            if (r.span(y, xb, xe))
              warp_affine_row(src, r.dst_to_src(), y, xb, xe, dst.row(y) + static_cast<std::size_t>(xb) * dst.channels,
                              Border::kReplicate);
          }
      },
      rows_per_chunk(dst.width));
}

template <class T>
ImageT<T> resize(const ImageT<T>& src, int width, int height, Interp interp) {
  FSWAP_CHECK(width >= 0 && height >= 0, "resize: negative output size");
  if (src.empty() || width == 0 || height == 0) return ImageT<T>(width, height, src.channels);
  const int C = src.channels;
  if (interp == Interp::kNearest) {
    ImageT<T> dst(width, height, C);
    std::vector<int> xo(width);
    const double sx = static_cast<double>(src.width) / width, sy = static_cast<double>(src.height) / height;
    for (int x = 0; x < width; ++x) xo[x] = std::min(src.width - 1, static_cast<int>((x + 0.5) * sx)) * C;
    parallel_for(
        height,
        [&](int y_begin, int y_end) {
          for (int y = y_begin; y < y_end; ++y) {
            const T* s = src.row(std::min(src.height - 1, static_cast<int>((y + 0.5) * sy)));
            T* out = dst.row(y);
            for (int x = 0; x < width; ++x)
              for (int c = 0; c < C; ++c) out[x * C + c] = s[xo[x] + c];
          }
        },
        rows_per_chunk(width));
    return dst;
  }
  const bool area_x = interp == Interp::kArea && width < src.width;
  const bool area_y = interp == Interp::kArea && height < src.height;
  if (area_x || area_y) {
    const AxisTable tx = area_x ? area_table(src.width, width) : linear_table(src.width, width);
    const AxisTable ty = area_y ? area_table(src.height, height) : linear_table(src.height, height);
    return resize_separable(src, width, height, tx, ty);
  }
  // Bilinear: gather four taps per pixel, which beats a separable pass when shrinking.
  const AxisTable tx = linear_table(src.width, width);
  const AxisTable ty = linear_table(src.height, height);
  std::vector<int> xo(2 * static_cast<std::size_t>(width));
  std::vector<float> xf(width);
  for (int x = 0; x < width; ++x) {
    xo[2 * x] = tx.start[x] * C;
    xo[2 * x + 1] = (tx.start[x] + tx.count[x] - 1) * C;
    xf[x] = tx.count[x] > 1 ? tx.weight[tx.offset[x] + 1] : 0.0f;
  }
  ImageT<T> dst(width, height, C);
  parallel_for(
      height,
      [&](int y_begin, int y_end) {
        switch (C) {
          case 1: resize_bilinear_rows<T, 1>(src, dst, xo, xf, ty, y_begin, y_end); break;
          case 3: resize_bilinear_rows<T, 3>(src, dst, xo, xf, ty, y_begin, y_end); break;
          case 4: resize_bilinear_rows<T, 4>(src, dst, xo, xf, ty, y_begin, y_end); break;
          default: resize_bilinear_rows<T, 0>(src, dst, xo, xf, ty, y_begin, y_end); break;
        }
      },
      rows_per_chunk(width));
  return dst;
}

#define FSWAP_INSTANTIATE_TRANSFORM(T)                                                                         \
  template ImageT<T> warp_affine(const ImageT<T>&, const Affine&, int, int, Border);                          \
  template void warp_affine_into(const ImageT<T>&, const Affine&, ImageT<T>&, const Rect&, Border);           \
  template void warp_affine_row(const ImageT<T>&, const Affine&, int, int, int, T*, Border);                  \
  template void warp_mesh(const ImageT<T>&, const std::vector<Point2f>&, ImageT<T>&, const std::vector<Point2f>&, \
                          const std::vector<Triangle>&);                                                     \
  template ImageT<T> resize(const ImageT<T>&, int, int, Interp);

FSWAP_INSTANTIATE_TRANSFORM(std::uint8_t)
FSWAP_INSTANTIATE_TRANSFORM(float)

#undef FSWAP_INSTANTIATE_TRANSFORM

}  // namespace fswap
