// Kernel-level tests of the CPU tensor family (kernels_tensor.cc): known values from the ONNX
// operator spec, random inputs from fixed seeds against plain reference loops, broadcasting and
// axis edge cases, in-place (aliased) element-wise calls and every Cast pair.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/kernels.h"
#include "backends/op.h"
#include "core/tensor.h"

namespace fswap {
namespace {

using Attr = std::pair<const std::string, AttributeValue>;
using I64 = std::int64_t;
using Ints = std::vector<std::int64_t>;
using Floats = std::vector<float>;
using Bools = std::vector<std::uint8_t>;

template <class T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>) return DType::kFloat32;
  else if constexpr (std::is_same_v<T, double>) return DType::kFloat64;
  else if constexpr (std::is_same_v<T, std::int64_t>) return DType::kInt64;
  else if constexpr (std::is_same_v<T, std::int32_t>) return DType::kInt32;
  else if constexpr (std::is_same_v<T, std::int8_t>) return DType::kInt8;
  else if constexpr (std::is_same_v<T, std::uint16_t>) return DType::kFloat16;  // raw half bits
  else return DType::kUInt8;
}

template <class T>
Tensor make(Shape shape, const std::vector<T>& v, DType dtype = dtype_of<T>()) {
  Tensor t = Tensor::zeros(dtype, std::move(shape));
  EXPECT_EQ(static_cast<std::size_t>(t.elements()), v.size());
  EXPECT_EQ(sizeof(T), dtype_size(dtype));
  if (!v.empty()) std::memcpy(t.raw(), v.data(), t.bytes());
  return t;
}
Tensor boolean(Shape shape, const Bools& v) { return make<std::uint8_t>(std::move(shape), v, DType::kBool); }
Tensor scalar_i64(I64 v) { return make<I64>({1}, {v}); }
Tensor ints_1d(const Ints& v) { return make<I64>({static_cast<I64>(v.size())}, v); }

template <class T>
std::vector<T> values(const Tensor& t) {
  std::vector<T> v(static_cast<std::size_t>(t.elements()));
  if (!v.empty()) std::memcpy(v.data(), t.raw(), t.bytes());
  return v;
}
template <class T>
std::vector<T> values(const TensorView& t) {
  std::vector<T> v(static_cast<std::size_t>(t.elements()));
  if (!v.empty()) std::memcpy(v.data(), t.data, t.bytes());
  return v;
}

OpAttributes attrs(std::initializer_list<Attr> kv = {}) {
  OpAttributes a;
  for (const auto& p : kv) a.values.insert(p);
  return a;
}

Status run(OpType op, const OpAttributes& a, std::vector<TensorView> in, std::vector<TensorView> out) {
  CpuKernel k = cpu_tensor_kernel(op);
  if (k == nullptr) return unsupported(std::string("no tensor kernel for ") + op_name(op));
  return k(KernelArgs{op, a, std::move(in), std::move(out)});
}

Tensor run1(OpType op, const OpAttributes& a, std::vector<TensorView> in, DType dtype, Shape shape) {
  Tensor out = Tensor::zeros(dtype, std::move(shape));
  Status s = run(op, a, std::move(in), {out.view()});
  EXPECT_TRUE(s.is_ok()) << op_name(op) << ": " << s.to_string();
  return out;
}

std::vector<float> random_floats(std::size_t n, float lo, float hi, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}
template <class T>
std::vector<T> random_ints(std::size_t n, int lo, int hi, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(lo, hi);
  std::vector<T> v(n);
  for (T& x : v) x = static_cast<T>(d(rng));
  return v;
}

void expect_close(const std::vector<float>& got, const std::vector<double>& want, double rel, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i])) {
      EXPECT_TRUE(std::isnan(got[i])) << what << " at " << i;
      continue;
    }
    if (std::isinf(want[i])) {
      EXPECT_EQ(static_cast<double>(got[i]), want[i]) << what << " at " << i;
      continue;
    }
    EXPECT_NEAR(got[i], want[i], rel * std::max(1.0, std::fabs(want[i]))) << what << " at " << i;
  }
}
void expect_close(const std::vector<float>& got, const std::vector<float>& want, double rel, const std::string& what) {
  expect_close(got, std::vector<double>(want.begin(), want.end()), rel, what);
}

// Offset into `in` of output element `flat` under numpy broadcasting.
I64 broadcast_offset(const Shape& in, const Shape& out, I64 flat) {
  I64 off = 0, stride = 1;
  for (std::size_t k = 0; k < out.size(); ++k) {
    const std::size_t d = out.size() - 1 - k;
    const I64 idx = flat % out[d];
    flat /= out[d];
    if (k < in.size()) {
      const std::size_t di = in.size() - 1 - k;
      if (in[di] != 1) off += idx * stride;
      stride *= in[di];
    }
  }
  return off;
}

// ---------------------------------------------------------------------------------------------
TEST(CpuTensorKernels, TableCoversTheTensorFamily) {
  const OpType ops[] = {
      OpType::kAbs, OpType::kNeg, OpType::kReciprocal, OpType::kSqrt, OpType::kExp, OpType::kLog, OpType::kFloor,
      OpType::kCeil, OpType::kRound, OpType::kSin, OpType::kCos, OpType::kErf, OpType::kNot, OpType::kIdentity,
      OpType::kDropout, OpType::kCast, OpType::kRelu, OpType::kLeakyRelu, OpType::kPRelu, OpType::kElu,
      OpType::kSelu, OpType::kSigmoid, OpType::kHardSigmoid, OpType::kHardSwish, OpType::kTanh, OpType::kSoftplus,
      OpType::kSoftsign, OpType::kGelu, OpType::kMish, OpType::kClip, OpType::kAdd, OpType::kSub, OpType::kMul,
      OpType::kDiv, OpType::kPow, OpType::kMod, OpType::kMin, OpType::kMax, OpType::kSum, OpType::kMean,
      OpType::kEqual, OpType::kLess, OpType::kLessOrEqual, OpType::kGreater, OpType::kGreaterOrEqual, OpType::kAnd,
      OpType::kOr, OpType::kXor, OpType::kWhere, OpType::kReduceMean, OpType::kReduceSum, OpType::kReduceMax,
      OpType::kReduceMin, OpType::kReduceProd, OpType::kReduceL2, OpType::kReduceSumSquare, OpType::kArgMax,
      OpType::kArgMin, OpType::kReshape, OpType::kFlatten, OpType::kTranspose, OpType::kSqueeze, OpType::kUnsqueeze,
      OpType::kConcat, OpType::kSplit, OpType::kSlice, OpType::kGather, OpType::kGatherElements, OpType::kExpand,
      OpType::kTile, OpType::kScatterND, OpType::kTopK, OpType::kShape, OpType::kSize, OpType::kConstantOfShape,
      OpType::kConstant, OpType::kRange};
  for (OpType op : ops) EXPECT_NE(cpu_tensor_kernel(op), nullptr) << op_name(op);
  EXPECT_EQ(cpu_tensor_kernel(OpType::kConv), nullptr);
  EXPECT_EQ(cpu_tensor_kernel(OpType::kSoftmax), nullptr);
}

// ---- unary ----------------------------------------------------------------------------------
TEST(CpuTensorKernels, UnaryKnownValues) {
  auto f = [](OpType op, Floats in, const OpAttributes& a = attrs()) {
    Tensor x = make<float>({static_cast<I64>(in.size())}, in);
    return values<float>(run1(op, a, {x.view()}, DType::kFloat32, x.shape()));
  };
  EXPECT_EQ(f(OpType::kAbs, {-2, 0, 3.5f}), (Floats{2, 0, 3.5f}));
  EXPECT_EQ(f(OpType::kNeg, {-2, 0, 3.5f}), (Floats{2, -0.0f, -3.5f}));
  EXPECT_EQ(f(OpType::kReciprocal, {-2, 4}), (Floats{-0.5f, 0.25f}));
  EXPECT_EQ(f(OpType::kSqrt, {4, 0, 2.25f}), (Floats{2, 0, 1.5f}));
  EXPECT_EQ(f(OpType::kFloor, {-1.5f, 1.2f, 2}), (Floats{-2, 1, 2}));
  EXPECT_EQ(f(OpType::kCeil, {-1.5f, 1.2f, 2}), (Floats{-1, 2, 2}));
  // Round: half to even.
  EXPECT_EQ(f(OpType::kRound, {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 2.3f, 2.7f, -2.7f}),
            (Floats{0, 2, 2, -0.0f, -2, -2, 2, 3, -3}));
  expect_close(f(OpType::kExp, {0, 1}), Floats{1, 2.7182817f}, 1e-6, "Exp");
  expect_close(f(OpType::kLog, {1, 2.7182817f}), Floats{0, 1}, 1e-6, "Log");
  expect_close(f(OpType::kErf, {0, 1, -1}), Floats{0, 0.84270079f, -0.84270079f}, 1e-6, "Erf");
  expect_close(f(OpType::kRelu, {-1, 0, 2}), Floats{0, 0, 2}, 0, "Relu");
  expect_close(f(OpType::kLeakyRelu, {-1, 2}), Floats{-0.01f, 2}, 1e-7, "LeakyRelu default");
  expect_close(f(OpType::kLeakyRelu, {-1, 2}, attrs({{"alpha", 0.1f}})), Floats{-0.1f, 2}, 1e-7, "LeakyRelu");
  expect_close(f(OpType::kHardSigmoid, {-5, 0, 1, 5}), Floats{0, 0.5f, 0.7f, 1}, 1e-6, "HardSigmoid");
  expect_close(f(OpType::kHardSwish, {-4, 0, 1, 4}), Floats{0, 0, 1.0f * (1 / 6.0f + 0.5f), 4}, 1e-6, "HardSwish");
  expect_close(f(OpType::kSoftsign, {-1, 3}), Floats{-0.5f, 0.75f}, 1e-6, "Softsign");
  expect_close(f(OpType::kSelu, {-1, 0, 1}), Floats{-1.1113307f, 0, 1.050701f}, 1e-6, "Selu");
  expect_close(f(OpType::kElu, {-1, 1}, attrs({{"alpha", 2.0f}})), Floats{2 * (std::exp(-1.0f) - 1), 1}, 1e-6, "Elu");

  Tensor i64 = make<I64>({3}, {-5, 0, 7});
  EXPECT_EQ(values<I64>(run1(OpType::kAbs, attrs(), {i64.view()}, DType::kInt64, {3})), (Ints{5, 0, 7}));
  EXPECT_EQ(values<I64>(run1(OpType::kNeg, attrs(), {i64.view()}, DType::kInt64, {3})), (Ints{5, 0, -7}));
  Tensor i32 = make<std::int32_t>({2}, {-3, 4});
  EXPECT_EQ(values<std::int32_t>(run1(OpType::kNeg, attrs(), {i32.view()}, DType::kInt32, {2})),
            (std::vector<std::int32_t>{3, -4}));
  Tensor b = boolean({3}, {0, 1, 0});
  EXPECT_EQ(values<std::uint8_t>(run1(OpType::kNot, attrs(), {b.view()}, DType::kBool, {3})), (Bools{1, 0, 1}));
}

struct UnaryCase {
  OpType op;
  OpAttributes a;
  std::function<double(double)> ref;
  float lo, hi;
  double tol;
};

TEST(CpuTensorKernels, UnaryRandomAgainstReferenceAndInPlace) {
  auto softplus = [](double v) { return std::log1p(std::exp(v)); };
  const std::vector<UnaryCase> cases = {
      {OpType::kAbs, attrs(), [](double v) { return std::fabs(v); }, -5, 5, 1e-6},
      {OpType::kNeg, attrs(), [](double v) { return -v; }, -5, 5, 1e-6},
      {OpType::kReciprocal, attrs(), [](double v) { return 1 / v; }, 0.5f, 5, 1e-6},
      {OpType::kSqrt, attrs(), [](double v) { return std::sqrt(v); }, 0, 9, 1e-6},
      {OpType::kExp, attrs(), [](double v) { return std::exp(v); }, -5, 5, 1e-4},
      {OpType::kLog, attrs(), [](double v) { return std::log(v); }, 0.01f, 9, 1e-4},
      {OpType::kFloor, attrs(), [](double v) { return std::floor(v); }, -5, 5, 0},
      {OpType::kCeil, attrs(), [](double v) { return std::ceil(v); }, -5, 5, 0},
      {OpType::kSin, attrs(), [](double v) { return std::sin(v); }, -7, 7, 1e-4},
      {OpType::kCos, attrs(), [](double v) { return std::cos(v); }, -7, 7, 1e-4},
      {OpType::kErf, attrs(), [](double v) { return std::erf(v); }, -3, 3, 1e-4},
      {OpType::kRelu, attrs(), [](double v) { return v > 0 ? v : 0; }, -5, 5, 0},
      {OpType::kLeakyRelu, attrs({{"alpha", 0.2f}}), [](double v) { return v >= 0 ? v : 0.2 * v; }, -5, 5, 1e-6},
      {OpType::kElu, attrs(), [](double v) { return v >= 0 ? v : std::expm1(v); }, -5, 5, 1e-4},
      {OpType::kSelu, attrs(),
       [](double v) { return 1.0507009873554805 * (v > 0 ? v : 1.6732632423543772 * std::expm1(v)); }, -5, 5, 1e-4},
      {OpType::kSigmoid, attrs(), [](double v) { return 1 / (1 + std::exp(-v)); }, -10, 10, 1e-4},
      {OpType::kHardSigmoid, attrs({{"alpha", 0.3f}, {"beta", 0.4f}}),
       [](double v) { return std::clamp(0.3 * v + 0.4, 0.0, 1.0); }, -5, 5, 1e-6},
      {OpType::kHardSwish, attrs(), [](double v) { return v * std::clamp(v / 6 + 0.5, 0.0, 1.0); }, -5, 5, 1e-6},
      {OpType::kTanh, attrs(), [](double v) { return std::tanh(v); }, -5, 5, 1e-4},
      {OpType::kSoftplus, attrs(), softplus, -20, 20, 1e-4},
      {OpType::kSoftsign, attrs(), [](double v) { return v / (1 + std::fabs(v)); }, -5, 5, 1e-6},
      {OpType::kGelu, attrs(), [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); }, -5, 5, 1e-4},
      {OpType::kGelu, attrs({{"approximate", std::string("tanh")}}),
       [](double v) { return 0.5 * v * (1 + std::tanh(std::sqrt(2 / std::numbers::pi) * (v + 0.044715 * v * v * v))); }, -5, 5,
       1e-4},
      {OpType::kMish, attrs(), [&](double v) { return v * std::tanh(softplus(v)); }, -10, 10, 1e-4},
  };
  unsigned seed = 1;
  for (const UnaryCase& c : cases) {
    // Large enough to take the parallel path.
    const std::vector<float> in = random_floats(70007, c.lo, c.hi, seed++);
    std::vector<double> want(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) want[i] = c.ref(in[i]);
    Tensor x = make<float>({7, 10001}, in);
    Tensor y = run1(c.op, c.a, {x.view()}, DType::kFloat32, x.shape());
    expect_close(values<float>(y), want, c.tol, std::string(op_name(c.op)));
    // In place: the output view is the input view.
    ASSERT_TRUE(run(c.op, c.a, {x.view()}, {x.view()}).is_ok());
    expect_close(values<float>(x), want, c.tol, std::string(op_name(c.op)) + " in place");
  }
}

TEST(CpuTensorKernels, UnaryRejectsUnsupportedValues) {
  Tensor x = make<I64>({1}, {1});
  Status s = run(OpType::kExp, attrs(), {x.view()}, {Tensor::zeros(DType::kInt64, {1}).view()});
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("Exp"), std::string::npos);
  EXPECT_NE(s.message().find("int64"), std::string::npos);
  Tensor f = make<float>({1}, {1});
  Tensor out = Tensor::zeros(DType::kFloat32, {1});
  s = run(OpType::kGelu, attrs({{"approximate", std::string("fast")}}), {f.view()}, {out.view()});
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("fast"), std::string::npos);
}

TEST(CpuTensorKernels, PReluBroadcastsTheSlope) {
  const std::vector<float> in = random_floats(2 * 3 * 4 * 5, -3, 3, 7);
  Tensor x = make<float>({2, 3, 4, 5}, in);
  Tensor slope = make<float>({3, 1, 1}, {0.1f, 0.2f, 0.3f});
  std::vector<double> want(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    const double s = 0.1 * static_cast<double>((i / 20) % 3 + 1);
    want[i] = in[i] < 0 ? in[i] * static_cast<float>(s) : in[i];
  }
  expect_close(values<float>(run1(OpType::kPRelu, attrs(), {x.view(), slope.view()}, DType::kFloat32, x.shape())),
               want, 1e-6, "PRelu");
  ASSERT_TRUE(run(OpType::kPRelu, attrs(), {x.view(), slope.view()}, {x.view()}).is_ok());
  expect_close(values<float>(x), want, 1e-6, "PRelu in place");
}

TEST(CpuTensorKernels, ClipFromInputsOrAttributes) {
  Tensor x = make<float>({5}, {-3, -1, 0, 1, 3});
  Tensor lo = make<float>({}, {-1.5f});
  Tensor hi = make<float>({}, {2});
  EXPECT_EQ(values<float>(run1(OpType::kClip, attrs(), {x.view(), lo.view(), hi.view()}, DType::kFloat32, {5})),
            (Floats{-1.5f, -1, 0, 1, 2}));
  // Absent min (data == nullptr): only the max applies.
  TensorView absent{DType::kFloat32, {}, nullptr};
  EXPECT_EQ(values<float>(run1(OpType::kClip, attrs(), {x.view(), absent, hi.view()}, DType::kFloat32, {5})),
            (Floats{-3, -1, 0, 1, 2}));
  EXPECT_EQ(values<float>(run1(OpType::kClip, attrs(), {x.view(), lo.view()}, DType::kFloat32, {5})),
            (Floats{-1.5f, -1, 0, 1, 3}));
  EXPECT_EQ(values<float>(run1(OpType::kClip, attrs(), {x.view()}, DType::kFloat32, {5})), (Floats{-3, -1, 0, 1, 3}));
  // Opset 6: attributes.
  EXPECT_EQ(values<float>(run1(OpType::kClip, attrs({{"min", 0.0f}, {"max", 1.0f}}), {x.view()}, DType::kFloat32, {5})),
            (Floats{0, 0, 0, 1, 1}));
  Tensor xi = make<I64>({3}, {-9, 4, 9});
  Tensor li = make<I64>({}, {0});
  Tensor hi_i = make<I64>({}, {5});
  EXPECT_EQ(values<I64>(run1(OpType::kClip, attrs(), {xi.view(), li.view(), hi_i.view()}, DType::kInt64, {3})),
            (Ints{0, 4, 5}));
  ASSERT_TRUE(run(OpType::kClip, attrs(), {x.view(), lo.view(), hi.view()}, {x.view()}).is_ok());
  EXPECT_EQ(values<float>(x), (Floats{-1.5f, -1, 0, 1, 2}));
}

TEST(CpuTensorKernels, IdentityDropoutAndReshapesCopyUnlessAliased) {
  Tensor x = make<I64>({2, 3}, {1, 2, 3, 4, 5, 6});
  for (OpType op : {OpType::kIdentity, OpType::kReshape, OpType::kFlatten, OpType::kSqueeze, OpType::kUnsqueeze}) {
    Tensor y = run1(op, attrs(), {x.view()}, DType::kInt64, op == OpType::kIdentity ? Shape{2, 3} : Shape{3, 1, 2});
    EXPECT_EQ(values<I64>(y), (Ints{1, 2, 3, 4, 5, 6})) << op_name(op);
    EXPECT_TRUE(run(op, attrs(), {x.view()}, {x.view()}).is_ok());
  }
  Tensor wrong = Tensor::zeros(DType::kInt64, {5});
  EXPECT_EQ(run(OpType::kReshape, attrs(), {x.view()}, {wrong.view()}).code(), StatusCode::kInvalidInput);

  Tensor f = make<float>({3}, {1, 2, 3});
  Tensor y = Tensor::zeros(DType::kFloat32, {3});
  Tensor mask = Tensor::zeros(DType::kBool, {3});
  ASSERT_TRUE(run(OpType::kDropout, attrs({{"ratio", 0.5f}}), {f.view()}, {y.view(), mask.view()}).is_ok());
  EXPECT_EQ(values<float>(y), (Floats{1, 2, 3}));
  EXPECT_EQ(values<std::uint8_t>(mask), (Bools{1, 1, 1}));
  Tensor ratio = make<float>({}, {0.3f});
  Tensor training = boolean({}, {0});
  ASSERT_TRUE(run(OpType::kDropout, attrs(), {f.view(), ratio.view(), training.view()}, {f.view()}).is_ok());
  EXPECT_EQ(values<float>(f), (Floats{1, 2, 3}));
  Tensor train_on = boolean({}, {1});
  EXPECT_EQ(run(OpType::kDropout, attrs(), {f.view(), ratio.view(), train_on.view()}, {y.view()}).code(),
            StatusCode::kUnsupported);
}

// ---- Cast -----------------------------------------------------------------------------------
// A dtype-erased element read as double and written from double with ONNX's rules.
double read_as_double(const Tensor& t, std::size_t i) {
  const auto* p = static_cast<const std::byte*>(t.raw()) + i * dtype_size(t.dtype());
  switch (t.dtype()) {
    case DType::kFloat32: { float v; std::memcpy(&v, p, 4); return v; }
    case DType::kFloat64: { double v; std::memcpy(&v, p, 8); return v; }
    case DType::kInt64: { I64 v; std::memcpy(&v, p, 8); return static_cast<double>(v); }
    case DType::kInt32: { std::int32_t v; std::memcpy(&v, p, 4); return v; }
    case DType::kInt8: { std::int8_t v; std::memcpy(&v, p, 1); return v; }
    case DType::kUInt8: { std::uint8_t v; std::memcpy(&v, p, 1); return v; }
    case DType::kBool: { std::uint8_t v; std::memcpy(&v, p, 1); return v; }
    case DType::kFloat16: {
      std::uint16_t h;
      std::memcpy(&h, p, 2);
      // Only values exact in half are used here: decode by hand.
      const int e = (h >> 10) & 31;
      const int m = h & 1023;
      const double mag = e == 0 ? m * std::ldexp(1.0, -24) : std::ldexp(1.0 + m / 1024.0, e - 15);
      return (h & 0x8000) ? -mag : mag;
    }
  }
  return 0;
}

Tensor from_doubles(DType d, const std::vector<double>& v) {
  Tensor t = Tensor::zeros(d, {static_cast<I64>(v.size())});
  auto* p = static_cast<std::byte*>(t.raw());
  for (std::size_t i = 0; i < v.size(); ++i) {
    std::byte* q = p + i * dtype_size(d);
    switch (d) {
      case DType::kFloat32: { float x = static_cast<float>(v[i]); std::memcpy(q, &x, 4); break; }
      case DType::kFloat64: std::memcpy(q, &v[i], 8); break;
      case DType::kInt64: { I64 x = static_cast<I64>(v[i]); std::memcpy(q, &x, 8); break; }
      case DType::kInt32: { std::int32_t x = static_cast<std::int32_t>(v[i]); std::memcpy(q, &x, 4); break; }
      case DType::kInt8: { std::int8_t x = static_cast<std::int8_t>(v[i]); std::memcpy(q, &x, 1); break; }
      case DType::kUInt8: { std::uint8_t x = static_cast<std::uint8_t>(v[i]); std::memcpy(q, &x, 1); break; }
      case DType::kBool: { std::uint8_t x = v[i] != 0; std::memcpy(q, &x, 1); break; }
      case DType::kFloat16: {
        // Exact halves only: sign, exponent and 10 mantissa bits.
        const double a = std::fabs(v[i]);
        std::uint16_t h = 0;
        if (a != 0) {
          int e;
          const double fr = std::frexp(a, &e);  // a = fr * 2^e, fr in [0.5, 1)
          h = static_cast<std::uint16_t>(((e - 1 + 15) << 10) | static_cast<int>((fr * 2 - 1) * 1024));
        }
        if (v[i] < 0) h |= 0x8000;
        std::memcpy(q, &h, 2);
        break;
      }
    }
  }
  return t;
}

TEST(CpuTensorKernels, CastEveryPair) {
  const DType all[] = {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kInt64,
                       DType::kInt32,   DType::kInt8,    DType::kUInt8,   DType::kBool};
  auto is_float = [](DType d) { return d == DType::kFloat32 || d == DType::kFloat64 || d == DType::kFloat16; };
  auto source_values = [&](DType d) -> std::vector<double> {
    if (is_float(d)) return {0, 1, -1, 2.5, -3.75, 100.25, 0.5, -0.75, 120};
    if (d == DType::kUInt8) return {0, 1, 7, 100, 200, 255};
    if (d == DType::kBool) return {0, 1, 1, 0};
    return {0, 1, -1, 7, -100, 100, 127, -128};
  };
  auto wrap = [](double v, DType d) -> double {
    const I64 t = static_cast<I64>(std::trunc(v));  // float → int truncates toward zero
    switch (d) {
      case DType::kInt32: return static_cast<std::int32_t>(t);
      case DType::kInt8: return static_cast<std::int8_t>(t);
      case DType::kUInt8: return static_cast<std::uint8_t>(t);
      default: return static_cast<double>(t);
    }
  };
  for (DType from : all) {
    for (DType to : all) {
      const std::vector<double> src = source_values(from);
      Tensor x = from_doubles(from, src);
      Tensor y = run1(OpType::kCast, attrs(), {x.view()}, to, x.shape());
      for (std::size_t i = 0; i < src.size(); ++i) {
        const double v = read_as_double(x, i);
        const double want = to == DType::kBool ? (v != 0) : is_float(to) ? v : wrap(v, to);
        EXPECT_EQ(read_as_double(y, i), want)
            << "Cast " << dtype_name(from) << " → " << dtype_name(to) << " of " << v;
      }
    }
  }
}

TEST(CpuTensorKernels, CastFloatEdgeCases) {
  // float → int truncates toward zero; NaN → 0; far out of range saturates for int64.
  Tensor f = make<float>({6}, {2.9f, -2.9f, std::nanf(""), 1e30f, -1e30f, -0.5f});
  EXPECT_EQ(values<I64>(run1(OpType::kCast, attrs(), {f.view()}, DType::kInt64, {6})),
            (Ints{2, -2, 0, std::numeric_limits<I64>::max(), std::numeric_limits<I64>::min(), 0}));
  EXPECT_EQ(values<std::uint8_t>(run1(OpType::kCast, attrs(), {f.view()}, DType::kBool, {6})),
            (Bools{1, 1, 1, 1, 1, 1}));
  // float32 → float16: round to nearest even, overflow to infinity, subnormals, NaN, -0.
  const float one_tie = 1.0f + std::ldexp(1.0f, -11);        // halfway between 1 and next half
  const float above_tie = 1.0f + 3 * std::ldexp(1.0f, -11);  // halfway, odd below: rounds up
  Tensor g = make<float>({9}, {one_tie, above_tie, 65504, 65519, 65520, std::ldexp(1.0f, -24), std::ldexp(1.0f, -25),
                               -0.0f, std::numeric_limits<float>::infinity()});
  EXPECT_EQ(values<std::uint16_t>(run1(OpType::kCast, attrs(), {g.view()}, DType::kFloat16, {9})),
            (std::vector<std::uint16_t>{0x3c00, 0x3c02, 0x7bff, 0x7bff, 0x7c00, 0x0001, 0x0000, 0x8000, 0x7c00}));
  Tensor nan = make<float>({1}, {std::nanf("")});
  const std::uint16_t hn = values<std::uint16_t>(run1(OpType::kCast, attrs(), {nan.view()}, DType::kFloat16, {1}))[0];
  EXPECT_EQ(hn & 0x7c00, 0x7c00);
  EXPECT_NE(hn & 0x3ff, 0);
  // Every half round-trips through float32 exactly (NaNs stay NaN).
  std::vector<std::uint16_t> bits(65536);
  for (std::size_t i = 0; i < bits.size(); ++i) bits[i] = static_cast<std::uint16_t>(i);
  Tensor h = make<std::uint16_t>({65536}, bits);
  Tensor as_float = run1(OpType::kCast, attrs(), {h.view()}, DType::kFloat32, {65536});
  Tensor back = run1(OpType::kCast, attrs(), {as_float.view()}, DType::kFloat16, {65536});
  const std::vector<std::uint16_t> got = values<std::uint16_t>(back);
  const std::vector<float> fl = values<float>(as_float);
  for (std::size_t i = 0; i < bits.size(); ++i) {
    const bool is_nan = (i & 0x7c00) == 0x7c00 && (i & 0x3ff) != 0;
    if (is_nan) {
      EXPECT_TRUE(std::isnan(fl[i])) << i;
    } else {
      ASSERT_EQ(got[i], bits[i]) << "half " << i;
    }
  }
  EXPECT_EQ(fl[0x3c00], 1.0f);
  EXPECT_EQ(fl[0x0001], std::ldexp(1.0f, -24));
  EXPECT_EQ(fl[0xfbff], -65504.0f);
}

// ---- binary ---------------------------------------------------------------------------------
template <class T, class R = T>
std::vector<R> binary(OpType op, const Tensor& a, const Tensor& b, Shape out_shape, const OpAttributes& at = attrs()) {
  // uint8 results are the bool outputs of comparisons and logic.
  const DType out_dtype = std::is_same_v<R, std::uint8_t> ? DType::kBool : dtype_of<R>();
  return values<R>(run1(op, at, {a.view(), b.view()}, out_dtype, std::move(out_shape)));
}

TEST(CpuTensorKernels, BinaryKnownValues) {
  Tensor a = make<float>({4}, {1, -2, 3, 4});
  Tensor b = make<float>({4}, {2, 2, -1, 0.5f});
  EXPECT_EQ(binary<float>(OpType::kAdd, a, b, {4}), (Floats{3, 0, 2, 4.5f}));
  EXPECT_EQ(binary<float>(OpType::kSub, a, b, {4}), (Floats{-1, -4, 4, 3.5f}));
  EXPECT_EQ(binary<float>(OpType::kMul, a, b, {4}), (Floats{2, -4, -3, 2}));
  EXPECT_EQ(binary<float>(OpType::kDiv, a, b, {4}), (Floats{0.5f, -1, -3, 8}));
  EXPECT_EQ(binary<float>(OpType::kPow, a, b, {4}), (Floats{1, 4, 1.0f / 3, 2}));
  Tensor e = make<I64>({}, {2});
  EXPECT_EQ(binary<float>(OpType::kPow, a, e, {4}), (Floats{1, 4, 9, 16}));
  Tensor e3 = make<std::int32_t>({1}, {3});
  EXPECT_EQ(binary<float>(OpType::kPow, a, e3, {4}), (Floats{1, -8, 27, 64}));
  Tensor half = make<float>({}, {0.5f});
  Tensor sq = make<float>({3}, {4, 9, 2.25f});
  EXPECT_EQ(binary<float>(OpType::kPow, sq, half, {3}), (Floats{2, 3, 1.5f}));

  Tensor ia = make<I64>({4}, {7, -7, 7, -7});
  Tensor ib = make<I64>({4}, {2, 2, -2, -2});
  EXPECT_EQ(binary<I64>(OpType::kDiv, ia, ib, {4}), (Ints{3, -3, -3, 3}));  // truncating
  Tensor ma = make<I64>({4}, {-7, 7, -7, 7});
  Tensor mb = make<I64>({4}, {3, -3, -3, 3});
  EXPECT_EQ(binary<I64>(OpType::kMod, ma, mb, {4}), (Ints{2, -2, -1, 1}));  // sign of the divisor
  EXPECT_EQ(binary<I64>(OpType::kMod, ma, mb, {4}, attrs({{"fmod", I64{1}}})), (Ints{-1, 1, -1, 1}));
  Tensor fa = make<float>({3}, {-4.3f, 7.2f, 5.0f});
  Tensor fb = make<float>({3}, {2.1f, -3.4f, 3.5f});
  expect_close(binary<float>(OpType::kMod, fa, fb, {3}, attrs({{"fmod", I64{1}}})),
               Floats{std::fmod(-4.3f, 2.1f), std::fmod(7.2f, -3.4f), 1.5f}, 1e-6, "fmod");
  expect_close(binary<float>(OpType::kMod, fa, fb, {3}),
               Floats{std::fmod(-4.3f, 2.1f) + 2.1f, std::fmod(7.2f, -3.4f) - 3.4f, 1.5f}, 1e-6, "mod");
  Tensor ipow_b = make<I64>({4}, {0, 1, 2, 3});
  Tensor ipow_a = make<I64>({4}, {5, -3, -3, 2});
  EXPECT_EQ(binary<I64>(OpType::kPow, ipow_a, ipow_b, {4}), (Ints{1, -3, 9, 8}));
  Tensor i32a = make<std::int32_t>({2}, {5, -9});
  Tensor i32b = make<std::int32_t>({2}, {2, 4});
  EXPECT_EQ((binary<std::int32_t>(OpType::kDiv, i32a, i32b, {2})), (std::vector<std::int32_t>{2, -2}));
  EXPECT_EQ((binary<std::int32_t>(OpType::kSub, i32a, i32b, {2})), (std::vector<std::int32_t>{3, -13}));

  using B = std::uint8_t;
  EXPECT_EQ((binary<float, B>(OpType::kEqual, a, b, {4})), (Bools{0, 0, 0, 0}));
  EXPECT_EQ((binary<float, B>(OpType::kLess, a, b, {4})), (Bools{1, 1, 0, 0}));
  EXPECT_EQ((binary<float, B>(OpType::kLessOrEqual, a, make<float>({}, {3}), {4})), (Bools{1, 1, 1, 0}));
  EXPECT_EQ((binary<float, B>(OpType::kGreater, a, b, {4})), (Bools{0, 0, 1, 1}));
  EXPECT_EQ((binary<float, B>(OpType::kGreaterOrEqual, a, make<float>({}, {3}), {4})), (Bools{0, 0, 1, 1}));
  EXPECT_EQ((binary<I64, B>(OpType::kEqual, ia, make<I64>({1}, {7}), {4})), (Bools{1, 0, 1, 0}));
  Tensor p = boolean({4}, {0, 0, 1, 1});
  Tensor q = boolean({4}, {0, 1, 0, 1});
  EXPECT_EQ((binary<B, B>(OpType::kAnd, p, q, {4})), (Bools{0, 0, 0, 1}));
  EXPECT_EQ((binary<B, B>(OpType::kOr, p, q, {4})), (Bools{0, 1, 1, 1}));
  EXPECT_EQ((binary<B, B>(OpType::kXor, p, q, {4})), (Bools{0, 1, 1, 0}));
  EXPECT_EQ((binary<B, B>(OpType::kEqual, p, q, {4})), (Bools{1, 0, 0, 1}));
}

TEST(CpuTensorKernels, BinaryBroadcastingEdgeCases) {
  // Scalar (rank 0) on either side.
  Tensor s = make<float>({}, {10});
  Tensor v = make<float>({2, 2}, {1, 2, 3, 4});
  EXPECT_EQ(binary<float>(OpType::kSub, s, v, {2, 2}), (Floats{9, 8, 7, 6}));
  EXPECT_EQ(binary<float>(OpType::kSub, v, s, {2, 2}), (Floats{-9, -8, -7, -6}));
  EXPECT_EQ(binary<float>(OpType::kAdd, s, s, {}), (Floats{20}));
  // Size-1 dims on both sides: [3,1] - [1,4] → [3,4].
  Tensor col = make<float>({3, 1}, {100, 200, 300});
  Tensor row = make<float>({1, 4}, {1, 2, 3, 4});
  EXPECT_EQ(binary<float>(OpType::kSub, col, row, {3, 4}),
            (Floats{99, 98, 97, 96, 199, 198, 197, 196, 299, 298, 297, 296}));
  // Rank mismatch: [2,3] + [3].
  Tensor m = make<float>({2, 3}, {0, 1, 2, 3, 4, 5});
  Tensor r = make<float>({3}, {10, 20, 30});
  EXPECT_EQ(binary<float>(OpType::kAdd, m, r, {2, 3}), (Floats{10, 21, 32, 13, 24, 35}));
  EXPECT_EQ(binary<float>(OpType::kAdd, r, m, {2, 3}), (Floats{10, 21, 32, 13, 24, 35}));
  // Incompatible shapes are an error, not a crash.
  Tensor bad = make<float>({2}, {1, 2});
  Tensor out = Tensor::zeros(DType::kFloat32, {2, 3});
  EXPECT_EQ(run(OpType::kAdd, attrs(), {m.view(), bad.view()}, {out.view()}).code(), StatusCode::kInvalidInput);
  // Empty tensors.
  Tensor e = Tensor::zeros(DType::kFloat32, {0, 3});
  EXPECT_TRUE(binary<float>(OpType::kMul, e, r, {0, 3}).empty());
}

TEST(CpuTensorKernels, BinaryRandomBroadcastAgainstReference) {
  struct Shapes {
    Shape a, b, out;
  };
  const std::vector<Shapes> shapes = {
      {{64, 1100}, {64, 1100}, {64, 1100}},             // same shape, parallel
      {{2, 16, 40, 40}, {1, 16, 1, 1}, {2, 16, 40, 40}}, // per-channel
      {{2, 16, 40, 40}, {40}, {2, 16, 40, 40}},          // last axis, rank mismatch
      {{5, 1, 7}, {1, 6, 1}, {5, 6, 7}},                 // size-1 on both sides
      {{3, 1, 4, 1}, {2, 1, 5}, {3, 2, 4, 5}},
      {{1}, {9, 8, 7}, {9, 8, 7}},
      {{9, 8, 7}, {}, {9, 8, 7}},
  };
  const std::vector<std::pair<OpType, std::function<double(float, float)>>> ops = {
      {OpType::kAdd, [](float x, float y) { return x + y; }},
      {OpType::kSub, [](float x, float y) { return x - y; }},
      {OpType::kMul, [](float x, float y) { return x * y; }},
      {OpType::kDiv, [](float x, float y) { return x / y; }},
      {OpType::kPow, [](float x, float y) { return std::pow(x, y); }},
      {OpType::kMax, [](float x, float y) { return std::max(x, y); }},
      {OpType::kMin, [](float x, float y) { return std::min(x, y); }},
  };
  unsigned seed = 100;
  for (const Shapes& sh : shapes) {
    const std::vector<float> av = random_floats(static_cast<std::size_t>(shape_elements(sh.a)), 0.5f, 3, seed++);
    const std::vector<float> bv = random_floats(static_cast<std::size_t>(shape_elements(sh.b)), 0.5f, 3, seed++);
    Tensor a = make<float>(sh.a, av);
    Tensor b = make<float>(sh.b, bv);
    const I64 n = shape_elements(sh.out);
    for (const auto& [op, ref] : ops) {
      std::vector<double> want(static_cast<std::size_t>(n));
      for (I64 i = 0; i < n; ++i)
        want[i] = ref(av[broadcast_offset(sh.a, sh.out, i)], bv[broadcast_offset(sh.b, sh.out, i)]);
      const std::string what = std::string(op_name(op)) + " " + shape_to_string(sh.a) + shape_to_string(sh.b);
      expect_close(binary<float>(op, a, b, sh.out), want, op == OpType::kPow ? 1e-4 : 1e-6, what);
      if (sh.a == sh.out) {  // in place on input 0
        Tensor a2 = make<float>(sh.a, av);
        ASSERT_TRUE(run(op, attrs(), {a2.view(), b.view()}, {a2.view()}).is_ok());
        expect_close(values<float>(a2), want, op == OpType::kPow ? 1e-4 : 1e-6, what + " in place");
      }
    }
    // Comparisons and integers on the same shapes.
    std::vector<std::uint8_t> want_less(static_cast<std::size_t>(n));
    for (I64 i = 0; i < n; ++i)
      want_less[i] = av[broadcast_offset(sh.a, sh.out, i)] < bv[broadcast_offset(sh.b, sh.out, i)];
    EXPECT_EQ((binary<float, std::uint8_t>(OpType::kLess, a, b, sh.out)), want_less);
    const std::vector<I64> ai = random_ints<I64>(av.size(), -50, 50, seed++);
    std::vector<I64> bi = random_ints<I64>(bv.size(), 1, 9, seed++);
    Tensor ta = make<I64>(sh.a, ai);
    Tensor tb = make<I64>(sh.b, bi);
    std::vector<I64> want_div(static_cast<std::size_t>(n)), want_mod(static_cast<std::size_t>(n));
    for (I64 i = 0; i < n; ++i) {
      const I64 x = ai[broadcast_offset(sh.a, sh.out, i)], y = bi[broadcast_offset(sh.b, sh.out, i)];
      want_div[i] = x / y;
      want_mod[i] = ((x % y) + y) % y;
    }
    EXPECT_EQ(binary<I64>(OpType::kDiv, ta, tb, sh.out), want_div);
    EXPECT_EQ(binary<I64>(OpType::kMod, ta, tb, sh.out), want_mod);
  }
}

TEST(CpuTensorKernels, VariadicSumMeanMinMax) {
  Tensor a = make<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = make<float>({3}, {10, 0, -10});
  Tensor c = make<float>({2, 1}, {100, -100});
  auto run_var = [&](OpType op, std::vector<TensorView> in) {
    return values<float>(run1(op, attrs(), std::move(in), DType::kFloat32, {2, 3}));
  };
  EXPECT_EQ(run_var(OpType::kSum, {a.view(), b.view(), c.view()}), (Floats{111, 102, 93, -86, -95, -104}));
  expect_close(run_var(OpType::kMean, {a.view(), b.view(), c.view()}),
               Floats{37, 34, 31, -86 / 3.0f, -95 / 3.0f, -104 / 3.0f}, 1e-6, "Mean");
  EXPECT_EQ(run_var(OpType::kMax, {a.view(), b.view(), c.view()}), (Floats{100, 100, 100, 10, 5, 6}));
  EXPECT_EQ(run_var(OpType::kMin, {a.view(), b.view(), c.view()}), (Floats{1, 0, -10, -100, -100, -100}));
  EXPECT_EQ(run_var(OpType::kSum, {a.view()}), (Floats{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(run_var(OpType::kMean, {a.view(), a.view()}), (Floats{1, 2, 3, 4, 5, 6}));
  Tensor ia = make<I64>({3}, {1, 9, 5});
  Tensor ib = make<I64>({3}, {4, 2, 5});
  EXPECT_EQ(values<I64>(run1(OpType::kMax, attrs(), {ia.view(), ib.view()}, DType::kInt64, {3})), (Ints{4, 9, 5}));
  EXPECT_EQ(values<I64>(run1(OpType::kMin, attrs(), {ia.view(), ib.view()}, DType::kInt64, {3})), (Ints{1, 2, 5}));
  // In place on input 0.
  ASSERT_TRUE(run(OpType::kSum, attrs(), {a.view(), b.view(), c.view()}, {a.view()}).is_ok());
  EXPECT_EQ(values<float>(a), (Floats{111, 102, 93, -86, -95, -104}));
}

TEST(CpuTensorKernels, WhereBroadcastsAllThree) {
  Tensor cond = boolean({2, 1}, {1, 0});
  Tensor x = make<float>({3}, {1, 2, 3});
  Tensor y = make<float>({}, {-1});
  EXPECT_EQ(values<float>(run1(OpType::kWhere, attrs(), {cond.view(), x.view(), y.view()}, DType::kFloat32, {2, 3})),
            (Floats{1, 2, 3, -1, -1, -1}));
  Tensor c2 = boolean({2, 2}, {1, 0, 1, 1});
  Tensor xi = make<I64>({2, 2}, {1, 2, 3, 4});
  Tensor yi = make<I64>({2, 2}, {9, 8, 7, 6});
  EXPECT_EQ(values<I64>(run1(OpType::kWhere, attrs(), {c2.view(), xi.view(), yi.view()}, DType::kInt64, {2, 2})),
            (Ints{1, 8, 3, 4}));
  Tensor xb = boolean({2, 2}, {1, 1, 0, 0});
  Tensor yb = boolean({2}, {0, 1});
  EXPECT_EQ(values<std::uint8_t>(run1(OpType::kWhere, attrs(), {c2.view(), xb.view(), yb.view()}, DType::kBool, {2, 2})),
            (Bools{1, 1, 0, 0}));
  // Random, large, with every operand broadcast differently.
  const Shape cs{4, 1, 300}, xs{1, 50, 300}, ys{4, 50, 1}, os{4, 50, 300};
  const std::vector<std::uint8_t> cv = random_ints<std::uint8_t>(1200, 0, 1, 3);
  const std::vector<float> xv = random_floats(15000, -1, 1, 4), yv = random_floats(200, -1, 1, 5);
  Tensor tc = boolean(cs, cv);
  Tensor tx = make<float>(xs, xv);
  Tensor ty = make<float>(ys, yv);
  const std::vector<float> got = values<float>(run1(OpType::kWhere, attrs(), {tc.view(), tx.view(), ty.view()}, DType::kFloat32, os));
  for (I64 i = 0; i < shape_elements(os); ++i) {
    const float want = cv[broadcast_offset(cs, os, i)] ? xv[broadcast_offset(xs, os, i)] : yv[broadcast_offset(ys, os, i)];
    ASSERT_EQ(got[i], want) << i;
  }
}

// ---- reductions -----------------------------------------------------------------------------
// Reference reduction of x over `axes` (normalised) with keepdims=1 layout.
std::vector<double> reference_reduce(OpType op, const std::vector<float>& x, const Shape& shape, const std::vector<int>& axes) {
  Shape out = shape;
  for (int a : axes) out[a] = 1;
  const I64 n = shape_elements(out);
  std::vector<double> acc(static_cast<std::size_t>(n));
  std::vector<I64> count(static_cast<std::size_t>(n), 0);
  const double init = op == OpType::kReduceMax ? -INFINITY : op == OpType::kReduceMin ? INFINITY : op == OpType::kReduceProd ? 1 : 0;
  std::fill(acc.begin(), acc.end(), init);
  const std::vector<I64> in_strides = [&] {
    std::vector<I64> s(shape.size());
    I64 st = 1;
    for (std::size_t d = shape.size(); d-- > 0;) { s[d] = st; st *= shape[d]; }
    return s;
  }();
  for (I64 i = 0; i < shape_elements(shape); ++i) {
    I64 o = 0, rest = i, ostride = 1;
    for (std::size_t d = shape.size(); d-- > 0;) {
      const I64 idx = rest % shape[d];
      rest /= shape[d];
      if (out[d] != 1) o += idx * ostride;
      ostride *= out[d];
    }
    (void)in_strides;
    const double v = x[i];
    double& a = acc[o];
    switch (op) {
      case OpType::kReduceMax: a = std::max(a, v); break;
      case OpType::kReduceMin: a = std::min(a, v); break;
      case OpType::kReduceProd: a *= v; break;
      case OpType::kReduceSumSquare: case OpType::kReduceL2: a += v * v; break;
      default: a += v; break;
    }
    ++count[o];
  }
  for (I64 i = 0; i < n; ++i) {
    if (op == OpType::kReduceMean) acc[i] /= static_cast<double>(count[i]);
    if (op == OpType::kReduceL2) acc[i] = std::sqrt(acc[i]);
  }
  return acc;
}

TEST(CpuTensorKernels, ReductionsRandomAgainstReference) {
  const Shape shape{3, 4, 5, 6};
  const std::vector<float> x = random_floats(360, 0.5f, 1.5f, 11);
  Tensor tx = make<float>(shape, x);
  const std::vector<std::vector<I64>> axes_sets = {{}, {0}, {1}, {3}, {-1}, {0, 2}, {1, 3}, {-3, -2}, {0, 1, 2, 3}, {2, 3}, {0, 3}};
  const OpType ops[] = {OpType::kReduceSum, OpType::kReduceMean, OpType::kReduceMax, OpType::kReduceMin,
                        OpType::kReduceProd, OpType::kReduceL2, OpType::kReduceSumSquare};
  for (OpType op : ops) {
    for (const auto& axes : axes_sets) {
      std::vector<int> norm;
      for (I64 a : axes) norm.push_back(static_cast<int>(a < 0 ? a + 4 : a));
      if (axes.empty()) norm = {0, 1, 2, 3};
      const std::vector<double> want = reference_reduce(op, x, shape, norm);
      for (int keepdims = 0; keepdims <= 1; ++keepdims) {
        Shape out;
        for (int d = 0; d < 4; ++d) {
          const bool red = std::find(norm.begin(), norm.end(), d) != norm.end();
          if (!red) out.push_back(shape[d]);
          else if (keepdims) out.push_back(1);
        }
        const std::string what = std::string(op_name(op)) + " axes " + shape_to_string(axes) + " keepdims " + std::to_string(keepdims);
        const double tol = op == OpType::kReduceProd ? 1e-5 : 1e-6;
        // Axes as an attribute (older opsets) ...
        OpAttributes a = attrs({{"keepdims", I64{keepdims}}});
        if (!axes.empty()) a.values.insert({"axes", axes});
        expect_close(values<float>(run1(op, a, {tx.view()}, DType::kFloat32, out)), want, tol, what + " (attribute)");
        // ... and as an input (ReduceSum >= 13, the others >= 18).
        Tensor axes_t = make<I64>({static_cast<I64>(axes.size())}, axes);
        expect_close(values<float>(run1(op, attrs({{"keepdims", I64{keepdims}}}), {tx.view(), axes_t.view()},
                                        DType::kFloat32, out)),
                     want, tol, what + " (input)");
      }
    }
  }
}

TEST(CpuTensorKernels, ReductionsLargeAndIntegerAndNoop) {
  // Long rows in both layouts exercise the parallel paths.
  const std::vector<float> x = random_floats(2 * 64 * 1024, -1, 1, 12);
  Tensor tx = make<float>({2, 64, 1024}, x);
  for (const std::vector<int>& axes : {std::vector<int>{1}, std::vector<int>{2}, std::vector<int>{0, 2}}) {
    Shape out{2, 64, 1024};
    Ints ax;
    for (int a : axes) { out[a] = 1; ax.push_back(a); }
    const std::vector<double> want = reference_reduce(OpType::kReduceMean, x, tx.shape(), axes);
    expect_close(values<float>(run1(OpType::kReduceMean, attrs({{"axes", ax}}), {tx.view()}, DType::kFloat32, out)),
                 want, 1e-5, "ReduceMean large");
  }
  Tensor xi = make<I64>({2, 3}, {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(values<I64>(run1(OpType::kReduceSum, attrs({{"keepdims", I64{0}}}), {xi.view(), ints_1d({1}).view()},
                             DType::kInt64, {2})),
            (Ints{6, 15}));
  EXPECT_EQ(values<I64>(run1(OpType::kReduceProd, attrs({{"keepdims", I64{0}}}), {xi.view()}, DType::kInt64, {})),
            (Ints{720}));
  EXPECT_EQ(values<I64>(run1(OpType::kReduceMax, attrs({{"axes", Ints{0}}}), {xi.view()}, DType::kInt64, {1, 3})),
            (Ints{4, 5, 6}));
  // Empty axes with noop_with_empty_axes: a copy.
  Tensor f = make<float>({2, 2}, {1, 2, 3, 4});
  Tensor no_axes = make<I64>({0}, {});
  EXPECT_EQ(values<float>(run1(OpType::kReduceSum, attrs({{"noop_with_empty_axes", I64{1}}}), {f.view(), no_axes.view()},
                               DType::kFloat32, {2, 2})),
            (Floats{1, 2, 3, 4}));
  EXPECT_EQ(values<float>(run1(OpType::kReduceSum, attrs(), {f.view(), no_axes.view()}, DType::kFloat32, {1, 1})),
            (Floats{10}));
  // A reduced axis of size 1 and an out-of-range axis.
  Tensor g = make<float>({2, 1}, {-3, 4});
  EXPECT_EQ(values<float>(run1(OpType::kReduceL2, attrs({{"axes", Ints{1}}}), {g.view()}, DType::kFloat32, {2, 1})),
            (Floats{3, 4}));
  Tensor out = Tensor::zeros(DType::kFloat32, {2});
  EXPECT_EQ(run(OpType::kReduceSum, attrs({{"axes", Ints{2}}}), {g.view()}, {out.view()}).code(), StatusCode::kInvalidInput);
}

TEST(CpuTensorKernels, ArgMaxArgMin) {
  // Ties: the first index unless select_last_index.
  Tensor x = make<float>({2, 3}, {1, 5, 5, 7, 2, 7});
  EXPECT_EQ(values<I64>(run1(OpType::kArgMax, attrs({{"axis", I64{1}}}), {x.view()}, DType::kInt64, {2, 1})), (Ints{1, 0}));
  EXPECT_EQ(values<I64>(run1(OpType::kArgMax, attrs({{"axis", I64{-1}}, {"select_last_index", I64{1}}, {"keepdims", I64{0}}}),
                             {x.view()}, DType::kInt64, {2})),
            (Ints{2, 2}));
  EXPECT_EQ(values<I64>(run1(OpType::kArgMin, attrs(), {x.view()}, DType::kInt64, {1, 3})), (Ints{0, 1, 0}));
  EXPECT_EQ(values<I64>(run1(OpType::kArgMin, attrs({{"axis", I64{1}}}), {x.view()}, DType::kInt64, {2, 1})), (Ints{0, 1}));
  // Random against a reference over the middle axis.
  const std::vector<float> v = random_floats(4 * 50 * 30, -1, 1, 21);
  Tensor t = make<float>({4, 50, 30}, v);
  const std::vector<I64> got = values<I64>(run1(OpType::kArgMax, attrs({{"axis", I64{-2}}, {"keepdims", I64{0}}}),
                                               {t.view()}, DType::kInt64, {4, 30}));
  for (int o = 0; o < 4; ++o)
    for (int i = 0; i < 30; ++i) {
      int best = 0;
      for (int k = 1; k < 50; ++k)
        if (v[(o * 50 + k) * 30 + i] > v[(o * 50 + best) * 30 + i]) best = k;
      ASSERT_EQ(got[o * 30 + i], best);
    }
}

TEST(CpuTensorKernels, TopK) {
  Tensor x = make<float>({3, 4}, {0, 1, 2, 3, 4, 5, 6, 7, 11, 10, 9, 8});
  Tensor k = scalar_i64(3);
  Tensor values_out = Tensor::zeros(DType::kFloat32, {3, 3});
  Tensor indices_out = Tensor::zeros(DType::kInt64, {3, 3});
  ASSERT_TRUE(run(OpType::kTopK, attrs(), {x.view(), k.view()}, {values_out.view(), indices_out.view()}).is_ok());
  EXPECT_EQ(values<float>(values_out), (Floats{3, 2, 1, 7, 6, 5, 11, 10, 9}));
  EXPECT_EQ(values<I64>(indices_out), (Ints{3, 2, 1, 3, 2, 1, 0, 1, 2}));
  // Smallest along axis 0, ties by lower index.
  Tensor y = make<float>({3, 2}, {5, 1, 2, 1, 2, 0});
  Tensor k2 = scalar_i64(2);
  Tensor v2 = Tensor::zeros(DType::kFloat32, {2, 2});
  Tensor i2 = Tensor::zeros(DType::kInt64, {2, 2});
  ASSERT_TRUE(run(OpType::kTopK, attrs({{"axis", I64{0}}, {"largest", I64{0}}}), {y.view(), k2.view()}, {v2.view(), i2.view()}).is_ok());
  EXPECT_EQ(values<float>(v2), (Floats{2, 0, 2, 1}));
  EXPECT_EQ(values<I64>(i2), (Ints{1, 2, 2, 0}));
  // K larger than the axis is an error.
  Tensor k9 = scalar_i64(9);
  EXPECT_EQ(run(OpType::kTopK, attrs(), {x.view(), k9.view()}, {values_out.view(), indices_out.view()}).code(),
            StatusCode::kInvalidInput);
}

// ---- layout and indexing --------------------------------------------------------------------
TEST(CpuTensorKernels, TransposeDefaultAndRandomPerm) {
  Tensor x = make<I64>({2, 3}, {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(values<I64>(run1(OpType::kTranspose, attrs(), {x.view()}, DType::kInt64, {3, 2})), (Ints{1, 4, 2, 5, 3, 6}));
  const Shape s{3, 4, 5, 6};
  const std::vector<float> v = random_floats(360, -1, 1, 31);
  Tensor t = make<float>(s, v);
  const std::vector<Ints> perms = {{0, 2, 3, 1}, {3, 2, 1, 0}, {1, 0, 2, 3}, {0, 1, 3, 2}, {0, 1, 2, 3}};
  for (const Ints& perm : perms) {
    Shape out(4);
    for (int d = 0; d < 4; ++d) out[d] = s[perm[d]];
    const std::vector<float> got = values<float>(run1(OpType::kTranspose, attrs({{"perm", perm}}), {t.view()}, DType::kFloat32, out));
    for (I64 i = 0; i < 360; ++i) {
      I64 rest = i, in_idx[4];
      for (int d = 3; d >= 0; --d) { in_idx[perm[d]] = rest % out[d]; rest /= out[d]; }
      const I64 off = ((in_idx[0] * 4 + in_idx[1]) * 5 + in_idx[2]) * 6 + in_idx[3];
      ASSERT_EQ(got[i], v[off]) << shape_to_string(perm) << " " << i;
    }
  }
  // Larger than the 32x32 tiles of the strided-gather path, with ragged edges.
  const std::vector<float> w = random_floats(2 * 70 * 45, -1, 1, 32);
  Tensor big = make<float>({2, 70, 45}, w);
  const std::vector<float> bt =
      values<float>(run1(OpType::kTranspose, attrs({{"perm", Ints{2, 0, 1}}}), {big.view()}, DType::kFloat32, {45, 2, 70}));
  for (int i = 0; i < 45; ++i)
    for (int n = 0; n < 2; ++n)
      for (int r = 0; r < 70; ++r) ASSERT_EQ(bt[(i * 2 + n) * 70 + r], w[(n * 70 + r) * 45 + i]);
  Tensor h = make<std::uint8_t>({2, 2}, {1, 2, 3, 4});
  EXPECT_EQ(values<std::uint8_t>(run1(OpType::kTranspose, attrs({{"perm", Ints{1, 0}}}), {h.view()}, DType::kUInt8, {2, 2})),
            (Bools{1, 3, 2, 4}));
}

TEST(CpuTensorKernels, ConcatAndSplit) {
  Tensor a = make<float>({2, 2}, {1, 2, 3, 4});
  Tensor b = make<float>({2, 1}, {5, 6});
  Tensor e = Tensor::zeros(DType::kFloat32, {2, 0});
  EXPECT_EQ(values<float>(run1(OpType::kConcat, attrs({{"axis", I64{-1}}}), {a.view(), e.view(), b.view()}, DType::kFloat32, {2, 3})),
            (Floats{1, 2, 5, 3, 4, 6}));
  EXPECT_EQ(values<float>(run1(OpType::kConcat, attrs({{"axis", I64{0}}}), {a.view(), a.view()}, DType::kFloat32, {4, 2})),
            (Floats{1, 2, 3, 4, 1, 2, 3, 4}));
  Tensor x = make<I64>({2, 5}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  Tensor y0 = Tensor::zeros(DType::kInt64, {2, 2});
  Tensor y1 = Tensor::zeros(DType::kInt64, {2, 3});
  Tensor split = ints_1d({2, 3});
  ASSERT_TRUE(run(OpType::kSplit, attrs({{"axis", I64{1}}}), {x.view(), split.view()}, {y0.view(), y1.view()}).is_ok());
  EXPECT_EQ(values<I64>(y0), (Ints{0, 1, 5, 6}));
  EXPECT_EQ(values<I64>(y1), (Ints{2, 3, 4, 7, 8, 9}));
  Tensor z0 = Tensor::zeros(DType::kInt64, {1, 5});
  Tensor z1 = Tensor::zeros(DType::kInt64, {1, 5});
  ASSERT_TRUE(run(OpType::kSplit, attrs({{"axis", I64{-2}}}), {x.view()}, {z0.view(), z1.view()}).is_ok());
  EXPECT_EQ(values<I64>(z1), (Ints{5, 6, 7, 8, 9}));
}

TEST(CpuTensorKernels, SliceStepsClampingAndAttributes) {
  // From the ONNX spec: data 2x4, starts [1,0], ends [2,3], steps [1,2] → [[5,7]].
  Tensor x = make<float>({2, 4}, {1, 2, 3, 4, 5, 6, 7, 8});
  auto slice = [&](Ints starts, Ints ends, Ints axes, Ints steps, Shape out) {
    Tensor s = ints_1d(starts), e = ints_1d(ends), a = ints_1d(axes), st = ints_1d(steps);
    std::vector<TensorView> in = {x.view(), s.view(), e.view(), axes.empty() ? TensorView{DType::kInt64, {0}, nullptr} : a.view()};
    if (!steps.empty()) in.push_back(st.view());
    return values<float>(run1(OpType::kSlice, attrs(), in, DType::kFloat32, std::move(out)));
  };
  EXPECT_EQ(slice({1, 0}, {2, 3}, {0, 1}, {1, 2}, {1, 2}), (Floats{5, 7}));
  EXPECT_EQ(slice({0, 1}, {-1, 1000}, {}, {}, {1, 3}), (Floats{2, 3, 4}));
  const I64 kMax = std::numeric_limits<I64>::max(), kMin = std::numeric_limits<I64>::min();
  // Negative steps: reverse an axis, with INT_MIN/INT_MAX ends clamped.
  EXPECT_EQ(slice({-1}, {kMin}, {1}, {-1}, {2, 4}), (Floats{4, 3, 2, 1, 8, 7, 6, 5}));
  EXPECT_EQ(slice({kMax, kMax}, {kMin, kMin}, {0, 1}, {-1, -2}, {2, 2}), (Floats{8, 6, 4, 2}));
  EXPECT_EQ(slice({2}, {0}, {-1}, {-1}, {2, 2}), (Floats{3, 2, 7, 6}));
  EXPECT_EQ(slice({-100}, {100}, {1}, {3}, {2, 2}), (Floats{1, 4, 5, 8}));
  EXPECT_TRUE(slice({3}, {1}, {1}, {1}, {2, 0}).empty());
  // Opset 1: attributes.
  EXPECT_EQ(values<float>(run1(OpType::kSlice, attrs({{"starts", Ints{0, 1}}, {"ends", Ints{1, 3}}}), {x.view()}, DType::kFloat32, {1, 2})),
            (Floats{2, 3}));
  EXPECT_EQ(values<float>(run1(OpType::kSlice, attrs({{"starts", Ints{2}}, {"ends", Ints{kMax}}, {"axes", Ints{-1}}}), {x.view()},
                               DType::kFloat32, {2, 2})),
            (Floats{3, 4, 7, 8}));
  // A wrong output shape is reported, not written past.
  Tensor s = ints_1d({0}), e = ints_1d({2});
  Tensor out = Tensor::zeros(DType::kFloat32, {2, 3});
  EXPECT_EQ(run(OpType::kSlice, attrs(), {x.view(), s.view(), e.view()}, {out.view()}).code(), StatusCode::kInvalidInput);
}

TEST(CpuTensorKernels, GatherWithNegativeIndices) {
  Tensor data = make<float>({3, 2}, {1, 1.2f, 2.3f, 3.4f, 4.5f, 5.7f});
  Tensor idx = make<I64>({2, 2}, {0, 1, 1, -1});
  EXPECT_EQ(values<float>(run1(OpType::kGather, attrs(), {data.view(), idx.view()}, DType::kFloat32, {2, 2, 2})),
            (Floats{1, 1.2f, 2.3f, 3.4f, 2.3f, 3.4f, 4.5f, 5.7f}));
  Tensor d2 = make<float>({3, 3}, {1, 1.2f, 1.9f, 2.3f, 3.4f, 3.9f, 4.5f, 5.7f, 5.9f});
  Tensor i2 = make<std::int32_t>({1, 2}, {0, -1});
  EXPECT_EQ(values<float>(run1(OpType::kGather, attrs({{"axis", I64{1}}}), {d2.view(), i2.view()}, DType::kFloat32, {3, 1, 2})),
            (Floats{1, 1.9f, 2.3f, 3.9f, 4.5f, 5.9f}));
  // Scalar index removes the axis.
  Tensor i3 = make<I64>({}, {-2});
  EXPECT_EQ(values<float>(run1(OpType::kGather, attrs({{"axis", I64{-1}}}), {d2.view(), i3.view()}, DType::kFloat32, {3})),
            (Floats{1.2f, 3.4f, 5.7f}));
  Tensor shape = make<I64>({4}, {1, 3, 224, 224});
  EXPECT_EQ(values<I64>(run1(OpType::kGather, attrs(), {shape.view(), make<I64>({}, {1}).view()}, DType::kInt64, {})), (Ints{3}));
  Tensor bad = make<I64>({1}, {3});
  Tensor out = Tensor::zeros(DType::kFloat32, {1, 2});
  EXPECT_EQ(run(OpType::kGather, attrs(), {data.view(), bad.view()}, {out.view()}).code(), StatusCode::kInvalidInput);
}

TEST(CpuTensorKernels, GatherElements) {
  Tensor data = make<float>({2, 2}, {1, 2, 3, 4});
  Tensor idx = make<I64>({2, 2}, {0, 0, 1, 0});
  EXPECT_EQ(values<float>(run1(OpType::kGatherElements, attrs({{"axis", I64{1}}}), {data.view(), idx.view()}, DType::kFloat32, {2, 2})),
            (Floats{1, 1, 4, 3}));
  Tensor d3 = make<float>({3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  Tensor i3 = make<std::int32_t>({2, 3}, {1, 2, 0, 2, 0, -3});
  EXPECT_EQ(values<float>(run1(OpType::kGatherElements, attrs(), {d3.view(), i3.view()}, DType::kFloat32, {2, 3})),
            (Floats{4, 8, 3, 7, 2, 3}));
}

TEST(CpuTensorKernels, ExpandAndTile) {
  Tensor x = make<float>({3, 1}, {1, 2, 3});
  Tensor shape = ints_1d({2, 1, 6});
  EXPECT_EQ(values<float>(run1(OpType::kExpand, attrs(), {x.view(), shape.view()}, DType::kFloat32, {2, 3, 6})),
            (Floats{1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3}));
  Tensor t = make<I64>({2, 2}, {1, 2, 3, 4});
  EXPECT_EQ(values<I64>(run1(OpType::kTile, attrs(), {t.view(), ints_1d({2, 3}).view()}, DType::kInt64, {4, 6})),
            (Ints{1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4, 1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4}));
  EXPECT_EQ(values<I64>(run1(OpType::kTile, attrs(), {t.view(), ints_1d({1, 1}).view()}, DType::kInt64, {2, 2})),
            (Ints{1, 2, 3, 4}));
}

TEST(CpuTensorKernels, ScatterND) {
  // ONNX spec example 2.
  std::vector<float> d(64);
  const float base[16] = {1, 2, 3, 4, 5, 6, 7, 8, 8, 7, 6, 5, 4, 3, 2, 1};
  for (int i = 0; i < 64; ++i) d[i] = base[i % 16];
  Tensor data = make<float>({4, 4, 4}, d);
  Tensor indices = make<I64>({2, 1}, {0, -2});
  std::vector<float> u(32);
  for (int i = 0; i < 16; ++i) { u[i] = 5 + i / 4; u[16 + i] = 1 + i / 4; }
  Tensor updates = make<float>({2, 4, 4}, u);
  const std::vector<float> got = values<float>(run1(OpType::kScatterND, attrs(), {data.view(), indices.view(), updates.view()}, DType::kFloat32, {4, 4, 4}));
  for (int i = 0; i < 64; ++i) {
    const float want = i < 16 ? u[i] : (i >= 32 && i < 48) ? u[16 + i - 32] : d[i];
    EXPECT_EQ(got[i], want) << i;
  }
  // Example 1: element updates on a 1-D tensor.
  Tensor v = make<float>({8}, {1, 2, 3, 4, 5, 6, 7, 8});
  Tensor vi = make<I64>({4, 1}, {4, 3, 1, 7});
  Tensor vu = make<float>({4}, {9, 10, 11, 12});
  EXPECT_EQ(values<float>(run1(OpType::kScatterND, attrs(), {v.view(), vi.view(), vu.view()}, DType::kFloat32, {8})),
            (Floats{1, 11, 3, 10, 9, 6, 7, 12}));
  Tensor out = Tensor::zeros(DType::kFloat32, {8});
  EXPECT_EQ(run(OpType::kScatterND, attrs({{"reduction", std::string("add")}}), {v.view(), vi.view(), vu.view()}, {out.view()}).code(),
            StatusCode::kUnsupported);
}

// ---- shapes and constants -------------------------------------------------------------------
TEST(CpuTensorKernels, ShapeSizeConstantOfShapeConstantRange) {
  Tensor x = Tensor::zeros(DType::kFloat32, {1, 3, 8, 6});
  EXPECT_EQ(values<I64>(run1(OpType::kShape, attrs(), {x.view()}, DType::kInt64, {4})), (Ints{1, 3, 8, 6}));
  EXPECT_EQ(values<I64>(run1(OpType::kShape, attrs({{"start", I64{-2}}}), {x.view()}, DType::kInt64, {2})), (Ints{8, 6}));
  EXPECT_EQ(values<I64>(run1(OpType::kShape, attrs({{"start", I64{1}}, {"end", I64{-1}}}), {x.view()}, DType::kInt64, {2})),
            (Ints{3, 8}));
  EXPECT_EQ(values<I64>(run1(OpType::kShape, attrs({{"start", I64{-10}}, {"end", I64{10}}}), {x.view()}, DType::kInt64, {4})),
            (Ints{1, 3, 8, 6}));
  EXPECT_EQ(values<I64>(run1(OpType::kSize, attrs(), {x.view()}, DType::kInt64, {})), (Ints{144}));

  Tensor shape = ints_1d({2, 3});
  EXPECT_EQ(values<float>(run1(OpType::kConstantOfShape, attrs(), {shape.view()}, DType::kFloat32, {2, 3})), (Floats(6, 0.0f)));
  EXPECT_EQ(values<I64>(run1(OpType::kConstantOfShape, attrs({{"value", make<I64>({1}, {7})}}), {shape.view()}, DType::kInt64, {2, 3})),
            (Ints(6, 7)));
  EXPECT_EQ(values<float>(run1(OpType::kConstantOfShape, attrs({{"value", make<float>({1}, {1.5f})}}), {shape.view()}, DType::kFloat32, {2, 3})),
            (Floats(6, 1.5f)));

  EXPECT_EQ(values<float>(run1(OpType::kConstant, attrs({{"value", make<float>({2}, {1, 2})}}), {}, DType::kFloat32, {2})),
            (Floats{1, 2}));
  EXPECT_EQ(values<float>(run1(OpType::kConstant, attrs({{"value_float", 2.5f}}), {}, DType::kFloat32, {})), (Floats{2.5f}));
  EXPECT_EQ(values<float>(run1(OpType::kConstant, attrs({{"value_floats", Floats{1, 2, 3}}}), {}, DType::kFloat32, {3})),
            (Floats{1, 2, 3}));
  EXPECT_EQ(values<I64>(run1(OpType::kConstant, attrs({{"value_int", I64{-4}}}), {}, DType::kInt64, {})), (Ints{-4}));
  EXPECT_EQ(values<I64>(run1(OpType::kConstant, attrs({{"value_ints", Ints{4, 5}}}), {}, DType::kInt64, {2})), (Ints{4, 5}));
  Tensor out = Tensor::zeros(DType::kFloat32, {1});
  EXPECT_EQ(run(OpType::kConstant, attrs({{"value_string", std::string("x")}}), {}, {out.view()}).code(), StatusCode::kUnsupported);

  auto range = [](auto start, auto limit, auto delta, Shape range_shape) {
    using T = decltype(start);
    Tensor s = make<T>({}, {start}), l = make<T>({}, {limit}), d = make<T>({}, {delta});
    return values<T>(run1(OpType::kRange, attrs(), {s.view(), l.view(), d.view()}, dtype_of<T>(), std::move(range_shape)));
  };
  EXPECT_EQ(range(I64{3}, I64{9}, I64{3}, {2}), (Ints{3, 6}));
  EXPECT_EQ(range(I64{10}, I64{4}, I64{-3}, {2}), (Ints{10, 7}));
  EXPECT_EQ(range(std::int32_t{0}, std::int32_t{5}, std::int32_t{1}, {5}), (std::vector<std::int32_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(range(1.0f, 2.0f, 0.25f, {4}), (Floats{1, 1.25f, 1.5f, 1.75f}));
  EXPECT_TRUE(range(I64{5}, I64{1}, I64{1}, {0}).empty());
}

}  // namespace
}  // namespace fswap
