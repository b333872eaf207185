// Normalisations and pools on CUDA, mirroring backends/cpu/nn_norm.cc and nn_pool.cc.
//
// Statistics (mean and variance) are Welford moments per thread merged with Chan's formula, so a
// 512×512 plane stays accurate in float32 without a second pass over the data. A row (a plane of
// InstanceNormalization, a normalised row of LayerNormalization, a plane of the global pools) is
// reduced by a warp when short and by a whole block when long.
//
// channels_last = 1 (X and Y [N, H, W, C], runtime/channels_last.h): consecutive threads take
// consecutive channels, so every warp reads and writes whole runs of C. InstanceNormalization
// gathers each (n, c)'s moments over slices of the pixels (a block per 32 channels and slice),
// merges them per (n, c) into its (a, b), then applies them; the pools walk Y in its own order.
//
// FilterResponseNorm (the fused FRN + TLU, backends/op.h) runs InstanceNormalization's passes:
// its mean of squares is m2/count + mean² of the same moments, and its coefficients carry the
// per-channel floor tau (FlooredAffine), so each (n, c) applies max(x·a + b, tau[c]).
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <utility>

#include "backends/cuda/common.cuh"
#include "backends/cuda/families.h"
#include "backends/op_rules.h"

namespace fswap::cuda {
namespace {

constexpr int kWarp = 32;
constexpr unsigned kFullMask = 0xffffffffu;
constexpr unsigned kLongRowBlock = 1024;
constexpr std::int64_t kWarpRowMax = 1024;  // rows up to this long get a warp, longer ones a block
constexpr std::int64_t kLongRow = 16384;    // rows at least this long get kLongRowBlock threads
constexpr std::int64_t kMaxBlocks = 65535LL * 8;
constexpr std::int64_t kMaxGridY = 65535;
constexpr std::int64_t kItemsPerThread = 4;  // per thread of an affine_planes block
constexpr std::int64_t kTargetBlocks = 512;  // enough blocks to fill an H100 a few times over
constexpr std::int64_t kMinSliceLength = 16384;
constexpr std::int64_t kInt32IndexLimit = std::int64_t{1} << 30;  // leaves room for grid-stride steps
constexpr float kInfinity = std::numeric_limits<float>::infinity();

__host__ __device__ constexpr std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }
unsigned blocks_for(std::int64_t units) {
  return static_cast<unsigned>(std::clamp<std::int64_t>(units, 1, kMaxBlocks));
}

// ------------------------------------------------------------------------------------ reductions

// Count, mean and sum of squared deviations of some values; merged in any order.
struct Moments {
  float count, mean, m2;
};

__device__ __forceinline__ void add_value(Moments& m, float v) {
  m.count += 1.0f;
  const float delta = v - m.mean;
  m.mean += delta / m.count;
  m.m2 += delta * (v - m.mean);
}

__device__ __forceinline__ Moments merge(const Moments& a, const Moments& b) {
  const float count = a.count + b.count;
  if (count == 0.0f) return a;
  const float b_share = b.count / count;
  const float delta = b.mean - a.mean;
  return {count, a.mean + delta * b_share, a.m2 + b.m2 + delta * delta * a.count * b_share};
}

struct MergeMoments {
  __device__ Moments operator()(const Moments& a, const Moments& b) const { return merge(a, b); }
};
struct Sum {
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct Maximum {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

__device__ __forceinline__ float shuffle_down(float v, int delta) { return __shfl_down_sync(kFullMask, v, delta); }
__device__ __forceinline__ Moments shuffle_down(const Moments& m, int delta) {
  return {shuffle_down(m.count, delta), shuffle_down(m.mean, delta), shuffle_down(m.m2, delta)};
}
__device__ __forceinline__ float from_lane0(float v) { return __shfl_sync(kFullMask, v, 0); }
__device__ __forceinline__ Moments from_lane0(const Moments& m) {
  return {from_lane0(m.count), from_lane0(m.mean), from_lane0(m.m2)};
}

// The warp's values combined; every lane gets lane 0's result, so all lanes agree bit for bit
// (Chan's merge is not symmetric in its arguments, so a butterfly would not).
template <class V, class Op>
__device__ V warp_reduce(V v, Op op) {
  for (int delta = kWarp / 2; delta > 0; delta /= 2) v = op(v, shuffle_down(v, delta));
  return from_lane0(v);
}

// The block's values combined, returned to every thread. blockDim.x is a multiple of kWarp.
template <class V, class Op>
__device__ V block_reduce(V v, Op op) {
  __shared__ V per_warp[kWarp];
  v = warp_reduce(v, op);
  if (threadIdx.x % kWarp == 0) per_warp[threadIdx.x / kWarp] = v;
  __syncthreads();
  v = per_warp[0];
  for (unsigned w = 1; w < blockDim.x / kWarp; ++w) v = op(v, per_warp[w]);
  __syncthreads();  // per_warp is rewritten by the next call
  return v;
}

// The threads that share one row: a warp (kWarpTeam) or the whole block. Rows are visited in a
// grid-stride loop, uniform across the team.
template <bool kWarpTeam>
struct RowTeam {
  __device__ static int rank() { return kWarpTeam ? threadIdx.x % kWarp : threadIdx.x; }
  __device__ static int size() { return kWarpTeam ? kWarp : blockDim.x; }
  __device__ static std::int64_t first_row() {
    return kWarpTeam ? blockIdx.x * static_cast<std::int64_t>(blockDim.x / kWarp) + threadIdx.x / kWarp : blockIdx.x;
  }
  __device__ static std::int64_t row_step() {
    return kWarpTeam ? gridDim.x * static_cast<std::int64_t>(blockDim.x / kWarp) : gridDim.x;
  }
  template <class V, class Op>
  __device__ static V reduce(V v, Op op) {
    if constexpr (kWarpTeam)
      return warp_reduce(v, op);
    else
      return block_reduce(v, op);
  }
};

template <class Team, class T>
__device__ Moments row_moments(const T* row, std::int64_t len) {
  Moments m{0.0f, 0.0f, 0.0f};
  for (std::int64_t i = Team::rank(); i < len; i += Team::size()) add_value(m, to_float(row[i]));
  return Team::reduce(m, MergeMoments{});
}

// Launches launch.template operator()<kWarpTeam>(grid, block) for `rows` rows of `len` elements.
template <class F>
Status launch_rows(std::int64_t rows, std::int64_t len, F&& launch) {
  if (len <= kWarpRowMax) {
    constexpr std::int64_t kRowsPerBlock = kBlock / kWarp;
    return launch.template operator()<true>(blocks_for(ceil_div(rows, kRowsPerBlock)), unsigned{kBlock});
  }
  return launch.template operator()<false>(blocks_for(rows), len >= kLongRow ? kLongRowBlock : unsigned{kBlock});
}

// ------------------------------------------------------------------------------ per-plane affine

// A per-(n, c) map x → x·a + b is given as a float2 (a, b), or as a FlooredAffine, which also
// floors the result (FilterResponseNorm's TLU). 16 bytes, so a table of them loads in one access.
struct alignas(16) FlooredAffine {
  float a, b, floor;
};

__device__ __forceinline__ float affine(float v, float2 ab) { return v * ab.x + ab.y; }
// NaN stays NaN, as the CPU kernel leaves it.
__device__ __forceinline__ float affine(float v, const FlooredAffine& f) {
  const float y = v * f.a + f.b;
  return y < f.floor ? f.floor : y;
}

// What a coefficients functor gives per plane (p) or per image and channel (n, c): float2 or FlooredAffine.
template <class Coefficients>
using PlaneCoefficient = decltype(std::declval<Coefficients>()(std::int64_t{}));
template <class Coefficients>
using ChannelCoefficient = decltype(std::declval<Coefficients>()(std::int64_t{}, std::int64_t{}));

// y = act(affine(x)) with one affine per plane of a [planes, plane] tensor (act: the node's fused
// activation, none unless the graph passes fused one); grid.y walks planes, grid.x the elements
// of a plane. coefficients(p) is called by all lanes of warp 0 (so it may use warp shuffles);
// lane 0's affine is used.
template <class T, class Coefficients>
__global__ void affine_planes(const T* x, T* y, std::int64_t planes, std::int64_t plane, Coefficients coefficients,
                              FusedActivation act) {
  using Coefficient = PlaneCoefficient<Coefficients>;
  __shared__ Coefficient shared_ab;
  for (std::int64_t p = blockIdx.y; p < planes; p += gridDim.y) {
    if (threadIdx.x < kWarp) {
      const Coefficient ab = coefficients(p);
      if (threadIdx.x == 0) shared_ab = ab;
    }
    __syncthreads();
    const Coefficient ab = shared_ab;
    __syncthreads();  // shared_ab is rewritten for the next plane
    const T* xs = x + p * plane;
    T* ys = y + p * plane;
    for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < plane;
         i += static_cast<std::int64_t>(blockDim.x) * gridDim.x)
      ys[i] = from_float<T>(activate(affine(to_float(xs[i]), ab), act));
  }
}

template <class T, class Coefficients>
Status launch_affine_planes(const CudaKernelArgs& args, const char* op, std::int64_t planes, std::int64_t plane,
                            const Coefficients& coefficients) {
  const auto threads = static_cast<unsigned>(std::min<std::int64_t>(kBlock, ceil_div(plane, kWarp) * kWarp));
  const dim3 grid(blocks_for(ceil_div(plane, threads * kItemsPerThread)),
                  static_cast<unsigned>(std::min(planes, kMaxGridY)));
  affine_planes<<<grid, threads, 0, stream_of(args)>>>(args.inputs[0].as<const T>(), args.outputs[0].as<T>(), planes,
                                                       plane, coefficients, args.attrs.activation);
  return check_launch(op);
}

// ------------------------------------------------------------------------- per-channel affine, NHWC

// y = act(affine(x)) over `images` of [pixels, channels] with one affine = coefficients(n, c) per
// image and channel: threadIdx.x and grid.x walk the channels (neighbouring threads, neighbouring
// elements), threadIdx.y and grid.y the pixels, grid.z the images. Each thread computes its
// affine once per image.
template <class T, class Coefficients>
__global__ void affine_channels_last(const T* x, T* y, std::int64_t images, std::int64_t pixels, std::int64_t channels,
                                     Coefficients coefficients, FusedActivation act) {
  const std::int64_t c = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (c >= channels) return;
  for (std::int64_t n = blockIdx.z; n < images; n += gridDim.z) {
    const ChannelCoefficient<Coefficients> ab = coefficients(n, c);
    const std::int64_t base = n * pixels * channels + c;
    for (std::int64_t p = blockIdx.y * static_cast<std::int64_t>(blockDim.y) + threadIdx.y; p < pixels;
         p += static_cast<std::int64_t>(blockDim.y) * gridDim.y)
      y[base + p * channels] = from_float<T>(activate(affine(to_float(x[base + p * channels]), ab), act));
  }
}

// A block of kBlock threads: up to kBlock channels (a multiple of kWarp) × the rest in pixels.
dim3 channels_block(std::int64_t channels) {
  const auto across = static_cast<unsigned>(std::min<std::int64_t>(kBlock, ceil_div(channels, kWarp) * kWarp));
  return dim3(across, kBlock / across);
}

// A 16-byte group of one pixel's neighbouring channels.
template <class T>
struct alignas(16) ChannelGroup {
  static constexpr int kSize = 16 / static_cast<int>(sizeof(T));
  T v[kSize];
};

// affine_channels_last with a thread per group of 16 bytes of channels (channels a multiple of the
// group, x and y 16-byte aligned): one load and one store per group, and its affines computed
// once per image. threadIdx.x walks the groups of a pixel, threadIdx.y the pixels.
template <class T, class Coefficients>
__global__ void affine_channel_groups(const T* x, T* y, std::int64_t images, std::int64_t pixels,
                                      std::int64_t channels, Coefficients coefficients, FusedActivation act) {
  constexpr int kSize = ChannelGroup<T>::kSize;
  const std::int64_t groups = channels / kSize;
  const std::int64_t g = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (g >= groups) return;
  for (std::int64_t n = blockIdx.z; n < images; n += gridDim.z) {
    ChannelCoefficient<Coefficients> ab[kSize];
    for (int i = 0; i < kSize; ++i) ab[i] = coefficients(n, g * kSize + i);
    const auto* xs = reinterpret_cast<const ChannelGroup<T>*>(x + n * pixels * channels) + g;
    auto* ys = reinterpret_cast<ChannelGroup<T>*>(y + n * pixels * channels) + g;
    for (std::int64_t p = blockIdx.y * static_cast<std::int64_t>(blockDim.y) + threadIdx.y; p < pixels;
         p += static_cast<std::int64_t>(blockDim.y) * gridDim.y) {
      ChannelGroup<T> v = xs[p * groups];
      for (int i = 0; i < kSize; ++i) v.v[i] = from_float<T>(activate(affine(to_float(v.v[i]), ab[i]), act));
      ys[p * groups] = v;
    }
  }
}

bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

template <class T, class Coefficients>
Status launch_affine_channels_last(const CudaKernelArgs& args, const char* op, std::int64_t images,
                                   std::int64_t pixels, std::int64_t channels, const Coefficients& coefficients) {
  const T* x = args.inputs[0].as<const T>();
  T* y = args.outputs[0].as<T>();
  const auto grid_y = [&](unsigned rows) {
    return static_cast<unsigned>(std::clamp<std::int64_t>(ceil_div(pixels, rows * kItemsPerThread), 1, kMaxGridY));
  };
  const auto grid_z = static_cast<unsigned>(std::min(images, kMaxGridY));
  if (channels % ChannelGroup<T>::kSize == 0 && aligned16(x) && aligned16(y)) {
    const std::int64_t groups = channels / ChannelGroup<T>::kSize;
    const auto across = static_cast<unsigned>(std::min<std::int64_t>(kBlock, groups));
    const dim3 block(across, kBlock / across);
    const dim3 grid(static_cast<unsigned>(ceil_div(groups, across)), grid_y(block.y), grid_z);
    affine_channel_groups<<<grid, block, 0, stream_of(args)>>>(x, y, images, pixels, channels, coefficients,
                                                               args.attrs.activation);
    return check_launch(op);
  }
  const dim3 block = channels_block(channels);
  const dim3 grid(static_cast<unsigned>(ceil_div(channels, block.x)), grid_y(block.y), grid_z);
  affine_channels_last<<<grid, block, 0, stream_of(args)>>>(x, y, images, pixels, channels, coefficients,
                                                            args.attrs.activation);
  return check_launch(op);
}

// An InstanceNormalization's style input (backends/op.h): rows of X's dtype; none when data is null.
struct InstanceStyle {
  const void* data = nullptr;
  StyleRows rows;
};

// The affine of plane (n, c) from its moments, per normalisation.
// InstanceNormalization: (a, b) with x·a + b = (x − mean)/√(var + ε)·scale[c] + bias[c], as the
// CPU kernel computes it, then, with a style, (x·a + b)·s + t = x·(a·s) + (b·s + t).
template <class T>
struct InstanceAffine {
  static constexpr bool kSquaresOnly = false;  // needs the mean and the variance
  const T* scale;
  const T* bias;
  float epsilon;
  InstanceStyle style;
  __device__ float2 operator()(const Moments& m, std::int64_t n, std::int64_t c) const {
    const float variance = m.count > 0.0f ? m.m2 / m.count : 0.0f;
    const float a = to_float(scale[c]) / sqrtf(variance + epsilon);
    const float b = to_float(bias[c]) - m.mean * a;
    if (style.data == nullptr) return {a, b};
    const T* row = static_cast<const T*>(style.data) + (style.rows.row_count == 1 ? 0 : n) * style.rows.row_length;
    const float s = to_float(row[style.rows.scale_at + c]), t = to_float(row[style.rows.shift_at + c]);
    return {a * s, b * s + t};
  }
};

// FilterResponseNorm: ν² = mean of x² = m2/count + mean² (a sum of two non-negative terms, so no
// cancellation), a = gamma[c]/√(ν² + ε), b = beta[c], floor tau[c].
template <class T>
struct FilterResponseAffine {
  static constexpr bool kSquaresOnly = true;  // reads only the mean of squares (moments with mean 0 do)
  const T* gamma;
  const T* beta;
  const T* tau;
  float epsilon;
  __device__ FlooredAffine operator()(const Moments& m, std::int64_t, std::int64_t c) const {
    const float nu2 = m.count > 0.0f ? m.m2 / m.count + m.mean * m.mean : 0.0f;
    return {to_float(gamma[c]) / sqrtf(nu2 + epsilon), to_float(beta[c]), to_float(tau[c])};
  }
};

template <class Affine>
using AffineOf = decltype(std::declval<Affine>()(Moments{}, std::int64_t{}, std::int64_t{}));

template <class T>
struct BatchNormCoefficients {
  const T* scale;
  const T* bias;
  const T* mean;
  const T* var;
  std::int64_t channels;
  float epsilon;
  __device__ float2 operator()(std::int64_t p) const {
    const std::int64_t c = p % channels;
    const float a = to_float(scale[c]) / sqrtf(to_float(var[c]) + epsilon);
    return {a, to_float(bias[c]) - to_float(mean[c]) * a};
  }
  // channels_last: the same for any image n.
  __device__ float2 operator()(std::int64_t, std::int64_t c) const { return (*this)(c); }
};

// The affine of (n, c) from a table of images × channels (channels_last normalisations).
template <class Coefficient>
struct TableCoefficients {
  const Coefficient* ab;
  std::int64_t channels;
  __device__ Coefficient operator()(std::int64_t n, std::int64_t c) const { return ab[n * channels + c]; }
};

// The affine of a plane whose moments were gathered in `splits` slices (≤ kWarp).
template <class Affine>
struct SlicedCoefficients {
  const Moments* slices;
  int splits;
  std::int64_t channels;
  Affine affine_of;
  __device__ AffineOf<Affine> operator()(std::int64_t p) const {
    const int lane = static_cast<int>(threadIdx.x % kWarp);
    const Moments none{0.0f, 0.0f, 0.0f};
    const Moments m = warp_reduce(lane < splits ? slices[p * splits + lane] : none, MergeMoments{});
    return affine_of(m, p / channels, p % channels);
  }
};

// --------------------------------------------------------------------------------- normalisation

// One row team per plane: its moments, then the normalised plane (and the fused activation), in
// a single kernel.
template <class T, bool kWarpTeam, class Affine>
__global__ void __launch_bounds__(kLongRowBlock)
    normalize_plane_rows(const T* x, T* y, std::int64_t planes, std::int64_t plane, std::int64_t channels,
                         Affine affine_of, FusedActivation act) {
  using Team = RowTeam<kWarpTeam>;
  for (std::int64_t p = Team::first_row(); p < planes; p += Team::row_step()) {
    const T* xs = x + p * plane;
    T* ys = y + p * plane;
    const AffineOf<Affine> ab = affine_of(row_moments<Team>(xs, plane), p / channels, p % channels);
    for (std::int64_t i = Team::rank(); i < plane; i += Team::size())
      ys[i] = from_float<T>(activate(affine(to_float(xs[i]), ab), act));
  }
}

// Moments of slice blockIdx.x of plane blockIdx.y, into slices[plane · gridDim.x + slice].
template <class T>
__global__ void plane_slice_moments(const T* x, std::int64_t plane, Moments* slices) {
  const std::int64_t slice_len = ceil_div(plane, gridDim.x);
  const std::int64_t begin = blockIdx.x * slice_len, end = std::min(plane, begin + slice_len);
  const T* xs = x + blockIdx.y * plane;
  Moments m{0.0f, 0.0f, 0.0f};
  for (std::int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) add_value(m, to_float(xs[i]));
  m = block_reduce(m, MergeMoments{});
  if (threadIdx.x == 0) slices[blockIdx.y * static_cast<std::int64_t>(gridDim.x) + blockIdx.x] = m;
}

// channels_last: the moments of channels [blockIdx.x·kWarp, +kWarp) of image n over pixel slice
// blockIdx.y (of gridDim.y), into slices[(n · gridDim.y + slice) · channels + c]. A block is kWarp
// channels × kPixelLanes pixels, so each warp reads kWarp consecutive channels of one pixel.
constexpr int kPixelLanes = kBlock / kWarp;
template <class T>
__global__ void channels_last_slice_moments(const T* x, std::int64_t images, std::int64_t pixels,
                                            std::int64_t channels, Moments* slices) {
  __shared__ Moments lane_moments[kPixelLanes][kWarp];
  const std::int64_t c = blockIdx.x * static_cast<std::int64_t>(kWarp) + threadIdx.x;
  const std::int64_t slice_len = ceil_div(pixels, gridDim.y);
  const std::int64_t begin = blockIdx.y * slice_len, end = std::min(pixels, begin + slice_len);
  for (std::int64_t n = blockIdx.z; n < images; n += gridDim.z) {
    Moments m{0.0f, 0.0f, 0.0f};
    if (c < channels) {
      const T* xs = x + n * pixels * channels + c;
      for (std::int64_t p = begin + threadIdx.y; p < end; p += kPixelLanes) add_value(m, to_float(xs[p * channels]));
    }
    lane_moments[threadIdx.y][threadIdx.x] = m;
    __syncthreads();
    if (threadIdx.y == 0 && c < channels) {
      for (int lane = 1; lane < kPixelLanes; ++lane) m = merge(m, lane_moments[lane][threadIdx.x]);
      slices[(n * gridDim.y + blockIdx.y) * channels + c] = m;
    }
    __syncthreads();  // lane_moments is rewritten for the next image
  }
}

// The moments of each channel of image blockIdx.z over pixel slice blockIdx.y, into
// slices[(n · gridDim.y + slice) · channels + c], from plain sums. A thread takes a 16-byte group
// of channels (channels a multiple of the group, x 16-byte aligned) over every blockDim.y-th pixel
// of the slice: one load per group and pixel; the block's pixel lanes are added in a tree through
// shared memory (blockDim.x · blockDim.y · group · kSums floats). blockDim.x is the groups of a
// pixel, up to kWarp: a warp reads whole pixels.
// - kSquaresOnly (an affine that reads only the mean of squares, FilterResponseNorm): the sum of
//   x², as Moments {pixels, 0, sum}, which merge and m2/count + mean² read as the mean of squares.
// - Otherwise the sums of d = x − k and d², k the slice's first pixel's value of the channel (a
//   value inside the data, so the sums do not cancel as raw x and x² would): mean k + Σd/n, m2
//   Σd² − (Σd)²/n. Welford's update divides at every value; this adds.
template <class T, bool kSquaresOnly>
__global__ void channel_group_moments(const T* x, std::int64_t pixels, std::int64_t channels, Moments* slices) {
  constexpr int kSize = ChannelGroup<T>::kSize;
  constexpr int kSums = kSquaresOnly ? 1 : 2;  // Σx² | Σd, Σd²
  extern __shared__ float lane_sums[];
  const std::int64_t groups = channels / kSize;
  const std::int64_t g = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  const std::int64_t slice_len = ceil_div(pixels, gridDim.y);
  const std::int64_t begin = std::min(pixels, blockIdx.y * slice_len), end = std::min(pixels, begin + slice_len);
  const std::int64_t n = blockIdx.z;
  float sum[kSums][kSize] = {};
  float shift[kSize] = {};
  if (g < groups && begin < end) {
    const auto* xs = reinterpret_cast<const ChannelGroup<T>*>(x + n * pixels * channels) + g;
    if constexpr (!kSquaresOnly) {
      const ChannelGroup<T> first = xs[begin * groups];
      for (int i = 0; i < kSize; ++i) shift[i] = to_float(first.v[i]);
    }
    for (std::int64_t p = begin + threadIdx.y; p < end; p += blockDim.y) {
      const ChannelGroup<T> v = xs[p * groups];
      for (int i = 0; i < kSize; ++i) {
        const float d = to_float(v.v[i]) - shift[i];
        sum[kSums - 1][i] += d * d;
        if constexpr (!kSquaresOnly) sum[0][i] += d;
      }
    }
  }
  const auto at = [&](unsigned lane, int k, int i) -> float& {
    return lane_sums[((lane * blockDim.x + threadIdx.x) * kSums + k) * kSize + i];
  };
  for (int k = 0; k < kSums; ++k)
    for (int i = 0; i < kSize; ++i) at(threadIdx.y, k, i) = sum[k][i];
  unsigned lanes = blockDim.y;
  while (lanes > 1) {
    __syncthreads();
    const unsigned half = (lanes + 1) / 2;
    if (threadIdx.y + half < lanes)
      for (int k = 0; k < kSums; ++k)
        for (int i = 0; i < kSize; ++i) at(threadIdx.y, k, i) += at(threadIdx.y + half, k, i);
    lanes = half;
  }
  if (threadIdx.y != 0 || g >= groups) return;
  Moments* out = slices + (n * gridDim.y + blockIdx.y) * channels + g * kSize;
  const auto count = static_cast<float>(end - begin);
  for (int i = 0; i < kSize; ++i) {
    if constexpr (kSquaresOnly) {
      out[i] = Moments{count, 0.0f, at(0, 0, i)};
    } else {
      const float s1 = at(0, 0, i), s2 = at(0, 1, i);
      out[i] = count > 0.0f ? Moments{count, shift[i] + s1 / count, fmaxf(s2 - s1 * s1 / count, 0.0f)}
                            : Moments{0.0f, 0.0f, 0.0f};
    }
  }
}

// channels_last: each (n, c)'s slices merged into its affine, ab[n · channels + c], by a warp per
// (n, c): lane l merges slices l, l + kWarp, ..., then the warp merges its lanes. A thread per
// (n, c) merging up to kMaxSlices slices one after another was latency-bound (0.086 ms for xseg's
// [1, 32, 256, 256] FRN, most of it here). Launch with blockDim.x a multiple of kWarp.
template <class Affine>
__global__ void channels_last_affines(const Moments* slices, int splits, std::int64_t images, std::int64_t channels,
                                      Affine affine_of, AffineOf<Affine>* ab) {
  const int lane = static_cast<int>(threadIdx.x % kWarp);
  const std::int64_t first = (blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x) / kWarp;
  const std::int64_t step = gridDim.x * static_cast<std::int64_t>(blockDim.x) / kWarp;
  for (std::int64_t i = first; i < images * channels; i += step) {  // uniform across the warp
    const std::int64_t n = i / channels, c = i % channels;
    const Moments* own = slices + n * splits * channels + c;
    Moments m{0.0f, 0.0f, 0.0f};
    for (int s = lane; s < splits; s += kWarp) m = merge(m, own[s * channels]);
    m = warp_reduce(m, MergeMoments{});
    if (lane == 0) ab[i] = affine_of(m, n, c);
  }
}

// Where LayerNormalization's optional Mean or InvStdDev output goes (data nullptr when absent).
// Written when present, though the CPU kernel leaves them unset: a consumer then reads real values.
struct StatisticOutput {
  void* data = nullptr;
  bool half = false;
};

__device__ __forceinline__ void store_statistic(const StatisticOutput& out, std::int64_t row, float v) {
  if (out.data == nullptr) return;
  if (out.half)
    static_cast<__half*>(out.data)[row] = __float2half(v);
  else
    static_cast<float*>(out.data)[row] = v;
}

// scale and bias (nullptr when absent) hold one value per element of a row.
template <class T, bool kWarpTeam>
__global__ void __launch_bounds__(kLongRowBlock)
    layer_norm_rows(const T* x, const T* scale, const T* bias, T* y, std::int64_t rows, std::int64_t len, float epsilon,
                    StatisticOutput mean_out, StatisticOutput inv_std_dev_out) {
  using Team = RowTeam<kWarpTeam>;
  for (std::int64_t r = Team::first_row(); r < rows; r += Team::row_step()) {
    const T* xs = x + r * len;
    T* ys = y + r * len;
    const Moments m = row_moments<Team>(xs, len);
    const float inv_std_dev = 1.0f / sqrtf(m.m2 / m.count + epsilon);
    for (std::int64_t i = Team::rank(); i < len; i += Team::size()) {
      const float v = (to_float(xs[i]) - m.mean) * inv_std_dev * to_float(scale[i]);
      ys[i] = from_float<T>(bias != nullptr ? v + to_float(bias[i]) : v);
    }
    if (Team::rank() == 0) {
      store_statistic(mean_out, r, m.mean);
      store_statistic(inv_std_dev_out, r, inv_std_dev);
    }
  }
}

template <class T>
__global__ void broadcast_copy(const T* in, T* out, std::int64_t n, Dims out_dims, Dims in_dims) {
  FSWAP_GRID_STRIDE(i, n) out[i] = in[broadcast_offset(i, out_dims, in_dims)];
}

__device__ __forceinline__ float lp_term(float v, bool l1) { return l1 ? fabsf(v) : v * v; }
// A zero vector stays zero (no 0/0).
__device__ __forceinline__ float lp_inverse(float total, bool l1) {
  const float norm = l1 ? total : sqrtf(total);
  return norm > 0.0f ? 1.0f / norm : 0.0f;
}

// LpNormalization along the last axis: contiguous rows.
template <class T, bool kWarpTeam>
__global__ void __launch_bounds__(kLongRowBlock)
    lp_norm_rows(const T* x, T* y, std::int64_t rows, std::int64_t len, bool l1) {
  using Team = RowTeam<kWarpTeam>;
  for (std::int64_t r = Team::first_row(); r < rows; r += Team::row_step()) {
    const T* xs = x + r * len;
    T* ys = y + r * len;
    float total = 0.0f;
    for (std::int64_t i = Team::rank(); i < len; i += Team::size()) total += lp_term(to_float(xs[i]), l1);
    const float inv = lp_inverse(Team::reduce(total, Sum{}), l1);
    for (std::int64_t i = Team::rank(); i < len; i += Team::size()) ys[i] = from_float<T>(to_float(xs[i]) * inv);
  }
}

// LpNormalization along an inner axis: a thread per line of len elements strided by inner, so
// neighbouring threads read neighbouring elements.
template <class T>
__global__ void lp_norm_lines(const T* x, T* y, std::int64_t lines, std::int64_t len, std::int64_t inner, bool l1) {
  FSWAP_GRID_STRIDE(l, lines) {
    const std::int64_t base = (l / inner) * len * inner + l % inner;
    float total = 0.0f;
    for (std::int64_t i = 0; i < len; ++i) total += lp_term(to_float(x[base + i * inner]), l1);
    const float inv = lp_inverse(total, l1);
    for (std::int64_t i = 0; i < len; ++i) y[base + i * inner] = from_float<T>(to_float(x[base + i * inner]) * inv);
  }
}

// ------------------------------------------------------------------------------------------ pools

template <class T, bool kWarpTeam, bool kMax>
__global__ void __launch_bounds__(kLongRowBlock)
    global_pool_rows(const T* x, T* y, std::int64_t rows, std::int64_t len) {
  using Team = RowTeam<kWarpTeam>;
  for (std::int64_t r = Team::first_row(); r < rows; r += Team::row_step()) {
    const T* xs = x + r * len;
    float acc = kMax ? -kInfinity : 0.0f;
    for (std::int64_t i = Team::rank(); i < len; i += Team::size()) {
      const float v = to_float(xs[i]);
      acc = kMax ? fmaxf(acc, v) : acc + v;
    }
    if constexpr (kMax)
      acc = Team::reduce(acc, Maximum{});
    else
      acc = Team::reduce(acc, Sum{});
    if (Team::rank() == 0) y[r] = from_float<T>(kMax || len == 0 ? acc : acc / static_cast<float>(len));
  }
}

// The sliding window of a pool (op_rules.h's WindowGeometry) in Index: int32 when every flat index
// fits (much cheaper division), else int64.
template <class Index>
struct PoolWindow {
  Index in[3] = {1, 1, 1}, out[3] = {1, 1, 1}, kernel[3] = {1, 1, 1};
  Index stride[3] = {1, 1, 1}, dilation[3] = {1, 1, 1};
  Index pad_begin[3] = {0, 0, 0}, pad_end[3] = {0, 0, 0};
  Index channels = 1;  // C; used by the channels_last kernels only
};

template <class Index>
PoolWindow<Index> narrowed(const WindowGeometry& w, std::int64_t channels) {
  PoolWindow<Index> n;
  n.channels = static_cast<Index>(channels);
  for (int d = 0; d < 3; ++d) {
    n.in[d] = static_cast<Index>(w.in[d]);
    n.out[d] = static_cast<Index>(w.out[d]);
    n.kernel[d] = static_cast<Index>(w.kernel[d]);
    n.stride[d] = static_cast<Index>(w.stride[d]);
    n.dilation[d] = static_cast<Index>(w.dilation[d]);
    n.pad_begin[d] = static_cast<Index>(w.pad_begin[d]);
    n.pad_end[d] = static_cast<Index>(w.pad_end[d]);
  }
  return n;
}

// Output element o (Y's flat index: (plane·out + spatial) in NCHW, (n·out + spatial)·C + c with
// kChannelsLast) as its (batch·channel) plane, where that plane starts in X, and the window's
// first input position per axis. Spatial neighbours in X are `spatial_step` elements apart.
template <class Index>
struct WindowAt {
  Index plane;
  Index in_base;
  Index start[3];
};

template <bool kChannelsLast, class Index>
__device__ Index spatial_step(const PoolWindow<Index>& w) {
  return kChannelsLast ? w.channels : 1;
}

template <bool kChannelsLast, class Index>
__device__ WindowAt<Index> window_at(Index o, const PoolWindow<Index>& w) {
  WindowAt<Index> at;
  Index c = 0;
  if constexpr (kChannelsLast) {
    c = o % w.channels;
    o /= w.channels;
  }
  for (int d = 2; d >= 0; --d) {
    at.start[d] = (o % w.out[d]) * w.stride[d] - w.pad_begin[d];
    o /= w.out[d];
  }
  const Index in_size = w.in[0] * w.in[1] * w.in[2];
  at.plane = kChannelsLast ? o * w.channels + c : o;
  at.in_base = kChannelsLast ? o * in_size * w.channels + c : o * in_size;
  return at;
}

// Taps of one axis whose position lies in [lo, hi).
template <class Index>
__device__ Index taps_within(Index start, Index kernel, Index dilation, Index lo, Index hi) {
  Index count = 0;
  for (Index k = 0; k < kernel; ++k) {
    const Index pos = start + k * dilation;
    count += pos >= lo && pos < hi;
  }
  return count;
}

template <class Index>
__device__ Index grid_first() {
  return static_cast<Index>(blockIdx.x) * static_cast<Index>(blockDim.x) + static_cast<Index>(threadIdx.x);
}
template <class Index>
__device__ Index grid_step() {
  return static_cast<Index>(blockDim.x) * static_cast<Index>(gridDim.x);
}

// Taps are visited in the CPU kernel's order, so ties keep the same (first) index. indices is
// nullptr with kChannelsLast.
template <class T, class Index, bool kChannelsLast>
__global__ void max_pool_windows(const T* x, T* y, std::int64_t* indices, Index outputs, PoolWindow<Index> w) {
  const Index in_size = w.in[0] * w.in[1] * w.in[2];
  const Index step = spatial_step<kChannelsLast>(w);
  for (Index o = grid_first<Index>(); o < outputs; o += grid_step<Index>()) {
    const WindowAt<Index> at = window_at<kChannelsLast>(o, w);
    const T* xs = x + at.in_base;
    float best = -kInfinity;
    Index best_at = -1;
    for (Index kd = 0; kd < w.kernel[0]; ++kd) {
      const Index id = at.start[0] + kd * w.dilation[0];
      if (id < 0 || id >= w.in[0]) continue;
      for (Index kh = 0; kh < w.kernel[1]; ++kh) {
        const Index ih = at.start[1] + kh * w.dilation[1];
        if (ih < 0 || ih >= w.in[1]) continue;
        const Index row = (id * w.in[1] + ih) * w.in[2];
        for (Index kw = 0; kw < w.kernel[2]; ++kw) {
          const Index iw = at.start[2] + kw * w.dilation[2];
          if (iw < 0 || iw >= w.in[2]) continue;
          const float v = to_float(xs[(row + iw) * step]);
          if (v > best || best_at < 0) {
            best = v;
            best_at = row + iw;
          }
        }
      }
    }
    y[o] = from_float<T>(best);
    if (indices != nullptr) indices[o] = best_at < 0 ? 0 : static_cast<std::int64_t>(at.plane) * in_size + best_at;
  }
}

// count_include_pad counts the taps inside the padded input (not the ceil_mode overhang).
template <class T, class Index, bool kChannelsLast>
__global__ void average_pool_windows(const T* x, T* y, Index outputs, PoolWindow<Index> w, bool include_pad) {
  const Index step = spatial_step<kChannelsLast>(w);
  for (Index o = grid_first<Index>(); o < outputs; o += grid_step<Index>()) {
    const WindowAt<Index> at = window_at<kChannelsLast>(o, w);
    const T* xs = x + at.in_base;
    float sum = 0.0f;
    for (Index kd = 0; kd < w.kernel[0]; ++kd) {
      const Index id = at.start[0] + kd * w.dilation[0];
      if (id < 0 || id >= w.in[0]) continue;
      for (Index kh = 0; kh < w.kernel[1]; ++kh) {
        const Index ih = at.start[1] + kh * w.dilation[1];
        if (ih < 0 || ih >= w.in[1]) continue;
        const T* row = xs + (id * w.in[1] + ih) * w.in[2] * step;
        for (Index kw = 0; kw < w.kernel[2]; ++kw) {
          const Index iw = at.start[2] + kw * w.dilation[2];
          if (iw >= 0 && iw < w.in[2]) sum += to_float(row[iw * step]);
        }
      }
    }
    Index count = 1;
    for (int d = 0; d < 3; ++d) {
      const Index lo = include_pad ? -w.pad_begin[d] : 0;
      const Index hi = include_pad ? w.in[d] + w.pad_end[d] : w.in[d];
      count *= taps_within(at.start[d], w.kernel[d], w.dilation[d], lo, hi);
    }
    y[o] = from_float<T>(count > 0 ? sum / static_cast<float>(count) : 0.0f);
  }
}

// -------------------------------------------------------------------------------------- host side

Status unsupported_on_cuda(const char* op, const std::string& what) {
  return unsupported(std::string(op) + " on CUDA: " + what);
}
Status shape_error(const char* op, const std::string& what) {
  return invalid_input(std::string(op) + " on CUDA: " + what);
}

// kUnsupported unless every present tensor (non-null, with data) has the node's float dtype `want`.
Status require_dtype(const char* op, DType want, std::initializer_list<const TensorView*> tensors) {
  for (const TensorView* t : tensors)
    if (t != nullptr && t->data != nullptr && t->dtype != want)
      return unsupported_on_cuda(op, std::string("dtype ") + dtype_name(t->dtype) + " mixed with " + dtype_name(want));
  return Status::ok();
}

Status batch_normalization(const CudaKernelArgs& args) {
  constexpr const char* kOp = "BatchNormalization";
  if (args.inputs.size() < 5) return shape_error(kOp, "needs X, scale, B, mean and var");
  if (args.attrs.i("training_mode", 0) != 0) return unsupported_on_cuda(kOp, "training_mode 1");
  const TensorView& x = args.inputs[0];
  const TensorView& y = args.outputs[0];
  FSWAP_ASSIGN_OR_RETURN(const bool last, channels_last(on_cuda(kOp), args.attrs, x.shape));
  if (x.shape.size() < 2) return shape_error(kOp, "X must have rank >= 2");
  FSWAP_RETURN_IF_ERROR(
      require_dtype(kOp, x.dtype, {&args.inputs[1], &args.inputs[2], &args.inputs[3], &args.inputs[4], &y}));
  const std::int64_t channels = last ? x.shape[3] : x.shape[1];
  for (int i = 1; i < 5; ++i)
    if (args.inputs[i].elements() != channels)
      return shape_error(kOp,
                         "input " + std::to_string(i) + " must have C = " + std::to_string(channels) + " elements");
  if (y.elements() == 0) return Status::ok();
  const std::int64_t planes = x.shape[0] * channels, plane = x.elements() / planes;
  const float epsilon = args.attrs.f("epsilon", 1e-5f);
  return dispatch_float(x.dtype, kOp, [&]<class T>() {
    const BatchNormCoefficients<T> coefficients{args.inputs[1].as<const T>(),
                                                args.inputs[2].as<const T>(),
                                                args.inputs[3].as<const T>(),
                                                args.inputs[4].as<const T>(),
                                                channels,
                                                epsilon};
    if (last) return launch_affine_channels_last<T>(args, kOp, 1, x.elements() / channels, channels, coefficients);
    return launch_affine_planes<T>(args, kOp, planes, plane, coefficients);
  });
}

// Few long planes would leave most SMs idle with a team per plane: gather their moments in
// slices (≤ kWarp per plane) over several blocks first. 1: one team per plane.
int plane_slices(std::int64_t planes, std::int64_t plane) {
  return static_cast<int>(
      std::clamp<std::int64_t>(std::min(kTargetBlocks / planes, plane / kMinSliceLength), 1, kWarp));
}

// NCHW: each of `planes` planes (n, c) normalised by the affine affine_of(its moments, c): a row
// team per plane, or, for few long planes, moments in slices and then the per-plane affine pass.
template <class T, class Affine>
Status normalize_planes(const CudaKernelArgs& args, const char* op, std::int64_t planes, std::int64_t plane,
                        std::int64_t channels, const Affine& affine_of) {
  const T* x = args.inputs[0].as<const T>();
  T* y = args.outputs[0].as<T>();
  const int slices = plane_slices(planes, plane);
  if (slices == 1)
    return launch_rows(planes, plane, [&]<bool kWarpTeam>(unsigned grid, unsigned block) {
      normalize_plane_rows<T, kWarpTeam>
          <<<grid, block, 0, stream_of(args)>>>(x, y, planes, plane, channels, affine_of, args.attrs.activation);
      return check_launch(op);
    });
  FSWAP_ASSIGN_OR_RETURN(void* scratch, args.ctx.workspace(static_cast<std::size_t>(planes * slices) * sizeof(Moments)));
  auto* slice_moments = static_cast<Moments*>(scratch);
  // planes < kTargetBlocks here, within grid.y's limit.
  plane_slice_moments<<<dim3(static_cast<unsigned>(slices), static_cast<unsigned>(planes)), kBlock, 0,
                        stream_of(args)>>>(x, plane, slice_moments);
  FSWAP_RETURN_IF_ERROR(check_launch(op));
  return launch_affine_planes<T>(args, op, planes, plane,
                                 SlicedCoefficients<Affine>{slice_moments, slices, channels, affine_of});
}

// channels_last: blocks of kWarp channels × slices of the pixels (enough to fill the device, at
// least kMinSlicePixels pixels each, at most kMaxSlices) gather moments, a thread per (n, c)
// merges them into its affine (affine_of), and the affine pass applies them.
constexpr std::int64_t kMinSlicePixels = 64;
constexpr std::int64_t kMaxSlices = 256;
template <class T, class Affine>
Status normalize_channels_last(const CudaKernelArgs& args, const char* op, std::int64_t images, std::int64_t pixels,
                               std::int64_t channels, const Affine& affine_of) {
  using Coefficient = AffineOf<Affine>;
  const T* x = args.inputs[0].as<const T>();
  constexpr int kGroup = ChannelGroup<T>::kSize;
  const bool grouped = channels % kGroup == 0 && aligned16(x) && images <= kMaxGridY;
  // channel_group_moments's block: the groups of a pixel (up to kWarp) × pixel lanes.
  const std::int64_t across = grouped ? std::min<std::int64_t>(kWarp, channels / kGroup) : kWarp;
  const std::int64_t blocks_x = ceil_div(grouped ? channels / kGroup : channels, across);
  const std::int64_t slices = std::clamp<std::int64_t>(
      std::min(ceil_div(kTargetBlocks, images * blocks_x), pixels / kMinSlicePixels), 1, kMaxSlices);
  const std::size_t table_bytes = static_cast<std::size_t>(images * channels) * sizeof(Coefficient);
  FSWAP_ASSIGN_OR_RETURN(
      void* scratch, args.ctx.workspace(table_bytes + static_cast<std::size_t>(images * slices * channels) * sizeof(Moments)));
  auto* ab = static_cast<Coefficient*>(scratch);  // first: float2 and FlooredAffine need 8- and 16-byte alignment
  auto* moments = reinterpret_cast<Moments*>(static_cast<char*>(scratch) + table_bytes);
  if (grouped) {
    const dim3 block(static_cast<unsigned>(across), static_cast<unsigned>(kBlock / across));
    const dim3 grid(static_cast<unsigned>(blocks_x), static_cast<unsigned>(slices), static_cast<unsigned>(images));
    constexpr int kSums = Affine::kSquaresOnly ? 1 : 2;
    const std::size_t shared = static_cast<std::size_t>(block.x) * block.y * kGroup * kSums * sizeof(float);
    channel_group_moments<T, Affine::kSquaresOnly><<<grid, block, shared, stream_of(args)>>>(x, pixels, channels, moments);
  } else {
    const dim3 grid(static_cast<unsigned>(blocks_x), static_cast<unsigned>(slices),
                    static_cast<unsigned>(std::min(images, kMaxGridY)));
    channels_last_slice_moments<<<grid, dim3(kWarp, kPixelLanes), 0, stream_of(args)>>>(x, images, pixels, channels,
                                                                                        moments);
  }
  FSWAP_RETURN_IF_ERROR(check_launch(op));
  channels_last_affines<<<grid_for(images * channels * kWarp), kBlock, 0, stream_of(args)>>>(
      moments, static_cast<int>(slices), images, channels, affine_of, ab);
  FSWAP_RETURN_IF_ERROR(check_launch(op));
  return launch_affine_channels_last<T>(args, op, images, pixels, channels, TableCoefficients<Coefficient>{ab, channels});
}

// The checks InstanceNormalization and FilterResponseNorm share: X of rank ≥ 3 (4 with
// channels_last), every other input of X's dtype with C elements (`what` names them). The
// planes' geometry for the kernels, or an error.
struct PlaneShape {
  bool last = false;
  std::int64_t images = 0, channels = 0, plane = 0;  // plane: spatial elements per (n, c)
};
Result<PlaneShape> per_channel_plane_shape(const CudaKernelArgs& args, const char* op, std::size_t inputs,
                                           const char* what) {
  if (args.inputs.size() < inputs) return shape_error(op, std::string("needs X, ") + what);
  const TensorView& x = args.inputs[0];
  PlaneShape p;
  FSWAP_ASSIGN_OR_RETURN(p.last, channels_last(on_cuda(op), args.attrs, x.shape));
  if (x.shape.size() < 3) return shape_error(op, "X must have rank >= 3");
  FSWAP_RETURN_IF_ERROR(require_dtype(op, x.dtype, {&args.outputs[0]}));
  p.images = x.shape[0];
  p.channels = p.last ? x.shape[3] : x.shape[1];
  for (std::size_t i = 1; i < inputs; ++i) {
    FSWAP_RETURN_IF_ERROR(require_dtype(op, x.dtype, {&args.inputs[i]}));
    if (args.inputs[i].elements() != p.channels)
      return shape_error(op, std::string(what) + " must have C = " + std::to_string(p.channels) + " elements");
  }
  p.plane = p.images * p.channels > 0 ? x.elements() / (p.images * p.channels) : 0;
  return p;
}

// Runs the normalisation whose affine make_affine.template operator()<T>() gives, in X's layout.
template <class MakeAffine>
Status normalize_per_channel(const CudaKernelArgs& args, const char* op, const PlaneShape& p, MakeAffine&& make_affine) {
  if (args.outputs[0].elements() == 0) return Status::ok();
  return dispatch_float(args.inputs[0].dtype, op, [&]<class T>() {
    const auto affine_of = make_affine.template operator()<T>();
    if (p.last) return normalize_channels_last<T>(args, op, p.images, p.plane, p.channels, affine_of);
    return normalize_planes<T>(args, op, p.images * p.channels, p.plane, p.channels, affine_of);
  });
}

// The style input (backends/op.h), checked against X's geometry; none without one.
Result<InstanceStyle> instance_style(const CudaKernelArgs& args, const char* op, const PlaneShape& p) {
  if (args.inputs.size() < 4 || args.inputs[3].data == nullptr) return InstanceStyle{};
  const TensorView& s = args.inputs[3];
  FSWAP_RETURN_IF_ERROR(require_dtype(op, args.inputs[0].dtype, {&s}));
  FSWAP_ASSIGN_OR_RETURN(const StyleRows rows, style_rows(on_cuda(op), args.attrs, s.shape, p.images, p.channels));
  return InstanceStyle{s.data, rows};
}

Status instance_normalization(const CudaKernelArgs& args) {
  constexpr const char* kOp = "InstanceNormalization";
  FSWAP_ASSIGN_OR_RETURN(const PlaneShape p, per_channel_plane_shape(args, kOp, 3, "scale and B"));
  FSWAP_ASSIGN_OR_RETURN(const InstanceStyle style, instance_style(args, kOp, p));
  const float epsilon = args.attrs.f("epsilon", 1e-5f);
  return normalize_per_channel(args, kOp, p, [&]<class T>() {
    return InstanceAffine<T>{args.inputs[1].as<const T>(), args.inputs[2].as<const T>(), epsilon, style};
  });
}

Status filter_response_norm(const CudaKernelArgs& args) {
  constexpr const char* kOp = "FilterResponseNorm";
  FSWAP_ASSIGN_OR_RETURN(const PlaneShape p, per_channel_plane_shape(args, kOp, 4, "gamma, beta and tau"));
  const float epsilon = args.attrs.f("epsilon", 1e-6f);
  return normalize_per_channel(args, kOp, p, [&]<class T>() {
    return FilterResponseAffine<T>{args.inputs[1].as<const T>(), args.inputs[2].as<const T>(),
                                   args.inputs[3].as<const T>(), epsilon};
  });
}

// `from` with the leading 1s beyond `rank` axes dropped; unchanged when a dropped axis is not 1.
Shape without_extra_leading_ones(const Shape& from, std::size_t rank) {
  std::size_t drop = 0;
  while (from.size() - drop > rank && from[drop] == 1) ++drop;
  return Shape(from.begin() + static_cast<std::ptrdiff_t>(drop), from.end());
}

// Whether `from` broadcasts unidirectionally to `to` (numpy rules, aligned on the right).
bool broadcasts_to(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  for (std::size_t k = 0; k < from.size(); ++k) {
    const std::int64_t n = from[from.size() - 1 - k];
    if (n != 1 && n != to[to.size() - 1 - k]) return false;
  }
  return true;
}

Result<StatisticOutput> statistic_output(const CudaKernelArgs& args, std::size_t index, const char* op) {
  if (args.outputs.size() <= index || args.outputs[index].data == nullptr) return StatisticOutput{};
  const TensorView& t = args.outputs[index];
  if (t.dtype != DType::kFloat32 && t.dtype != DType::kFloat16)
    return unsupported_on_cuda(op, std::string("statistics output dtype ") + dtype_name(t.dtype));
  return StatisticOutput{t.data, t.dtype == DType::kFloat16};
}

Status layer_normalization(const CudaKernelArgs& args) {
  constexpr const char* kOp = "LayerNormalization";
  if (args.inputs.size() < 2) return shape_error(kOp, "needs X and Scale");
  const TensorView& x = args.inputs[0];
  const TensorView& y = args.outputs[0];
  const int axis = normalize_axis(args.attrs.i("axis", -1), x.shape.size());
  if (axis < 0) return shape_error(kOp, "axis out of range for " + shape_to_string(x.shape));
  if (args.attrs.i("stash_type", 1) != 1) return unsupported_on_cuda(kOp, "stash_type other than 1");
  const TensorView& scale = args.inputs[1];
  const TensorView* bias = args.inputs.size() > 2 && args.inputs[2].data != nullptr ? &args.inputs[2] : nullptr;
  FSWAP_RETURN_IF_ERROR(require_dtype(kOp, x.dtype, {&scale, bias, &y}));
  FSWAP_ASSIGN_OR_RETURN(const StatisticOutput mean_out, statistic_output(args, 1, kOp));
  FSWAP_ASSIGN_OR_RETURN(const StatisticOutput inv_std_dev_out, statistic_output(args, 2, kOp));

  const Shape normalised(x.shape.begin() + axis, x.shape.end());
  const std::int64_t inner = shape_elements(normalised), outer = x.elements() / std::max<std::int64_t>(1, inner);
  // Scale and B hold a value per normalised element, or broadcast to the normalised shape and are
  // expanded into scratch once per call so the row loop indexes them directly.
  const auto needs_expansion = [&](const TensorView* t) { return t != nullptr && t->elements() != inner; };
  const bool expand_scale = needs_expansion(&scale), expand_bias = needs_expansion(bias);
  for (const TensorView* t : {&scale, bias})
    if (needs_expansion(t) && !broadcasts_to(without_extra_leading_ones(t->shape, normalised.size()), normalised))
      return shape_error(kOp, "Scale " + shape_to_string(scale.shape) + " and B " +
                                  (bias != nullptr ? shape_to_string(bias->shape) : std::string("(absent)")) +
                                  " must broadcast to the normalised shape " + shape_to_string(normalised));
  if ((expand_scale || expand_bias) && normalised.size() > kMaxRank)
    return unsupported_on_cuda(kOp, "broadcast Scale or B over " + std::to_string(normalised.size()) + " axes");
  if (y.elements() == 0) return Status::ok();
  const float epsilon = args.attrs.f("epsilon", 1e-5f);

  return dispatch_float(x.dtype, kOp, [&]<class T>() {
    const T* scale_data = scale.as<const T>();
    const T* bias_data = bias != nullptr ? bias->as<const T>() : nullptr;
    if (expand_scale || expand_bias) {
      FSWAP_ASSIGN_OR_RETURN(void* scratch, args.ctx.workspace(2 * static_cast<std::size_t>(inner) * sizeof(T)));
      const Dims out_dims = dense_dims(normalised);
      const auto expand = [&](const TensorView& t, T* to) {
        const Dims in_dims = broadcast_dims(without_extra_leading_ones(t.shape, normalised.size()), normalised);
        broadcast_copy<<<grid_for(inner), kBlock, 0, stream_of(args)>>>(t.as<const T>(), to, inner, out_dims, in_dims);
        return check_launch(kOp);
      };
      T* expanded = static_cast<T*>(scratch);
      if (expand_scale) {
        FSWAP_RETURN_IF_ERROR(expand(scale, expanded));
        scale_data = expanded;
      }
      if (expand_bias) {
        FSWAP_RETURN_IF_ERROR(expand(*bias, expanded + inner));
        bias_data = expanded + inner;
      }
    }
    return launch_rows(outer, inner, [&]<bool kWarpTeam>(unsigned grid, unsigned block) {
      layer_norm_rows<T, kWarpTeam><<<grid, block, 0, stream_of(args)>>>(
          x.as<const T>(), scale_data, bias_data, y.as<T>(), outer, inner, epsilon, mean_out, inv_std_dev_out);
      return check_launch(kOp);
    });
  });
}

Status lp_normalization(const CudaKernelArgs& args) {
  constexpr const char* kOp = "LpNormalization";
  const TensorView& x = args.inputs[0];
  const TensorView& y = args.outputs[0];
  const int axis = normalize_axis(args.attrs.i("axis", -1), x.shape.size());
  if (axis < 0) return shape_error(kOp, "axis out of range for " + shape_to_string(x.shape));
  const std::int64_t p = args.attrs.i("p", 2);
  if (p != 1 && p != 2) return unsupported_on_cuda(kOp, "p " + std::to_string(p) + " (1 or 2)");
  FSWAP_RETURN_IF_ERROR(require_dtype(kOp, x.dtype, {&y}));
  if (y.elements() == 0) return Status::ok();
  const std::int64_t len = x.shape[static_cast<std::size_t>(axis)];
  const std::int64_t lines = x.elements() / len,
                     inner = shape_elements(Shape(x.shape.begin() + axis + 1, x.shape.end()));
  const bool l1 = p == 1;
  return dispatch_float(x.dtype, kOp, [&]<class T>() {
    if (inner == 1)
      return launch_rows(lines, len, [&]<bool kWarpTeam>(unsigned grid, unsigned block) {
        lp_norm_rows<T, kWarpTeam><<<grid, block, 0, stream_of(args)>>>(x.as<const T>(), y.as<T>(), lines, len, l1);
        return check_launch(kOp);
      });
    lp_norm_lines<<<grid_for(lines), kBlock, 0, stream_of(args)>>>(x.as<const T>(), y.as<T>(), lines, len, inner, l1);
    return check_launch(kOp);
  });
}

// Runs f.template operator()<Index>() with the narrowest index type that holds every flat index.
template <class F>
Status with_index_type(const TensorView& x, const TensorView& y, F&& f) {
  if (std::max(x.elements(), y.elements()) <= kInt32IndexLimit) return f.template operator()<std::int32_t>();
  return f.template operator()<std::int64_t>();
}

// The pools' window over X and Y as NCHW shapes (channels_last permuted), and the channels.
struct PoolShape {
  WindowGeometry window;
  std::int64_t channels = 1;
  bool last = false;
};
Result<PoolShape> pool_shape(const char* op, const CudaKernelArgs& args) {
  const Shape& x = args.inputs[0].shape;
  const Shape& y = args.outputs[0].shape;
  PoolShape p;
  FSWAP_ASSIGN_OR_RETURN(p.last, channels_last(on_cuda(op), args.attrs, x));
  const Shape x_first = p.last ? nchw_from_nhwc(x) : x;
  if (p.last && y.size() != 4) return shape_error(op, "channels_last needs a 4-D output, got " + shape_to_string(y));
  FSWAP_ASSIGN_OR_RETURN(p.window,
                         pool_geometry(on_cuda(op), args.attrs, x_first, p.last ? nchw_from_nhwc(y) : y));
  p.channels = x_first.size() > 1 ? x_first[1] : 1;
  return p;
}

// Runs f.template operator()<T, Index, kChannelsLast>().
template <class F>
Status dispatch_pool(const char* op, const TensorView& x, const TensorView& y, bool last, F&& f) {
  return dispatch_float(x.dtype, op, [&]<class T>() {
    return with_index_type(x, y, [&]<class Index>() {
      if (last) return f.template operator()<T, Index, true>();
      return f.template operator()<T, Index, false>();
    });
  });
}

Status max_pool(const CudaKernelArgs& args) {
  constexpr const char* kOp = "MaxPool";
  const TensorView& x = args.inputs[0];
  const TensorView& y = args.outputs[0];
  FSWAP_RETURN_IF_ERROR(require_dtype(kOp, x.dtype, {&y}));
  FSWAP_ASSIGN_OR_RETURN(const PoolShape pool, pool_shape(kOp, args));
  if (args.attrs.i("storage_order", 0) != 0) return unsupported_on_cuda(kOp, "storage_order 1");
  // Optional output 1: flat indices into X (row-major, storage_order 0).
  const TensorView* indices = args.outputs.size() > 1 && args.outputs[1].data != nullptr ? &args.outputs[1] : nullptr;
  if (indices != nullptr && indices->dtype != DType::kInt64)
    return unsupported_on_cuda(kOp, std::string("Indices dtype ") + dtype_name(indices->dtype));
  if (indices != nullptr && pool.last) return unsupported_on_cuda(kOp, "the Indices output with channels_last");
  if (y.elements() == 0) return Status::ok();
  std::int64_t* indices_data = indices != nullptr ? indices->as<std::int64_t>() : nullptr;
  return dispatch_pool(kOp, x, y, pool.last, [&]<class T, class Index, bool kChannelsLast>() {
    max_pool_windows<T, Index, kChannelsLast><<<grid_for(y.elements()), kBlock, 0, stream_of(args)>>>(
        x.as<const T>(), y.as<T>(), indices_data, static_cast<Index>(y.elements()),
        narrowed<Index>(pool.window, pool.channels));
    return check_launch(kOp);
  });
}

Status average_pool(const CudaKernelArgs& args) {
  constexpr const char* kOp = "AveragePool";
  const TensorView& x = args.inputs[0];
  const TensorView& y = args.outputs[0];
  FSWAP_RETURN_IF_ERROR(require_dtype(kOp, x.dtype, {&y}));
  FSWAP_ASSIGN_OR_RETURN(const PoolShape pool, pool_shape(kOp, args));
  const bool include_pad = args.attrs.i("count_include_pad", 0) != 0;
  if (y.elements() == 0) return Status::ok();
  return dispatch_pool(kOp, x, y, pool.last, [&]<class T, class Index, bool kChannelsLast>() {
    average_pool_windows<T, Index, kChannelsLast><<<grid_for(y.elements()), kBlock, 0, stream_of(args)>>>(
        x.as<const T>(), y.as<T>(), static_cast<Index>(y.elements()), narrowed<Index>(pool.window, pool.channels),
        include_pad);
    return check_launch(kOp);
  });
}

template <bool kMax>
Status global_pool(const CudaKernelArgs& args, const char* op) {
  const TensorView& x = args.inputs[0];
  const TensorView& y = args.outputs[0];
  if (x.shape.size() < 2) return shape_error(op, "X must have rank >= 2");
  FSWAP_RETURN_IF_ERROR(require_dtype(op, x.dtype, {&y}));
  const std::int64_t planes = x.shape[0] * x.shape[1];
  if (planes == 0 || y.elements() == 0) return Status::ok();
  const std::int64_t plane = x.elements() / planes;
  return dispatch_float(x.dtype, op, [&]<class T>() {
    return launch_rows(planes, plane, [&]<bool kWarpTeam>(unsigned grid, unsigned block) {
      global_pool_rows<T, kWarpTeam, kMax>
          <<<grid, block, 0, stream_of(args)>>>(x.as<const T>(), y.as<T>(), planes, plane);
      return check_launch(op);
    });
  });
}

Status global_average_pool(const CudaKernelArgs& args) { return global_pool<false>(args, "GlobalAveragePool"); }
Status global_max_pool(const CudaKernelArgs& args) { return global_pool<true>(args, "GlobalMaxPool"); }

}  // namespace

CudaKernel norm_pool_kernel(OpType op) {
  switch (op) {
    case OpType::kBatchNormalization: return batch_normalization;
    case OpType::kInstanceNormalization: return instance_normalization;
    case OpType::kFilterResponseNorm: return filter_response_norm;
    case OpType::kLayerNormalization: return layer_normalization;
    case OpType::kLpNormalization: return lp_normalization;
    case OpType::kMaxPool: return max_pool;
    case OpType::kAveragePool: return average_pool;
    case OpType::kGlobalAveragePool: return global_average_pool;
    case OpType::kGlobalMaxPool: return global_max_pool;
    default: return nullptr;
  }
}

}  // namespace fswap::cuda
