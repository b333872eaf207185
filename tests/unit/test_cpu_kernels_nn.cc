// The CPU nn-family kernels against naive references written from the ONNX spec: random inputs
// from a fixed seed, several attribute combinations, 1e-4 relative / 1e-5 absolute tolerance;
// plus small cases with known values.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/cpu_kernels.h"

namespace fswap {
namespace {

using I64s = std::vector<std::int64_t>;

Tensor make(const Shape& shape, const std::vector<float>& values) {
  Tensor t = Tensor::zeros(DType::kFloat32, shape);
  EXPECT_EQ(static_cast<std::size_t>(t.elements()), values.size());
  std::copy(values.begin(), values.end(), t.data<float>());
  return t;
}

Tensor random_tensor(const Shape& shape, std::uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  Tensor t = Tensor::zeros(DType::kFloat32, shape);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  for (std::int64_t i = 0; i < t.elements(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

Tensor ints(const I64s& v) {
  Tensor t = Tensor::zeros(DType::kInt64, {static_cast<std::int64_t>(v.size())});
  std::copy(v.begin(), v.end(), t.data<std::int64_t>());
  return t;
}

// Runs op; absent optional inputs are passed as nullptr-data views.
Tensor run(OpType op, const OpAttributes& attrs, const std::vector<const Tensor*>& inputs, const Shape& out_shape,
           DType out_dtype = DType::kFloat32) {
  CpuKernel k = cpu_kernel(op);
  EXPECT_NE(k, nullptr) << op_name(op);
  Tensor y = Tensor::zeros(out_dtype, out_shape);
  std::vector<TensorView> in;
  for (const Tensor* t : inputs) in.push_back(t ? t->view() : TensorView{});
  if (k == nullptr) return y;
  const Status s = k({op, attrs, in, {y.view()}});
  EXPECT_TRUE(s.is_ok()) << op_name(op) << ": " << s.to_string();
  return y;
}

void expect_close(const Tensor& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(static_cast<std::size_t>(got.elements()), want.size()) << what;
  const float* g = got.data<float>();
  int bad = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    const float tol = 1e-5f + 1e-4f * std::fabs(want[i]);
    if (!(std::fabs(g[i] - want[i]) <= tol)) {
      if (++bad <= 5) ADD_FAILURE() << what << ": at " << i << " got " << g[i] << " want " << want[i];
    }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << want.size() << " differ";
}

std::int64_t product(const Shape& s, std::size_t from = 0, std::size_t to = ~std::size_t{0}) {
  std::int64_t p = 1;
  const std::size_t end = std::min(to, s.size());
  for (std::size_t i = from; i < end; ++i) p *= s.at(i);
  return p;
}

// Row-major index helpers for the N-D references.
I64s unravel(std::int64_t flat, const Shape& shape) {
  I64s c(shape.size());
  for (std::size_t i = shape.size(); i-- > 0;) {
    c[i] = flat % shape[i];
    flat /= shape[i];
  }
  return c;
}
std::int64_t ravel(const I64s& c, const Shape& shape) {
  std::int64_t f = 0;
  for (std::size_t i = 0; i < shape.size(); ++i) f = f * shape[i] + c[i];
  return f;
}

OpAttributes attrs_of(std::initializer_list<std::pair<const std::string, AttributeValue>> kv) {
  OpAttributes a;
  for (const auto& [k, v] : kv) a.values.emplace(k, v);
  return a;
}

// ---------------------------------------------------------------------------------------------
// Conv

struct WindowCase {
  I64s kernel, strides, pads, dilations;
  std::string auto_pad = "NOTSET";
  bool ceil_mode = false;
};

// Pads (begin..., end...) as the spec defines them, and the output spatial shape.
void window_shape(const Shape& in_spatial, const WindowCase& c, I64s& pads, Shape& out) {
  const std::size_t r = in_spatial.size();
  pads = c.pads.empty() ? I64s(2 * r, 0) : c.pads;
  out.assign(r, 0);
  for (std::size_t i = 0; i < r; ++i) {
    const std::int64_t s = c.strides.empty() ? 1 : c.strides[i], d = c.dilations.empty() ? 1 : c.dilations[i];
    const std::int64_t span = (c.kernel[i] - 1) * d + 1;
    if (c.auto_pad == "SAME_UPPER" || c.auto_pad == "SAME_LOWER") {
      out[i] = (in_spatial[i] + s - 1) / s;
      const std::int64_t total = std::max<std::int64_t>(0, (out[i] - 1) * s + span - in_spatial[i]);
      pads[i] = c.auto_pad == "SAME_UPPER" ? total / 2 : (total + 1) / 2;
      pads[r + i] = total - pads[i];
    } else if (c.auto_pad == "VALID") {
      pads[i] = pads[r + i] = 0;
      out[i] = (in_spatial[i] - span) / s + 1;
    } else {
      const std::int64_t num = in_spatial[i] + pads[i] + pads[r + i] - span;
      out[i] = (c.ceil_mode ? (num + s - 1) / s : num / s) + 1;
      // The last window must start inside the input or its left padding.
      if (c.ceil_mode && (out[i] - 1) * s >= in_spatial[i] + pads[i]) --out[i];
    }
  }
}

std::vector<float> ref_conv(const Tensor& x, const Tensor& w, const Tensor* b, const WindowCase& c, std::int64_t group,
                            Shape& y_shape) {
  const Shape& xs = x.shape();
  const std::size_t r = xs.size() - 2;
  const Shape in_sp(xs.begin() + 2, xs.end());
  I64s pads;
  Shape out_sp;
  window_shape(in_sp, c, pads, out_sp);
  const std::int64_t n_batch = xs[0], ch = xs[1], m_all = w.shape()[0], cg = ch / group, mg = m_all / group;
  y_shape = {n_batch, m_all};
  y_shape.insert(y_shape.end(), out_sp.begin(), out_sp.end());
  const Shape k_sp(w.shape().begin() + 2, w.shape().end());
  std::vector<float> y(static_cast<std::size_t>(product(y_shape)), 0.0f);
  const float* xd = x.data<float>();
  const float* wd = w.data<float>();
  for (std::int64_t yi = 0; yi < product(y_shape); ++yi) {
    const I64s yc = unravel(yi, y_shape);
    const std::int64_t n = yc[0], m = yc[1], gi = m / mg;
    double acc = b ? b->data<float>()[m] : 0.0;
    for (std::int64_t ci = 0; ci < cg; ++ci) {
      for (std::int64_t ki = 0; ki < product(k_sp); ++ki) {
        const I64s kc = unravel(ki, k_sp);
        I64s xc = {n, gi * cg + ci};
        bool inside = true;
        for (std::size_t d = 0; d < r; ++d) {
          const std::int64_t s = c.strides.empty() ? 1 : c.strides[d], dl = c.dilations.empty() ? 1 : c.dilations[d];
          const std::int64_t p = yc[2 + d] * s - pads[d] + kc[d] * dl;
          inside = inside && p >= 0 && p < in_sp[d];
          xc.push_back(p);
        }
        if (!inside) continue;
        I64s wc = {m, ci};
        wc.insert(wc.end(), kc.begin(), kc.end());
        acc += static_cast<double>(xd[ravel(xc, xs)]) * wd[ravel(wc, w.shape())];
      }
    }
    y[yi] = static_cast<float>(acc);
  }
  return y;
}

OpAttributes window_attrs(const WindowCase& c) {
  OpAttributes a;
  if (!c.strides.empty()) a.values["strides"] = c.strides;
  if (!c.pads.empty()) a.values["pads"] = c.pads;
  if (!c.dilations.empty()) a.values["dilations"] = c.dilations;
  if (c.auto_pad != "NOTSET") a.values["auto_pad"] = c.auto_pad;
  if (c.ceil_mode) a.values["ceil_mode"] = std::int64_t{1};
  return a;
}

TEST(CpuNnKernels, ConvKnownValues) {
  Tensor x = make({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  Tensor w = make({1, 1, 2, 2}, {1, 1, 1, 1});
  Tensor y = run(OpType::kConv, {}, {&x, &w}, {1, 1, 2, 2});
  expect_close(y, {12, 16, 24, 28}, "conv 2x2 ones");
}

struct ConvCase {
  Shape x, w;
  std::int64_t group;
  WindowCase win;
  bool bias;
};

TEST(CpuNnKernels, ConvMatchesReference) {
  const std::vector<ConvCase> cases = {
      {{1, 3, 7, 8}, {4, 3, 3, 3}, 1, {{3, 3}, {}, {1, 1, 1, 1}, {}}, true},
      {{2, 4, 9, 7}, {6, 2, 3, 2}, 2, {{3, 2}, {2, 1}, {1, 0, 2, 1}, {}}, true},
      {{1, 4, 10, 10}, {4, 2, 3, 3}, 2, {{3, 3}, {1, 1}, {2, 2, 2, 2}, {2, 2}}, false},
      {{1, 5, 8, 9}, {5, 1, 3, 3}, 5, {{3, 3}, {1, 1}, {1, 1, 1, 1}, {}}, true},          // depthwise
      {{2, 4, 9, 9}, {8, 1, 3, 3}, 4, {{3, 3}, {2, 2}, {0, 1, 1, 0}, {}}, true},          // depthwise x2
      {{1, 3, 11, 10}, {3, 1, 5, 3}, 3, {{5, 3}, {2, 3}, {}, {2, 1}, "SAME_UPPER"}, true},  // depthwise
      {{1, 6, 8, 8}, {5, 6, 1, 1}, 1, {{1, 1}, {}, {}, {}}, true},                         // pointwise
      {{1, 6, 8, 8}, {5, 6, 1, 1}, 1, {{1, 1}, {2, 2}, {}, {}}, false},                    // strided 1x1
      {{1, 3, 9, 8}, {4, 3, 3, 3}, 1, {{3, 3}, {2, 2}, {}, {}, "SAME_UPPER"}, true},
      {{1, 3, 9, 8}, {4, 3, 4, 4}, 1, {{4, 4}, {2, 3}, {}, {}, "SAME_LOWER"}, true},
      {{1, 3, 9, 8}, {4, 3, 3, 2}, 1, {{3, 2}, {2, 2}, {}, {}, "VALID"}, false},
      {{2, 3, 17}, {4, 3, 5}, 1, {{5}, {2}, {2, 1}, {2}}, true},                           // 1-D
      {{1, 2, 5, 6, 4}, {3, 2, 3, 3, 2}, 1, {{3, 3, 2}, {1, 2, 1}, {1, 1, 0, 1, 0, 1}, {}}, true},  // 3-D
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const ConvCase& c = cases[i];
    Tensor x = random_tensor(c.x, 100 + i), w = random_tensor(c.w, 200 + i), b = random_tensor({c.w[0]}, 300 + i);
    Shape ys;
    const std::vector<float> want = ref_conv(x, w, c.bias ? &b : nullptr, c.win, c.group, ys);
    OpAttributes a = window_attrs(c.win);
    a.values["group"] = c.group;
    a.values["kernel_shape"] = c.win.kernel;
    Tensor y = run(OpType::kConv, a, {&x, &w, c.bias ? &b : nullptr}, ys);
    expect_close(y, want, "conv case " + std::to_string(i));
  }
}

TEST(CpuNnKernels, ConvFusedActivations) {
  Tensor x = random_tensor({1, 3, 6, 6}, 1), w = random_tensor({4, 3, 3, 3}, 2), b = random_tensor({4}, 3);
  Shape ys;
  const WindowCase win{{3, 3}, {}, {1, 1, 1, 1}, {}};
  const std::vector<float> plain = ref_conv(x, w, &b, win, 1, ys);
  const std::vector<std::pair<FusedActivation, std::function<float(float)>>> acts = {
      {{Activation::kRelu}, [](float v) { return std::max(v, 0.0f); }},
      {{Activation::kLeakyRelu, 0.1f}, [](float v) { return v >= 0 ? v : 0.1f * v; }},
      {{Activation::kSigmoid}, [](float v) { return 1.0f / (1.0f + std::exp(-v)); }},
      {{Activation::kTanh}, [](float v) { return std::tanh(v); }},
      {{Activation::kClip, -0.5f, 0.5f}, [](float v) { return std::min(std::max(v, -0.5f), 0.5f); }},
      {{Activation::kHardSigmoid, 0.2f, 0.5f}, [](float v) { return std::min(std::max(0.2f * v + 0.5f, 0.0f), 1.0f); }},
  };
  for (const auto& [act, fn] : acts) {
    OpAttributes a = window_attrs(win);
    a.activation = act;
    Tensor y = run(OpType::kConv, a, {&x, &w, &b}, ys);
    std::vector<float> want = plain;
    for (float& v : want) v = fn(v);
    expect_close(y, want, "conv activation " + std::to_string(static_cast<int>(act.kind)));
  }
}

// ---------------------------------------------------------------------------------------------
// ConvTranspose

struct ConvTransposeCase {
  Shape x, w;  // w = [C, M/group, k...]
  std::int64_t group;
  I64s strides, pads, dilations, output_padding, output_shape;
  std::string auto_pad = "NOTSET";
};

std::vector<float> ref_conv_transpose(const Tensor& x, const Tensor& w, const Tensor* b, const ConvTransposeCase& c,
                                      Shape& y_shape) {
  const Shape& xs = x.shape();
  const std::size_t r = xs.size() - 2;
  const std::int64_t ch = xs[1], cg = ch / c.group, mg = w.shape()[1];
  I64s pads = c.pads.empty() ? I64s(2 * r, 0) : c.pads;
  Shape out(r);
  for (std::size_t i = 0; i < r; ++i) {
    const std::int64_t s = c.strides.empty() ? 1 : c.strides[i], d = c.dilations.empty() ? 1 : c.dilations[i];
    const std::int64_t op = c.output_padding.empty() ? 0 : c.output_padding[i];
    const std::int64_t k = w.shape()[2 + i], in = xs[2 + i];
    if (!c.output_shape.empty() || c.auto_pad != "NOTSET") {
      out[i] = !c.output_shape.empty() ? c.output_shape[i] : in * s;
      const std::int64_t total = s * (in - 1) + op + ((k - 1) * d + 1) - out[i];
      pads[i] = c.auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      pads[r + i] = total - pads[i];
    } else {
      out[i] = s * (in - 1) + op + ((k - 1) * d + 1) - pads[i] - pads[r + i];
    }
  }
  y_shape = {xs[0], mg * c.group};
  y_shape.insert(y_shape.end(), out.begin(), out.end());
  std::vector<double> y(static_cast<std::size_t>(product(y_shape)), 0.0);
  const Shape k_sp(w.shape().begin() + 2, w.shape().end());
  for (std::int64_t xi = 0; xi < x.elements(); ++xi) {
    const I64s xc = unravel(xi, xs);
    const std::int64_t gi = xc[1] / cg;
    for (std::int64_t m = 0; m < mg; ++m) {
      for (std::int64_t ki = 0; ki < product(k_sp); ++ki) {
        const I64s kc = unravel(ki, k_sp);
        I64s yc = {xc[0], gi * mg + m};
        bool inside = true;
        for (std::size_t d = 0; d < r; ++d) {
          const std::int64_t s = c.strides.empty() ? 1 : c.strides[d], dl = c.dilations.empty() ? 1 : c.dilations[d];
          const std::int64_t o = xc[2 + d] * s - pads[d] + kc[d] * dl;
          inside = inside && o >= 0 && o < out[d];
          yc.push_back(o);
        }
        if (!inside) continue;
        I64s wc = {xc[1], m};
        wc.insert(wc.end(), kc.begin(), kc.end());
        y[ravel(yc, y_shape)] += static_cast<double>(x.data<float>()[xi]) * w.data<float>()[ravel(wc, w.shape())];
      }
    }
  }
  std::vector<float> yf(y.size());
  const std::int64_t plane = product(y_shape, 2);
  for (std::size_t i = 0; i < y.size(); ++i)
    yf[i] = static_cast<float>(y[i] + (b ? b->data<float>()[(i / plane) % y_shape[1]] : 0.0f));
  return yf;
}

TEST(CpuNnKernels, ConvTransposeMatchesReference) {
  const std::vector<ConvTransposeCase> cases = {
      {{1, 3, 4, 5}, {3, 2, 3, 3}, 1, {2, 2}, {1, 1, 1, 1}, {}, {1, 1}, {}},
      {{2, 4, 3, 4}, {4, 3, 4, 4}, 2, {2, 2}, {1, 1, 1, 1}, {}, {}, {}},
      {{1, 2, 5, 4}, {2, 2, 3, 2}, 1, {1, 2}, {0, 1, 2, 0}, {2, 1}, {}, {}},
      {{1, 3, 4, 4}, {3, 2, 3, 3}, 1, {2, 2}, {}, {}, {}, {9, 8}},       // output_shape
      {{1, 3, 4, 4}, {3, 2, 3, 3}, 1, {2, 2}, {}, {}, {}, {}, "SAME_UPPER"},
      {{1, 3, 4, 4}, {3, 2, 3, 3}, 1, {2, 2}, {}, {}, {}, {}, "SAME_LOWER"},
      {{1, 4, 5, 5}, {4, 1, 3, 3}, 4, {1, 1}, {1, 1, 1, 1}, {}, {}, {}},  // depthwise
      {{2, 3, 7}, {3, 4, 3}, 1, {3}, {1, 0}, {}, {2}, {}},                // 1-D
      {{1, 2, 3, 3, 2}, {2, 2, 2, 3, 2}, 1, {2, 1, 2}, {0, 1, 0, 1, 0, 1}, {}, {}, {}},  // 3-D
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const ConvTransposeCase& c = cases[i];
    Tensor x = random_tensor(c.x, 400 + i), w = random_tensor(c.w, 500 + i),
           b = random_tensor({c.w[1] * c.group}, 600 + i);
    Shape ys;
    const std::vector<float> want = ref_conv_transpose(x, w, &b, c, ys);
    OpAttributes a;
    a.values["group"] = c.group;
    if (!c.strides.empty()) a.values["strides"] = c.strides;
    if (!c.pads.empty()) a.values["pads"] = c.pads;
    if (!c.dilations.empty()) a.values["dilations"] = c.dilations;
    if (!c.output_padding.empty()) a.values["output_padding"] = c.output_padding;
    if (!c.output_shape.empty()) a.values["output_shape"] = c.output_shape;
    if (c.auto_pad != "NOTSET") a.values["auto_pad"] = c.auto_pad;
    Tensor y = run(OpType::kConvTranspose, a, {&x, &w, &b}, ys);
    expect_close(y, want, "conv transpose case " + std::to_string(i));
  }
}

// ---------------------------------------------------------------------------------------------
// Gemm and MatMul

TEST(CpuNnKernels, GemmMatchesReference) {
  struct Case {
    std::int64_t m, k, n;
    bool ta, tb;
    float alpha, beta;
    Shape c;  // empty: no C
  };
  const std::vector<Case> cases = {
      {3, 4, 5, false, false, 1, 1, {3, 5}},  {4, 3, 6, true, false, 0.5f, 2, {6}},
      {5, 7, 2, false, true, 1, 0.3f, {5, 1}}, {6, 5, 4, true, true, 2, 1, {1}},
      {2, 3, 4, false, false, 1, 1, {}},      {3, 4, 5, false, false, 1, 1, {1, 5}},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    Tensor a = random_tensor(c.ta ? Shape{c.k, c.m} : Shape{c.m, c.k}, 700 + i);
    Tensor b = random_tensor(c.tb ? Shape{c.n, c.k} : Shape{c.k, c.n}, 800 + i);
    Tensor cc = random_tensor(c.c.empty() ? Shape{1} : c.c, 900 + i);
    std::vector<float> want(c.m * c.n);
    for (std::int64_t r = 0; r < c.m; ++r) {
      for (std::int64_t col = 0; col < c.n; ++col) {
        double s = 0;
        for (std::int64_t t = 0; t < c.k; ++t)
          s += static_cast<double>(a.data<float>()[c.ta ? t * c.m + r : r * c.k + t]) *
               b.data<float>()[c.tb ? col * c.k + t : t * c.n + col];
        double cv = 0;
        if (!c.c.empty()) {
          const std::int64_t cm = c.c.size() == 2 ? c.c[0] : 1, cn = c.c.back();
          cv = cc.data<float>()[(cm == 1 ? 0 : r) * cn + (cn == 1 ? 0 : col)];
        }
        want[r * c.n + col] = static_cast<float>(c.alpha * s + c.beta * cv);
      }
    }
    OpAttributes at = attrs_of({{"transA", std::int64_t{c.ta}}, {"transB", std::int64_t{c.tb}},
                                {"alpha", c.alpha}, {"beta", c.beta}});
    Tensor y = run(OpType::kGemm, at, {&a, &b, c.c.empty() ? nullptr : &cc}, {c.m, c.n});
    expect_close(y, want, "gemm case " + std::to_string(i));
  }
}

// numpy matmul reference via broadcasting on the batch dims.
std::vector<float> ref_matmul(const Tensor& a, const Tensor& b, Shape& y_shape) {
  Shape sa = a.shape(), sb = b.shape();
  const bool a1 = sa.size() == 1, b1 = sb.size() == 1;
  if (a1) sa.insert(sa.begin(), 1);
  if (b1) sb.push_back(1);
  const std::size_t rank = std::max(sa.size(), sb.size());
  auto left_pad = [rank](const Shape& s) {
    Shape p(rank, 1);
    std::copy(s.begin(), s.end(), p.end() - static_cast<std::ptrdiff_t>(s.size()));
    return p;
  };
  sa = left_pad(sa);
  sb = left_pad(sb);
  Shape full(rank);
  for (std::size_t i = 0; i + 2 < rank; ++i) full[i] = std::max(sa[i], sb[i]);
  const std::int64_t m = sa[rank - 2], k = sa[rank - 1], n = sb[rank - 1];
  full[rank - 2] = m;
  full[rank - 1] = n;
  std::vector<float> y(static_cast<std::size_t>(product(full)));
  for (std::int64_t yi = 0; yi < product(full); ++yi) {
    const I64s c = unravel(yi, full);
    I64s ca = c, cb = c;
    for (std::size_t i = 0; i + 2 < rank; ++i) {
      if (sa[i] == 1) ca[i] = 0;
      if (sb[i] == 1) cb[i] = 0;
    }
    double s = 0;
    for (std::int64_t t = 0; t < k; ++t) {
      ca[rank - 1] = t;
      cb[rank - 2] = t;
      s += static_cast<double>(a.data<float>()[ravel(ca, sa)]) * b.data<float>()[ravel(cb, sb)];
    }
    y[yi] = static_cast<float>(s);
  }
  y_shape = full;
  if (a1) y_shape.erase(y_shape.end() - 2);
  if (b1) y_shape.pop_back();
  return y;
}

TEST(CpuNnKernels, MatMulMatchesReference) {
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{3, 4}, {4, 5}},          {{2, 3, 4}, {4, 6}},       {{2, 3, 4}, {2, 4, 5}},
      {{2, 1, 3, 4}, {3, 4, 2}}, {{4}, {2, 4, 3}},          {{2, 3, 4}, {4}},
      {{5}, {5}},                {{1, 3, 4}, {2, 4, 2}},    {{3, 4}, {2, 2, 4, 3}},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    Tensor a = random_tensor(cases[i].first, 1000 + i), b = random_tensor(cases[i].second, 1100 + i);
    Shape ys;
    const std::vector<float> want = ref_matmul(a, b, ys);
    Tensor y = run(OpType::kMatMul, {}, {&a, &b}, ys);
    expect_close(y, want, "matmul case " + std::to_string(i));
  }
  // The fusion pass's bias (last axis) and activation.
  Tensor a = random_tensor({2, 3, 4}, 1), b = random_tensor({4, 5}, 2), bias = random_tensor({5}, 3);
  Shape ys;
  std::vector<float> want = ref_matmul(a, b, ys);
  for (std::size_t i = 0; i < want.size(); ++i) want[i] = std::max(0.0f, want[i] + bias.data<float>()[i % 5]);
  OpAttributes at;
  at.activation.kind = Activation::kRelu;
  expect_close(run(OpType::kMatMul, at, {&a, &b, &bias}, ys), want, "matmul bias relu");
}

// ---------------------------------------------------------------------------------------------
// Normalisations and softmax

TEST(CpuNnKernels, BatchAndInstanceNormalization) {
  const Shape xs = {2, 3, 4, 5};
  Tensor x = random_tensor(xs, 1), scale = random_tensor({3}, 2), bias = random_tensor({3}, 3),
         mean = random_tensor({3}, 4), var = random_tensor({3}, 5, 0.1f, 2.0f);
  const float eps = 1e-3f;
  std::vector<float> want(x.elements());
  for (std::int64_t i = 0; i < x.elements(); ++i) {
    const std::int64_t c = (i / 20) % 3;
    want[i] = (x.data<float>()[i] - mean.data<float>()[c]) / std::sqrt(var.data<float>()[c] + eps) *
                  scale.data<float>()[c] +
              bias.data<float>()[c];
  }
  expect_close(run(OpType::kBatchNormalization, attrs_of({{"epsilon", eps}}), {&x, &scale, &bias, &mean, &var}, xs),
               want, "batchnorm");
  for (std::int64_t p = 0; p < 6; ++p) {
    double m = 0, v = 0;
    for (int i = 0; i < 20; ++i) m += x.data<float>()[p * 20 + i];
    m /= 20;
    for (int i = 0; i < 20; ++i) v += (x.data<float>()[p * 20 + i] - m) * (x.data<float>()[p * 20 + i] - m);
    v /= 20;
    for (int i = 0; i < 20; ++i)
      want[p * 20 + i] = static_cast<float>((x.data<float>()[p * 20 + i] - m) / std::sqrt(v + eps) *
                                                scale.data<float>()[p % 3] +
                                            bias.data<float>()[p % 3]);
  }
  expect_close(run(OpType::kInstanceNormalization, attrs_of({{"epsilon", eps}}), {&x, &scale, &bias}, xs), want,
               "instancenorm");
}

TEST(CpuNnKernels, LayerNormalization) {
  const Shape xs = {2, 3, 4, 5};
  Tensor x = random_tensor(xs, 7);
  for (std::int64_t axis : {-1, -2, 1}) {
    const int ax = axis < 0 ? static_cast<int>(axis + 4) : static_cast<int>(axis);
    const Shape ns(xs.begin() + ax, xs.end());
    Tensor scale = random_tensor(ns, 8), bias = random_tensor(ns, 9);
    const std::int64_t inner = product(ns), outer = x.elements() / inner;
    for (bool with_bias : {true, false}) {
      std::vector<float> want(x.elements());
      for (std::int64_t o = 0; o < outer; ++o) {
        const float* xr = x.data<float>() + o * inner;
        double m = 0, v = 0;
        for (std::int64_t i = 0; i < inner; ++i) m += xr[i];
        m /= static_cast<double>(inner);
        for (std::int64_t i = 0; i < inner; ++i) v += (xr[i] - m) * (xr[i] - m);
        v /= static_cast<double>(inner);
        for (std::int64_t i = 0; i < inner; ++i)
          want[o * inner + i] = static_cast<float>((xr[i] - m) / std::sqrt(v + 1e-5) * scale.data<float>()[i] +
                                                   (with_bias ? bias.data<float>()[i] : 0.0f));
      }
      expect_close(run(OpType::kLayerNormalization, attrs_of({{"axis", axis}}),
                       {&x, &scale, with_bias ? &bias : nullptr}, xs),
                   want, "layernorm axis " + std::to_string(axis));
    }
  }
}

TEST(CpuNnKernels, LayerNormalizationBroadcastsScaleAndBias) {
  // Scale and B unidirectionally broadcast to the normalised shape X.shape[axis:] = [6, 4].
  const Shape xs = {2, 6, 4};
  Tensor x = random_tensor(xs, 17);
  struct Case {
    Shape scale, bias;  // bias empty: absent
  };
  for (const Case& c : std::vector<Case>{{{4}, {}}, {{4}, {6, 1}}, {{6, 1}, {1, 4}}, {{1}, {4}}, {{1, 1, 4}, {6, 4}}}) {
    Tensor scale = random_tensor(c.scale, 18), bias = random_tensor(c.bias.empty() ? Shape{1} : c.bias, 19);
    auto at = [](const Tensor& t, std::int64_t r, std::int64_t k) {  // t broadcast at normalised (r, k)
      const Shape& s = t.shape();
      const std::int64_t cols = s.empty() ? 1 : s.back();
      const std::int64_t rows = s.size() >= 2 ? s[s.size() - 2] : 1;
      return t.data<float>()[(rows == 1 ? 0 : r) * cols + (cols == 1 ? 0 : k)];
    };
    std::vector<float> want(x.elements());
    for (std::int64_t o = 0; o < 2; ++o) {
      const float* xr = x.data<float>() + o * 24;
      double m = 0, v = 0;
      for (int i = 0; i < 24; ++i) m += xr[i];
      m /= 24;
      for (int i = 0; i < 24; ++i) v += (xr[i] - m) * (xr[i] - m);
      v /= 24;
      for (int i = 0; i < 24; ++i)
        want[o * 24 + i] = static_cast<float>((xr[i] - m) / std::sqrt(v + 1e-5) * at(scale, i / 4, i % 4) +
                                              (c.bias.empty() ? 0.0f : at(bias, i / 4, i % 4)));
    }
    expect_close(run(OpType::kLayerNormalization, attrs_of({{"axis", std::int64_t{1}}}),
                     {&x, &scale, c.bias.empty() ? nullptr : &bias}, xs),
                 want, "layernorm scale " + shape_to_string(c.scale) + " bias " + shape_to_string(c.bias));
  }
  // Not broadcastable to [6, 4]: a clear error, not a wrong answer.
  Tensor bad = random_tensor({3}, 20), y = Tensor::zeros(DType::kFloat32, xs);
  const Status s = cpu_kernel(OpType::kLayerNormalization)(
      {OpType::kLayerNormalization, attrs_of({{"axis", std::int64_t{1}}}), {x.view(), bad.view()}, {y.view()}});
  EXPECT_FALSE(s.is_ok());
}

// Reference along one axis: fn(values) -> outputs.
std::vector<float> along_axis(const Tensor& x, int axis,
                              const std::function<std::vector<double>(const std::vector<double>&)>& fn) {
  const Shape& s = x.shape();
  const std::int64_t len = s[axis], inner = product(s, axis + 1), outer = product(s, 0, axis);
  std::vector<float> y(x.elements());
  for (std::int64_t o = 0; o < outer; ++o) {
    for (std::int64_t in = 0; in < inner; ++in) {
      std::vector<double> v(len);
      for (std::int64_t i = 0; i < len; ++i) v[i] = x.data<float>()[(o * len + i) * inner + in];
      const std::vector<double> r = fn(v);
      for (std::int64_t i = 0; i < len; ++i) y[(o * len + i) * inner + in] = static_cast<float>(r[i]);
    }
  }
  return y;
}

TEST(CpuNnKernels, SoftmaxLogSoftmaxLpNorm) {
  const Shape xs = {2, 3, 4, 5};
  Tensor x = random_tensor(xs, 11, -4.0f, 4.0f);
  auto softmax = [](const std::vector<double>& v) {
    double mx = -1e30, s = 0;
    for (double e : v) mx = std::max(mx, e);
    for (double e : v) s += std::exp(e - mx);
    std::vector<double> r;
    for (double e : v) r.push_back(std::exp(e - mx) / s);
    return r;
  };
  for (std::int64_t axis : {-1, 1, 0, 2}) {
    const int ax = axis < 0 ? static_cast<int>(axis + 4) : static_cast<int>(axis);
    const OpAttributes at = attrs_of({{"axis", axis}});
    expect_close(run(OpType::kSoftmax, at, {&x}, xs), along_axis(x, ax, softmax), "softmax " + std::to_string(axis));
    expect_close(run(OpType::kLogSoftmax, at, {&x}, xs), along_axis(x, ax, [&](const std::vector<double>& v) {
                   auto r = softmax(v);
                   for (double& e : r) e = std::log(e);
                   return r;
                 }),
                 "logsoftmax " + std::to_string(axis));
    for (std::int64_t p : {1, 2}) {
      expect_close(run(OpType::kLpNormalization, attrs_of({{"axis", axis}, {"p", p}}), {&x}, xs),
                   along_axis(x, ax,
                              [&](const std::vector<double>& v) {
                                double n = 0;
                                for (double e : v) n += p == 1 ? std::fabs(e) : e * e;
                                if (p == 2) n = std::sqrt(n);
                                std::vector<double> r;
                                for (double e : v) r.push_back(e / n);
                                return r;
                              }),
                   "lpnorm");
    }
  }
  Tensor small = make({1, 2}, {0.0f, std::log(2.0f)});
  expect_close(run(OpType::kSoftmax, {}, {&small}, {1, 2}), {1.0f / 3, 2.0f / 3}, "softmax known");
}

// ---------------------------------------------------------------------------------------------
// Pools

std::vector<float> ref_pool(const Tensor& x, const WindowCase& c, bool max, bool include_pad, Shape& y_shape) {
  const Shape& xs = x.shape();
  const std::size_t r = xs.size() - 2;
  const Shape in_sp(xs.begin() + 2, xs.end());
  I64s pads;
  Shape out_sp;
  window_shape(in_sp, c, pads, out_sp);
  y_shape = {xs[0], xs[1]};
  y_shape.insert(y_shape.end(), out_sp.begin(), out_sp.end());
  std::vector<float> y(static_cast<std::size_t>(product(y_shape)));
  const Shape k_sp(c.kernel.begin(), c.kernel.end());
  for (std::int64_t yi = 0; yi < product(y_shape); ++yi) {
    const I64s yc = unravel(yi, y_shape);
    double acc = max ? -1e30 : 0.0;
    std::int64_t count = 0;
    for (std::int64_t ki = 0; ki < product(k_sp); ++ki) {
      const I64s kc = unravel(ki, k_sp);
      I64s xc = {yc[0], yc[1]};
      bool inside = true, in_padded = true;
      for (std::size_t d = 0; d < r; ++d) {
        const std::int64_t s = c.strides.empty() ? 1 : c.strides[d], dl = c.dilations.empty() ? 1 : c.dilations[d];
        const std::int64_t p = yc[2 + d] * s - pads[d] + kc[d] * dl;
        inside = inside && p >= 0 && p < in_sp[d];
        in_padded = in_padded && p >= -pads[d] && p < in_sp[d] + pads[r + d];
        xc.push_back(p);
      }
      if (include_pad ? in_padded : inside) ++count;
      if (!inside) continue;
      const double v = x.data<float>()[ravel(xc, xs)];
      acc = max ? std::max(acc, v) : acc + v;
    }
    y[yi] = static_cast<float>(max ? acc : acc / static_cast<double>(count));
  }
  return y;
}

TEST(CpuNnKernels, PoolsMatchReference) {
  struct Case {
    Shape x;
    WindowCase win;
  };
  const std::vector<Case> cases = {
      {{1, 2, 8, 8}, {{2, 2}, {2, 2}, {}, {}}},
      {{2, 3, 9, 7}, {{3, 3}, {2, 2}, {1, 1, 1, 1}, {}}},
      {{1, 2, 9, 7}, {{3, 2}, {2, 2}, {1, 0, 0, 1}, {}, "NOTSET", true}},  // ceil_mode
      {{1, 2, 10, 10}, {{3, 3}, {3, 3}, {}, {}, "NOTSET", true}},
      {{1, 2, 9, 8}, {{3, 3}, {2, 2}, {}, {}, "SAME_UPPER"}},
      {{1, 2, 9, 8}, {{2, 4}, {2, 3}, {}, {}, "SAME_LOWER"}},
      {{1, 2, 9, 8}, {{3, 3}, {1, 1}, {}, {}, "VALID"}},
      {{1, 2, 11, 10}, {{3, 3}, {1, 2}, {2, 2, 2, 2}, {2, 2}}},             // dilations
      {{2, 3, 15}, {{4}, {3}, {1, 2}, {}}},                                   // 1-D
      {{1, 2, 5, 6, 7}, {{2, 3, 2}, {2, 2, 3}, {0, 1, 1, 1, 0, 0}, {}}},      // 3-D
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    Tensor x = random_tensor(c.x, 1200 + i);
    OpAttributes a = window_attrs(c.win);
    a.values["kernel_shape"] = c.win.kernel;
    Shape ys;
    std::vector<float> want = ref_pool(x, c.win, true, false, ys);
    expect_close(run(OpType::kMaxPool, a, {&x}, ys), want, "maxpool case " + std::to_string(i));
    if (!c.win.dilations.empty()) continue;  // AveragePool dilations arrived in opset 19; tested via MaxPool
    for (bool include_pad : {false, true}) {
      want = ref_pool(x, c.win, false, include_pad, ys);
      a.values["count_include_pad"] = std::int64_t{include_pad};
      expect_close(run(OpType::kAveragePool, a, {&x}, ys), want,
                   "avgpool case " + std::to_string(i) + (include_pad ? " include_pad" : ""));
    }
  }
  Tensor x = make({1, 1, 4, 4}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16});
  const OpAttributes a = attrs_of({{"kernel_shape", I64s{2, 2}}, {"strides", I64s{2, 2}}});
  expect_close(run(OpType::kMaxPool, a, {&x}, {1, 1, 2, 2}), {6, 8, 14, 16}, "maxpool known");
  expect_close(run(OpType::kAveragePool, a, {&x}, {1, 1, 2, 2}), {3.5f, 5.5f, 11.5f, 13.5f}, "avgpool known");
  // MaxPool's optional Indices output: flat row-major indices into X.
  Tensor y = Tensor::zeros(DType::kFloat32, {1, 1, 2, 2}), idx = Tensor::zeros(DType::kInt64, {1, 1, 2, 2});
  ASSERT_TRUE(cpu_kernel(OpType::kMaxPool)({OpType::kMaxPool, a, {x.view()}, {y.view(), idx.view()}}).is_ok());
  EXPECT_EQ(std::vector<std::int64_t>(idx.data<std::int64_t>(), idx.data<std::int64_t>() + 4),
            (std::vector<std::int64_t>{5, 7, 13, 15}));
}

TEST(CpuNnKernels, GlobalPools) {
  Tensor x = random_tensor({2, 3, 4, 5}, 13);
  std::vector<float> mean(6), mx(6);
  for (int p = 0; p < 6; ++p) {
    double s = 0;
    float m = -1e30f;
    for (int i = 0; i < 20; ++i) {
      s += x.data<float>()[p * 20 + i];
      m = std::max(m, x.data<float>()[p * 20 + i]);
    }
    mean[p] = static_cast<float>(s / 20);
    mx[p] = m;
  }
  expect_close(run(OpType::kGlobalAveragePool, {}, {&x}, {2, 3, 1, 1}), mean, "global average pool");
  expect_close(run(OpType::kGlobalMaxPool, {}, {&x}, {2, 3, 1, 1}), mx, "global max pool");
}

// ---------------------------------------------------------------------------------------------
// Resize and Upsample

struct ResizeRef {
  std::string mode = "nearest", coord = "half_pixel", nearest = "round_prefer_floor";
  float cubic_a = -0.75f;
  bool exclude_outside = false;
};

// One axis of the ONNX reference's cubic: the 4 indices nearest to v in the edge-padded axis
// (ties to the smaller), ratio = frac(v), or 1 when v is whole; indices returned unpadded and
// clamped (edge padding), weights renormalised without outside taps when asked.
void ref_cubic_axis(double v, std::int64_t in, const ResizeRef& c, std::array<std::int64_t, 4>& idx,
                    std::array<double, 4>& w) {
  const std::int64_t pad = 2;
  std::vector<std::int64_t> all(static_cast<std::size_t>(in + 2 * pad));
  std::iota(all.begin(), all.end(), std::int64_t{0});
  const double vp = v + static_cast<double>(pad);
  std::stable_sort(all.begin(), all.end(), [&](std::int64_t a, std::int64_t b) {
    return std::fabs(vp - static_cast<double>(a)) < std::fabs(vp - static_cast<double>(b));
  });
  std::sort(all.begin(), all.begin() + 4);
  const double ratio = v == std::floor(v) ? 1.0 : v - std::floor(v);
  const double a = c.cubic_a;
  const double coeffs[4] = {((a * (ratio + 1) - 5 * a) * (ratio + 1) + 8 * a) * (ratio + 1) - 4 * a,
                            ((a + 2) * ratio - (a + 3)) * ratio * ratio + 1,
                            ((a + 2) * (1 - ratio) - (a + 3)) * (1 - ratio) * (1 - ratio) + 1,
                            ((a * ((1 - ratio) + 1) - 5 * a) * ((1 - ratio) + 1) + 8 * a) * ((1 - ratio) + 1) - 4 * a};
  double sum = 0;
  for (int k = 0; k < 4; ++k) {
    const std::int64_t i = all[k] - pad;
    w[k] = c.exclude_outside && (i < 0 || i >= in) ? 0.0 : coeffs[k];
    idx[k] = std::min(std::max<std::int64_t>(i, 0), in - 1);
    sum += w[k];
  }
  if (c.exclude_outside)
    for (double& x : w) x /= sum;
}

std::vector<float> ref_resize(const Tensor& x, const Shape& ys, const std::vector<float>& scales, const ResizeRef& c) {
  const Shape& xs = x.shape();
  const std::size_t r = xs.size();
  std::vector<float> y(static_cast<std::size_t>(product(ys)));
  for (std::int64_t yi = 0; yi < product(ys); ++yi) {
    const I64s yc = unravel(yi, ys);
    std::vector<double> orig(r);
    for (std::size_t d = 0; d < r; ++d) {
      const double s = scales[d], o = static_cast<double>(yc[d]);
      const double in = static_cast<double>(xs[d]), out = static_cast<double>(ys[d]);
      if (c.coord == "half_pixel") orig[d] = (o + 0.5) / s - 0.5;
      else if (c.coord == "pytorch_half_pixel") orig[d] = out > 1 ? (o + 0.5) / s - 0.5 : 0;
      else if (c.coord == "align_corners") orig[d] = out == 1 ? 0 : o * (in - 1) / (out - 1);
      else if (c.coord == "asymmetric") orig[d] = o / s;
      else if (c.coord == "tf_half_pixel_for_nearest") orig[d] = (o + 0.5) / s;
      else if (c.coord == "half_pixel_symmetric") {
        const double adj = out / (s * in);
        orig[d] = in / 2 * (1 - adj) + (o + 0.5) / s - 0.5;
      }
    }
    if (c.mode == "nearest") {
      I64s xc(r);
      for (std::size_t d = 0; d < r; ++d) {
        const double v = orig[d];
        double n = 0;
        const bool half = v - std::floor(v) == 0.5;
        if (c.nearest == "round_prefer_floor") n = half ? std::floor(v) : std::round(v);
        else if (c.nearest == "round_prefer_ceil") n = half ? std::ceil(v) : std::round(v);
        else if (c.nearest == "floor") n = std::floor(v);
        else n = std::ceil(v);
        xc[d] = std::min<std::int64_t>(std::max<std::int64_t>(static_cast<std::int64_t>(n), 0), xs[d] - 1);
      }
      y[yi] = x.data<float>()[ravel(xc, xs)];
    } else if (c.mode == "cubic") {
      std::vector<std::array<std::int64_t, 4>> idx(r);
      std::vector<std::array<double, 4>> w(r);
      for (std::size_t d = 0; d < r; ++d) ref_cubic_axis(orig[d], xs[d], c, idx[d], w[d]);
      double acc = 0;
      I64s xc(r);
      for (std::int64_t combo = 0; combo < (std::int64_t{1} << (2 * r)); ++combo) {
        double wt = 1;
        for (std::size_t d = 0; d < r; ++d) {
          const int k = static_cast<int>((combo >> (2 * d)) & 3);
          xc[d] = idx[d][k];
          wt *= w[d][k];
        }
        acc += wt * x.data<float>()[ravel(xc, xs)];
      }
      y[yi] = static_cast<float>(acc);
    } else {
      double acc = 0;
      for (int corner = 0; corner < (1 << r); ++corner) {
        double w = 1;
        I64s xc(r);
        for (std::size_t d = 0; d < r; ++d) {
          const double v = std::min(std::max(orig[d], 0.0), static_cast<double>(xs[d] - 1));
          const std::int64_t f = static_cast<std::int64_t>(std::floor(v));
          const double frac = v - static_cast<double>(f);
          const bool hi = corner & (1 << d);
          xc[d] = std::min(f + (hi ? 1 : 0), xs[d] - 1);
          w *= hi ? frac : 1 - frac;
        }
        acc += w * x.data<float>()[ravel(xc, xs)];
      }
      y[yi] = static_cast<float>(acc);
    }
  }
  return y;
}

TEST(CpuNnKernels, ResizeMatchesReference) {
  struct Case {
    Shape x, y;
    std::vector<float> scales;  // empty: sizes given
    ResizeRef c;
  };
  const std::vector<Case> cases = {
      {{1, 2, 4, 5}, {1, 2, 8, 10}, {1, 1, 2, 2}, {"nearest", "asymmetric", "floor"}},
      {{1, 2, 4, 5}, {1, 2, 8, 10}, {1, 1, 2, 2}, {"nearest", "half_pixel", "round_prefer_floor"}},
      {{1, 2, 4, 5}, {1, 2, 8, 10}, {1, 1, 2, 2}, {"nearest", "half_pixel", "round_prefer_ceil"}},
      {{1, 2, 4, 5}, {1, 2, 8, 10}, {1, 1, 2, 2}, {"nearest", "tf_half_pixel_for_nearest", "round_prefer_ceil"}},
      {{1, 2, 7, 9}, {1, 2, 3, 4}, {}, {"nearest", "align_corners", "ceil"}},
      {{1, 2, 7, 9}, {1, 2, 5, 13}, {}, {"nearest", "half_pixel", "round_prefer_floor"}},
      {{1, 2, 4, 5}, {1, 2, 8, 10}, {1, 1, 2, 2}, {"linear", "half_pixel"}},
      {{1, 2, 4, 5}, {1, 2, 7, 11}, {}, {"linear", "align_corners"}},
      {{1, 2, 4, 5}, {1, 2, 7, 11}, {}, {"linear", "asymmetric"}},
      {{1, 2, 4, 5}, {1, 2, 1, 11}, {}, {"linear", "pytorch_half_pixel"}},
      {{1, 2, 9, 8}, {1, 2, 4, 3}, {}, {"linear", "half_pixel"}},
      {{1, 2, 4, 5}, {1, 2, 7, 12}, {1, 1, 1.8f, 2.5f}, {"linear", "half_pixel_symmetric"}},
      {{2, 3, 4, 5}, {2, 6, 6, 5}, {}, {"linear", "half_pixel"}},   // N-D linear incl. channels
      {{2, 3, 4, 5}, {4, 6, 6, 10}, {}, {"nearest", "asymmetric", "floor"}},
      {{3, 10}, {3, 7}, {}, {"linear", "half_pixel"}},              // 1 axis
      {{2, 3, 4, 3, 5}, {2, 3, 6, 5, 9}, {}, {"linear", "align_corners"}},  // trilinear
      // Cubic, every coordinate mode, scales and sizes, up and down.
      {{1, 2, 5, 6}, {1, 2, 8, 8}, {}, {"cubic", "align_corners"}},  // the op harness case
      {{1, 2, 5, 6}, {1, 2, 10, 12}, {1, 1, 2, 2}, {"cubic", "half_pixel"}},
      {{1, 2, 4, 5}, {1, 2, 7, 11}, {}, {"cubic", "asymmetric"}},
      {{1, 2, 9, 8}, {1, 2, 4, 3}, {}, {"cubic", "pytorch_half_pixel"}},
      {{1, 2, 4, 5}, {1, 2, 7, 12}, {1, 1, 1.8f, 2.5f}, {"cubic", "half_pixel_symmetric"}},
      {{1, 2, 4, 5}, {1, 2, 9, 3}, {}, {"cubic", "align_corners", "round_prefer_floor", -0.5f, true}},
      {{1, 2, 4, 5}, {1, 2, 7, 11}, {}, {"cubic", "half_pixel", "round_prefer_floor", -0.75f, true}},
      {{2, 3, 4, 5}, {2, 5, 6, 5}, {}, {"cubic", "half_pixel"}},  // N-D cubic incl. channels
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    Tensor x = random_tensor(c.x, 1300 + i);
    std::vector<float> scales = c.scales;
    if (scales.empty())
      for (std::size_t d = 0; d < c.x.size(); ++d) scales.push_back(static_cast<float>(c.y[d]) / static_cast<float>(c.x[d]));
    Tensor scales_t = make({static_cast<std::int64_t>(c.scales.size())}, c.scales);
    Tensor sizes_t = ints(c.y);
    const OpAttributes a = attrs_of({{"mode", c.c.mode},
                                     {"coordinate_transformation_mode", c.c.coord},
                                     {"nearest_mode", c.c.nearest},
                                     {"cubic_coeff_a", c.c.cubic_a},
                                     {"exclude_outside", std::int64_t{c.c.exclude_outside}}});
    Tensor y = c.scales.empty() ? run(OpType::kResize, a, {&x, nullptr, nullptr, &sizes_t}, c.y)
                                : run(OpType::kResize, a, {&x, nullptr, &scales_t}, c.y);
    expect_close(y, ref_resize(x, c.y, scales, c.c), "resize case " + std::to_string(i));
  }
}

TEST(CpuNnKernels, ResizeAndUpsampleKnownValues) {
  Tensor x = make({1, 1, 2, 2}, {1, 2, 3, 4});
  Tensor scales = make({4}, {1, 1, 2, 2});
  expect_close(run(OpType::kUpsample, attrs_of({{"mode", std::string("nearest")}}), {&x, &scales}, {1, 1, 4, 4}),
               {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}, "upsample nearest");
  expect_close(run(OpType::kUpsample, attrs_of({{"mode", std::string("linear")}}), {&x, &scales}, {1, 1, 4, 4}),
               {1, 1.5f, 2, 2, 2, 2.5f, 3, 3, 3, 3.5f, 4, 4, 3, 3.5f, 4, 4}, "upsample linear");
  Tensor sizes = ints({1, 1, 3, 3});
  expect_close(run(OpType::kResize,
                   attrs_of({{"mode", std::string("linear")}, {"coordinate_transformation_mode", std::string("align_corners")}}),
                   {&x, nullptr, nullptr, &sizes}, {1, 1, 3, 3}),
               {1, 1.5f, 2, 2, 2.5f, 3, 3, 3.5f, 4}, "resize align_corners");
  // Opset 10: (X, scales), asymmetric + floor.
  expect_close(run(OpType::kResize, {}, {&x, &scales}, {1, 1, 4, 4}),
               {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}, "resize opset 10");
  // tf_crop_and_resize is refused.
  Tensor y = Tensor::zeros(DType::kFloat32, {1, 1, 4, 4});
  const OpAttributes crop = attrs_of({{"coordinate_transformation_mode", std::string("tf_crop_and_resize")}});
  const Status s = cpu_kernel(OpType::kResize)({OpType::kResize, crop, {x.view(), TensorView{}, scales.view()}, {y.view()}});
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
}

// ---------------------------------------------------------------------------------------------
// DepthToSpace, SpaceToDepth, Pad

TEST(CpuNnKernels, DepthToSpaceAndBack) {
  Tensor small = make({1, 8, 1, 1}, {0, 1, 2, 3, 4, 5, 6, 7});
  expect_close(run(OpType::kDepthToSpace, attrs_of({{"blocksize", std::int64_t{2}}}), {&small}, {1, 2, 2, 2}),
               {0, 2, 4, 6, 1, 3, 5, 7}, "depth_to_space DCR");
  expect_close(run(OpType::kDepthToSpace, attrs_of({{"blocksize", std::int64_t{2}}, {"mode", std::string("CRD")}}),
                   {&small}, {1, 2, 2, 2}),
               {0, 1, 2, 3, 4, 5, 6, 7}, "depth_to_space CRD");
  // Random: the 6-D reshape/transpose of the spec.
  const std::int64_t n = 2, c = 3, h = 4, w = 5, b = 2;
  Tensor x = random_tensor({n, c * b * b, h, w}, 21);
  std::vector<float> dcr(x.elements()), crd(x.elements());
  for (std::int64_t ni = 0; ni < n; ++ni)
    for (std::int64_t ci = 0; ci < c; ++ci)
      for (std::int64_t y = 0; y < h * b; ++y)
        for (std::int64_t xx = 0; xx < w * b; ++xx) {
          const std::int64_t i = y % b, j = xx % b, o = ((ni * c + ci) * h * b + y) * w * b + xx;
          dcr[o] = x.data<float>()[((ni * c * b * b + (i * b + j) * c + ci) * h + y / b) * w + xx / b];
          crd[o] = x.data<float>()[((ni * c * b * b + ci * b * b + i * b + j) * h + y / b) * w + xx / b];
        }
  Tensor y_dcr = run(OpType::kDepthToSpace, attrs_of({{"blocksize", b}}), {&x}, {n, c, h * b, w * b});
  expect_close(y_dcr, dcr, "depth_to_space DCR random");
  expect_close(run(OpType::kDepthToSpace, attrs_of({{"blocksize", b}, {"mode", std::string("CRD")}}), {&x},
                   {n, c, h * b, w * b}),
               crd, "depth_to_space CRD random");
  // SpaceToDepth inverts DepthToSpace DCR.
  Tensor back = run(OpType::kSpaceToDepth, attrs_of({{"blocksize", b}}), {&y_dcr}, x.shape());
  expect_close(back, std::vector<float>(x.data<float>(), x.data<float>() + x.elements()), "space_to_depth");
}

std::int64_t pad_source(std::int64_t i, std::int64_t n, const std::string& mode) {
  if (i >= 0 && i < n) return i;
  if (mode == "constant") return -1;
  if (mode == "edge") return i < 0 ? 0 : n - 1;
  if (mode == "wrap") {
    while (i < 0) i += n;
    return i % n;
  }
  if (n == 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;  // reflect
  return i;
}

TEST(CpuNnKernels, PadMatchesReference) {
  struct Case {
    Shape x;
    I64s pads;
    std::string mode;
    I64s axes;
  };
  const std::vector<Case> cases = {
      {{2, 3, 4, 5}, {0, 0, 1, 2, 0, 0, 2, 1}, "constant", {}},
      {{2, 3, 4, 5}, {0, 1, 1, 2, 1, 0, 2, 1}, "reflect", {}},
      {{2, 3, 4, 5}, {0, 0, 3, 4, 0, 0, 3, 4}, "edge", {}},
      {{2, 3, 4, 5}, {0, 0, 2, 6, 0, 0, 5, 1}, "wrap", {}},
      {{2, 3, 4, 5}, {0, 0, -1, 2, 0, 0, 1, -2}, "constant", {}},  // negative pads crop
      {{2, 3, 4, 5}, {1, 2, 2, 1}, "reflect", {2, -1}},            // axes input
      {{7}, {5, 9}, "reflect", {}},                                // reflect past one period
  };
  for (std::size_t ci = 0; ci < cases.size(); ++ci) {
    const Case& c = cases[ci];
    Tensor x = random_tensor(c.x, 1400 + ci);
    const std::size_t r = c.x.size();
    I64s begin(r, 0), end(r, 0);
    I64s axes = c.axes;
    if (axes.empty())
      for (std::size_t i = 0; i < r; ++i) axes.push_back(static_cast<std::int64_t>(i));
    for (std::size_t i = 0; i < axes.size(); ++i) {
      const std::int64_t a = axes[i] < 0 ? axes[i] + static_cast<std::int64_t>(r) : axes[i];
      begin[a] = c.pads[i];
      end[a] = c.pads[axes.size() + i];
    }
    Shape ys(r);
    for (std::size_t i = 0; i < r; ++i) ys[i] = c.x[i] + begin[i] + end[i];
    const float value = 0.75f;
    std::vector<float> want(static_cast<std::size_t>(product(ys)));
    for (std::int64_t yi = 0; yi < product(ys); ++yi) {
      I64s xc = unravel(yi, ys);
      bool constant = false;
      for (std::size_t d = 0; d < r; ++d) {
        xc[d] = pad_source(xc[d] - begin[d], c.x[d], c.mode);
        constant = constant || xc[d] < 0;
      }
      want[yi] = constant ? value : x.data<float>()[ravel(xc, c.x)];
    }
    Tensor pads = ints(c.pads), cv = make({}, {value}), axes_t = ints(c.axes);
    Tensor y = run(OpType::kPad, attrs_of({{"mode", c.mode}}), {&x, &pads, &cv, c.axes.empty() ? nullptr : &axes_t}, ys);
    expect_close(y, want, "pad case " + std::to_string(ci));
  }
  // Opset < 11: pads and value as attributes.
  Tensor x = make({3}, {1, 2, 3});
  expect_close(run(OpType::kPad, attrs_of({{"mode", std::string("reflect")}, {"pads", I64s{2, 2}}}), {&x}, {7}),
               {3, 2, 1, 2, 3, 2, 1}, "pad reflect known");
  expect_close(run(OpType::kPad, attrs_of({{"pads", I64s{1, 0}}, {"value", 9.0f}}), {&x}, {4}), {9, 1, 2, 3},
               "pad attribute value");
}

// ---------------------------------------------------------------------------------------------
// Throughput of a face-model-sized Conv (printed, not asserted).

TEST(CpuNnKernels, ConvThroughput) {
  Tensor x = random_tensor({1, 256, 64, 64}, 31), w = random_tensor({256, 256, 3, 3}, 32, -0.05f, 0.05f),
         b = random_tensor({256}, 33);
  const OpAttributes a = attrs_of({{"pads", I64s{1, 1, 1, 1}}});
  Tensor y = Tensor::zeros(DType::kFloat32, {1, 256, 64, 64});
  const KernelArgs args{OpType::kConv, a, {x.view(), w.view(), b.view()}, {y.view()}};
  ASSERT_TRUE(cpu_kernel(OpType::kConv)(args).is_ok());  // warm-up (scratch, BLAS threads)
  const int runs = 3;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < runs; ++i) ASSERT_TRUE(cpu_kernel(OpType::kConv)(args).is_ok());
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / runs;
  const double flops = 2.0 * 256 * 256 * 9 * 64 * 64;
  std::printf("Conv 1x256x64x64 3x3 256->256: %.1f ms, %.1f GFLOP/s\n", s * 1e3, flops / s * 1e-9);
  // Spot-check a few outputs against the direct sum.
  for (std::int64_t idx : {std::int64_t{0}, std::int64_t{12345}, std::int64_t{256 * 4096 - 1}}) {
    const std::int64_t m = idx / 4096, oh = (idx / 64) % 64, ow = idx % 64;
    double acc = b.data<float>()[m];
    for (std::int64_t c = 0; c < 256; ++c)
      for (int kh = 0; kh < 3; ++kh)
        for (int kw = 0; kw < 3; ++kw) {
          const std::int64_t ih = oh - 1 + kh, iw = ow - 1 + kw;
          if (ih < 0 || ih >= 64 || iw < 0 || iw >= 64) continue;
          acc += static_cast<double>(x.data<float>()[(c * 64 + ih) * 64 + iw]) *
                 w.data<float>()[((m * 256 + c) * 3 + kh) * 3 + kw];
        }
    EXPECT_NEAR(y.data<float>()[idx], acc, 1e-4 * std::fabs(acc) + 1e-4);
  }
}

}  // namespace
}  // namespace fswap
