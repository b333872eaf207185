// The CPU normalisations and pools with attribute channels_last = 1 (X and Y [N, H, W, C], the
// layout pass's NHWC islands) against the same kernels in NCHW on the transposed data:
// Y_nhwc = transpose(op(transpose(X_nhwc))), within 1e-5. Random inputs from fixed seeds, odd
// sizes; BatchNormalization with and without a fused Relu, InstanceNormalization,
// FilterResponseNorm, MaxPool and AveragePool (strides, pads, ceil_mode, count_include_pad,
// dilations); plus the errors for channels_last on a tensor that is not 4-D and for MaxPool's
// Indices output.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/cpu_kernels.h"

namespace fswap {
namespace {

using I64s = std::vector<std::int64_t>;

Tensor random_tensor(const Shape& shape, std::uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  Tensor t = Tensor::zeros(DType::kFloat32, shape);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  for (std::int64_t i = 0; i < t.elements(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

// [N, C, H, W] → [N, H, W, C].
Tensor nhwc(const Tensor& t) {
  const Shape& s = t.shape();
  const std::int64_t n = s[0], c = s[1], h = s[2], w = s[3];
  Tensor r = Tensor::zeros(DType::kFloat32, {n, h, w, c});
  const float* src = t.data<float>();
  float* dst = r.data<float>();
  for (std::int64_t in = 0; in < n; ++in)
    for (std::int64_t ic = 0; ic < c; ++ic)
      for (std::int64_t ih = 0; ih < h; ++ih)
        for (std::int64_t iw = 0; iw < w; ++iw) dst[((in * h + ih) * w + iw) * c + ic] = src[((in * c + ic) * h + ih) * w + iw];
  return r;
}
Shape nhwc_shape(const Shape& s) { return {s[0], s[2], s[3], s[1]}; }

Status run_kernel(OpType op, const OpAttributes& attrs, const std::vector<const Tensor*>& inputs,
                  std::vector<TensorView> outputs) {
  std::vector<TensorView> in;
  for (const Tensor* t : inputs) in.push_back(t->view());
  return cpu_kernel(op)({op, attrs, in, std::move(outputs)});
}

Tensor run(OpType op, const OpAttributes& attrs, const std::vector<const Tensor*>& inputs, const Shape& out_shape) {
  Tensor y = Tensor::zeros(DType::kFloat32, out_shape);
  const Status s = run_kernel(op, attrs, inputs, {y.view()});
  EXPECT_TRUE(s.is_ok()) << op_name(op) << ": " << s.to_string();
  return y;
}

OpAttributes channels_last(OpAttributes a) {
  a.values["channels_last"] = std::int64_t{1};
  return a;
}

// op in NHWC on nhwc(x) against nhwc(op in NCHW on x); the other inputs are per-channel vectors.
void expect_same_as_nchw(OpType op, const OpAttributes& attrs, const Tensor& x, const std::vector<const Tensor*>& rest,
                         const Shape& y_nchw, const std::string& what) {
  std::vector<const Tensor*> first{&x}, last;
  const Tensor x_last = nhwc(x);
  last.push_back(&x_last);
  for (const Tensor* t : rest) {
    first.push_back(t);
    last.push_back(t);
  }
  const Tensor want = nhwc(run(op, attrs, first, y_nchw));
  const Tensor got = run(op, channels_last(attrs), last, nhwc_shape(y_nchw));
  ASSERT_EQ(got.shape(), want.shape()) << what;
  int bad = 0;
  for (std::int64_t i = 0; i < want.elements(); ++i) {
    const float w = want.data<float>()[i], g = got.data<float>()[i];
    if (!(std::fabs(g - w) <= 1e-5f * std::max(1.0f, std::fabs(w))) && ++bad <= 5)
      ADD_FAILURE() << what << ": element " << i << " got " << g << " want " << w;
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << want.elements() << " differ";
}

TEST(ChannelsLastCpu, BatchNormalizationWithAndWithoutFusedRelu) {
  for (const Shape& x_shape : {Shape{2, 5, 7, 6}, Shape{1, 3, 1, 9}, Shape{3, 33, 4, 5}}) {
    const std::int64_t c = x_shape[1];
    const Tensor x = random_tensor(x_shape, 1, -2, 2), scale = random_tensor({c}, 2), bias = random_tensor({c}, 3);
    const Tensor mean = random_tensor({c}, 4), var = random_tensor({c}, 5, 0.1f, 2.0f);
    OpAttributes a;
    a.values["epsilon"] = 1e-3f;
    const std::string name = "BatchNormalization " + shape_to_string(x_shape);
    expect_same_as_nchw(OpType::kBatchNormalization, a, x, {&scale, &bias, &mean, &var}, x_shape, name);
    a.activation.kind = Activation::kRelu;
    expect_same_as_nchw(OpType::kBatchNormalization, a, x, {&scale, &bias, &mean, &var}, x_shape, name + " + Relu");
  }
}

TEST(ChannelsLastCpu, InstanceNormalization) {
  // NHWC [2, 7, 5, 3], a single pixel and a wide channel count.
  for (const Shape& x_shape : {Shape{2, 3, 7, 5}, Shape{1, 4, 1, 1}, Shape{1, 70, 9, 11}}) {
    const std::int64_t c = x_shape[1];
    const Tensor x = random_tensor(x_shape, 6, -3, 1), scale = random_tensor({c}, 7), bias = random_tensor({c}, 8);
    expect_same_as_nchw(OpType::kInstanceNormalization, {}, x, {&scale, &bias}, x_shape,
                        "InstanceNormalization " + shape_to_string(x_shape));
  }
}

TEST(ChannelsLastCpu, FilterResponseNorm) {
  // A single pixel, odd sizes and a wide channel count; tau [1, C, 1, 1] (any shape of C values).
  for (const Shape& x_shape : {Shape{2, 5, 7, 9}, Shape{2, 40, 1, 1}, Shape{1, 64, 13, 6}}) {
    const std::int64_t c = x_shape[1];
    const Tensor x = random_tensor(x_shape, 9, -2, 3), gamma = random_tensor({c}, 10, 0.5f, 1.5f);
    const Tensor beta = random_tensor({c}, 11), tau = random_tensor({1, c, 1, 1}, 12, -0.5f, 0.5f);
    OpAttributes a;
    a.values["epsilon"] = 1e-6f;
    expect_same_as_nchw(OpType::kFilterResponseNorm, a, x, {&gamma, &beta, &tau}, x_shape,
                        "FilterResponseNorm " + shape_to_string(x_shape));
  }
}

struct PoolCase {
  Shape x;  // NCHW
  I64s kernel, strides, pads, dilations;
  bool ceil_mode = false, count_include_pad = false;
};

// The NCHW output shape as ONNX computes it (explicit pads).
Shape pool_output(const PoolCase& c) {
  Shape y{c.x[0], c.x[1]};
  for (std::size_t d = 0; d < 2; ++d) {
    const std::int64_t s = c.strides.empty() ? 1 : c.strides[d], dil = c.dilations.empty() ? 1 : c.dilations[d];
    const std::int64_t pb = c.pads.empty() ? 0 : c.pads[d], pe = c.pads.empty() ? 0 : c.pads[d + 2];
    const std::int64_t num = c.x[2 + d] + pb + pe - ((c.kernel[d] - 1) * dil + 1);
    std::int64_t out = (c.ceil_mode ? (num + s - 1) / s : num / s) + 1;
    // The last window must start inside the input or its left padding.
    if (c.ceil_mode && (out - 1) * s >= c.x[2 + d] + pb) --out;
    y.push_back(out);
  }
  return y;
}

OpAttributes pool_attrs(const PoolCase& c) {
  OpAttributes a;
  a.values["kernel_shape"] = c.kernel;
  if (!c.strides.empty()) a.values["strides"] = c.strides;
  if (!c.pads.empty()) a.values["pads"] = c.pads;
  if (!c.dilations.empty()) a.values["dilations"] = c.dilations;
  if (c.ceil_mode) a.values["ceil_mode"] = std::int64_t{1};
  if (c.count_include_pad) a.values["count_include_pad"] = std::int64_t{1};
  return a;
}

TEST(ChannelsLastCpu, MaxPoolAndAveragePool) {
  const std::vector<PoolCase> cases = {
      {{2, 5, 9, 11}, {3, 3}, {2, 2}, {1, 1, 1, 1}, {}},
      {{1, 3, 9, 8}, {3, 2}, {2, 2}, {1, 0, 0, 1}, {}, true},                // ceil_mode
      {{2, 4, 7, 7}, {3, 3}, {2, 2}, {1, 1, 1, 1}, {}, true, true},          // ceil_mode + count_include_pad
      {{1, 6, 6, 5}, {3, 3}, {1, 1}, {1, 1, 1, 1}, {}, false, true},         // count_include_pad
      {{2, 3, 11, 10}, {3, 3}, {1, 2}, {2, 1, 2, 1}, {2, 2}},                // dilation 2
      {{1, 40, 5, 4}, {2, 2}, {2, 2}, {}, {}},                               // many channels, no pads
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const PoolCase& c = cases[i];
    const Tensor x = random_tensor(c.x, 10 + static_cast<std::uint32_t>(i), -4, 4);
    const std::string name = "case " + std::to_string(i) + " " + shape_to_string(c.x);
    expect_same_as_nchw(OpType::kMaxPool, pool_attrs(c), x, {}, pool_output(c), "MaxPool " + name);
    expect_same_as_nchw(OpType::kAveragePool, pool_attrs(c), x, {}, pool_output(c), "AveragePool " + name);
  }
}

TEST(ChannelsLastCpu, NeedsAFourDimensionalInput) {
  const Tensor x = random_tensor({2, 6, 5}, 20);
  const Tensor c = random_tensor({5}, 21), var = random_tensor({5}, 22, 0.5f, 1.0f);
  for (const OpType op : {OpType::kBatchNormalization, OpType::kInstanceNormalization, OpType::kFilterResponseNorm,
                          OpType::kMaxPool, OpType::kAveragePool}) {
    const bool pool = op == OpType::kMaxPool || op == OpType::kAveragePool;
    OpAttributes a;
    if (pool) a.values["kernel_shape"] = I64s{3};
    const std::vector<const Tensor*> inputs = op == OpType::kBatchNormalization      ? std::vector{&x, &c, &c, &c, &var}
                                              : op == OpType::kInstanceNormalization ? std::vector{&x, &c, &c}
                                              : op == OpType::kFilterResponseNorm    ? std::vector{&x, &c, &c, &c}
                                                                                     : std::vector{&x};
    Tensor y = Tensor::zeros(DType::kFloat32, pool ? Shape{2, 4, 5} : x.shape());
    const Status s = run_kernel(op, channels_last(a), inputs, {y.view()});
    EXPECT_EQ(s.code(), StatusCode::kInvalidInput) << op_name(op) << ": " << s.to_string();
    EXPECT_NE(s.message().find(std::string(op_name(op)) + ": channels_last needs a 4-D input, got [2,6,5]"),
              std::string::npos)
        << s.message();
  }
}

TEST(ChannelsLastCpu, MaxPoolIndicesAreUnsupported) {
  const Tensor x = random_tensor({1, 6, 6, 3}, 23);
  OpAttributes a;
  a.values["kernel_shape"] = I64s{2, 2};
  a.values["strides"] = I64s{2, 2};
  Tensor y = Tensor::zeros(DType::kFloat32, {1, 3, 3, 3});
  Tensor indices = Tensor::zeros(DType::kInt64, {1, 3, 3, 3});
  const Status s = run_kernel(OpType::kMaxPool, channels_last(a), {&x}, {y.view(), indices.view()});
  EXPECT_EQ(s.code(), StatusCode::kUnsupported) << s.to_string();
  EXPECT_NE(s.message().find("Indices"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace fswap
