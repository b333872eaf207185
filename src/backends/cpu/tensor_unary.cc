#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "backends/cpu/tensor_kernels.h"

namespace fswap::tensor_ops {
namespace {

// Transcendental maps cost more per element: smaller chunks still pay for a thread.
constexpr std::int64_t kMathGrain = 8192;

template <class T, class F>
void map(const TensorView& x, const TensorView& y, std::int64_t grain, F f) {
  const T* in = x.as<const T>();
  T* out = y.as<T>();
  parallel_range(y.elements(), grain, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) out[i] = f(in[i]);
  });
}

Status check_same_elements(const KernelArgs& args, const TensorView& x, const TensorView& y) {
  if (x.elements() != y.elements())
    return op_error(args, "input " + shape_to_string(x.shape) + " and output " + shape_to_string(y.shape) +
                              " differ in size");
  return Status::ok();
}

template <class T>
Status sign_ops(const KernelArgs& args, const TensorView& x, const TensorView& y) {
  if (args.op == OpType::kAbs) {
    map<T>(x, y, kElementGrain, [](T v) { return v < 0 ? static_cast<T>(-v) : v; });
  } else {
    map<T>(x, y, kElementGrain, [](T v) { return static_cast<T>(-v); });
  }
  return Status::ok();
}

float sigmoid(float v) { return 1.0f / (1.0f + std::exp(-v)); }
float softplus(float v) { return v > 0 ? v + std::log1p(std::exp(-v)) : std::log1p(std::exp(v)); }

}  // namespace

Status unary_kernel(const KernelArgs& args) {
  const TensorView& x = args.inputs.at(0);
  const TensorView& y = args.outputs.at(0);
  FSWAP_RETURN_IF_ERROR(check_same_elements(args, x, y));
  if (x.dtype != y.dtype) return op_error(args, "output dtype differs from the input's");
  if ((args.op == OpType::kAbs || args.op == OpType::kNeg) && x.dtype != DType::kFloat32) {
    if (x.dtype == DType::kInt64) return sign_ops<std::int64_t>(args, x, y);
    if (x.dtype == DType::kInt32) return sign_ops<std::int32_t>(args, x, y);
    if (x.dtype == DType::kInt8) return sign_ops<std::int8_t>(args, x, y);
    if (x.dtype == DType::kFloat64) return sign_ops<double>(args, x, y);
    return unsupported_dtype(args, x.dtype);
  }
  if (x.dtype != DType::kFloat32) return unsupported_dtype(args, x.dtype);
  const OpAttributes& a = args.attrs;
  switch (args.op) {
    case OpType::kAbs: map<float>(x, y, kElementGrain, [](float v) { return std::fabs(v); }); break;
    case OpType::kNeg: map<float>(x, y, kElementGrain, [](float v) { return -v; }); break;
    case OpType::kReciprocal: map<float>(x, y, kElementGrain, [](float v) { return 1.0f / v; }); break;
    case OpType::kSqrt: map<float>(x, y, kElementGrain, [](float v) { return std::sqrt(v); }); break;
    case OpType::kExp: map<float>(x, y, kMathGrain, [](float v) { return std::exp(v); }); break;
    case OpType::kLog: map<float>(x, y, kMathGrain, [](float v) { return std::log(v); }); break;
    case OpType::kFloor: map<float>(x, y, kElementGrain, [](float v) { return std::floor(v); }); break;
    case OpType::kCeil: map<float>(x, y, kElementGrain, [](float v) { return std::ceil(v); }); break;
    // nearbyint rounds half to even in the default rounding mode, as ONNX Round asks.
    case OpType::kRound: map<float>(x, y, kElementGrain, [](float v) { return std::nearbyint(v); }); break;
    case OpType::kSin: map<float>(x, y, kMathGrain, [](float v) { return std::sin(v); }); break;
    case OpType::kCos: map<float>(x, y, kMathGrain, [](float v) { return std::cos(v); }); break;
    case OpType::kErf: map<float>(x, y, kMathGrain, [](float v) { return std::erf(v); }); break;
    case OpType::kRelu: map<float>(x, y, kElementGrain, [](float v) { return v > 0 ? v : 0.0f; }); break;
    case OpType::kLeakyRelu: {
      const float alpha = a.f("alpha", 0.01f);
      map<float>(x, y, kElementGrain, [alpha](float v) { return v >= 0 ? v : alpha * v; });
      break;
    }
    case OpType::kElu: {
      const float alpha = a.f("alpha", 1.0f);
      map<float>(x, y, kMathGrain, [alpha](float v) { return v >= 0 ? v : alpha * std::expm1(v); });
      break;
    }
    case OpType::kSelu: {
      const float alpha = a.f("alpha", 1.67326319217681884765625f);
      const float gamma = a.f("gamma", 1.05070102214813232421875f);
      map<float>(x, y, kMathGrain,
                 [alpha, gamma](float v) { return v > 0 ? gamma * v : gamma * alpha * std::expm1(v); });
      break;
    }
    case OpType::kSigmoid: map<float>(x, y, kMathGrain, sigmoid); break;
    case OpType::kHardSigmoid: {
      const float alpha = a.f("alpha", 0.2f), beta = a.f("beta", 0.5f);
      map<float>(x, y, kElementGrain,
                 [alpha, beta](float v) { return std::fmax(0.0f, std::fmin(1.0f, alpha * v + beta)); });
      break;
    }
    case OpType::kHardSwish:
      map<float>(x, y, kElementGrain,
                 [](float v) { return v * std::fmax(0.0f, std::fmin(1.0f, v * (1.0f / 6.0f) + 0.5f)); });
      break;
    case OpType::kTanh: map<float>(x, y, kMathGrain, [](float v) { return std::tanh(v); }); break;
    case OpType::kSoftplus: map<float>(x, y, kMathGrain, softplus); break;
    case OpType::kSoftsign: map<float>(x, y, kElementGrain, [](float v) { return v / (1.0f + std::fabs(v)); }); break;
    case OpType::kMish: map<float>(x, y, kMathGrain, [](float v) { return v * std::tanh(softplus(v)); }); break;
    case OpType::kGelu: {
      const std::string approximate = a.s("approximate", "none");
      if (approximate == "none") {
        map<float>(x, y, kMathGrain, [](float v) { return 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752f)); });
      } else if (approximate == "tanh") {
        map<float>(x, y, kMathGrain, [](float v) {
          return 0.5f * v * (1.0f + std::tanh(0.79788456080286536f * (v + 0.044715f * v * v * v)));
        });
      } else {
        return unsupported("Gelu: approximate=\"" + approximate + "\" (expected \"none\" or \"tanh\")");
      }
      break;
    }
    default:
      return unsupported(std::string(op_name(args.op)) + " is not a unary op of the CPU tensor kernels");
  }
  return Status::ok();
}

Status not_kernel(const KernelArgs& args) {
  const TensorView& x = args.inputs.at(0);
  const TensorView& y = args.outputs.at(0);
  FSWAP_RETURN_IF_ERROR(check_same_elements(args, x, y));
  if (x.dtype != DType::kBool || y.dtype != DType::kBool) return unsupported_dtype(args, x.dtype);
  map<std::uint8_t>(x, y, kElementGrain, [](std::uint8_t v) { return static_cast<std::uint8_t>(v == 0); });
  return Status::ok();
}

Status identity_kernel(const KernelArgs& args) {
  const TensorView& x = args.inputs.at(0);
  const TensorView& y = args.outputs.at(0);
  if (x.bytes() != y.bytes() || x.dtype != y.dtype)
    return op_error(args, "output " + std::string(dtype_name(y.dtype)) + shape_to_string(y.shape) +
                              " does not hold the input " + dtype_name(x.dtype) + shape_to_string(x.shape));
  copy_unless_aliased(y, x);
  return Status::ok();
}

Status dropout_kernel(const KernelArgs& args) {
  if (const TensorView* training = optional_input(args, 2)) {
    if (training->dtype != DType::kBool || training->elements() != 1)
      return op_error(args, "training_mode must be one bool");
    if (*training->as<const std::uint8_t>() != 0)
      return unsupported("Dropout: training_mode=true (the CPU kernels are inference-only)");
  }
  FSWAP_RETURN_IF_ERROR(identity_kernel(args));
  if (const TensorView* mask = optional_output(args, 1)) {
    if (mask->dtype != DType::kBool) return op_error(args, "mask output must be bool");
    std::memset(mask->data, 1, mask->bytes());
  }
  return Status::ok();
}

// ---- Cast ----
namespace {

struct Half {
  std::uint16_t bits;
};
struct Bool {
  std::uint8_t value;
};

std::int64_t float_to_int64(double v) {
  if (std::isnan(v)) return 0;
  if (v >= 9223372036854775807.0) return std::numeric_limits<std::int64_t>::max();
  if (v <= -9223372036854775808.0) return std::numeric_limits<std::int64_t>::min();
  return static_cast<std::int64_t>(v);  // truncates toward zero
}

template <class To, class From>
To convert(From v) {
  if constexpr (std::is_same_v<From, Half>) {
    return convert<To>(half_to_float(v.bits));
  } else if constexpr (std::is_same_v<From, Bool>) {
    return convert<To>(static_cast<std::uint8_t>(v.value != 0));
  } else if constexpr (std::is_same_v<To, Bool>) {
    return Bool{static_cast<std::uint8_t>(v != From{0})};
  } else if constexpr (std::is_same_v<To, Half>) {
    return Half{float_to_half(static_cast<float>(v))};
  } else if constexpr (std::is_floating_point_v<From> && std::is_integral_v<To>) {
    return static_cast<To>(float_to_int64(static_cast<double>(v)));  // narrower types wrap (C++20)
  } else {
    return static_cast<To>(v);
  }
}

template <class To, class From>
void cast_loop(const TensorView& x, const TensorView& y) {
  const From* in = x.as<const From>();
  To* out = y.as<To>();
  parallel_range(y.elements(), kElementGrain, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) out[i] = convert<To>(in[i]);
  });
}

template <class F>
bool with_cast_type(DType d, F&& f) {
  switch (d) {
    case DType::kFloat32: f(float{}); return true;
    case DType::kFloat64: f(double{}); return true;
    case DType::kFloat16: f(Half{}); return true;
    case DType::kInt64: f(std::int64_t{}); return true;
    case DType::kInt32: f(std::int32_t{}); return true;
    case DType::kInt8: f(std::int8_t{}); return true;
    case DType::kUInt8: f(std::uint8_t{}); return true;
    case DType::kBool: f(Bool{}); return true;
  }
  return false;
}

}  // namespace

Status cast_kernel(const KernelArgs& args) {
  const TensorView& x = args.inputs.at(0);
  const TensorView& y = args.outputs.at(0);
  FSWAP_RETURN_IF_ERROR(check_same_elements(args, x, y));
  if (x.dtype == y.dtype) {
    copy_unless_aliased(y, x);
    return Status::ok();
  }
  // Aliasing is only legal for same-size types; the loop reads element i before writing it.
  bool from_known = false;
  const bool to_known = with_cast_type(y.dtype, [&](auto to_tag) {
    using To = decltype(to_tag);
    from_known = with_cast_type(x.dtype, [&](auto from_tag) {
      using From = decltype(from_tag);
      cast_loop<To, From>(x, y);
    });
  });
  if (!to_known || !from_known) return unsupported("Cast: " + std::string(dtype_name(x.dtype)) + " to " + dtype_name(y.dtype));
  return Status::ok();
}

// ---- Clip ----
namespace {

template <class T>
Status clip_typed(const KernelArgs& args, const TensorView& x, const TensorView& y) {
  T lo = std::numeric_limits<T>::lowest(), hi = std::numeric_limits<T>::max();
  if constexpr (std::is_floating_point_v<T>) {
    lo = static_cast<T>(args.attrs.f("min", static_cast<float>(lo)));
    hi = static_cast<T>(args.attrs.f("max", static_cast<float>(hi)));
  }
  for (std::size_t i = 1; i <= 2; ++i) {
    const TensorView* bound = optional_input(args, i);
    if (bound == nullptr) continue;
    if (bound->dtype != x.dtype || bound->elements() != 1)
      return op_error(args, std::string(i == 1 ? "min" : "max") + " must be one value of the input's dtype");
    (i == 1 ? lo : hi) = *bound->as<const T>();
  }
  map<T>(x, y, kElementGrain, [lo, hi](T v) { return std::min(std::max(v, lo), hi); });
  return Status::ok();
}

}  // namespace

Status clip_kernel(const KernelArgs& args) {
  const TensorView& x = args.inputs.at(0);
  const TensorView& y = args.outputs.at(0);
  FSWAP_RETURN_IF_ERROR(check_same_elements(args, x, y));
  switch (x.dtype) {
    case DType::kFloat32: return clip_typed<float>(args, x, y);
    case DType::kInt64: return clip_typed<std::int64_t>(args, x, y);
    case DType::kInt32: return clip_typed<std::int32_t>(args, x, y);
    case DType::kUInt8: return clip_typed<std::uint8_t>(args, x, y);
    default: return unsupported_dtype(args, x.dtype);
  }
}

}  // namespace fswap::tensor_ops
