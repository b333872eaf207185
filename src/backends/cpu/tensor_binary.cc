#include <cmath>
#include <limits>
#include <type_traits>

#include "backends/cpu/tensor_kernels.h"

namespace fswap::tensor_ops {
namespace {

// out = f(a, b) with numpy broadcasting of a and b to out's shape. out may alias a (same shape):
// element i of a is read before element i of out is written.
template <class TA, class TB, class TO, class F>
Status broadcast_binary(const KernelArgs& args, const TensorView& a, const TensorView& b, const TensorView& out, F f) {
  std::vector<std::int64_t> sa, sb;
  if (!broadcast_strides(a.shape, out.shape, sa) || !broadcast_strides(b.shape, out.shape, sb))
    return op_error(args, "inputs " + shape_to_string(a.shape) + " and " + shape_to_string(b.shape) +
                              " do not broadcast to the output " + shape_to_string(out.shape));
  const StridedPlan plan = make_strided_plan(out.shape, {sa, sb});
  const TA* pa = a.as<const TA>();
  const TB* pb = b.as<const TB>();
  TO* po = out.as<TO>();
  parallel_range(plan.elements, kElementGrain, [&](std::int64_t begin, std::int64_t end) {
    for_each_segment(plan, begin, end, [&](std::int64_t pos, const std::int64_t* offs, const std::int64_t* st, std::int64_t n) {
      TO* o = po + pos;
      const TA* x = pa + offs[0];
      const TB* y = pb + offs[1];
      if (st[0] == 1 && st[1] == 1) {
        for (std::int64_t i = 0; i < n; ++i) o[i] = f(x[i], y[i]);
      } else if (st[0] == 1) {
        const TB yv = *y;
        for (std::int64_t i = 0; i < n; ++i) o[i] = f(x[i], yv);
      } else if (st[1] == 1) {
        const TA xv = *x;
        for (std::int64_t i = 0; i < n; ++i) o[i] = f(xv, y[i]);
      } else {
        const TO v = f(*x, *y);
        for (std::int64_t i = 0; i < n; ++i) o[i] = v;
      }
    });
  });
  return Status::ok();
}

template <class T>
T int_div(T x, T y) {
  if (y == 0) return 0;
  if (y == -1) return static_cast<T>(0 - static_cast<std::make_unsigned_t<T>>(x));  // no INT_MIN / -1 trap
  return static_cast<T>(x / y);
}

template <class T>
T int_mod(T x, T y, bool c_fmod) {
  if (y == 0 || y == -1) return 0;
  T r = static_cast<T>(x % y);
  if (!c_fmod && r != 0 && ((r < 0) != (y < 0))) r = static_cast<T>(r + y);
  return r;
}

template <class T>
T float_mod(T x, T y, bool c_fmod) {
  T r = std::fmod(x, y);
  if (!c_fmod && r != 0 && ((r < 0) != (y < 0))) r += y;
  return r;
}

template <class T>
T int_pow(T base, T exp) {
  if (exp < 0) return base == 1 ? 1 : (base == -1 ? (exp % 2 ? -1 : 1) : 0);
  T result = 1;
  while (exp > 0) {
    if (exp & 1) result = static_cast<T>(result * base);
    base = static_cast<T>(base * base);
    exp >>= 1;
  }
  return result;
}

template <class T>
Status arithmetic(const KernelArgs& args, const TensorView& a, const TensorView& b, const TensorView& out) {
  constexpr bool kInt = std::is_integral_v<T>;
  switch (args.op) {
    case OpType::kAdd: case OpType::kSum: case OpType::kMean:
      return broadcast_binary<T, T, T>(args, a, b, out, [](T x, T y) { return static_cast<T>(x + y); });
    case OpType::kSub:
      return broadcast_binary<T, T, T>(args, a, b, out, [](T x, T y) { return static_cast<T>(x - y); });
    case OpType::kMul:
      return broadcast_binary<T, T, T>(args, a, b, out, [](T x, T y) { return static_cast<T>(x * y); });
    case OpType::kDiv:
      if constexpr (kInt) return broadcast_binary<T, T, T>(args, a, b, out, int_div<T>);
      else return broadcast_binary<T, T, T>(args, a, b, out, [](T x, T y) { return x / y; });
    case OpType::kMin:
      return broadcast_binary<T, T, T>(args, a, b, out, [](T x, T y) { return y < x ? y : x; });
    case OpType::kMax:
      return broadcast_binary<T, T, T>(args, a, b, out, [](T x, T y) { return x < y ? y : x; });
    case OpType::kMod: {
      const bool c_fmod = args.attrs.i("fmod", 0) != 0;
      if constexpr (kInt)
        return broadcast_binary<T, T, T>(args, a, b, out, [c_fmod](T x, T y) { return int_mod(x, y, c_fmod); });
      else
        return broadcast_binary<T, T, T>(args, a, b, out, [c_fmod](T x, T y) { return float_mod(x, y, c_fmod); });
    }
    case OpType::kPow:
      if constexpr (kInt) return broadcast_binary<T, T, T>(args, a, b, out, int_pow<T>);
      else break;
    default:
      break;
  }
  return unsupported(std::string(op_name(args.op)) + ": dtype " + dtype_name(a.dtype));
}

template <class T>
Status comparison(const KernelArgs& args, const TensorView& a, const TensorView& b, const TensorView& out) {
  using B = std::uint8_t;
  switch (args.op) {
    case OpType::kEqual: return broadcast_binary<T, T, B>(args, a, b, out, [](T x, T y) { return B(x == y); });
    case OpType::kLess: return broadcast_binary<T, T, B>(args, a, b, out, [](T x, T y) { return B(x < y); });
    case OpType::kLessOrEqual: return broadcast_binary<T, T, B>(args, a, b, out, [](T x, T y) { return B(x <= y); });
    case OpType::kGreater: return broadcast_binary<T, T, B>(args, a, b, out, [](T x, T y) { return B(x > y); });
    case OpType::kGreaterOrEqual:
      return broadcast_binary<T, T, B>(args, a, b, out, [](T x, T y) { return B(x >= y); });
    default: return unsupported(std::string(op_name(args.op)) + " is not a comparison");
  }
}

// Pow with a float32 base: the exponent may be float32, int64 or int32; a scalar 0.5, 1, 2 or 3
// takes a cheaper path than std::pow (LayerNorm decompositions square with Pow).
template <class E>
Status float_pow(const KernelArgs& args, const TensorView& a, const TensorView& b, const TensorView& out) {
  if (b.elements() == 1 && a.shape == out.shape) {
    const double e = static_cast<double>(*b.as<const E>());
    const float* x = a.as<const float>();
    float* y = out.as<float>();
    auto run = [&](auto f) {
      parallel_range(out.elements(), kElementGrain, [&](std::int64_t s, std::int64_t t) {
        for (std::int64_t i = s; i < t; ++i) y[i] = f(x[i]);
      });
      return Status::ok();
    };
    if (e == 2.0) return run([](float v) { return v * v; });
    if (e == 3.0) return run([](float v) { return v * v * v; });
    if (e == 1.0) return run([](float v) { return v; });
    if (e == 0.5) return run([](float v) { return std::sqrt(v); });
  }
  return broadcast_binary<float, E, float>(args, a, b, out,
                                           [](float x, E y) { return std::pow(x, static_cast<float>(y)); });
}

Status check_same_dtype(const KernelArgs& args, const TensorView& a, const TensorView& b) {
  if (a.dtype != b.dtype)
    return op_error(args, "input dtypes " + std::string(dtype_name(a.dtype)) + " and " + dtype_name(b.dtype) + " differ");
  return Status::ok();
}

Status binary_step(const KernelArgs& args, const TensorView& a, const TensorView& b, const TensorView& out) {
  switch (args.op) {
    case OpType::kEqual: case OpType::kLess: case OpType::kLessOrEqual: case OpType::kGreater:
    case OpType::kGreaterOrEqual:
      FSWAP_RETURN_IF_ERROR(check_same_dtype(args, a, b));
      if (out.dtype != DType::kBool) return op_error(args, "output must be bool");
      switch (a.dtype) {
        case DType::kFloat32: return comparison<float>(args, a, b, out);
        case DType::kInt64: return comparison<std::int64_t>(args, a, b, out);
        case DType::kInt32: return comparison<std::int32_t>(args, a, b, out);
        case DType::kBool: case DType::kUInt8: return comparison<std::uint8_t>(args, a, b, out);
        default: return unsupported_dtype(args, a.dtype);
      }
    case OpType::kAnd: case OpType::kOr: case OpType::kXor: {
      using B = std::uint8_t;
      if (a.dtype != DType::kBool || b.dtype != DType::kBool || out.dtype != DType::kBool)
        return unsupported_dtype(args, a.dtype != DType::kBool ? a.dtype : b.dtype);
      if (args.op == OpType::kAnd) return broadcast_binary<B, B, B>(args, a, b, out, [](B x, B y) { return B(x && y); });
      if (args.op == OpType::kOr) return broadcast_binary<B, B, B>(args, a, b, out, [](B x, B y) { return B(x || y); });
      return broadcast_binary<B, B, B>(args, a, b, out, [](B x, B y) { return B((x != 0) != (y != 0)); });
    }
    case OpType::kPow:
      if (a.dtype == DType::kFloat32) {
        if (out.dtype != DType::kFloat32) return op_error(args, "output must be float32");
        switch (b.dtype) {
          case DType::kFloat32: return float_pow<float>(args, a, b, out);
          case DType::kInt64: return float_pow<std::int64_t>(args, a, b, out);
          case DType::kInt32: return float_pow<std::int32_t>(args, a, b, out);
          default: return unsupported("Pow: exponent dtype " + std::string(dtype_name(b.dtype)));
        }
      }
      [[fallthrough]];
    default:
      FSWAP_RETURN_IF_ERROR(check_same_dtype(args, a, b));
      if (out.dtype != a.dtype) return op_error(args, "output dtype differs from the inputs'");
      switch (a.dtype) {
        case DType::kFloat32: return arithmetic<float>(args, a, b, out);
        case DType::kInt64: return arithmetic<std::int64_t>(args, a, b, out);
        case DType::kInt32: return arithmetic<std::int32_t>(args, a, b, out);
        default: return unsupported_dtype(args, a.dtype);
      }
  }
}

}  // namespace

Status binary_kernel(const KernelArgs& args) {
  if (args.inputs.size() != 2) return op_error(args, "expects 2 inputs");
  return binary_step(args, args.inputs[0], args.inputs[1], args.outputs.at(0));
}

Status variadic_kernel(const KernelArgs& args) {
  const TensorView& out = args.outputs.at(0);
  const std::size_t n = args.inputs.size();
  if (n == 0) return op_error(args, "expects at least one input");
  if (n == 1) {
    if (args.inputs[0].bytes() != out.bytes()) return op_error(args, "output differs from the single input");
    copy_unless_aliased(out, args.inputs[0]);
  } else {
    FSWAP_RETURN_IF_ERROR(binary_step(args, args.inputs[0], args.inputs[1], out));
    // Later inputs fold into out in place (out has the full shape, so it is operand a).
    for (std::size_t k = 2; k < n; ++k) FSWAP_RETURN_IF_ERROR(binary_step(args, out, args.inputs[k], out));
  }
  if (args.op == OpType::kMean && n > 1) {
    if (out.dtype != DType::kFloat32) return unsupported_dtype(args, out.dtype);
    float* y = out.as<float>();
    const float scale = 1.0f / static_cast<float>(n);
    parallel_range(out.elements(), kElementGrain, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) y[i] *= scale;
    });
  }
  return Status::ok();
}

Status prelu_kernel(const KernelArgs& args) {
  const TensorView& x = args.inputs.at(0);
  const TensorView& slope = args.inputs.at(1);
  const TensorView& y = args.outputs.at(0);
  if (x.dtype != DType::kFloat32 || slope.dtype != DType::kFloat32) return unsupported_dtype(args, x.dtype);
  if (x.shape != y.shape) return op_error(args, "output shape differs from the input's");
  return broadcast_binary<float, float, float>(args, x, slope, y, [](float v, float s) { return v < 0 ? v * s : v; });
}

namespace {

template <class T>
void where_typed(const StridedPlan& plan, const TensorView& c, const TensorView& x, const TensorView& y,
                 const TensorView& out) {
  const std::uint8_t* pc = c.as<const std::uint8_t>();
  const T* px = x.as<const T>();
  const T* py = y.as<const T>();
  T* po = out.as<T>();
  parallel_range(plan.elements, kElementGrain, [&](std::int64_t begin, std::int64_t end) {
    for_each_segment(plan, begin, end, [&](std::int64_t pos, const std::int64_t* offs, const std::int64_t* st, std::int64_t n) {
      const std::uint8_t* cc = pc + offs[0];
      const T* xx = px + offs[1];
      const T* yy = py + offs[2];
      T* o = po + pos;
      if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
        for (std::int64_t i = 0; i < n; ++i) o[i] = cc[i] ? xx[i] : yy[i];
      } else {
        for (std::int64_t i = 0; i < n; ++i) o[i] = cc[i * st[0]] ? xx[i * st[1]] : yy[i * st[2]];
      }
    });
  });
}

}  // namespace

Status where_kernel(const KernelArgs& args) {
  const TensorView& c = args.inputs.at(0);
  const TensorView& x = args.inputs.at(1);
  const TensorView& y = args.inputs.at(2);
  const TensorView& out = args.outputs.at(0);
  if (c.dtype != DType::kBool) return op_error(args, "condition must be bool, not " + std::string(dtype_name(c.dtype)));
  if (x.dtype != y.dtype || out.dtype != x.dtype) return op_error(args, "X, Y and the output must share a dtype");
  std::vector<std::int64_t> sc, sx, sy;
  if (!broadcast_strides(c.shape, out.shape, sc) || !broadcast_strides(x.shape, out.shape, sx) ||
      !broadcast_strides(y.shape, out.shape, sy))
    return op_error(args, "inputs " + shape_to_string(c.shape) + ", " + shape_to_string(x.shape) + ", " +
                              shape_to_string(y.shape) + " do not broadcast to " + shape_to_string(out.shape));
  const StridedPlan plan = make_strided_plan(out.shape, {sc, sx, sy});
  switch (dtype_size(x.dtype)) {
    case 1: where_typed<std::uint8_t>(plan, c, x, y, out); break;
    case 2: where_typed<std::uint16_t>(plan, c, x, y, out); break;
    case 4: where_typed<std::uint32_t>(plan, c, x, y, out); break;
    default: where_typed<std::uint64_t>(plan, c, x, y, out); break;
  }
  return Status::ok();
}

}  // namespace fswap::tensor_ops
