// The CUDA imaging kernels (contract in cuda_imaging.h). One thread per output pixel (per 2×2
// block for RGB → NV12). The formulas mirror src/imaging/*.cc term by term; this target is
// compiled with --fmad=false so the products and sums round as the host's do.
#include "imaging/cuda/cuda_imaging.h"

#include <cuda_runtime.h>

#include <cmath>
#include <optional>
#include <string>

#include "memory/cuda/cuda_device.h"

namespace fswap::cuda_imaging {
namespace {

constexpr int kTileX = 32, kTileY = 8;

dim3 grid_2d(int width, int height) { return dim3((width + kTileX - 1) / kTileX, (height + kTileY - 1) / kTileY); }

Status check_launch(const char* what) {
  return memory::cuda_status(static_cast<int>(cudaGetLastError()), what, __FILE__, __LINE__);
}

template <class T>
__device__ __forceinline__ T* row_of(const DeviceView<T>& v, int y) {
  return reinterpret_cast<T*>(reinterpret_cast<char*>(v.data) + static_cast<std::size_t>(y) * v.pitch);
}
__device__ __forceinline__ std::uint8_t* row_of(std::uint8_t* base, std::size_t pitch, int y) {
  return base + static_cast<std::size_t>(y) * pitch;
}

__device__ __forceinline__ void store(std::uint8_t& out, float v) { out = static_cast<std::uint8_t>(v + 0.5f); }
__device__ __forceinline__ void store(float& out, float v) { out = v; }

__device__ __forceinline__ int clamp_int(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

// imaging/border.h's reflect101.
__device__ __forceinline__ int reflect101(int i, int n) {
  if (n == 1) return 0;
  const int period = 2 * n - 2;
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

__device__ __forceinline__ int floor_to_int(double v) {
  const int i = static_cast<int>(v);
  return i - (v < i);
}

template <class T>
Status check_view(const DeviceView<T>& v, const char* who, const char* name) {
  if (v.width < 0 || v.height < 0 || v.channels <= 0)
    return invalid_input(std::string(who) + ": " + name + " has a negative size or no channels");
  if (v.empty()) return Status::ok();
  if (v.data == nullptr) return invalid_input(std::string(who) + ": " + name + " has no device pointer");
  if (v.pitch < static_cast<std::size_t>(v.width) * v.channels * sizeof(T))
    return invalid_input(std::string(who) + ": " + name + "'s pitch is shorter than a row");
  return Status::ok();
}

// ---- warp_affine -------------------------------------------------------------------------------

struct Inverse {
  double a, b, c, d, e, f;
};

// transform.cc's sample_border: bilinear with float weights, taps outside src are 0 or clamped.
template <class T>
__device__ void sample_border(const DeviceView<T>& src, double sx, double sy, T* out, bool replicate) {
  const int w = src.width, h = src.height, C = src.channels;
  sx = sx > -2.0 ? (sx < w + 1.0 ? sx : w + 1.0) : -2.0;
  sy = sy > -2.0 ? (sy < h + 1.0 ? sy : h + 1.0) : -2.0;
  const int ix = floor_to_int(sx), iy = floor_to_int(sy);
  const float fx = static_cast<float>(sx - ix), fy = static_cast<float>(sy - iy);
  int x0 = ix, x1 = ix + 1, y0 = iy, y1 = iy + 1;
  bool in_x0 = x0 >= 0 && x0 < w, in_x1 = x1 >= 0 && x1 < w, in_y0 = y0 >= 0 && y0 < h, in_y1 = y1 >= 0 && y1 < h;
  if (replicate) {
    x0 = clamp_int(x0, 0, w - 1);
    x1 = clamp_int(x1, 0, w - 1);
    y0 = clamp_int(y0, 0, h - 1);
    y1 = clamp_int(y1, 0, h - 1);
    in_x0 = in_x1 = in_y0 = in_y1 = true;
  }
  const T* r0 = in_y0 ? row_of(src, y0) : nullptr;
  const T* r1 = in_y1 ? row_of(src, y1) : nullptr;
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

// Interior pixels (all four taps inside src): uint8 in 10-bit fixed point as transform.cc's
// fast loop, floats with the border formula's weights.
__device__ void sample_interior(const DeviceView<std::uint8_t>& src, double sx, double sy, std::uint8_t* out) {
  const int C = src.channels;
  const int bx = static_cast<int>(sx * 1024.0), by = static_cast<int>(sy * 1024.0);
  const int wx = bx & 1023, wy = by & 1023;
  const int w11 = wx * wy, w10 = (wy << 10) - w11, w01 = (wx << 10) - w11, w00 = (1 << 20) - w10 - w01 - w11;
  const std::uint8_t* p = row_of(src, by >> 10) + static_cast<std::size_t>(bx >> 10) * C;
  const std::uint8_t* q = row_of(src, (by >> 10) + 1) + static_cast<std::size_t>(bx >> 10) * C;
  for (int c = 0; c < C; ++c)
    out[c] = static_cast<std::uint8_t>((p[c] * w00 + p[c + C] * w01 + q[c] * w10 + q[c + C] * w11 + (1 << 19)) >> 20);
}
__device__ void sample_interior(const DeviceView<float>& src, double sx, double sy, float* out) {
  const int C = src.channels;
  const int ix = static_cast<int>(sx), iy = static_cast<int>(sy);
  const float fx = static_cast<float>(sx - ix), fy = static_cast<float>(sy - iy);
  const float* p = row_of(src, iy) + static_cast<std::size_t>(ix) * C;
  const float* q = row_of(src, iy + 1) + static_cast<std::size_t>(ix) * C;
  for (int c = 0; c < C; ++c) {
    const float top = p[c] + fx * (p[c + C] - p[c]);
    const float bottom = q[c] + fx * (q[c + C] - q[c]);
    out[c] = top + fy * (bottom - top);
  }
}

template <class T>
__global__ void warp_kernel(DeviceView<T> src, DeviceView<T> dst, Inverse inv, Rect r, bool replicate) {
  const int x = r.x + blockIdx.x * blockDim.x + threadIdx.x;
  const int y = r.y + blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= r.x + r.width || y >= r.y + r.height) return;
  T* out = row_of(dst, y) + static_cast<std::size_t>(x) * dst.channels;
  const double row_x = inv.b * y + inv.c, row_y = inv.e * y + inv.f;
  const double sx = row_x + inv.a * x, sy = row_y + inv.d * x;
  // transform.cc's narrow_to_interior test, per pixel.
  const bool interior = sx >= 0.0 && sx < src.width - 1.0 && sy >= 0.0 && sy < src.height - 1.0;
  if (interior) sample_interior(src, sx, sy, out);
  else sample_border(src, sx, sy, out, replicate);
}

template <class T>
__global__ void fill_zero_kernel(DeviceView<T> dst, Rect r) {
  const int x = r.x + blockIdx.x * blockDim.x + threadIdx.x;
  const int y = r.y + blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= r.x + r.width || y >= r.y + r.height) return;
  T* out = row_of(dst, y) + static_cast<std::size_t>(x) * dst.channels;
  for (int c = 0; c < dst.channels; ++c) out[c] = T{};
}

template <class T>
Status warp_into(const DeviceView<T>& src, const Affine& src_to_dst, const DeviceView<T>& dst, const Rect& region,
                 Border border, cudaStream_t stream) {
  constexpr const char* kWho = "cuda_imaging::warp_affine";
  FSWAP_RETURN_IF_ERROR(check_view(src, kWho, "src"));
  FSWAP_RETURN_IF_ERROR(check_view(dst, kWho, "dst"));
  if (src.channels != dst.channels) return invalid_input(std::string(kWho) + ": src and dst channel counts differ");
  const Rect r = intersect(region, Rect{0, 0, dst.width, dst.height});
  if (r.empty()) return Status::ok();
  const std::optional<Affine> inv = src_to_dst.inverse();
  if (!inv || src.empty()) {
    fill_zero_kernel<T><<<grid_2d(r.width, r.height), dim3(kTileX, kTileY), 0, stream>>>(dst, r);
    return check_launch("warp_affine fill");
  }
  const Inverse k{inv->a, inv->b, inv->c, inv->d, inv->e, inv->f};
  warp_kernel<T><<<grid_2d(r.width, r.height), dim3(kTileX, kTileY), 0, stream>>>(src, dst, k, r,
                                                                                   border == Border::kReplicate);
  return check_launch("warp_affine");
}

// ---- resize ------------------------------------------------------------------------------------

// transform.cc's linear_table entry for dst index i: start tap s0 and the weight f of tap s0 + 1
// (0 when the tap is clamped to an edge).
__device__ __forceinline__ void linear_tap(int i, int src_size, double scale, int& s0, float& f) {
  const double s = (i + 0.5) * scale - 0.5;
  s0 = floor_to_int(s);
  f = static_cast<float>(s - s0);
  if (s0 < 0) {
    s0 = 0;
    f = 0;
  }
  if (s0 >= src_size - 1) {
    s0 = src_size - 1;
    f = 0;
  }
}

template <class T>
__global__ void resize_bilinear_kernel(DeviceView<T> src, DeviceView<T> dst, double scale_x, double scale_y) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= dst.width || y >= dst.height) return;
  const int C = src.channels;
  int sx, sy;
  float fx, fy;
  linear_tap(x, src.width, scale_x, sx, fx);
  linear_tap(y, src.height, scale_y, sy, fy);
  const int o0 = sx * C, o1 = (fx > 0 ? sx + 1 : sx) * C;
  const T* p = row_of(src, sy);
  const T* q = fy > 0 ? row_of(src, sy + 1) : p;
  T* out = row_of(dst, y) + static_cast<std::size_t>(x) * C;
  for (int c = 0; c < C; ++c) {
    const float top = p[o0 + c] + fx * (static_cast<float>(p[o1 + c]) - p[o0 + c]);
    const float bottom = q[o0 + c] + fx * (static_cast<float>(q[o1 + c]) - q[o0 + c]);
    store(out[c], top + fy * (bottom - top));
  }
}

// One axis of transform.cc's separable path: an area table (box weights) when `area`, else the
// linear table. Weights are produced one at a time in the table's order.
struct AxisTaps {
  int first = 0, count = 0;
  double a = 0, b = 0, sum = 0;  // area: the covered interval and its total overlap
  float linear_f = 0;
  bool area = false;

  __device__ AxisTaps(int i, int src_size, int dst_size, bool use_area) : area(use_area) {
    const double scale = static_cast<double>(src_size) / dst_size;
    if (area) {
      a = i * scale;
      b = fmin(static_cast<double>(src_size), a + scale);
      first = floor_to_int(a);
      const int last = min(src_size - 1, static_cast<int>(ceil(b)) - 1);
      count = last - first + 1;
      for (int s = first; s <= last; ++s) sum += overlap(s);
    } else {
      linear_tap(i, src_size, scale, first, linear_f);
      count = linear_f > 0 ? 2 : 1;
    }
  }
  __device__ double overlap(int s) const { return fmin(static_cast<double>(s + 1), b) - fmax(static_cast<double>(s), a); }
  __device__ float weight(int k) const {
    if (area) return static_cast<float>(static_cast<float>(overlap(first + k)) / sum);
    return k == 0 ? 1.0f - linear_f : linear_f;
  }
};

template <class T>
__global__ void resize_separable_kernel(DeviceView<T> src, DeviceView<T> dst, bool area_x, bool area_y) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= dst.width || y >= dst.height) return;
  const int C = src.channels;
  const AxisTaps tx(x, src.width, dst.width, area_x), ty(y, src.height, dst.height, area_y);
  T* out = row_of(dst, y) + static_cast<std::size_t>(x) * C;
  for (int c = 0; c < C; ++c) {
    // The vertical pass per column (transform.cc's buf), then the horizontal sum, in its order.
    float v = 0;
    for (int kx = 0; kx < tx.count; ++kx) {
      const int col = (tx.first + kx) * C + c;
      float column = 0;
      for (int ky = 0; ky < ty.count; ++ky) column += ty.weight(ky) * static_cast<float>(row_of(src, ty.first + ky)[col]);
      v += tx.weight(kx) * column;
    }
    store(out[c], v);
  }
}

template <class T>
__global__ void resize_nearest_kernel(DeviceView<T> src, DeviceView<T> dst, double scale_x, double scale_y) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= dst.width || y >= dst.height) return;
  const int C = src.channels;
  const int sx = min(src.width - 1, static_cast<int>((x + 0.5) * scale_x));
  const int sy = min(src.height - 1, static_cast<int>((y + 0.5) * scale_y));
  const T* s = row_of(src, sy) + static_cast<std::size_t>(sx) * C;
  T* out = row_of(dst, y) + static_cast<std::size_t>(x) * C;
  for (int c = 0; c < C; ++c) out[c] = s[c];
}

template <class T>
Status resize_any(const DeviceView<T>& src, const DeviceView<T>& dst, Interp interp, cudaStream_t stream) {
  constexpr const char* kWho = "cuda_imaging::resize";
  FSWAP_RETURN_IF_ERROR(check_view(src, kWho, "src"));
  FSWAP_RETURN_IF_ERROR(check_view(dst, kWho, "dst"));
  if (src.channels != dst.channels) return invalid_input(std::string(kWho) + ": src and dst channel counts differ");
  if (dst.empty()) return Status::ok();
  const dim3 grid = grid_2d(dst.width, dst.height), block(kTileX, kTileY);
  if (src.empty()) {
    fill_zero_kernel<T><<<grid, block, 0, stream>>>(dst, Rect{0, 0, dst.width, dst.height});
    return check_launch("resize fill");
  }
  const double scale_x = static_cast<double>(src.width) / dst.width;
  const double scale_y = static_cast<double>(src.height) / dst.height;
  const bool area_x = interp == Interp::kArea && dst.width < src.width;
  const bool area_y = interp == Interp::kArea && dst.height < src.height;
  if (interp == Interp::kNearest) {
    resize_nearest_kernel<T><<<grid, block, 0, stream>>>(src, dst, scale_x, scale_y);
  } else if (area_x || area_y) {
    resize_separable_kernel<T><<<grid, block, 0, stream>>>(src, dst, area_x, area_y);
  } else {
    resize_bilinear_kernel<T><<<grid, block, 0, stream>>>(src, dst, scale_x, scale_y);
  }
  return check_launch("resize");
}

// ---- gaussian_blur -----------------------------------------------------------------------------

struct BlurKernel {
  int radius;
  float weight[kMaxBlurRadius + 1];  // weight[k] of offsets ±k
};

// out = k0·centre, then += kk·(left + right) for k = 1..radius, as filter.cc's passes.
__global__ void blur_rows_kernel(DeviceImageF src, DeviceImageF dst, BlurKernel k) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= src.width || y >= src.height) return;
  const int C = src.channels;
  const float* s = row_of(src, y);
  float* out = row_of(dst, y) + static_cast<std::size_t>(x) * C;
  for (int c = 0; c < C; ++c) {
    float v = k.weight[0] * s[x * C + c];
    for (int i = 1; i <= k.radius; ++i)
      v += k.weight[i] * (s[reflect101(x - i, src.width) * C + c] + s[reflect101(x + i, src.width) * C + c]);
    out[c] = v;
  }
}

__global__ void blur_columns_kernel(DeviceImageF src, DeviceImageF dst, BlurKernel k) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= src.width || y >= src.height) return;
  const int C = src.channels;
  const std::size_t i0 = static_cast<std::size_t>(x) * C;
  float* out = row_of(dst, y) + i0;
  for (int c = 0; c < C; ++c) {
    float v = k.weight[0] * row_of(src, y)[i0 + c];
    for (int i = 1; i <= k.radius; ++i)
      v += k.weight[i] * (row_of(src, reflect101(y - i, src.height))[i0 + c] +
                          row_of(src, reflect101(y + i, src.height))[i0 + c]);
    out[c] = v;
  }
}

// ---- alpha_blend -------------------------------------------------------------------------------

__global__ void blend_kernel(DeviceImage dst, DeviceImage src, DeviceImageF mask, int ox, int oy, Rect r) {
  const int x = r.x + blockIdx.x * blockDim.x + threadIdx.x;
  const int y = r.y + blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= r.x + r.width || y >= r.y + r.height) return;
  const int C = dst.channels;
  std::uint8_t* d = row_of(dst, y) + static_cast<std::size_t>(x) * C;
  const std::uint8_t* s = row_of(src, y - oy) + static_cast<std::size_t>(x - ox) * C;
  float a = row_of(mask, y - oy)[x - ox];
  a = a > 0.0f ? (a < 1.0f ? a : 1.0f) : 0.0f;  // also maps NaN to 0
  for (int c = 0; c < C; ++c) {
    const float v = d[c] + (static_cast<float>(s[c]) - d[c]) * a;
    d[c] = static_cast<std::uint8_t>(v + 0.5f);
  }
}

// ---- NV12 ↔ RGB --------------------------------------------------------------------------------

// Y' = Kr·R + Kg·G + Kb·B on 0..1; Pb = (B − Y')/(2(1 − Kb)), Pr = (R − Y')/(2(1 − Kr)).
// Limited range stores Y = 16 + 219·Y', C = 128 + 224·P (scaled from 0..255 RGB); full range
// Y = 255·Y', C = 128 + 255·P.
struct YuvCoefficients {
  float kr, kg, kb;
  float y_offset, y_scale, c_scale;  // code values per unit of 0..255 RGB
};

YuvCoefficients coefficients(YuvFormat format) {
  const bool bt709 = format.matrix == YuvMatrix::kBt709;
  const float kr = bt709 ? 0.2126f : 0.299f, kb = bt709 ? 0.0722f : 0.114f;
  if (format.full_range) return {kr, 1.0f - kr - kb, kb, 0.0f, 1.0f, 1.0f};
  return {kr, 1.0f - kr - kb, kb, 16.0f, 219.0f / 255.0f, 224.0f / 255.0f};
}

__device__ __forceinline__ std::uint8_t to_u8(float v) {
  v = v > 0.0f ? (v < 255.0f ? v : 255.0f) : 0.0f;
  return static_cast<std::uint8_t>(v + 0.5f);
}

__global__ void nv12_to_rgb_kernel(Nv12View nv12, DeviceImage rgb, YuvCoefficients k) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= nv12.width || y >= nv12.height) return;
  const float luma = (row_of(nv12.y, nv12.y_pitch, y)[x] - k.y_offset) / k.y_scale;
  const std::uint8_t* uv = row_of(nv12.uv, nv12.uv_pitch, y / 2) + 2 * (x / 2);
  const float pb = (uv[0] - 128.0f) / k.c_scale, pr = (uv[1] - 128.0f) / k.c_scale;
  const float r = luma + 2.0f * (1.0f - k.kr) * pr;
  const float b = luma + 2.0f * (1.0f - k.kb) * pb;
  const float g = (luma - k.kr * r - k.kb * b) / k.kg;
  std::uint8_t* out = row_of(rgb, y) + static_cast<std::size_t>(x) * 3;
  out[0] = to_u8(r);
  out[1] = to_u8(g);
  out[2] = to_u8(b);
}

__global__ void rgb_to_nv12_kernel(DeviceImage rgb, Nv12View nv12, YuvCoefficients k) {
  const int bx = blockIdx.x * blockDim.x + threadIdx.x, by = blockIdx.y * blockDim.y + threadIdx.y;
  if (2 * bx >= nv12.width || 2 * by >= nv12.height) return;
  float sum[3] = {0, 0, 0};
  int n = 0;
  for (int y = 2 * by; y < min(2 * by + 2, nv12.height); ++y) {
    for (int x = 2 * bx; x < min(2 * bx + 2, nv12.width); ++x) {
      const std::uint8_t* p = row_of(rgb, y) + static_cast<std::size_t>(x) * 3;
      const float luma = k.kr * p[0] + k.kg * p[1] + k.kb * p[2];
      row_of(nv12.y, nv12.y_pitch, y)[x] = to_u8(k.y_offset + k.y_scale * luma);
      for (int c = 0; c < 3; ++c) sum[c] += p[c];
      ++n;
    }
  }
  const float r = sum[0] / n, g = sum[1] / n, b = sum[2] / n;
  const float luma = k.kr * r + k.kg * g + k.kb * b;
  std::uint8_t* uv = row_of(nv12.uv, nv12.uv_pitch, by) + 2 * bx;
  uv[0] = to_u8(128.0f + k.c_scale * (b - luma) / (2.0f * (1.0f - k.kb)));
  uv[1] = to_u8(128.0f + k.c_scale * (r - luma) / (2.0f * (1.0f - k.kr)));
}

Status check_nv12(const Nv12View& v, const char* who) {
  if (v.width < 0 || v.height < 0) return invalid_input(std::string(who) + ": NV12 has a negative size");
  if (v.width == 0 || v.height == 0) return Status::ok();
  if (v.y == nullptr || v.uv == nullptr) return invalid_input(std::string(who) + ": NV12 plane without a device pointer");
  if (v.y_pitch < static_cast<std::size_t>(v.width) || v.uv_pitch < static_cast<std::size_t>(2 * ((v.width + 1) / 2)))
    return invalid_input(std::string(who) + ": an NV12 plane's pitch is shorter than a row");
  return Status::ok();
}

Status check_rgb_matches(const DeviceImage& rgb, const Nv12View& nv12, const char* who) {
  FSWAP_RETURN_IF_ERROR(check_view(rgb, who, "rgb"));
  FSWAP_RETURN_IF_ERROR(check_nv12(nv12, who));
  if (rgb.channels != 3) return invalid_input(std::string(who) + ": rgb must have 3 channels");
  if (rgb.width != nv12.width || rgb.height != nv12.height)
    return invalid_input(std::string(who) + ": rgb and NV12 sizes differ");
  return Status::ok();
}

// ---- face model I/O ----------------------------------------------------------------------------

// std::clamp's comparisons (the CPU functions below use std::clamp), NaN passing through.
__device__ __forceinline__ float clamp_f(float v, float lo, float hi) { return v < lo ? lo : (hi < v ? hi : v); }

// model_input.cc's image_to_nchw per pixel (v · 1 is exact, so pre_scale 1 changes nothing).
template <class T>
__global__ void planar_from_image_kernel(DeviceView<T> src, ToPlanar map, float* dst) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= src.width || y >= src.height) return;
  const int C = src.channels;
  const std::size_t plane = static_cast<std::size_t>(src.width) * src.height;
  const std::size_t at = static_cast<std::size_t>(y) * src.width + x;
  const T* p = row_of(src, y) + static_cast<std::size_t>(x) * C;
  for (int c = 0; c < C; ++c) dst[c * plane + at] = (p[c] * map.pre_scale - map.offset[c]) * map.scale[c];
}

// model_input.cc's nchw_to_image per pixel (gain 1 and bias 0 are exact); rintf rounds half to
// even as std::nearbyint does.
__global__ void image_from_planar_kernel(const float* src, FromPlanar map, DeviceImageF dst) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= dst.width || y >= dst.height) return;
  const int C = dst.channels;
  const std::size_t plane = static_cast<std::size_t>(dst.width) * dst.height;
  const std::size_t at = static_cast<std::size_t>(y) * dst.width + x;
  float* out = row_of(dst, y) + static_cast<std::size_t>(x) * C;
  for (int c = 0; c < C; ++c) {
    const float v = src[c * plane + at] * map.gain[c] + map.bias[c];
    const float u = (clamp_f(v, map.low, map.high) - map.low) / (map.high - map.low);
    out[c] = map.round ? rintf(u * 255.f) : u * 255.f;
  }
}

// ---- paste_back --------------------------------------------------------------------------------

// face/paste_back.cc's paste_back, then face/enhancer.cc's face_enhancer_blend, per pixel of r.
// inv maps region coordinates (x − r.x, y − r.y) to crop coordinates, as the CPU's patch warps do.
__global__ void paste_back_kernel(DeviceImage frame, DeviceImageF crop, DeviceImageF mask, Inverse inv, Rect r,
                                  float blend) {
  const int px = blockIdx.x * blockDim.x + threadIdx.x, py = blockIdx.y * blockDim.y + threadIdx.y;
  if (px >= r.width || py >= r.height) return;
  const double row_x = inv.b * py + inv.c, row_y = inv.e * py + inv.f;
  const double sx = row_x + inv.a * px, sy = row_y + inv.d * px;
  const bool interior = sx >= 0.0 && sx < crop.width - 1.0 && sy >= 0.0 && sy < crop.height - 1.0;
  float m, p[kMaxPasteChannels];
  if (interior) {
    sample_interior(mask, sx, sy, &m);
    sample_interior(crop, sx, sy, p);
  } else {
    sample_border(mask, sx, sy, &m, false);
    sample_border(crop, sx, sy, p, true);
  }
  const float a = clamp_f(m, 0.f, 1.f);
  const float keep = 1.f - blend;
  std::uint8_t* out = row_of(frame, r.y + py) + static_cast<std::size_t>(r.x + px) * frame.channels;
  for (int c = 0; c < frame.channels; ++c) {
    // paste_back truncates (numpy's astype(uint8)); the enhancer's blend rounds.
    const float v = out[c] * (1.f - a) + p[c] * a;
    const std::uint8_t pasted = static_cast<std::uint8_t>(clamp_f(v, 0.f, 255.f));
    const float blended = rintf(out[c] * keep + pasted * blend);
    out[c] = static_cast<std::uint8_t>(clamp_f(blended, 0.f, 255.f));
  }
}

// ---- FaceFusion's content masks ------------------------------------------------------------------

// face_masker.cc's linear_taps entry for dst index d: two taps and their 11-bit weights.
struct FixedTap {
  int first, second, w_first, w_second;
};
__device__ FixedTap fixed_tap(int d, int src_size, double scale) {
  float f = static_cast<float>((d + 0.5) * scale - 0.5);
  int s = static_cast<int>(floorf(f));
  f -= static_cast<float>(s);
  if (s < 0) f = 0, s = 0;
  if (s >= src_size - 1) f = 0, s = src_size - 1;
  const int w0 = static_cast<int>(lroundf((1.f - f) * 2048));
  return {s, min(s + 1, src_size - 1), w0, 2048 - w0};
}

// face_masker.cc's resize_linear_opencv per output value: both rows' horizontal sums, then the
// vertical step in its shifts.
__global__ void resize_linear_fixed_kernel(DeviceImage src, DeviceImage dst, double scale_x, double scale_y) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= dst.width || y >= dst.height) return;
  const int C = src.channels;
  const FixedTap tx = fixed_tap(x, src.width, scale_x), ty = fixed_tap(y, src.height, scale_y);
  const std::uint8_t* r0 = row_of(src, ty.first);
  const std::uint8_t* r1 = row_of(src, ty.second);
  std::uint8_t* out = row_of(dst, y) + static_cast<std::size_t>(x) * C;
  for (int c = 0; c < C; ++c) {
    const int row0 = r0[tx.first * C + c] * tx.w_first + r0[tx.second * C + c] * tx.w_second;
    const int row1 = r1[tx.first * C + c] * tx.w_first + r1[tx.second * C + c] * tx.w_second;
    const int v = (((ty.w_first * (row0 >> 4)) >> 16) + ((ty.w_second * (row1 >> 4)) >> 16) + 2) >> 2;
    out[c] = static_cast<std::uint8_t>(clamp_int(v, 0, 255));
  }
}

// model_input.cc's image_to_nhwc per pixel, channels optionally reversed.
__global__ void interleaved_from_image_kernel(DeviceImage src, float offset, float scale, bool reverse, float* dst) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= src.width || y >= src.height) return;
  const int C = src.channels;
  const std::uint8_t* p = row_of(src, y) + static_cast<std::size_t>(x) * C;
  float* out = dst + (static_cast<std::size_t>(y) * src.width + x) * C;
  for (int c = 0; c < C; ++c) out[c] = (p[reverse ? C - 1 - c : c] - offset) * scale;
}

// face_masker.cc's region_mask argmax per pixel.
__global__ void chosen_class_mask_kernel(const float* scores, int classes, std::uint64_t chosen, DeviceImageF dst) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= dst.width || y >= dst.height) return;
  const std::size_t plane = static_cast<std::size_t>(dst.width) * dst.height;
  const float* v = scores + static_cast<std::size_t>(y) * dst.width + x;
  int best = 0;
  for (int c = 1; c < classes; ++c)
    if (v[c * plane] > v[best * plane]) best = c;
  row_of(dst, y)[x] = best < 64 && ((chosen >> best) & 1u) != 0 ? 1.f : 0.f;
}

__global__ void minimum_into_kernel(float* values, const float* other, std::size_t count) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count && other[i] < values[i]) values[i] = other[i];
}

__global__ void fill_kernel(float* values, std::size_t count, float value) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count) values[i] = value;
}

__global__ void clamp_map_kernel(float* values, std::size_t count, ClampMap map) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count) values[i] = (clamp_f(values[i], map.low, map.high) - map.offset) * map.scale;
}

// paste_back.cc's gaussian_blur_opencv passes: a double sum over the taps in order, stored as float.
__global__ void taps_rows_kernel(DeviceImageF src, DeviceImageF dst, BlurTaps taps) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= src.width || y >= src.height) return;
  const float* s = row_of(src, y);
  const int radius = taps.count / 2;
  double acc = 0;
  for (int k = 0; k < taps.count; ++k) acc += taps.weight[k] * s[reflect101(x + k - radius, src.width)];
  row_of(dst, y)[x] = static_cast<float>(acc);
}

__global__ void taps_columns_kernel(DeviceImageF src, DeviceImageF dst, BlurTaps taps) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= src.width || y >= src.height) return;
  const int radius = taps.count / 2;
  double acc = 0;
  for (int k = 0; k < taps.count; ++k) acc += taps.weight[k] * row_of(src, reflect101(y + k - radius, src.height))[x];
  row_of(dst, y)[x] = static_cast<float>(acc);
}

constexpr int kLineThreads = 256;

unsigned line_blocks(std::size_t count) { return static_cast<unsigned>((count + kLineThreads - 1) / kLineThreads); }

Status check_values(const float* values, std::size_t count, const char* who, const char* name) {
  if (count > 0 && values == nullptr) return invalid_input(std::string(who) + ": " + name + " has no device pointer");
  return Status::ok();
}

Status check_planar_channels(int channels, const char* who) {
  if (channels > kMaxPlanarChannels)
    return unsupported(std::string(who) + ": " + std::to_string(channels) + " channels (at most " +
                       std::to_string(kMaxPlanarChannels) + ")");
  return Status::ok();
}

}  // namespace

YuvFormat default_yuv_format(int height) {
  return YuvFormat{height >= 720 ? YuvMatrix::kBt709 : YuvMatrix::kBt601, false};
}

Status warp_affine(const DeviceImage& src, const Affine& src_to_dst, const DeviceImage& dst, Border border,
                   cudaStream_t stream) {
  return warp_into(src, src_to_dst, dst, Rect{0, 0, dst.width, dst.height}, border, stream);
}
Status warp_affine(const DeviceImageF& src, const Affine& src_to_dst, const DeviceImageF& dst, Border border,
                   cudaStream_t stream) {
  return warp_into(src, src_to_dst, dst, Rect{0, 0, dst.width, dst.height}, border, stream);
}
Status warp_affine_into(const DeviceImage& src, const Affine& src_to_dst, const DeviceImage& dst, const Rect& region,
                        Border border, cudaStream_t stream) {
  return warp_into(src, src_to_dst, dst, region, border, stream);
}
Status warp_affine_into(const DeviceImageF& src, const Affine& src_to_dst, const DeviceImageF& dst,
                        const Rect& region, Border border, cudaStream_t stream) {
  return warp_into(src, src_to_dst, dst, region, border, stream);
}

Status resize(const DeviceImage& src, const DeviceImage& dst, Interp interp, cudaStream_t stream) {
  return resize_any(src, dst, interp, stream);
}
Status resize(const DeviceImageF& src, const DeviceImageF& dst, Interp interp, cudaStream_t stream) {
  return resize_any(src, dst, interp, stream);
}

Status gaussian_blur(const DeviceImageF& image, float sigma, const DeviceImageF& scratch, cudaStream_t stream) {
  constexpr const char* kWho = "cuda_imaging::gaussian_blur";
  FSWAP_RETURN_IF_ERROR(check_view(image, kWho, "image"));
  if (!(sigma > 0) || image.empty()) return Status::ok();
  FSWAP_RETURN_IF_ERROR(check_view(scratch, kWho, "scratch"));
  if (scratch.width != image.width || scratch.height != image.height || scratch.channels != image.channels)
    return invalid_input(std::string(kWho) + ": scratch must have the image's size and channels");
  const double radius_d = std::ceil(3.0 * sigma);
  if (radius_d > kMaxBlurRadius)
    return unsupported(std::string(kWho) + ": sigma " + std::to_string(sigma) + " needs a radius over " +
                       std::to_string(kMaxBlurRadius));
  // filter.cc's kernel: exp in double, normalised in double, stored as float.
  BlurKernel k{};
  k.radius = static_cast<int>(radius_d);
  double sum = 0;
  double raw[kMaxBlurRadius + 1];
  for (int i = 0; i <= k.radius; ++i) {
    raw[i] = std::exp(-0.5 * i * i / (static_cast<double>(sigma) * sigma));
    k.weight[i] = static_cast<float>(raw[i]);
    sum += i == 0 ? raw[i] : 2 * raw[i];
  }
  for (int i = 0; i <= k.radius; ++i) k.weight[i] = static_cast<float>(k.weight[i] / sum);
  const dim3 grid = grid_2d(image.width, image.height), block(kTileX, kTileY);
  blur_rows_kernel<<<grid, block, 0, stream>>>(image, scratch, k);
  FSWAP_RETURN_IF_ERROR(check_launch("gaussian_blur rows"));
  blur_columns_kernel<<<grid, block, 0, stream>>>(scratch, image, k);
  return check_launch("gaussian_blur columns");
}

Status alpha_blend(const DeviceImage& dst, const DeviceImage& src, const DeviceImageF& mask, int x, int y,
                   cudaStream_t stream) {
  constexpr const char* kWho = "cuda_imaging::alpha_blend";
  FSWAP_RETURN_IF_ERROR(check_view(dst, kWho, "dst"));
  FSWAP_RETURN_IF_ERROR(check_view(src, kWho, "src"));
  FSWAP_RETURN_IF_ERROR(check_view(mask, kWho, "mask"));
  if (dst.channels != src.channels) return invalid_input(std::string(kWho) + ": dst and src channel counts differ");
  if (mask.width != src.width || mask.height != src.height || mask.channels != 1)
    return invalid_input(std::string(kWho) + ": mask must be 1 channel of the patch's size");
  const Rect r = intersect(Rect{x, y, src.width, src.height}, Rect{0, 0, dst.width, dst.height});
  if (r.empty()) return Status::ok();
  blend_kernel<<<grid_2d(r.width, r.height), dim3(kTileX, kTileY), 0, stream>>>(dst, src, mask, x, y, r);
  return check_launch("alpha_blend");
}

Status nv12_to_rgb(const Nv12View& nv12, const DeviceImage& rgb, YuvFormat format, cudaStream_t stream) {
  FSWAP_RETURN_IF_ERROR(check_rgb_matches(rgb, nv12, "cuda_imaging::nv12_to_rgb"));
  if (rgb.empty()) return Status::ok();
  nv12_to_rgb_kernel<<<grid_2d(rgb.width, rgb.height), dim3(kTileX, kTileY), 0, stream>>>(nv12, rgb,
                                                                                          coefficients(format));
  return check_launch("nv12_to_rgb");
}

Status rgb_to_nv12(const DeviceImage& rgb, const Nv12View& nv12, YuvFormat format, cudaStream_t stream) {
  FSWAP_RETURN_IF_ERROR(check_rgb_matches(rgb, nv12, "cuda_imaging::rgb_to_nv12"));
  if (rgb.empty()) return Status::ok();
  rgb_to_nv12_kernel<<<grid_2d((rgb.width + 1) / 2, (rgb.height + 1) / 2), dim3(kTileX, kTileY), 0, stream>>>(
      rgb, nv12, coefficients(format));
  return check_launch("rgb_to_nv12");
}

template <class T>
Status planar_from_any(const DeviceView<T>& src, const ToPlanar& map, float* dst, cudaStream_t stream) {
  constexpr const char* kWho = "cuda_imaging::planar_from_image";
  FSWAP_RETURN_IF_ERROR(check_view(src, kWho, "src"));
  FSWAP_RETURN_IF_ERROR(check_planar_channels(src.channels, kWho));
  if (src.empty()) return Status::ok();
  if (dst == nullptr) return invalid_input(std::string(kWho) + ": dst has no device pointer");
  planar_from_image_kernel<T><<<grid_2d(src.width, src.height), dim3(kTileX, kTileY), 0, stream>>>(src, map, dst);
  return check_launch("planar_from_image");
}

Status planar_from_image(const DeviceImage& src, const ToPlanar& map, float* dst, cudaStream_t stream) {
  return planar_from_any(src, map, dst, stream);
}
Status planar_from_image(const DeviceImageF& src, const ToPlanar& map, float* dst, cudaStream_t stream) {
  return planar_from_any(src, map, dst, stream);
}

Status image_from_planar(const float* src, const FromPlanar& map, const DeviceImageF& dst, cudaStream_t stream) {
  constexpr const char* kWho = "cuda_imaging::image_from_planar";
  FSWAP_RETURN_IF_ERROR(check_view(dst, kWho, "dst"));
  FSWAP_RETURN_IF_ERROR(check_planar_channels(dst.channels, kWho));
  if (!(map.low < map.high))
    return invalid_input(std::string(kWho) + ": the range [" + std::to_string(map.low) + ", " +
                         std::to_string(map.high) + "] is empty");
  if (dst.empty()) return Status::ok();
  if (src == nullptr) return invalid_input(std::string(kWho) + ": src has no device pointer");
  image_from_planar_kernel<<<grid_2d(dst.width, dst.height), dim3(kTileX, kTileY), 0, stream>>>(src, map, dst);
  return check_launch("image_from_planar");
}

Status paste_back(const DeviceImage& frame, const DeviceImageF& crop, const DeviceImageF& mask,
                  const Affine& frame_to_crop, const Rect& region, float blend, cudaStream_t stream) {
  constexpr const char* kWho = "cuda_imaging::paste_back";
  FSWAP_RETURN_IF_ERROR(check_view(frame, kWho, "frame"));
  FSWAP_RETURN_IF_ERROR(check_view(crop, kWho, "crop"));
  FSWAP_RETURN_IF_ERROR(check_view(mask, kWho, "mask"));
  if (crop.channels != frame.channels)
    return invalid_input(std::string(kWho) + ": crop and frame channel counts differ");
  if (mask.channels != 1 || mask.width != crop.width || mask.height != crop.height)
    return invalid_input(std::string(kWho) + ": the mask must be 1 channel, crop-sized");
  if (frame.channels > kMaxPasteChannels)
    return unsupported(std::string(kWho) + ": " + std::to_string(frame.channels) + " channels (at most " +
                       std::to_string(kMaxPasteChannels) + ")");
  if (!(blend >= 0.f && blend <= 1.f))
    return invalid_input(std::string(kWho) + ": blend " + std::to_string(blend) + " is outside [0, 1]");
  const Rect r = intersect(region, Rect{0, 0, frame.width, frame.height});
  if (r.empty() || crop.empty()) return Status::ok();
  // paste_back.cc's crop → patch map, then the inverse warp_affine_into takes of it.
  const std::optional<Affine> crop_to_frame = frame_to_crop.inverse();
  if (!crop_to_frame) return Status::ok();
  Affine crop_to_patch = *crop_to_frame;
  crop_to_patch.c -= r.x;
  crop_to_patch.f -= r.y;
  const std::optional<Affine> inv = crop_to_patch.inverse();
  if (!inv) return Status::ok();  // the CPU's warps give a zero mask: the frame stays as it is
  const Inverse k{inv->a, inv->b, inv->c, inv->d, inv->e, inv->f};
  paste_back_kernel<<<grid_2d(r.width, r.height), dim3(kTileX, kTileY), 0, stream>>>(frame, crop, mask, k, r, blend);
  return check_launch("paste_back");
}

Status resize_linear_fixed(const DeviceImage& src, const DeviceImage& dst, cudaStream_t stream) {
  constexpr const char* kWho = "cuda_imaging::resize_linear_fixed";
  FSWAP_RETURN_IF_ERROR(check_view(src, kWho, "src"));
  FSWAP_RETURN_IF_ERROR(check_view(dst, kWho, "dst"));
  if (src.channels != dst.channels) return invalid_input(std::string(kWho) + ": src and dst channel counts differ");
  if (dst.empty()) return Status::ok();
  if (src.empty()) return invalid_input(std::string(kWho) + ": src is empty");
  const double scale_x = static_cast<double>(src.width) / dst.width;
  const double scale_y = static_cast<double>(src.height) / dst.height;
  resize_linear_fixed_kernel<<<grid_2d(dst.width, dst.height), dim3(kTileX, kTileY), 0, stream>>>(src, dst, scale_x,
                                                                                                    scale_y);
  return check_launch("resize_linear_fixed");
}

Status interleaved_from_image(const DeviceImage& src, float offset, float scale, bool reverse_channels, float* dst,
                              cudaStream_t stream) {
  constexpr const char* kWho = "cuda_imaging::interleaved_from_image";
  FSWAP_RETURN_IF_ERROR(check_view(src, kWho, "src"));
  FSWAP_RETURN_IF_ERROR(check_planar_channels(src.channels, kWho));
  if (src.empty()) return Status::ok();
  if (dst == nullptr) return invalid_input(std::string(kWho) + ": dst has no device pointer");
  interleaved_from_image_kernel<<<grid_2d(src.width, src.height), dim3(kTileX, kTileY), 0, stream>>>(
      src, offset, scale, reverse_channels, dst);
  return check_launch("interleaved_from_image");
}

Status chosen_class_mask(const float* scores, int classes, std::uint64_t chosen, const DeviceImageF& dst,
                         cudaStream_t stream) {
  constexpr const char* kWho = "cuda_imaging::chosen_class_mask";
  FSWAP_RETURN_IF_ERROR(check_view(dst, kWho, "dst"));
  if (dst.channels != 1) return invalid_input(std::string(kWho) + ": dst must have 1 channel");
  if (classes < 1) return invalid_input(std::string(kWho) + ": no classes");
  if (dst.empty()) return Status::ok();
  if (scores == nullptr) return invalid_input(std::string(kWho) + ": scores has no device pointer");
  chosen_class_mask_kernel<<<grid_2d(dst.width, dst.height), dim3(kTileX, kTileY), 0, stream>>>(scores, classes, chosen,
                                                                                                 dst);
  return check_launch("chosen_class_mask");
}

Status minimum_into(float* values, const float* other, std::size_t count, cudaStream_t stream) {
  constexpr const char* kWho = "cuda_imaging::minimum_into";
  FSWAP_RETURN_IF_ERROR(check_values(values, count, kWho, "values"));
  FSWAP_RETURN_IF_ERROR(check_values(other, count, kWho, "other"));
  if (count == 0) return Status::ok();
  minimum_into_kernel<<<line_blocks(count), kLineThreads, 0, stream>>>(values, other, count);
  return check_launch("minimum_into");
}

Status fill(float* values, std::size_t count, float value, cudaStream_t stream) {
  FSWAP_RETURN_IF_ERROR(check_values(values, count, "cuda_imaging::fill", "values"));
  if (count == 0) return Status::ok();
  fill_kernel<<<line_blocks(count), kLineThreads, 0, stream>>>(values, count, value);
  return check_launch("fill");
}

Status clamp_map(float* values, std::size_t count, const ClampMap& map, cudaStream_t stream) {
  constexpr const char* kWho = "cuda_imaging::clamp_map";
  FSWAP_RETURN_IF_ERROR(check_values(values, count, kWho, "values"));
  if (!(map.low <= map.high)) return invalid_input(std::string(kWho) + ": low is above high");
  if (count == 0) return Status::ok();
  clamp_map_kernel<<<line_blocks(count), kLineThreads, 0, stream>>>(values, count, map);
  return check_launch("clamp_map");
}

Status blur_with_taps(const DeviceImageF& image, const BlurTaps& taps, const DeviceImageF& scratch,
                      cudaStream_t stream) {
  constexpr const char* kWho = "cuda_imaging::blur_with_taps";
  FSWAP_RETURN_IF_ERROR(check_view(image, kWho, "image"));
  FSWAP_RETURN_IF_ERROR(check_view(scratch, kWho, "scratch"));
  if (image.channels != 1) return invalid_input(std::string(kWho) + ": the image must have 1 channel");
  if (scratch.width != image.width || scratch.height != image.height || scratch.channels != 1)
    return invalid_input(std::string(kWho) + ": scratch must have the image's size, 1 channel");
  if (taps.count < 1 || taps.count > kMaxBlurTaps || taps.count % 2 == 0)
    return invalid_input(std::string(kWho) + ": " + std::to_string(taps.count) + " taps (an odd count up to " +
                         std::to_string(kMaxBlurTaps) + ")");
  if (image.empty()) return Status::ok();
  const dim3 grid = grid_2d(image.width, image.height), block(kTileX, kTileY);
  taps_rows_kernel<<<grid, block, 0, stream>>>(image, scratch, taps);
  FSWAP_RETURN_IF_ERROR(check_launch("blur_with_taps rows"));
  taps_columns_kernel<<<grid, block, 0, stream>>>(scratch, image, taps);
  return check_launch("blur_with_taps columns");
}

}  // namespace fswap::cuda_imaging
