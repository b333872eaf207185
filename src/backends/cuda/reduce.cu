// Reductions on CUDA: Reduce*, ArgMax/ArgMin, Softmax/LogSoftmax and TopK, with the semantics of
// the CPU kernels (backends/cpu/tensor_reduce.cc; Softmax in nn_norm.cc). Float storage
// accumulates in float.
//
// Work is split into rows (the reduced elements of one output) in one of three ways:
// - a row is contiguous and long (the innermost axes are reduced): one warp per row, or one block
//   per row past kWarpRowMax elements, combined with a shuffle tree;
// - the innermost axis is kept and the outputs are too few to fill the device with one thread each
//   while rows are long (NHWC reduced over H and W: [N, H·W, C] → N·C outputs): every row is cut
//   into S slices (see slices_for), pass 1 writes each slice's partial to the workspace (thread t
//   takes output t % outputs of slice t / outputs, so neighbouring threads read neighbouring
//   elements), pass 2 combines each output's S partials with a warp and finishes them;
// - otherwise (short rows, or outputs enough to fill the device): one thread per output walks its
//   row, so neighbouring threads read neighbouring elements.
// All three are deterministic: a fixed order of combination for a given device, no atomics.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "backends/cuda/common.cuh"
#include "backends/cuda/elementwise_internal.h"
#include "backends/cuda/reduce.h"
#include "backends/op_rules.h"

namespace fswap::cuda {
namespace {

constexpr int kWarp = 32;
constexpr unsigned kFullMask = 0xffffffffu;
constexpr std::int64_t kThreadRowMax = 16;   // rows up to this length: one thread per row
constexpr std::int64_t kWarpRowMax = 1024;   // then one warp per row up to this length, then a block
// The sliced path (innermost axis kept): a slice holds at least kMinSliceLen elements of a row
// (enough loads per thread to pay for its partial), there are at least kMinSlices slices per row
// (fewer do not pay for the second pass) and at most kMaxSlices (pass 2's warp combines at most
// 32 partials per lane).
constexpr std::int64_t kMinSliceLen = 32;
constexpr std::int64_t kMinSlices = 4;
constexpr std::int64_t kMaxSlices = 32 * kWarp;
constexpr std::size_t kSharedSortBytes = 48 * 1024;

std::string op_prefix(const CudaKernelArgs& args) { return std::string(op_name(args.op)) + " on CUDA: "; }

Result<int> normalize_axis(const CudaKernelArgs& args, std::int64_t axis, int rank) {
  return checked_axis(op_name(args.op), axis, static_cast<std::size_t>(rank));
}

// The values of an int64 or int32 host constant (axes, K).
Result<std::vector<std::int64_t>> host_ints(const CudaKernelArgs& args, const TensorView& v, const char* what) {
  std::vector<std::int64_t> out(static_cast<std::size_t>(v.elements()));
  if (v.dtype == DType::kInt64) {
    std::copy(v.as<const std::int64_t>(), v.as<const std::int64_t>() + out.size(), out.begin());
  } else if (v.dtype == DType::kInt32) {
    std::copy(v.as<const std::int32_t>(), v.as<const std::int32_t>() + out.size(), out.begin());
  } else {
    return unsupported(op_prefix(args) + what + " of dtype " + dtype_name(v.dtype) + " (expected int64 or int32)");
  }
  return out;
}

// Dims of shape before axis, at axis, after axis.
struct AxisSplit {
  std::int64_t outer = 1, len = 1, inner = 1;
};

AxisSplit split_at(const Shape& shape, int axis) {
  AxisSplit s;
  for (int d = 0; d < static_cast<int>(shape.size()); ++d) {
    const std::int64_t n = shape[static_cast<std::size_t>(d)];
    (d < axis ? s.outer : d == axis ? s.len : s.inner) *= n;
  }
  return s;
}

// ---- device trees ----

template <class V>
__device__ __forceinline__ V shuffle_xor(V v, int lane_mask) {
  return __shfl_xor_sync(kFullMask, v, lane_mask);
}

// Combines v over the kThreads threads of a row group (a warp, or the whole block); every thread
// of the group gets the result. combine must be commutative.
template <int kThreads, class V, class Combine>
__device__ V group_reduce(V v, const Combine& combine) {
#pragma unroll
  for (int mask = kWarp / 2; mask > 0; mask /= 2) v = combine(v, shuffle_xor(v, mask));
  if constexpr (kThreads > kWarp) {
    static_assert(kThreads == kBlock, "a multi-warp group is the whole block");
    __shared__ V partial[kThreads / kWarp];
    if (threadIdx.x % kWarp == 0) partial[threadIdx.x / kWarp] = v;
    __syncthreads();
    v = partial[0];
    for (int w = 1; w < kThreads / kWarp; ++w) v = combine(v, partial[w]);
    __syncthreads();  // partial is reused by the block's next row
  }
  return v;
}

// Rows handled by groups of kThreads consecutive threads, one row per group at a time.
template <int kThreads>
__device__ __forceinline__ std::int64_t first_row() {
  return (blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x) / kThreads;
}
template <int kThreads>
__device__ __forceinline__ std::int64_t row_step() {
  return static_cast<std::int64_t>(gridDim.x) * blockDim.x / kThreads;
}
template <int kThreads>
__device__ __forceinline__ int row_lane() {
  return static_cast<int>(threadIdx.x % kThreads);
}

template <int kThreads>
unsigned grid_for_rows(std::int64_t rows) {
  return grid_for(rows * kThreads);
}

// ---- Reduce* ----

// Dims merged into runs of kept or reduced dims (size-1 dims dropped), outermost first.
struct Groups {
  int count = 0;
  std::int64_t size[kMaxRank] = {};
  std::int64_t stride[kMaxRank] = {};  // input elements
};

// The input offset of index `linear` enumerating the groups row-major.
__device__ __forceinline__ std::int64_t group_offset(std::int64_t linear, const Groups& g) {
  std::int64_t offset = 0;
#pragma unroll
  for (int i = kMaxRank - 1; i >= 0; --i) {
    if (i < g.count) {
      offset += (linear % g.size[i]) * g.stride[i];
      linear /= g.size[i];
    }
  }
  return offset;
}

struct ReducePlan {
  Groups kept, reduced;           // enumerating kept row-major gives the output's order
  std::int64_t outputs = 1;       // elements of the output
  std::int64_t count = 1;         // elements reduced into each output
  bool inner_reduced = false;     // the innermost group is reduced: each row is contiguous
};

Result<ReducePlan> plan_reduce(const CudaKernelArgs& args, const Shape& shape, const std::vector<bool>& reduce) {
  ReducePlan p;
  int last_kind = -1;  // of the most recent group: 1 reduced, 0 kept
  std::int64_t stride = shape_elements(shape);
  for (std::size_t d = 0; d < shape.size(); ++d) {
    const std::int64_t n = shape[d];
    stride = n == 0 ? 0 : stride / n;
    (reduce[d] ? p.count : p.outputs) *= n;
    if (n == 1) continue;
    Groups& g = reduce[d] ? p.reduced : p.kept;
    if (last_kind == static_cast<int>(reduce[d])) {
      g.size[g.count - 1] *= n;
      g.stride[g.count - 1] = stride;
      continue;
    }
    if (g.count == kMaxRank)
      return unsupported(op_prefix(args) + "more than 8 runs of kept or reduced dims in " + shape_to_string(shape));
    g.size[g.count] = n;
    g.stride[g.count] = stride;
    ++g.count;
    last_kind = static_cast<int>(reduce[d]);
  }
  p.inner_reduced = last_kind == 1;
  return p;
}

template <OpType kOp, class Acc>
struct Reducer {
  __device__ static Acc identity() {
    if constexpr (kOp == OpType::kReduceMax) return std::numeric_limits<Acc>::lowest();
    else if constexpr (kOp == OpType::kReduceMin) return std::numeric_limits<Acc>::max();
    else if constexpr (kOp == OpType::kReduceProd) return Acc{1};
    else return Acc{0};
  }
  __device__ static Acc load(Acc v) {
    if constexpr (kOp == OpType::kReduceSumSquare || kOp == OpType::kReduceL2) return v * v;
    else return v;
  }
  __device__ static Acc combine(Acc acc, Acc v) {
    if constexpr (kOp == OpType::kReduceMax) return v > acc ? v : acc;
    else if constexpr (kOp == OpType::kReduceMin) return v < acc ? v : acc;
    else if constexpr (kOp == OpType::kReduceProd) return acc * v;
    else return acc + v;
  }
  // An empty reduction gives the identity (NaN for a float mean), as on the CPU.
  __device__ static Acc finish(Acc acc, std::int64_t count) {
    if constexpr (kOp == OpType::kReduceMean) {
      if constexpr (std::is_floating_point_v<Acc>) return acc / static_cast<Acc>(count);
      else return count == 0 ? Acc{0} : static_cast<Acc>(acc / count);
    } else if constexpr (kOp == OpType::kReduceL2) {
      if constexpr (std::is_floating_point_v<Acc>) return sqrtf(acc);
      else return static_cast<Acc>(sqrt(static_cast<double>(acc)));
    } else {
      return acc;
    }
  }
};

template <int kThreads, OpType kOp, class T>
__global__ void reduce_rows_kernel(const T* x, T* y, std::int64_t rows, std::int64_t count, Groups kept,
                                   Groups reduced) {
  using Acc = Compute<T>;
  using R = Reducer<kOp, Acc>;
  const bool contiguous = reduced.count == 1;  // the only reduced group is the innermost (stride 1)
  const int lane = row_lane<kThreads>();
  for (std::int64_t row = first_row<kThreads>(); row < rows; row += row_step<kThreads>()) {
    const T* base = x + group_offset(row, kept);
    Acc acc = R::identity();
    for (std::int64_t r = lane; r < count; r += kThreads)
      acc = R::combine(acc, R::load(widen_to<Acc>(base[contiguous ? r : group_offset(r, reduced)])));
    acc = group_reduce<kThreads>(acc, [](Acc a, Acc b) { return R::combine(a, b); });
    if (lane == 0) y[row] = narrow_to<T>(R::finish(acc, count));
  }
}

// The combination (before finish) of the elements [begin, end) of the row at base.
template <OpType kOp, class T>
__device__ __forceinline__ Compute<T> column_partial(const T* base, std::int64_t begin, std::int64_t end,
                                                     const Groups& reduced) {
  using Acc = Compute<T>;
  using R = Reducer<kOp, Acc>;
  Acc acc = R::identity();
  if (reduced.count == 1) {
    const std::int64_t stride = reduced.stride[0];
    for (std::int64_t r = begin; r < end; ++r) acc = R::combine(acc, R::load(widen_to<Acc>(base[r * stride])));
  } else {
    for (std::int64_t r = begin; r < end; ++r)
      acc = R::combine(acc, R::load(widen_to<Acc>(base[group_offset(r, reduced)])));
  }
  return acc;
}

template <OpType kOp, class T>
__global__ void reduce_columns_kernel(const T* x, T* y, std::int64_t outputs, std::int64_t count, Groups kept,
                                      Groups reduced) {
  using R = Reducer<kOp, Compute<T>>;
  FSWAP_GRID_STRIDE(j, outputs) {
    y[j] = narrow_to<T>(R::finish(column_partial<kOp>(x + group_offset(j, kept), 0, count, reduced), count));
  }
}

// How rows are cut for the sliced path: slices of slice_len elements (the last may be shorter).
struct Slicing {
  std::int64_t slices = 1;
  std::int64_t slice_len = 0;
};

// Pass 1: partial[s * outputs + j] combines slice s of output j's row.
template <OpType kOp, class T>
__global__ void reduce_slices_kernel(const T* x, Compute<T>* partial, std::int64_t outputs, std::int64_t count,
                                     Slicing cut, Groups kept, Groups reduced) {
  FSWAP_GRID_STRIDE(t, outputs * cut.slices) {
    const std::int64_t j = t % outputs, begin = t / outputs * cut.slice_len;
    const std::int64_t end = begin + cut.slice_len < count ? begin + cut.slice_len : count;
    partial[t] = column_partial<kOp>(x + group_offset(j, kept), begin, end, reduced);
  }
}

// Pass 2: one warp per output; lane l combines slices l, l + 32, ... in order, then the warp's
// shuffle tree combines the lanes.
template <OpType kOp, class T>
__global__ void combine_slices_kernel(const Compute<T>* partial, T* y, std::int64_t outputs, std::int64_t count,
                                      std::int64_t slices) {
  using Acc = Compute<T>;
  using R = Reducer<kOp, Acc>;
  const int lane = row_lane<kWarp>();
  for (std::int64_t j = first_row<kWarp>(); j < outputs; j += row_step<kWarp>()) {
    Acc acc = R::identity();
    for (std::int64_t s = lane; s < slices; s += kWarp) acc = R::combine(acc, partial[s * outputs + j]);
    acc = group_reduce<kWarp>(acc, [](Acc a, Acc b) { return R::combine(a, b); });
    if (lane == 0) y[j] = narrow_to<T>(R::finish(acc, count));
  }
}

// Threads the current device holds resident at once (SMs × threads per SM).
Result<std::int64_t> resident_threads() {
  int device = 0, sms = 0, per_sm = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxThreadsPerMultiProcessor, device) != cudaSuccess)
    return internal_error("Reduce* on CUDA: cannot read the device's SM count");
  return static_cast<std::int64_t>(sms) * per_sm;
}

// The slicing of a plan whose innermost axis is kept: as many slices as fill the device once
// (outputs × slices ≈ the resident threads: on an H100 132 SMs × 2048, one full wave of 8
// kBlock-thread blocks per SM) with at least kMinSliceLen elements each, at most kMaxSlices.
// One slice (the one-thread-per-output path) when that leaves fewer than kMinSlices: so the
// sliced path takes outputs ≤ resident / 4 (about 67K on an H100) with rows of at least 128
// elements. [1, 256, 256, 64] over (1, 2): 64 outputs × 1024 slices of 64 elements;
// [1, 64, 64, 512]: 512 outputs × 128 slices of 32.
Slicing slices_for(const ReducePlan& p, std::int64_t resident) {
  if (p.inner_reduced) return {1, p.count};
  const std::int64_t to_fill = resident / std::max<std::int64_t>(p.outputs, 1);
  const std::int64_t wanted = std::min({to_fill, p.count / kMinSliceLen, kMaxSlices});
  if (wanted < kMinSlices) return {1, p.count};
  const std::int64_t len = (p.count + wanted - 1) / wanted;
  return {(p.count + len - 1) / len, len};  // no empty slice
}

// scratch: the partials, outputs × slices of Compute<T>.
template <OpType kOp, class T>
Status launch_sliced(const CudaKernelArgs& args, const T* in, T* out, const ReducePlan& p, const Slicing& cut,
                     void* scratch) {
  using Acc = Compute<T>;
  const cudaStream_t stream = stream_of(args);
  Acc* partial = static_cast<Acc*>(scratch);
  reduce_slices_kernel<kOp><<<grid_for(p.outputs * cut.slices), kBlock, 0, stream>>>(in, partial, p.outputs, p.count,
                                                                                      cut, p.kept, p.reduced);
  FSWAP_RETURN_IF_ERROR(check_launch(op_name(args.op)));
  combine_slices_kernel<kOp><<<grid_for_rows<kWarp>(p.outputs), kBlock, 0, stream>>>(partial, out, p.outputs, p.count,
                                                                                      cut.slices);
  return check_launch(op_name(args.op));
}

// kBest: the path the shape calls for; kOneThreadPerOutput: that path whatever the shape
// (reduce_one_thread_per_output, the baseline the sliced path is timed against).
enum class ReducePath { kBest, kOneThreadPerOutput };

template <OpType kOp, class T>
Status launch_reduce(const CudaKernelArgs& args, const TensorView& x, const TensorView& y, const ReducePlan& p,
                     ReducePath path) {
  if (p.outputs == 0) return Status::ok();
  const T* in = x.as<const T>();
  T* out = y.as<T>();
  const cudaStream_t stream = stream_of(args);
  Slicing cut;
  if (path == ReducePath::kBest) {
    FSWAP_ASSIGN_OR_RETURN(const std::int64_t resident, resident_threads());
    cut = slices_for(p, resident);
  }
  if (cut.slices > 1) {
    // A workspace the budget cannot give (a small budget, or more than a captured graph holds)
    // leaves the one-thread-per-output path, which needs none.
    Result<void*> scratch =
        args.ctx.workspace(static_cast<std::size_t>(p.outputs * cut.slices) * sizeof(Compute<T>));
    if (scratch) return launch_sliced<kOp>(args, in, out, p, cut, *scratch);
    if (scratch.status().code() != StatusCode::kOutOfMemory) return scratch.status();
  }
  if (path == ReducePath::kOneThreadPerOutput || !p.inner_reduced || p.count <= kThreadRowMax) {
    reduce_columns_kernel<kOp><<<grid_for(p.outputs), kBlock, 0, stream>>>(in, out, p.outputs, p.count, p.kept,
                                                                            p.reduced);
  } else if (p.count <= kWarpRowMax) {
    reduce_rows_kernel<kWarp, kOp><<<grid_for_rows<kWarp>(p.outputs), kBlock, 0, stream>>>(in, out, p.outputs, p.count,
                                                                                            p.kept, p.reduced);
  } else {
    reduce_rows_kernel<kBlock, kOp><<<grid_for_rows<kBlock>(p.outputs), kBlock, 0, stream>>>(
        in, out, p.outputs, p.count, p.kept, p.reduced);
  }
  return check_launch(op_name(args.op));
}

// Calls run(std::integral_constant<OpType, op>{}) for the Reduce* ops.
template <class Run>
Status with_reduce_op(const CudaKernelArgs& args, Run&& run) {
  switch (args.op) {
    case OpType::kReduceMean: return run(std::integral_constant<OpType, OpType::kReduceMean>{});
    case OpType::kReduceSum: return run(std::integral_constant<OpType, OpType::kReduceSum>{});
    case OpType::kReduceMax: return run(std::integral_constant<OpType, OpType::kReduceMax>{});
    case OpType::kReduceMin: return run(std::integral_constant<OpType, OpType::kReduceMin>{});
    case OpType::kReduceProd: return run(std::integral_constant<OpType, OpType::kReduceProd>{});
    case OpType::kReduceL2: return run(std::integral_constant<OpType, OpType::kReduceL2>{});
    case OpType::kReduceSumSquare: return run(std::integral_constant<OpType, OpType::kReduceSumSquare>{});
    default: return unsupported(op_prefix(args) + "not a Reduce* op");
  }
}

// Axes come from input 1 (opset 13 ReduceSum, opset 18 others; a constant once the graph is
// specialised) or from the axes attribute; none means all, or nothing with noop_with_empty_axes.
Status reduce_with(const CudaKernelArgs& args, ReducePath path) {
  const TensorView& x = args.inputs.at(0);
  const TensorView& y = args.outputs.at(0);
  const int rank = static_cast<int>(x.shape.size());
  std::vector<std::int64_t> axes;
  if (const TensorView* host = host_input(args, 1)) {
    FSWAP_ASSIGN_OR_RETURN(axes, host_ints(args, *host, "axes"));
  } else if (device_input(args, 1) != nullptr && args.inputs[1].elements() > 0) {
    return unsupported(op_prefix(args) + "axes must be a constant");
  } else {
    axes = args.attrs.ints("axes", {});
  }
  if (axes.empty() && args.attrs.i("noop_with_empty_axes", 0) != 0) {
    if (x.dtype != y.dtype || x.bytes() != y.bytes())
      return invalid_input(std::string(op_name(args.op)) + ": noop output differs from the input");
    return copy_unless_aliased(args, y, x);
  }
  FSWAP_ASSIGN_OR_RETURN(const std::vector<bool> reduce,
                         reduced_axes(op_name(args.op), axes, static_cast<std::size_t>(rank)));
  FSWAP_ASSIGN_OR_RETURN(const ReducePlan plan, plan_reduce(args, x.shape, reduce));
  if (plan.outputs != y.elements() || x.dtype != y.dtype)
    return invalid_input(std::string(op_name(args.op)) + ": output " + dtype_name(y.dtype) + shape_to_string(y.shape) +
                         " does not match reducing " + shape_to_string(x.shape));
  return with_reduce_op(args, [&](auto op) -> Status {
    constexpr OpType kOp = decltype(op)::value;
    switch (x.dtype) {
      case DType::kFloat32: return launch_reduce<kOp, float>(args, x, y, plan, path);
      case DType::kFloat16: return launch_reduce<kOp, __half>(args, x, y, plan, path);
      case DType::kInt64: return launch_reduce<kOp, std::int64_t>(args, x, y, plan, path);
      case DType::kInt32: return launch_reduce<kOp, std::int32_t>(args, x, y, plan, path);
      default: return unsupported(op_prefix(args) + "dtype " + dtype_name(x.dtype));
    }
  });
}

Status reduce_kernel_impl(const CudaKernelArgs& args) { return reduce_with(args, ReducePath::kBest); }

// ---- Softmax / LogSoftmax ----

// Online softmax state: the largest value seen and the sum of exp(v - max) over the values seen.
struct MaxSum {
  float max;
  float sum;
};

__device__ __forceinline__ MaxSum shuffle_xor(MaxSum s, int lane_mask) {
  return {shuffle_xor(s.max, lane_mask), shuffle_xor(s.sum, lane_mask)};
}

// -inf values add exp(-inf) = 0 (also before a finite max is seen); NaN poisons the sum, as on the CPU.
__device__ __forceinline__ MaxSum softmax_add(MaxSum s, float v) {
  if (v > s.max) {
    s.sum = s.sum * expf(s.max - v) + 1.0f;
    s.max = v;
  } else if (v != -INFINITY) {
    s.sum += expf(v - s.max);
  }
  return s;
}

__device__ __forceinline__ MaxSum softmax_combine(MaxSum a, MaxSum b) {
  const MaxSum& hi = a.max >= b.max ? a : b;
  const MaxSum& lo = a.max >= b.max ? b : a;
  const float scaled = lo.max == -INFINITY ? lo.sum : lo.sum * expf(lo.max - hi.max);
  return {hi.max, hi.sum + scaled};
}

template <bool kLog>
__device__ __forceinline__ float softmax_value(float v, MaxSum s, float log_sum, float inv_sum) {
  if constexpr (kLog) return v - s.max - log_sum;
  else return expf(v - s.max) * inv_sum;
}

// The statistics are complete (the group synchronised in group_reduce) before any write, so y may alias x.
template <int kThreads, bool kLog, class T>
__global__ void softmax_rows_kernel(const T* x, T* y, std::int64_t rows, std::int64_t len) {
  const int lane = row_lane<kThreads>();
  for (std::int64_t row = first_row<kThreads>(); row < rows; row += row_step<kThreads>()) {
    const T* in = x + row * len;
    T* out = y + row * len;
    MaxSum s{-INFINITY, 0.0f};
    for (std::int64_t i = lane; i < len; i += kThreads) s = softmax_add(s, widen_to<float>(in[i]));
    s = group_reduce<kThreads>(s, [](MaxSum a, MaxSum b) { return softmax_combine(a, b); });
    const float log_sum = logf(s.sum), inv_sum = 1.0f / s.sum;
    for (std::int64_t i = lane; i < len; i += kThreads)
      out[i] = narrow_to<T>(softmax_value<kLog>(widen_to<float>(in[i]), s, log_sum, inv_sum));
  }
}

// One thread per line of len elements strided by inner.
template <bool kLog, class T>
__global__ void softmax_columns_kernel(const T* x, T* y, std::int64_t lines, std::int64_t len, std::int64_t inner) {
  FSWAP_GRID_STRIDE(line, lines) {
    const std::int64_t base = (line / inner) * len * inner + line % inner;
    MaxSum s{-INFINITY, 0.0f};
    for (std::int64_t i = 0; i < len; ++i) s = softmax_add(s, widen_to<float>(x[base + i * inner]));
    const float log_sum = logf(s.sum), inv_sum = 1.0f / s.sum;
    for (std::int64_t i = 0; i < len; ++i) {
      const std::int64_t at = base + i * inner;
      y[at] = narrow_to<T>(softmax_value<kLog>(widen_to<float>(x[at]), s, log_sum, inv_sum));
    }
  }
}

// Opset-13 semantics (normalise along axis, default -1), like the CPU kernel; the executor's
// lower_legacy_softmax pass rewrites older flatten-at-axis forms.
template <bool kLog>
Status softmax_kernel(const CudaKernelArgs& args) {
  const TensorView& x = args.inputs.at(0);
  const TensorView& y = args.outputs.at(0);
  if (y.dtype != x.dtype || y.elements() != x.elements())
    return invalid_input(std::string(op_name(args.op)) + ": output " + dtype_name(y.dtype) + shape_to_string(y.shape) +
                         " differs from the input " + dtype_name(x.dtype) + shape_to_string(x.shape));
  FSWAP_ASSIGN_OR_RETURN(const int axis, normalize_axis(args, args.attrs.i("axis", -1), static_cast<int>(x.shape.size())));
  const AxisSplit s = split_at(x.shape, axis);
  const std::int64_t lines = s.outer * s.inner;
  return dispatch_float(x.dtype, op_name(args.op), [&]<class T>() -> Status {
    if (lines == 0 || s.len == 0) return Status::ok();
    const T* in = x.as<const T>();
    T* out = y.as<T>();
    const cudaStream_t stream = stream_of(args);
    if (s.inner > 1 || s.len <= kThreadRowMax) {
      softmax_columns_kernel<kLog><<<grid_for(lines), kBlock, 0, stream>>>(in, out, lines, s.len, s.inner);
    } else if (s.len <= kWarpRowMax) {
      softmax_rows_kernel<kWarp, kLog><<<grid_for_rows<kWarp>(lines), kBlock, 0, stream>>>(in, out, lines, s.len);
    } else {
      softmax_rows_kernel<kBlock, kLog><<<grid_for_rows<kBlock>(lines), kBlock, 0, stream>>>(in, out, lines, s.len);
    }
    return check_launch(op_name(args.op));
  });
}

// ---- ArgMax / ArgMin ----

// The type values compare in: float for float storage, int for uint8 (shuffles need 32 bits).
template <class T>
using ArgValue = std::conditional_t<std::is_same_v<T, std::uint8_t>, int, Compute<T>>;

template <class V>
__device__ __forceinline__ bool is_nan(V v) {
  if constexpr (std::is_floating_point_v<V>) return isnan(v);
  else return false;
}

template <class V>
struct Candidate {
  V value;
  std::int64_t index;  // -1: none yet
};

template <class V>
__device__ __forceinline__ Candidate<V> shuffle_xor(Candidate<V> c, int lane_mask) {
  return {shuffle_xor(c.value, lane_mask), shuffle_xor(c.index, lane_mask)};
}

// The better of two candidates: the larger (smaller) value, on ties the first (last) index.
struct ArgRule {
  bool is_max;
  bool last;  // select_last_index

  template <class V>
  __device__ Candidate<V> operator()(Candidate<V> a, Candidate<V> b) const {
    if (a.index < 0) return b;
    if (b.index < 0) return a;
    if (a.value != b.value) return (is_max ? a.value > b.value : a.value < b.value) ? a : b;
    return (last ? a.index > b.index : a.index < b.index) ? a : b;
  }
};

// The CPU scan starts from element 0 and a NaN never wins a comparison: NaNs elsewhere are skipped,
// and a NaN at 0 wins. Lanes scan strided subsets, skipping NaN, and the tree picks the best.
template <int kThreads, class T>
__global__ void arg_rows_kernel(const T* x, std::int64_t* y, std::int64_t rows, std::int64_t n, ArgRule rule) {
  using V = ArgValue<T>;
  const int lane = row_lane<kThreads>();
  for (std::int64_t row = first_row<kThreads>(); row < rows; row += row_step<kThreads>()) {
    const T* p = x + row * n;
    Candidate<V> best{V{}, -1};
    for (std::int64_t i = lane; i < n; i += kThreads) {
      const V v = widen_to<V>(p[i]);
      if (!is_nan(v)) best = rule(best, Candidate<V>{v, i});
    }
    best = group_reduce<kThreads>(best, rule);
    if (lane == 0) y[row] = is_nan(widen_to<V>(p[0])) || best.index < 0 ? 0 : best.index;
  }
}

// One thread per (outer, inner) line: the CPU kernel's scan.
template <class T>
__global__ void arg_columns_kernel(const T* x, std::int64_t* y, std::int64_t lines, std::int64_t n,
                                   std::int64_t inner, ArgRule rule) {
  using V = ArgValue<T>;
  FSWAP_GRID_STRIDE(t, lines) {
    const T* p = x + (t / inner) * n * inner + t % inner;
    V best = widen_to<V>(p[0]);
    std::int64_t best_i = 0;
    for (std::int64_t i = 1; i < n; ++i) {
      const V v = widen_to<V>(p[i * inner]);
      const bool better = rule.is_max ? (rule.last ? v >= best : v > best) : (rule.last ? v <= best : v < best);
      if (better) {
        best = v;
        best_i = i;
      }
    }
    y[t] = best_i;
  }
}

template <class T>
Status launch_arg_reduce(const CudaKernelArgs& args, const TensorView& x, const TensorView& y, const AxisSplit& s,
                         ArgRule rule) {
  const std::int64_t lines = s.outer * s.inner;
  const T* in = x.as<const T>();
  std::int64_t* out = y.as<std::int64_t>();
  const cudaStream_t stream = stream_of(args);
  if (s.inner > 1 || s.len <= kThreadRowMax) {
    arg_columns_kernel<<<grid_for(lines), kBlock, 0, stream>>>(in, out, lines, s.len, s.inner, rule);
  } else if (s.len <= kWarpRowMax) {
    arg_rows_kernel<kWarp><<<grid_for_rows<kWarp>(lines), kBlock, 0, stream>>>(in, out, lines, s.len, rule);
  } else {
    arg_rows_kernel<kBlock><<<grid_for_rows<kBlock>(lines), kBlock, 0, stream>>>(in, out, lines, s.len, rule);
  }
  return check_launch(op_name(args.op));
}

Status arg_reduce_kernel(const CudaKernelArgs& args) {
  const TensorView& x = args.inputs.at(0);
  const TensorView& y = args.outputs.at(0);
  const int rank = static_cast<int>(x.shape.size());
  FSWAP_ASSIGN_OR_RETURN(const int axis, normalize_axis(args, args.attrs.i("axis", 0), std::max(rank, 1)));
  if (y.dtype != DType::kInt64) return invalid_input(std::string(op_name(args.op)) + ": output must be int64");
  const AxisSplit s = rank == 0 ? AxisSplit{} : split_at(x.shape, axis);
  if (s.len == 0) return invalid_input(std::string(op_name(args.op)) + ": cannot take the index of an empty axis");
  if (y.elements() != s.outer * s.inner)
    return invalid_input(std::string(op_name(args.op)) + ": output shape " + shape_to_string(y.shape) + " is wrong");
  if (y.elements() == 0) return Status::ok();
  const ArgRule rule{args.op == OpType::kArgMax, args.attrs.i("select_last_index", 0) != 0};
  switch (x.dtype) {
    case DType::kFloat32: return launch_arg_reduce<float>(args, x, y, s, rule);
    case DType::kFloat16: return launch_arg_reduce<__half>(args, x, y, s, rule);
    case DType::kInt64: return launch_arg_reduce<std::int64_t>(args, x, y, s, rule);
    case DType::kInt32: return launch_arg_reduce<std::int32_t>(args, x, y, s, rule);
    case DType::kUInt8: return launch_arg_reduce<std::uint8_t>(args, x, y, s, rule);
    default: return unsupported(op_prefix(args) + "dtype " + dtype_name(x.dtype));
  }
}

// ---- TopK ----
//
// Each row (the axis' n elements at one (outer, inner) position) is sorted by a bitonic network
// over (value, index) pairs padded to a power of two: ties go to the lower index, like the CPU
// kernel's partial_sort, and the first k entries are the outputs (sorted also when sorted=0). A
// padded row that fits kSharedSortBytes sorts in shared memory, one block per row; longer rows sort
// in the workspace with one launch per network stage.

template <class K>
struct Entry {
  K value;
  int index;  // -1: padding, ordered after every element
};

template <class K>
__device__ __forceinline__ bool before(const Entry<K>& a, const Entry<K>& b, bool largest) {
  if (a.index < 0) return false;
  if (b.index < 0) return true;
  if (a.value != b.value) return largest ? a.value > b.value : a.value < b.value;
  return a.index < b.index;
}

// Compare-exchange pair t of the stage (size, stride) of a bitonic sort of e[0, 2^m).
template <class K>
__device__ __forceinline__ void bitonic_step(Entry<K>* e, std::int64_t t, std::int64_t size, std::int64_t stride,
                                             bool largest) {
  const std::int64_t i = 2 * t - (t & (stride - 1));
  const std::int64_t j = i + stride;
  const bool ascending = (i & size) == 0;
  if (ascending ? before(e[j], e[i], largest) : before(e[i], e[j], largest)) {
    const Entry<K> tmp = e[i];
    e[i] = e[j];
    e[j] = tmp;
  }
}

struct TopKShape {
  std::int64_t rows;   // outer * inner
  std::int64_t n;      // elements along the axis
  std::int64_t inner;
  std::int64_t k;
  std::int64_t padded; // n rounded up to a power of two
};

template <class T, class K>
__device__ __forceinline__ Entry<K> top_k_entry(const T* x, const TopKShape& s, std::int64_t row, std::int64_t i) {
  if (i >= s.n) return {K{}, -1};
  const std::int64_t at = ((row / s.inner) * s.n + i) * s.inner + row % s.inner;
  return {widen_to<K>(x[at]), static_cast<int>(i)};
}

template <class T, class K>
__device__ __forceinline__ void top_k_store(const Entry<K>& e, T* values, std::int64_t* indices, const TopKShape& s,
                                            std::int64_t row, std::int64_t j) {
  const std::int64_t at = ((row / s.inner) * s.k + j) * s.inner + row % s.inner;
  values[at] = narrow_to<T>(e.value);
  indices[at] = e.index;
}

template <class T>
__global__ void top_k_shared_kernel(const T* x, T* values, std::int64_t* indices, TopKShape s, bool largest) {
  using K = Compute<T>;
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  Entry<K>* e = reinterpret_cast<Entry<K>*>(shared_bytes);
  for (std::int64_t row = blockIdx.x; row < s.rows; row += gridDim.x) {
    for (std::int64_t i = threadIdx.x; i < s.padded; i += blockDim.x) e[i] = top_k_entry<T, K>(x, s, row, i);
    __syncthreads();
    for (std::int64_t size = 2; size <= s.padded; size *= 2) {
      for (std::int64_t stride = size / 2; stride > 0; stride /= 2) {
        for (std::int64_t t = threadIdx.x; t < s.padded / 2; t += blockDim.x) bitonic_step(e, t, size, stride, largest);
        __syncthreads();
      }
    }
    for (std::int64_t j = threadIdx.x; j < s.k; j += blockDim.x) top_k_store(e[j], values, indices, s, row, j);
    __syncthreads();  // e is refilled for the block's next row
  }
}

template <class T>
__global__ void top_k_fill_kernel(const T* x, Entry<Compute<T>>* e, TopKShape s) {
  FSWAP_GRID_STRIDE(t, s.rows * s.padded) e[t] = top_k_entry<T, Compute<T>>(x, s, t / s.padded, t % s.padded);
}

template <class K>
__global__ void bitonic_stage_kernel(Entry<K>* e, TopKShape s, std::int64_t size, std::int64_t stride, bool largest) {
  const std::int64_t pairs = s.padded / 2;
  FSWAP_GRID_STRIDE(t, s.rows * pairs) bitonic_step(e + (t / pairs) * s.padded, t % pairs, size, stride, largest);
}

template <class T>
__global__ void top_k_gather_kernel(const Entry<Compute<T>>* e, T* values, std::int64_t* indices, TopKShape s) {
  FSWAP_GRID_STRIDE(t, s.rows * s.k) {
    const std::int64_t row = t / s.k, j = t % s.k;
    top_k_store(e[row * s.padded + j], values, indices, s, row, j);
  }
}

template <class T>
Status launch_top_k(const CudaKernelArgs& args, const TensorView& x, const TensorView& values,
                    const TensorView& indices, const TopKShape& s, bool largest) {
  using E = Entry<Compute<T>>;
  const T* in = x.as<const T>();
  T* vo = values.as<T>();
  std::int64_t* io = indices.as<std::int64_t>();
  const cudaStream_t stream = stream_of(args);
  const std::size_t row_bytes = static_cast<std::size_t>(s.padded) * sizeof(E);
  if (row_bytes <= kSharedSortBytes) {
    const int threads = static_cast<int>(std::clamp<std::int64_t>(s.padded / 2, kWarp, 1024));
    top_k_shared_kernel<<<grid_for_rows<kBlock>(s.rows), threads, row_bytes, stream>>>(in, vo, io, s, largest);
    return check_launch("TopK");
  }
  FSWAP_ASSIGN_OR_RETURN(void* scratch, args.ctx.workspace(static_cast<std::size_t>(s.rows) * row_bytes));
  E* e = static_cast<E*>(scratch);
  top_k_fill_kernel<<<grid_for(s.rows * s.padded), kBlock, 0, stream>>>(in, e, s);
  FSWAP_RETURN_IF_ERROR(check_launch("TopK"));
  for (std::int64_t size = 2; size <= s.padded; size *= 2) {
    for (std::int64_t stride = size / 2; stride > 0; stride /= 2) {
      bitonic_stage_kernel<<<grid_for(s.rows * s.padded / 2), kBlock, 0, stream>>>(e, s, size, stride, largest);
      FSWAP_RETURN_IF_ERROR(check_launch("TopK"));
    }
  }
  top_k_gather_kernel<<<grid_for(s.rows * s.k), kBlock, 0, stream>>>(e, vo, io, s);
  return check_launch("TopK");
}

// K comes from input 1 (a constant once the graph is specialised) or the opset-1 k attribute.
Status top_k_kernel(const CudaKernelArgs& args) {
  const TensorView& x = args.inputs.at(0);
  if (args.outputs.size() < 2) return invalid_input("TopK: expects the values and indices outputs");
  const TensorView& values = args.outputs[0];
  const TensorView& indices = args.outputs[1];
  const int rank = static_cast<int>(x.shape.size());
  FSWAP_ASSIGN_OR_RETURN(const int axis, normalize_axis(args, args.attrs.i("axis", -1), rank));
  std::int64_t k = args.attrs.i("k", -1);
  if (device_input(args, 1) != nullptr || host_input(args, 1) != nullptr) {
    const TensorView* host = host_input(args, 1);
    if (host == nullptr) return unsupported("TopK on CUDA: K must be a constant");
    FSWAP_ASSIGN_OR_RETURN(const std::vector<std::int64_t> kv, host_ints(args, *host, "K"));
    if (kv.size() != 1) return invalid_input("TopK: K must hold one value");
    k = kv[0];
  }
  const AxisSplit split = split_at(x.shape, axis);
  if (k < 0 || k > split.len)
    return invalid_input("TopK: K=" + std::to_string(k) + " is outside [0, " + std::to_string(split.len) + "]");
  Shape expect = x.shape;
  expect[static_cast<std::size_t>(axis)] = k;
  if (values.shape != expect || indices.shape != expect || indices.dtype != DType::kInt64 || values.dtype != x.dtype)
    return invalid_input("TopK: outputs do not have the shape " + shape_to_string(expect));
  const bool largest = args.attrs.i("largest", 1) != 0;
  const std::int64_t rows = split.outer * split.inner;
  if (k == 0 || rows == 0) return Status::ok();
  if (split.len > std::numeric_limits<int>::max())
    return unsupported("TopK on CUDA: an axis of " + std::to_string(split.len) + " elements (at most 2^31 - 1)");
  std::int64_t padded = 1;
  while (padded < split.len) padded *= 2;
  const TopKShape s{rows, split.len, split.inner, k, padded};
  switch (x.dtype) {
    case DType::kFloat32: return launch_top_k<float>(args, x, values, indices, s, largest);
    case DType::kFloat16: return launch_top_k<__half>(args, x, values, indices, s, largest);
    case DType::kInt64: return launch_top_k<std::int64_t>(args, x, values, indices, s, largest);
    case DType::kInt32: return launch_top_k<std::int32_t>(args, x, values, indices, s, largest);
    default: return unsupported(op_prefix(args) + "dtype " + dtype_name(x.dtype));
  }
}

}  // namespace

Status reduce_one_thread_per_output(const CudaKernelArgs& args) {
  return reduce_with(args, ReducePath::kOneThreadPerOutput);
}

CudaKernel reduce_kernel(OpType op) {
  switch (op) {
    case OpType::kSoftmax: return softmax_kernel<false>;
    case OpType::kLogSoftmax: return softmax_kernel<true>;
    case OpType::kReduceMean: case OpType::kReduceSum: case OpType::kReduceMax: case OpType::kReduceMin:
    case OpType::kReduceProd: case OpType::kReduceL2: case OpType::kReduceSumSquare:
      return reduce_kernel_impl;
    case OpType::kArgMax: case OpType::kArgMin: return arg_reduce_kernel;
    case OpType::kTopK: return top_k_kernel;
    default: return nullptr;
  }
}

}  // namespace fswap::cuda
