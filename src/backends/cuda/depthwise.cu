#include "backends/cuda/depthwise.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "backends/cuda/common.cuh"

namespace fswap::cuda {
namespace {

// The problem's sizes as the kernel indexes them: each fits an int (checked on the host); element
// offsets are computed in 64 bits.
struct Geometry {
  int n, h, w, c, m, multiplier, oh, ow, kh, kw, sh, sw, dh, dw, ph, pw;
};

// V consecutive elements (V = 2: aligned to 2 elements) as float.
template <int V, class T>
__device__ __forceinline__ void load(const T* p, float (&v)[V]) {
  if constexpr (V == 2 && std::is_same_v<T, __half>) {
    const float2 f = __half22float2(*reinterpret_cast<const __half2*>(p));
    v[0] = f.x;
    v[1] = f.y;
  } else if constexpr (V == 2) {
    const float2 f = *reinterpret_cast<const float2*>(p);
    v[0] = f.x;
    v[1] = f.y;
  } else {
    v[0] = to_float(*p);
  }
}

template <int V, class T>
__device__ __forceinline__ void store(T* p, const float (&v)[V]) {
  if constexpr (V == 2 && std::is_same_v<T, __half>) {
    *reinterpret_cast<__half2*>(p) = __floats2half2_rn(v[0], v[1]);
  } else if constexpr (V == 2) {
    *reinterpret_cast<float2*>(p) = make_float2(v[0], v[1]);
  } else {
    *p = from_float<T>(v[0]);
  }
}

// Thread (x, y) of block (bx, by): output channels m .. m + V - 1 (V = 2 only with multiplier 1), m =
// (by · blockDim.x + x) · V, for `pixels_per_thread` consecutive output pixels (of [N, OH, OW]
// flattened) from (bx · blockDim.y + y) · pixels_per_thread. Neighbouring threads take neighbouring
// channels, so every tap's read of a warp is one contiguous run of X. kKH × kKW > 0 is the kernel size
// known at compile time, its weights then held in registers; 0 × 0 reads them at each tap.
template <class T, int V, int kKH, int kKW>
__global__ void __launch_bounds__(kBlock)
    depthwise_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,
                     const T* __restrict__ residual, T* __restrict__ y, Geometry g, int pixels_per_thread,
                     FusedActivation act) {
  const int m = (blockIdx.y * blockDim.x + threadIdx.x) * V;
  if (m >= g.m) return;
  const std::int64_t pixels = static_cast<std::int64_t>(g.n) * g.oh * g.ow;
  std::int64_t p = (static_cast<std::int64_t>(blockIdx.x) * blockDim.y + threadIdx.y) * pixels_per_thread;
  if (p >= pixels) return;

  constexpr int kTaps = kKH * kKW;
  const int kh_count = kKH > 0 ? kKH : g.kh, kw_count = kKW > 0 ? kKW : g.kw;
  const int taps = kh_count * kw_count;
  float held[kTaps > 0 ? kTaps : 1][V];
  if constexpr (kTaps > 0) {
#pragma unroll
    for (int t = 0; t < kTaps; ++t)
#pragma unroll
      for (int v = 0; v < V; ++v) held[t][v] = to_float(w[(m + v) * kTaps + t]);
  }
  float b[V];
#pragma unroll
  for (int v = 0; v < V; ++v) b[v] = bias == nullptr ? 0.0f : to_float(bias[m + v]);

  const int c = m / g.multiplier;
  int ow = static_cast<int>(p % g.ow);
  const std::int64_t rows = p / g.ow;
  int oh = static_cast<int>(rows % g.oh), n = static_cast<int>(rows / g.oh);
  for (int i = 0; i < pixels_per_thread && p < pixels; ++i, ++p) {
    const T* image = x + static_cast<std::int64_t>(n) * g.h * g.w * g.c + c;
    const int ih0 = oh * g.sh - g.ph, iw0 = ow * g.sw - g.pw;
    float acc[V] = {};
#pragma unroll
    for (int kh = 0; kh < kh_count; ++kh) {
      const int ih = ih0 + kh * g.dh;
      if (ih < 0 || ih >= g.h) continue;
      const T* row = image + static_cast<std::int64_t>(ih) * g.w * g.c;
#pragma unroll
      for (int kw = 0; kw < kw_count; ++kw) {
        const int iw = iw0 + kw * g.dw;
        if (iw < 0 || iw >= g.w) continue;
        float in[V];
        load<V>(row + static_cast<std::int64_t>(iw) * g.c, in);
        const int t = kh * kw_count + kw;
#pragma unroll
        for (int v = 0; v < V; ++v) {
          if constexpr (kTaps > 0)
            acc[v] = fmaf(in[v], held[t][v], acc[v]);
          else
            acc[v] = fmaf(in[v], to_float(w[(m + v) * taps + t]), acc[v]);
        }
      }
    }
    float out[V];
#pragma unroll
    for (int v = 0; v < V; ++v) out[v] = acc[v] + b[v];
    if (residual != nullptr) {
      float r[V];
      load<V>(residual + p * g.m + m, r);
#pragma unroll
      for (int v = 0; v < V; ++v) out[v] += r[v];
    }
#pragma unroll
    for (int v = 0; v < V; ++v) out[v] = activate(out[v], act);
    store<V>(y + p * g.m + m, out);
    if (++ow == g.ow) {
      ow = 0;
      if (++oh == g.oh) {
        oh = 0;
        ++n;
      }
    }
  }
}

// Channel vectors across x (as evenly as the tiles allow, up to a warp), output pixels across y.
struct DepthwiseLaunch {
  dim3 grid, block;
  int pixels_per_thread = 1;
};

DepthwiseLaunch depthwise_launch(std::int64_t vectors, std::int64_t pixels) {
  const std::int64_t tiles = (vectors + 31) / 32;
  const std::int64_t bx = (vectors + tiles - 1) / tiles;
  const std::int64_t by = std::max<std::int64_t>(1, kBlock / bx);
  // Several pixels a thread (weights and bias loaded once) only where there are threads to spare.
  const std::int64_t work = vectors * pixels;
  const int per_thread = work >= (std::int64_t{4} << 20) ? 4 : work >= (std::int64_t{1} << 20) ? 2 : 1;
  const std::int64_t gx = (pixels + by * per_thread - 1) / (by * per_thread);
  return {dim3(static_cast<unsigned>(gx), static_cast<unsigned>(tiles)),
          dim3(static_cast<unsigned>(bx), static_cast<unsigned>(by)), per_thread};
}

template <class T, int V>
Status launch(const Geometry& g, const void* x, const void* w, const void* bias, const void* residual, void* y,
              const FusedActivation& act, cudaStream_t stream, const char* op) {
  const DepthwiseLaunch l = depthwise_launch(g.m / V, static_cast<std::int64_t>(g.n) * g.oh * g.ow);
  const auto run = [&](auto kernel) {
    kernel<<<l.grid, l.block, 0, stream>>>(static_cast<const T*>(x), static_cast<const T*>(w),
                                           static_cast<const T*>(bias), static_cast<const T*>(residual),
                                           static_cast<T*>(y), g, l.pixels_per_thread, act);
    return check_launch(op);
  };
  if (g.kh == 3 && g.kw == 3) return run(depthwise_kernel<T, V, 3, 3>);
  if (g.kh == 5 && g.kw == 5) return run(depthwise_kernel<T, V, 5, 5>);
  return run(depthwise_kernel<T, V, 0, 0>);
}

bool aligned(const void* p, std::size_t bytes) { return reinterpret_cast<std::uintptr_t>(p) % bytes == 0; }

}  // namespace

Status depthwise_conv(const DepthwiseConv& p, const void* x, const void* w, const void* bias, const void* residual,
                      void* y, const FusedActivation& act, CUstream_st* stream, const char* op) {
  const std::int64_t m = p.channels * p.multiplier;
  if (p.batch <= 0 || m <= 0 || p.out[0] <= 0 || p.out[1] <= 0) return Status::ok();
  const std::int64_t sizes[] = {p.batch, p.in[0], p.in[1], p.channels, m, p.multiplier, p.out[0], p.out[1],
                                p.kernel[0], p.kernel[1], p.stride[0], p.stride[1], p.dilation[0],
                                p.dilation[1], p.pad_begin[0], p.pad_begin[1], m * p.kernel[0] * p.kernel[1]};
  for (const std::int64_t s : sizes)
    if (s < std::numeric_limits<int>::min() || s > std::numeric_limits<int>::max())
      return unsupported(on_cuda(op) + ": depthwise size " + std::to_string(s) + " exceeds the int range");
  const auto i = [](std::int64_t v) { return static_cast<int>(v); };
  const Geometry g{i(p.batch),       i(p.in[0]),       i(p.in[1]),        i(p.channels),
                   i(m),             i(p.multiplier),  i(p.out[0]),       i(p.out[1]),
                   i(p.kernel[0]),   i(p.kernel[1]),   i(p.stride[0]),    i(p.stride[1]),
                   i(p.dilation[0]), i(p.dilation[1]), i(p.pad_begin[0]), i(p.pad_begin[1])};
  const cudaStream_t s = stream;
  return dispatch_float(p.dtype, op, [&]<class T>() {
    const std::size_t pair_bytes = 2 * sizeof(T);
    if (p.multiplier == 1 && p.channels % 2 == 0 && aligned(x, pair_bytes) && aligned(y, pair_bytes) &&
        (residual == nullptr || aligned(residual, pair_bytes)))
      return launch<T, 2>(g, x, w, bias, residual, y, act, s, op);
    return launch<T, 1>(g, x, w, bias, residual, y, act, s, op);
  });
}

}  // namespace fswap::cuda
