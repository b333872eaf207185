// Element-wise ops on CUDA: unary maps and activations, Cast, Clip, the broadcasting binary and
// variadic ops, PRelu and Where, with the semantics of the CPU kernels (backends/cpu/tensor_unary.cc,
// tensor_binary.cc). Softmax and the reductions live in reduce.cu.
//
// Two launchers carry every op: launch_dense (operands the size of the output, or scalars; 16-byte
// accesses when aligned) and apply (numpy broadcasting: dims merged on the host, then the dense
// kernel when that leaves one dim, else a strided kernel with 32-bit index math when it fits).
// Both read element i of every operand before writing element i, so the output may alias input 0.
#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "backends/cuda/common.cuh"
#include "backends/cuda/elementwise_internal.h"
#include "backends/cuda/families.h"

namespace fswap::cuda {
namespace {

constexpr int kMaxOperands = 3;
constexpr int kPackBytes = 16;

std::string op_prefix(const CudaKernelArgs& args) { return std::string(op_name(args.op)) + " on CUDA: "; }

Status cuda_status(const CudaKernelArgs& args, cudaError_t error, const char* call) {
  if (error == cudaSuccess) return Status::ok();
  return internal_error(op_prefix(args) + call + " failed: " + cudaGetErrorName(error) + ": " +
                        cudaGetErrorString(error));
}

bool aligned_to(const void* p, std::size_t bytes) { return reinterpret_cast<std::uintptr_t>(p) % bytes == 0; }

// ---- dense maps: out[i] = f(in[i]...) ----

template <class T, int W>
struct alignas(sizeof(T) * W) Pack {
  T v[W];
};

// Elements per 16-byte access of the widest operand.
template <class... T>
constexpr int pack_width() {
  return kPackBytes / static_cast<int>(std::max({sizeof(T)...}));
}

template <class T>
struct Dense {
  const T* data;
  bool scalar;  // every element reads data[0]
};

template <int W, class T>
__device__ __forceinline__ Pack<T, W> load_pack(const Dense<T>& in, std::int64_t i) {
  if (!in.scalar) return *reinterpret_cast<const Pack<T, W>*>(in.data + i);
  Pack<T, W> p;
  const T v = in.data[0];
#pragma unroll
  for (int k = 0; k < W; ++k) p.v[k] = v;
  return p;
}

template <int W, class TO, class F, class... TI>
__device__ __forceinline__ Pack<TO, W> map_pack(const F& f, const Pack<TI, W>&... in) {
  Pack<TO, W> out;
#pragma unroll
  for (int k = 0; k < W; ++k) out.v[k] = f(in.v[k]...);
  return out;
}

// The first `packs` packs of W elements go through 16-byte accesses, the rest one by one.
template <int W, class TO, class F, class... TI>
__global__ void dense_kernel(TO* out, std::int64_t n, std::int64_t packs, F f, Dense<TI>... in) {
  FSWAP_GRID_STRIDE(p, packs) {
    const std::int64_t i = p * W;
    *reinterpret_cast<Pack<TO, W>*>(out + i) = map_pack<W, TO>(f, load_pack<W>(in, i)...);
  }
  const std::int64_t step = static_cast<std::int64_t>(blockDim.x) * gridDim.x;
  for (std::int64_t i = packs * W + blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += step)
    out[i] = f(in.data[in.scalar ? 0 : i]...);
}

template <class TO, class F, class... TI>
Status launch_dense(const CudaKernelArgs& args, TO* out, std::int64_t n, const F& f, Dense<TI>... in) {
  if (n == 0) return Status::ok();
  constexpr int kWidth = pack_width<TO, TI...>();
  const bool aligned = aligned_to(out, sizeof(TO) * kWidth) &&
                       ((in.scalar || aligned_to(in.data, sizeof(TI) * kWidth)) && ...);
  const std::int64_t packs = aligned ? n / kWidth : 0;
  const std::int64_t threads = std::max(packs, n - packs * kWidth);
  dense_kernel<kWidth><<<grid_for(threads), kBlock, 0, stream_of(args)>>>(out, n, packs, f, in...);
  return check_launch(op_name(args.op));
}

// ---- rows: out as [rows, inner], each input either walking a row (full, or one row for every
// row: a per-channel bias of NHWC) or holding one value a row (a per-channel bias of NCHW [C, HW]);
// W elements of a row at a time, through 16-byte accesses ----

template <class T>
struct Rows {
  const T* data;
  std::int64_t row_stride;  // elements from one row's values to the next's (0: the same row)
  bool along;               // the values step with the column; else one value a row
};

template <int W, class T>
__device__ __forceinline__ Pack<T, W> load_row_pack(const Rows<T>& in, std::uint32_t row, std::uint32_t col) {
  const T* p = in.data + static_cast<std::int64_t>(row) * in.row_stride;
  if (in.along) return *reinterpret_cast<const Pack<T, W>*>(p + col);
  Pack<T, W> pack;
  const T v = p[0];
#pragma unroll
  for (int k = 0; k < W; ++k) pack.v[k] = v;
  return pack;
}

template <int W, class TO, class F, class... TI>
__global__ void rows_kernel(TO* out, std::uint32_t inner_packs, std::int64_t packs, std::uint32_t inner, F f,
                            Rows<TI>... in) {
  FSWAP_GRID_STRIDE(p, packs) {
    const auto q = static_cast<std::uint32_t>(p);  // packs < 2^32: the caller's rows × inner fits 32 bits
    const std::uint32_t row = q / inner_packs, col = (q - row * inner_packs) * W;
    *reinterpret_cast<Pack<TO, W>*>(out + static_cast<std::int64_t>(row) * inner + col) =
        map_pack<W, TO>(f, load_row_pack<W>(in, row, col)...);
  }
}

// ---- broadcasting: out[i] = f(in_k[offset_k(i)]...) ----

struct OutDims {
  int rank;
  std::int64_t size[kMaxRank];  // outermost first
};

template <class T>
struct Strided {
  const T* data;
  std::int64_t stride[kMaxRank];  // elements, 0 along broadcast dims
};

template <class Index, class F, class... TI, std::size_t... K>
__device__ __forceinline__ auto strided_element(std::int64_t i, const OutDims& dims, const F& f,
                                                std::index_sequence<K...>, const Strided<TI>&... in) {
  Index offset[sizeof...(TI)] = {};
  Index rest = static_cast<Index>(i);
#pragma unroll
  for (int d = kMaxRank - 1; d >= 0; --d) {
    if (d < dims.rank) {
      const Index size = static_cast<Index>(dims.size[d]);
      const Index coord = rest % size;
      rest /= size;
      ((offset[K] += coord * static_cast<Index>(in.stride[d])), ...);
    }
  }
  return f(in.data[offset[K]]...);
}

template <class Index, class TO, class F, class... TI>
__global__ void strided_kernel(TO* out, std::int64_t n, OutDims dims, F f, Strided<TI>... in) {
  FSWAP_GRID_STRIDE(i, n) out[i] = strided_element<Index>(i, dims, f, std::index_sequence_for<TI...>{}, in...);
}

// The output's dims with size-1 dims dropped and neighbours merged where every operand steps
// through both contiguously, and each operand's strides along them.
struct BroadcastPlan {
  int rank = 0;
  std::int64_t size[kMaxRank] = {};
  std::int64_t stride[kMaxOperands][kMaxRank] = {};
};

Status not_broadcastable(const CudaKernelArgs& args, std::initializer_list<const Shape*> ins, const Shape& out) {
  std::string shapes;
  for (const Shape* s : ins) shapes += (shapes.empty() ? "" : " and ") + shape_to_string(*s);
  return invalid_input(std::string(op_name(args.op)) + ": inputs " + shapes + " do not broadcast to the output " +
                       shape_to_string(out));
}

Result<BroadcastPlan> plan_broadcast(const CudaKernelArgs& args, const Shape& out,
                                     std::initializer_list<const Shape*> ins) {
  const std::size_t rank = out.size();
  const std::size_t operands = ins.size();
  std::vector<std::array<std::int64_t, kMaxOperands>> strides(rank, std::array<std::int64_t, kMaxOperands>{});
  std::size_t k = 0;
  for (const Shape* in : ins) {
    if (in->size() > rank) return not_broadcastable(args, ins, out);
    const std::size_t lead = rank - in->size();
    std::int64_t step = 1;
    for (std::size_t d = in->size(); d-- > 0;) {
      const std::int64_t n = (*in)[d];
      if (n != 1 && n != out[lead + d]) return not_broadcastable(args, ins, out);
      strides[lead + d][k] = n == 1 ? 0 : step;
      step *= n;
    }
    ++k;
  }
  BroadcastPlan p;
  for (std::size_t d = 0; d < rank; ++d) {
    if (out[d] == 1) continue;
    if (p.rank > 0) {
      bool merge = true;
      for (k = 0; k < operands; ++k) merge = merge && p.stride[k][p.rank - 1] == strides[d][k] * out[d];
      if (merge) {
        p.size[p.rank - 1] *= out[d];
        for (k = 0; k < operands; ++k) p.stride[k][p.rank - 1] = strides[d][k];
        continue;
      }
    }
    if (p.rank == kMaxRank) return unsupported(op_prefix(args) + "more than 8 dims after merging, output " + shape_to_string(out));
    p.size[p.rank] = out[d];
    for (k = 0; k < operands; ++k) p.stride[k][p.rank] = strides[d][k];
    ++p.rank;
  }
  return p;
}

template <class T>
Strided<T> strided_operand(const TensorView& v, const BroadcastPlan& plan, std::size_t k) {
  Strided<T> s{static_cast<const T*>(v.data), {}};
  std::copy(plan.stride[k], plan.stride[k] + plan.rank, s.stride);
  return s;
}

// A typed input of apply.
template <class T>
struct In {
  const TensorView& view;
};

// out = f(in...) element-wise with every input broadcast to out's shape (numpy rules).
template <class TO, class F, class... TI>
Status apply(const CudaKernelArgs& args, const TensorView& out, const F& f, In<TI>... in) {
  const std::int64_t n = out.elements();
  if (n == 0) return Status::ok();
  FSWAP_ASSIGN_OR_RETURN(const BroadcastPlan plan, plan_broadcast(args, out.shape, {&in.view.shape...}));
  TO* y = out.as<TO>();
  return [&]<std::size_t... K>(std::index_sequence<K...>) -> Status {
    if (plan.rank == 0 || (plan.rank == 1 && ((plan.stride[K][0] <= 1) && ...)))
      return launch_dense(args, y, n, f,
                          Dense<TI>{static_cast<const TI*>(in.view.data), plan.rank == 0 || plan.stride[K][0] == 0}...);
    if (plan.rank == 2) {
      // Every input walks its rows contiguously or holds one value a row, and whole packs of W
      // fit each row: rows_kernel, with no per-element index arithmetic.
      constexpr int kWidth = pack_width<TO, TI...>();
      const std::int64_t rows = plan.size[0], inner = plan.size[1];
      const auto fits = [&](const void* data, std::int64_t row_stride, std::int64_t col_stride, std::size_t bytes) {
        if (col_stride == 0) return true;
        return col_stride == 1 && row_stride % kWidth == 0 && aligned_to(data, bytes * kWidth);
      };
      if (inner % kWidth == 0 && rows * inner <= std::numeric_limits<std::uint32_t>::max() &&
          aligned_to(y, sizeof(TO) * kWidth) &&
          (fits(in.view.data, plan.stride[K][0], plan.stride[K][1], sizeof(TI)) && ...)) {
        const std::int64_t packs = n / kWidth;
        rows_kernel<kWidth><<<grid_for(packs), kBlock, 0, stream_of(args)>>>(
            y, static_cast<std::uint32_t>(inner / kWidth), packs, static_cast<std::uint32_t>(inner), f,
            Rows<TI>{static_cast<const TI*>(in.view.data), plan.stride[K][0], plan.stride[K][1] == 1}...);
        return check_launch(op_name(args.op));
      }
    }
    OutDims dims{plan.rank, {}};
    std::copy(plan.size, plan.size + plan.rank, dims.size);
    if (n <= std::numeric_limits<std::uint32_t>::max()) {
      strided_kernel<std::uint32_t><<<grid_for(n), kBlock, 0, stream_of(args)>>>(
          y, n, dims, f, strided_operand<TI>(in.view, plan, K)...);
    } else {
      strided_kernel<std::int64_t><<<grid_for(n), kBlock, 0, stream_of(args)>>>(
          y, n, dims, f, strided_operand<TI>(in.view, plan, K)...);
    }
    return check_launch(op_name(args.op));
  }(std::index_sequence_for<TI...>{});
}

// ---- device functors ----

template <OpType>
inline constexpr bool kNoDeviceForm = false;

// A float-compute functor over float32/float16 storage: inputs widen to float, the result narrows to TO.
template <class TO, class F>
struct ViaFloat {
  F f;
  template <class... TI>
  __device__ TO operator()(TI... v) const {
    return narrow_to<TO>(f(widen_to<float>(v)...));
  }
};

template <class TO, class F>
ViaFloat<TO, F> via_float(const F& f) {
  return {f};
}

// Unary float ops and activations. alpha/beta: LeakyRelu, Elu alpha; Selu alpha, gamma (beta);
// HardSigmoid alpha, beta.
template <OpType kOp>
struct Unary {
  float alpha = 0, beta = 0;

  __device__ static float softplus(float v) { return v > 0 ? v + log1pf(expf(-v)) : log1pf(expf(v)); }

  __device__ float operator()(float v) const {
    if constexpr (kOp == OpType::kAbs) return fabsf(v);
    else if constexpr (kOp == OpType::kNeg) return -v;
    else if constexpr (kOp == OpType::kReciprocal) return 1.0f / v;
    else if constexpr (kOp == OpType::kSqrt) return sqrtf(v);
    else if constexpr (kOp == OpType::kExp) return expf(v);
    else if constexpr (kOp == OpType::kLog) return logf(v);
    else if constexpr (kOp == OpType::kFloor) return floorf(v);
    else if constexpr (kOp == OpType::kCeil) return ceilf(v);
    else if constexpr (kOp == OpType::kRound) return rintf(v);  // half to even, as ONNX Round asks
    else if constexpr (kOp == OpType::kSin) return sinf(v);
    else if constexpr (kOp == OpType::kCos) return cosf(v);
    else if constexpr (kOp == OpType::kErf) return erff(v);
    else if constexpr (kOp == OpType::kRelu) return v > 0 ? v : 0.0f;
    else if constexpr (kOp == OpType::kLeakyRelu) return v >= 0 ? v : alpha * v;
    else if constexpr (kOp == OpType::kElu) return v >= 0 ? v : alpha * expm1f(v);
    else if constexpr (kOp == OpType::kSelu) return v > 0 ? beta * v : beta * alpha * expm1f(v);
    else if constexpr (kOp == OpType::kSigmoid) return 1.0f / (1.0f + expf(-v));
    else if constexpr (kOp == OpType::kHardSigmoid) return fmaxf(0.0f, fminf(1.0f, alpha * v + beta));
    else if constexpr (kOp == OpType::kHardSwish) return v * fmaxf(0.0f, fminf(1.0f, v * (1.0f / 6.0f) + 0.5f));
    else if constexpr (kOp == OpType::kTanh) return tanhf(v);
    else if constexpr (kOp == OpType::kSoftplus) return softplus(v);
    else if constexpr (kOp == OpType::kSoftsign) return v / (1.0f + fabsf(v));
    else if constexpr (kOp == OpType::kMish) return v * tanhf(softplus(v));
    else if constexpr (kOp == OpType::kGelu) return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    else static_assert(kNoDeviceForm<kOp>, "not a unary float op");
  }
};

struct GeluTanh {
  __device__ float operator()(float v) const {
    return 0.5f * v * (1.0f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v)));
  }
};

// Abs and Neg on integer and float64 storage.
template <OpType kOp>
struct Sign {
  template <class T>
  __device__ T operator()(T v) const {
    if constexpr (kOp == OpType::kAbs) return v < 0 ? static_cast<T>(-v) : v;
    else return static_cast<T>(-v);
  }
};

struct LogicalNot {
  __device__ std::uint8_t operator()(std::uint8_t v) const { return v == 0; }
};

template <class T>
__device__ __forceinline__ T int_div(T x, T y) {
  if (y == 0) return 0;
  if (y == -1) return static_cast<T>(0 - static_cast<std::make_unsigned_t<T>>(x));  // no INT_MIN / -1 trap
  return static_cast<T>(x / y);
}

template <class T>
__device__ __forceinline__ T int_mod(T x, T y, bool c_fmod) {
  if (y == 0 || y == -1) return 0;
  T r = static_cast<T>(x % y);
  if (!c_fmod && r != 0 && ((r < 0) != (y < 0))) r = static_cast<T>(r + y);
  return r;
}

__device__ __forceinline__ float float_mod(float x, float y, bool c_fmod) {
  float r = fmodf(x, y);
  if (!c_fmod && r != 0 && ((r < 0) != (y < 0))) r += y;
  return r;
}

template <class T>
__device__ __forceinline__ T int_pow(T base, T exp) {
  if (exp < 0) return base == 1 ? 1 : (base == -1 ? (exp % 2 ? -1 : 1) : 0);
  using U = std::make_unsigned_t<T>;  // wraps on overflow without undefined behaviour
  U result = 1, b = static_cast<U>(base);
  while (exp > 0) {
    if (exp & 1) result *= b;
    b *= b;
    exp >>= 1;
  }
  return static_cast<T>(result);
}

// The exponents LayerNorm decompositions use take cheaper exact-enough forms than powf.
__device__ __forceinline__ float float_pow(float x, float e) {
  if (e == 2.0f) return x * x;
  if (e == 3.0f) return x * x * x;
  if (e == 1.0f) return x;
  if (e == 0.5f) return sqrtf(x);
  return powf(x, e);
}

struct BinaryParams {
  bool c_fmod = false;  // Mod: C fmod (the dividend's sign) instead of the divisor's sign
  float scale = 1;      // Mean: the last fold step multiplies by 1/n
};

// Binary ops on compute values (float for float storage, the integer type itself otherwise).
template <OpType kOp>
struct Binary {
  BinaryParams p;

  template <class A, class B>
  __device__ auto operator()(A x, B y) const {
    constexpr bool kInt = std::is_integral_v<A>;
    if constexpr (kOp == OpType::kAdd) return static_cast<A>(x + y);
    else if constexpr (kOp == OpType::kSub) return static_cast<A>(x - y);
    else if constexpr (kOp == OpType::kMul) return static_cast<A>(x * y);
    else if constexpr (kOp == OpType::kDiv) {
      if constexpr (kInt) return int_div(x, y);
      else return x / y;
    } else if constexpr (kOp == OpType::kMin) return y < x ? y : x;
    else if constexpr (kOp == OpType::kMax) return x < y ? y : x;
    else if constexpr (kOp == OpType::kMod) {
      if constexpr (kInt) return int_mod(x, y, p.c_fmod);
      else return float_mod(x, y, p.c_fmod);
    } else if constexpr (kOp == OpType::kPow) {
      if constexpr (kInt) return int_pow(x, y);
      else return float_pow(x, y);
    } else if constexpr (kOp == OpType::kMean) return (x + y) * p.scale;
    else if constexpr (kOp == OpType::kPRelu) return x < 0 ? x * y : x;
    else if constexpr (kOp == OpType::kEqual) return x == y;
    else if constexpr (kOp == OpType::kLess) return x < y;
    else if constexpr (kOp == OpType::kLessOrEqual) return x <= y;
    else if constexpr (kOp == OpType::kGreater) return x > y;
    else if constexpr (kOp == OpType::kGreaterOrEqual) return x >= y;
    else if constexpr (kOp == OpType::kAnd) return x && y;
    else if constexpr (kOp == OpType::kOr) return x || y;
    else if constexpr (kOp == OpType::kXor) return (x != 0) != (y != 0);
    else static_assert(kNoDeviceForm<kOp>, "not a binary op");
  }
};

struct Select {
  template <class T>
  __device__ T operator()(std::uint8_t condition, T x, T y) const {
    return condition ? x : y;
  }
};

// Clip as min(max(v, lo), hi) with std::max/std::min's argument order (NaN passes through). A
// bound that is not a constant is read on the device from its pointer.
template <class T>
struct Clamp {
  Compute<T> lo, hi;
  const T* lo_at;
  const T* hi_at;

  __device__ T operator()(T v) const {
    using C = Compute<T>;
    const C x = widen_to<C>(v);
    const C low = lo_at != nullptr ? widen_to<C>(*lo_at) : lo;
    const C high = hi_at != nullptr ? widen_to<C>(*hi_at) : hi;
    const C m = x < low ? low : x;
    return narrow_to<T>(high < m ? high : m);
  }
};

// Cast's storage for bool, distinct from uint8 (any non-zero byte is true).
struct Bool8 {
  std::uint8_t value;
};

// float → integer: NaN → 0, saturate to int64, then narrower integers wrap (the CPU kernel's rule).
__device__ __forceinline__ std::int64_t saturate_to_int64(double v) {
  if (v != v) return 0;
  if (v >= 9223372036854775807.0) return std::numeric_limits<std::int64_t>::max();
  if (v <= -9223372036854775808.0) return std::numeric_limits<std::int64_t>::min();
  return static_cast<std::int64_t>(v);
}

template <class To, class From>
__device__ __forceinline__ To convert(From v) {
  if constexpr (std::is_same_v<From, Bool8>) return convert<To>(static_cast<std::uint8_t>(v.value != 0));
  else if constexpr (std::is_same_v<From, __half>) return convert<To>(__half2float(v));
  else if constexpr (std::is_same_v<To, Bool8>) return Bool8{static_cast<std::uint8_t>(v != From{0})};
  else if constexpr (std::is_same_v<To, __half>) return __float2half(static_cast<float>(v));
  else if constexpr (std::is_floating_point_v<From> && std::is_integral_v<To>)
    return static_cast<To>(saturate_to_int64(static_cast<double>(v)));
  else return static_cast<To>(v);
}

template <class To>
struct Convert {
  template <class From>
  __device__ To operator()(From v) const {
    return convert<To>(v);
  }
};

// ---- host-side helpers ----

Status check_same_elements(const CudaKernelArgs& args, const TensorView& x, const TensorView& y) {
  if (x.elements() != y.elements())
    return invalid_input(std::string(op_name(args.op)) + ": input " + shape_to_string(x.shape) + " and output " +
                         shape_to_string(y.shape) + " differ in size");
  return Status::ok();
}

Status check_same_dtype(const CudaKernelArgs& args, const TensorView& a, const TensorView& b) {
  if (a.dtype != b.dtype)
    return invalid_input(std::string(op_name(args.op)) + ": input dtypes " + dtype_name(a.dtype) + " and " +
                         dtype_name(b.dtype) + " differ");
  return Status::ok();
}

Status unsupported_dtype(const CudaKernelArgs& args, DType dtype) {
  return unsupported(op_prefix(args) + "dtype " + dtype_name(dtype));
}

// A one-element host constant as C.
template <class C>
Result<C> host_scalar(const CudaKernelArgs& args, const TensorView& v) {
  switch (v.dtype) {
    case DType::kFloat32: return static_cast<C>(*v.as<const float>());
    case DType::kFloat64: return static_cast<C>(*v.as<const double>());
    case DType::kInt64: return static_cast<C>(*v.as<const std::int64_t>());
    case DType::kInt32: return static_cast<C>(*v.as<const std::int32_t>());
    case DType::kInt8: return static_cast<C>(*v.as<const std::int8_t>());
    case DType::kUInt8: return static_cast<C>(*v.as<const std::uint8_t>());
    default: return unsupported(op_prefix(args) + "a host constant of dtype " + dtype_name(v.dtype));
  }
}

template <class T>
Dense<T> whole(const TensorView& v) {
  return {v.as<const T>(), false};
}

// ---- unary ops, Cast, Clip ----

template <class T, class F>
Status map_float(const CudaKernelArgs& args, const TensorView& x, const TensorView& y, const F& f) {
  return launch_dense(args, y.as<T>(), y.elements(), via_float<T>(f), whole<T>(x));
}

template <class T>
Status float_unary(const CudaKernelArgs& args, const TensorView& x, const TensorView& y) {
  const OpAttributes& a = args.attrs;
  switch (args.op) {
    case OpType::kAbs: return map_float<T>(args, x, y, Unary<OpType::kAbs>{});
    case OpType::kNeg: return map_float<T>(args, x, y, Unary<OpType::kNeg>{});
    case OpType::kReciprocal: return map_float<T>(args, x, y, Unary<OpType::kReciprocal>{});
    case OpType::kSqrt: return map_float<T>(args, x, y, Unary<OpType::kSqrt>{});
    case OpType::kExp: return map_float<T>(args, x, y, Unary<OpType::kExp>{});
    case OpType::kLog: return map_float<T>(args, x, y, Unary<OpType::kLog>{});
    case OpType::kFloor: return map_float<T>(args, x, y, Unary<OpType::kFloor>{});
    case OpType::kCeil: return map_float<T>(args, x, y, Unary<OpType::kCeil>{});
    case OpType::kRound: return map_float<T>(args, x, y, Unary<OpType::kRound>{});
    case OpType::kSin: return map_float<T>(args, x, y, Unary<OpType::kSin>{});
    case OpType::kCos: return map_float<T>(args, x, y, Unary<OpType::kCos>{});
    case OpType::kErf: return map_float<T>(args, x, y, Unary<OpType::kErf>{});
    case OpType::kRelu: return map_float<T>(args, x, y, Unary<OpType::kRelu>{});
    case OpType::kLeakyRelu: return map_float<T>(args, x, y, Unary<OpType::kLeakyRelu>{a.f("alpha", 0.01f)});
    case OpType::kElu: return map_float<T>(args, x, y, Unary<OpType::kElu>{a.f("alpha", 1.0f)});
    case OpType::kSelu:
      return map_float<T>(args, x, y,
                          Unary<OpType::kSelu>{a.f("alpha", 1.67326319217681884765625f),
                                               a.f("gamma", 1.05070102214813232421875f)});
    case OpType::kSigmoid: return map_float<T>(args, x, y, Unary<OpType::kSigmoid>{});
    case OpType::kHardSigmoid:
      return map_float<T>(args, x, y, Unary<OpType::kHardSigmoid>{a.f("alpha", 0.2f), a.f("beta", 0.5f)});
    case OpType::kHardSwish: return map_float<T>(args, x, y, Unary<OpType::kHardSwish>{});
    case OpType::kTanh: return map_float<T>(args, x, y, Unary<OpType::kTanh>{});
    case OpType::kSoftplus: return map_float<T>(args, x, y, Unary<OpType::kSoftplus>{});
    case OpType::kSoftsign: return map_float<T>(args, x, y, Unary<OpType::kSoftsign>{});
    case OpType::kMish: return map_float<T>(args, x, y, Unary<OpType::kMish>{});
    case OpType::kGelu: {
      const std::string approximate = a.s("approximate", "none");
      if (approximate == "none") return map_float<T>(args, x, y, Unary<OpType::kGelu>{});
      if (approximate == "tanh") return map_float<T>(args, x, y, GeluTanh{});
      return unsupported("Gelu on CUDA: approximate=\"" + approximate + "\" (expected \"none\" or \"tanh\")");
    }
    default: return unsupported(op_prefix(args) + "not a unary op of the element-wise kernels");
  }
}

template <class T>
Status sign_op(const CudaKernelArgs& args, const TensorView& x, const TensorView& y) {
  if (args.op == OpType::kAbs) return launch_dense(args, y.as<T>(), y.elements(), Sign<OpType::kAbs>{}, whole<T>(x));
  return launch_dense(args, y.as<T>(), y.elements(), Sign<OpType::kNeg>{}, whole<T>(x));
}

Status unary_kernel(const CudaKernelArgs& args) {
  const TensorView& x = args.inputs.at(0);
  const TensorView& y = args.outputs.at(0);
  FSWAP_RETURN_IF_ERROR(check_same_elements(args, x, y));
  if (x.dtype != y.dtype) return invalid_input(std::string(op_name(args.op)) + ": output dtype differs from the input's");
  if ((args.op == OpType::kAbs || args.op == OpType::kNeg) && x.dtype != DType::kFloat32 &&
      x.dtype != DType::kFloat16) {
    switch (x.dtype) {
      case DType::kInt64: return sign_op<std::int64_t>(args, x, y);
      case DType::kInt32: return sign_op<std::int32_t>(args, x, y);
      case DType::kInt8: return sign_op<std::int8_t>(args, x, y);
      case DType::kFloat64: return sign_op<double>(args, x, y);
      default: return unsupported_dtype(args, x.dtype);
    }
  }
  return dispatch_float(x.dtype, op_name(args.op), [&]<class T>() { return float_unary<T>(args, x, y); });
}

Status not_kernel(const CudaKernelArgs& args) {
  const TensorView& x = args.inputs.at(0);
  const TensorView& y = args.outputs.at(0);
  FSWAP_RETURN_IF_ERROR(check_same_elements(args, x, y));
  if (x.dtype != DType::kBool || y.dtype != DType::kBool) return unsupported_dtype(args, x.dtype);
  return launch_dense(args, y.as<std::uint8_t>(), y.elements(), LogicalNot{}, whole<std::uint8_t>(x));
}

Status identity_kernel(const CudaKernelArgs& args) {
  const TensorView& x = args.inputs.at(0);
  const TensorView& y = args.outputs.at(0);
  if (x.bytes() != y.bytes() || x.dtype != y.dtype)
    return invalid_input(std::string(op_name(args.op)) + ": output " + dtype_name(y.dtype) + shape_to_string(y.shape) +
                         " does not hold the input " + dtype_name(x.dtype) + shape_to_string(x.shape));
  return copy_unless_aliased(args, y, x);
}

Status dropout_kernel(const CudaKernelArgs& args) {
  if (device_input(args, 2) != nullptr) {
    const TensorView* training = host_input(args, 2);
    if (training == nullptr) return unsupported("Dropout on CUDA: training_mode must be a constant");
    if (training->dtype != DType::kBool || training->elements() != 1)
      return invalid_input("Dropout: training_mode must be one bool");
    if (*training->as<const std::uint8_t>() != 0)
      return unsupported("Dropout on CUDA: training_mode=true (the kernels are inference-only)");
  }
  FSWAP_RETURN_IF_ERROR(identity_kernel(args));
  if (args.outputs.size() > 1 && args.outputs[1].data != nullptr) {
    const TensorView& mask = args.outputs[1];
    if (mask.dtype != DType::kBool) return invalid_input("Dropout: mask output must be bool");
    if (mask.bytes() > 0)
      return cuda_status(args, cudaMemsetAsync(mask.data, 1, mask.bytes(), stream_of(args)), "cudaMemsetAsync");
  }
  return Status::ok();
}

// Calls f(T{}) with T the storage type Cast uses for dtype.
template <class F>
Status with_cast_type(DType dtype, F&& f) {
  switch (dtype) {
    case DType::kFloat32: return f(float{});
    case DType::kFloat16: return f(__half{});
    case DType::kFloat64: return f(double{});
    case DType::kInt64: return f(std::int64_t{});
    case DType::kInt32: return f(std::int32_t{});
    case DType::kInt8: return f(std::int8_t{});
    case DType::kUInt8: return f(std::uint8_t{});
    case DType::kBool: return f(Bool8{});
  }
  return unsupported(std::string("Cast on CUDA: dtype ") + dtype_name(dtype));
}

// The target is the output's dtype (the fp16 pass retargets Cast nodes through their values).
Status cast_kernel(const CudaKernelArgs& args) {
  const TensorView& x = args.inputs.at(0);
  const TensorView& y = args.outputs.at(0);
  FSWAP_RETURN_IF_ERROR(check_same_elements(args, x, y));
  return with_cast_type(y.dtype, [&](auto to) {
    return with_cast_type(x.dtype, [&](auto from) {
      using To = decltype(to);
      using From = decltype(from);
      if constexpr (std::is_same_v<To, From>) {
        return copy_unless_aliased(args, y, x);
      } else {
        return launch_dense(args, y.as<To>(), y.elements(), Convert<To>{}, whole<From>(x));
      }
    });
  });
}

template <class T>
Status clip_typed(const CudaKernelArgs& args, const TensorView& x, const TensorView& y) {
  using C = Compute<T>;
  Clamp<T> f{std::numeric_limits<C>::lowest(), std::numeric_limits<C>::max(), nullptr, nullptr};
  if constexpr (std::is_floating_point_v<C>) {
    f.lo = args.attrs.f("min", f.lo);
    f.hi = args.attrs.f("max", f.hi);
  }
  for (std::size_t i = 1; i <= 2; ++i) {
    const TensorView* bound = device_input(args, i);
    if (bound == nullptr) continue;
    if (bound->dtype != x.dtype || bound->elements() != 1)
      return invalid_input(std::string("Clip: ") + (i == 1 ? "min" : "max") + " must be one value of the input's dtype");
    if (const TensorView* host = host_input(args, i)) {
      FSWAP_ASSIGN_OR_RETURN((i == 1 ? f.lo : f.hi), host_scalar<C>(args, *host));
    } else {
      (i == 1 ? f.lo_at : f.hi_at) = bound->as<const T>();
    }
  }
  return launch_dense(args, y.as<T>(), y.elements(), f, whole<T>(x));
}

Status clip_kernel(const CudaKernelArgs& args) {
  const TensorView& x = args.inputs.at(0);
  const TensorView& y = args.outputs.at(0);
  FSWAP_RETURN_IF_ERROR(check_same_elements(args, x, y));
  if (x.dtype != y.dtype) return invalid_input("Clip: output dtype differs from the input's");
  switch (x.dtype) {
    case DType::kFloat32: return clip_typed<float>(args, x, y);
    case DType::kFloat16: return clip_typed<__half>(args, x, y);
    case DType::kInt64: return clip_typed<std::int64_t>(args, x, y);
    case DType::kInt32: return clip_typed<std::int32_t>(args, x, y);
    case DType::kUInt8: return clip_typed<std::uint8_t>(args, x, y);
    default: return unsupported_dtype(args, x.dtype);
  }
}

// ---- binary and variadic ops, PRelu, Where ----

// out = f(a, b) for float32/float16 a, b and out of one dtype.
template <class F>
Status float_binary(const CudaKernelArgs& args, const F& f, const TensorView& a, const TensorView& b,
                    const TensorView& out) {
  FSWAP_RETURN_IF_ERROR(check_same_dtype(args, a, b));
  if (out.dtype != a.dtype) return invalid_input(std::string(op_name(args.op)) + ": output dtype differs from the inputs'");
  return dispatch_float(a.dtype, op_name(args.op),
                        [&]<class T>() { return apply<T>(args, out, via_float<T>(f), In<T>{a}, In<T>{b}); });
}

// Calls run(Binary<op>{params}) for the arithmetic ops.
template <class Run>
Status with_arithmetic_op(const CudaKernelArgs& args, OpType op, BinaryParams params, Run&& run) {
  switch (op) {
    case OpType::kAdd: return run(Binary<OpType::kAdd>{params});
    case OpType::kSub: return run(Binary<OpType::kSub>{params});
    case OpType::kMul: return run(Binary<OpType::kMul>{params});
    case OpType::kDiv: return run(Binary<OpType::kDiv>{params});
    case OpType::kMin: return run(Binary<OpType::kMin>{params});
    case OpType::kMax: return run(Binary<OpType::kMax>{params});
    case OpType::kMod: return run(Binary<OpType::kMod>{params});
    case OpType::kPow: return run(Binary<OpType::kPow>{params});
    default: return unsupported(op_prefix(args) + op_name(op) + " is not an arithmetic op");
  }
}

Status arithmetic(const CudaKernelArgs& args, OpType op, const TensorView& a, const TensorView& b,
                  const TensorView& out, BinaryParams params) {
  FSWAP_RETURN_IF_ERROR(check_same_dtype(args, a, b));
  if (out.dtype != a.dtype) return invalid_input(std::string(op_name(args.op)) + ": output dtype differs from the inputs'");
  return with_arithmetic_op(args, op, params, [&](auto f) -> Status {
    switch (a.dtype) {
      case DType::kFloat32: case DType::kFloat16: return float_binary(args, f, a, b, out);
      case DType::kInt64: return apply<std::int64_t>(args, out, f, In<std::int64_t>{a}, In<std::int64_t>{b});
      case DType::kInt32: return apply<std::int32_t>(args, out, f, In<std::int32_t>{a}, In<std::int32_t>{b});
      default: return unsupported_dtype(args, a.dtype);
    }
  });
}

// Pow with a float32/float16 base: the exponent has the base's dtype, int64 or int32.
Status float_pow(const CudaKernelArgs& args, const TensorView& a, const TensorView& b, const TensorView& out) {
  if (out.dtype != a.dtype) return invalid_input("Pow: output dtype differs from the base's");
  const Binary<OpType::kPow> f{};
  return dispatch_float(a.dtype, "Pow", [&]<class T>() -> Status {
    switch (b.dtype) {
      case DType::kInt64: return apply<T>(args, out, via_float<T>(f), In<T>{a}, In<std::int64_t>{b});
      case DType::kInt32: return apply<T>(args, out, via_float<T>(f), In<T>{a}, In<std::int32_t>{b});
      default:
        if (b.dtype != a.dtype)
          return unsupported(std::string("Pow on CUDA: exponent dtype ") + dtype_name(b.dtype) + " with a " +
                             dtype_name(a.dtype) + " base");
        return apply<T>(args, out, via_float<T>(f), In<T>{a}, In<T>{b});
    }
  });
}

template <class Run>
Status with_comparison_op(const CudaKernelArgs& args, OpType op, Run&& run) {
  switch (op) {
    case OpType::kEqual: return run(Binary<OpType::kEqual>{});
    case OpType::kLess: return run(Binary<OpType::kLess>{});
    case OpType::kLessOrEqual: return run(Binary<OpType::kLessOrEqual>{});
    case OpType::kGreater: return run(Binary<OpType::kGreater>{});
    case OpType::kGreaterOrEqual: return run(Binary<OpType::kGreaterOrEqual>{});
    default: return unsupported(op_prefix(args) + op_name(op) + " is not a comparison");
  }
}

Status comparison(const CudaKernelArgs& args, OpType op, const TensorView& a, const TensorView& b,
                  const TensorView& out) {
  FSWAP_RETURN_IF_ERROR(check_same_dtype(args, a, b));
  if (out.dtype != DType::kBool) return invalid_input(std::string(op_name(args.op)) + ": output must be bool");
  using B = std::uint8_t;
  return with_comparison_op(args, op, [&](auto f) -> Status {
    switch (a.dtype) {
      case DType::kFloat32: return apply<B>(args, out, via_float<B>(f), In<float>{a}, In<float>{b});
      case DType::kFloat16: return apply<B>(args, out, via_float<B>(f), In<__half>{a}, In<__half>{b});
      case DType::kInt64: return apply<B>(args, out, f, In<std::int64_t>{a}, In<std::int64_t>{b});
      case DType::kInt32: return apply<B>(args, out, f, In<std::int32_t>{a}, In<std::int32_t>{b});
      case DType::kBool: case DType::kUInt8: return apply<B>(args, out, f, In<B>{a}, In<B>{b});
      default: return unsupported_dtype(args, a.dtype);
    }
  });
}

Status logical(const CudaKernelArgs& args, OpType op, const TensorView& a, const TensorView& b,
               const TensorView& out) {
  using B = std::uint8_t;
  if (a.dtype != DType::kBool || b.dtype != DType::kBool || out.dtype != DType::kBool)
    return unsupported_dtype(args, a.dtype != DType::kBool ? a.dtype : b.dtype);
  switch (op) {
    case OpType::kAnd: return apply<B>(args, out, Binary<OpType::kAnd>{}, In<B>{a}, In<B>{b});
    case OpType::kOr: return apply<B>(args, out, Binary<OpType::kOr>{}, In<B>{a}, In<B>{b});
    case OpType::kXor: return apply<B>(args, out, Binary<OpType::kXor>{}, In<B>{a}, In<B>{b});
    default: return unsupported(op_prefix(args) + op_name(op) + " is not a logical op");
  }
}

// out = a <op> b: one binary op, or one step of a variadic fold.
Status binary_step(const CudaKernelArgs& args, OpType op, const TensorView& a, const TensorView& b,
                   const TensorView& out, BinaryParams params) {
  switch (op) {
    case OpType::kEqual: case OpType::kLess: case OpType::kLessOrEqual: case OpType::kGreater:
    case OpType::kGreaterOrEqual:
      return comparison(args, op, a, b, out);
    case OpType::kAnd: case OpType::kOr: case OpType::kXor:
      return logical(args, op, a, b, out);
    case OpType::kPow:
      if (a.dtype == DType::kFloat32 || a.dtype == DType::kFloat16) return float_pow(args, a, b, out);
      return arithmetic(args, op, a, b, out, params);
    default:
      return arithmetic(args, op, a, b, out, params);
  }
}

Status binary_kernel(const CudaKernelArgs& args) {
  if (args.inputs.size() != 2) return invalid_input(std::string(op_name(args.op)) + ": expects 2 inputs");
  const BinaryParams params{args.attrs.i("fmod", 0) != 0, 1.0f};
  return binary_step(args, args.op, args.inputs[0], args.inputs[1], args.outputs.at(0), params);
}

// Sum, Mean, Min, Max: folds the inputs into the output pairwise (the output has the full shape,
// so from the second step on it is operand a, updated in place); Mean scales in its last step.
Status variadic_kernel(const CudaKernelArgs& args) {
  const TensorView& out = args.outputs.at(0);
  const std::size_t n = args.inputs.size();
  if (n == 0) return invalid_input(std::string(op_name(args.op)) + ": expects at least one input");
  if (n == 1) {
    if (args.inputs[0].bytes() != out.bytes())
      return invalid_input(std::string(op_name(args.op)) + ": output differs from the single input");
    return copy_unless_aliased(args, out, args.inputs[0]);
  }
  const bool mean = args.op == OpType::kMean;
  if (mean && out.dtype != DType::kFloat32 && out.dtype != DType::kFloat16) return unsupported_dtype(args, out.dtype);
  const OpType fold = args.op == OpType::kSum || mean ? OpType::kAdd : args.op;
  const BinaryParams params{false, 1.0f / static_cast<float>(n)};
  for (std::size_t k = 1; k < n; ++k) {
    const TensorView& a = k == 1 ? args.inputs[0] : out;
    if (mean && k + 1 == n) {
      FSWAP_RETURN_IF_ERROR(float_binary(args, Binary<OpType::kMean>{params}, a, args.inputs[k], out));
    } else {
      FSWAP_RETURN_IF_ERROR(binary_step(args, fold, a, args.inputs[k], out, params));
    }
  }
  return Status::ok();
}

Status prelu_kernel(const CudaKernelArgs& args) {
  const TensorView& x = args.inputs.at(0);
  const TensorView& slope = args.inputs.at(1);
  const TensorView& y = args.outputs.at(0);
  if (x.shape != y.shape) return invalid_input("PRelu: output shape differs from the input's");
  return float_binary(args, Binary<OpType::kPRelu>{}, x, slope, y);
}

Status where_kernel(const CudaKernelArgs& args) {
  const TensorView& c = args.inputs.at(0);
  const TensorView& x = args.inputs.at(1);
  const TensorView& y = args.inputs.at(2);
  const TensorView& out = args.outputs.at(0);
  if (c.dtype != DType::kBool)
    return invalid_input(std::string("Where: condition must be bool, not ") + dtype_name(c.dtype));
  if (x.dtype != y.dtype || out.dtype != x.dtype) return invalid_input("Where: X, Y and the output must share a dtype");
  using B = std::uint8_t;
  switch (dtype_size(x.dtype)) {
    case 1: return apply<B>(args, out, Select{}, In<B>{c}, In<std::uint8_t>{x}, In<std::uint8_t>{y});
    case 2: return apply<std::uint16_t>(args, out, Select{}, In<B>{c}, In<std::uint16_t>{x}, In<std::uint16_t>{y});
    case 4: return apply<std::uint32_t>(args, out, Select{}, In<B>{c}, In<std::uint32_t>{x}, In<std::uint32_t>{y});
    default: return apply<std::uint64_t>(args, out, Select{}, In<B>{c}, In<std::uint64_t>{x}, In<std::uint64_t>{y});
  }
}

}  // namespace

Status copy_unless_aliased(const CudaKernelArgs& args, const TensorView& dst, const TensorView& src) {
  if (dst.data == src.data || dst.bytes() == 0) return Status::ok();
  return cuda_status(args, cudaMemcpyAsync(dst.data, src.data, dst.bytes(), cudaMemcpyDeviceToDevice, stream_of(args)),
                     "cudaMemcpyAsync");
}

CudaKernel elementwise_kernel(OpType op) {
  switch (op) {
    case OpType::kAbs: case OpType::kNeg: case OpType::kReciprocal: case OpType::kSqrt: case OpType::kExp:
    case OpType::kLog: case OpType::kFloor: case OpType::kCeil: case OpType::kRound: case OpType::kSin:
    case OpType::kCos: case OpType::kErf: case OpType::kRelu: case OpType::kLeakyRelu: case OpType::kElu:
    case OpType::kSelu: case OpType::kSigmoid: case OpType::kHardSigmoid: case OpType::kHardSwish:
    case OpType::kTanh: case OpType::kSoftplus: case OpType::kSoftsign: case OpType::kGelu: case OpType::kMish:
      return unary_kernel;
    case OpType::kNot: return not_kernel;
    case OpType::kIdentity: return identity_kernel;
    case OpType::kDropout: return dropout_kernel;
    case OpType::kCast: return cast_kernel;
    case OpType::kClip: return clip_kernel;
    case OpType::kPRelu: return prelu_kernel;
    case OpType::kAdd: case OpType::kSub: case OpType::kMul: case OpType::kDiv: case OpType::kPow:
    case OpType::kMod: case OpType::kEqual: case OpType::kLess: case OpType::kLessOrEqual: case OpType::kGreater:
    case OpType::kGreaterOrEqual: case OpType::kAnd: case OpType::kOr: case OpType::kXor:
      return binary_kernel;
    case OpType::kSum: case OpType::kMean: case OpType::kMin: case OpType::kMax: return variadic_kernel;
    case OpType::kWhere: return where_kernel;
    default: return reduce_kernel(op);
  }
}

}  // namespace fswap::cuda
