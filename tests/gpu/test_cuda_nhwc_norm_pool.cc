// The CUDA normalisations, pools and Resize on NHWC tensors against the CPU kernels on the same
// data: BatchNormalization (+ fused Relu), InstanceNormalization (+ the fused AdaIN's style input
// and a fused Relu, in both layouts), MaxPool and AveragePool with
// channels_last = 1 (tests/unit/test_channels_last_norm_pool.cc checks the CPU's channels_last
// path against its NCHW one), FilterResponseNorm in NCHW and NHWC, and Resize of axes 1 and 2 of [N, H, W, C] (scales [1, sh, sw, 1],
// its NHWC fast path). fp32 within 1e-4 relative, fp16 within 1e-2 (the CPU fed the same
// half-rounded inputs). The fast Resize path must also equal the generic N-D kernel bit for bit:
// the same resize of [N, H, W, C, 1] (5-D, so the generic kernel) gives the same bytes.
// The kernels run directly on a CudaContext made here (a stream and a device workspace).
// NhwcThroughput prints fp16 ms (CUDA events, median of 20 after warm-up) of each op on sizes
// of the FaceFusion models in NCHW and in NHWC (and Resize through the generic kernel).
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "backends/cpu/cpu_kernels.h"
#include "backends/cuda/cuda_kernels.h"
#include "core/half.h"
#include "gpu/compare.h"
#include "gpu/gpu_env.h"
#include "gpu/kernel_env.h"

namespace fswap {
namespace {

using I64s = std::vector<std::int64_t>;
using test::as_float;
using test::DeviceBuffer;
using test::download_bytes;
using test::kernel_gpu;
using test::upload;


// An input of a node: its values (float32 on the host) and whether it is a float tensor that
// takes the node's dtype (else it goes to the device as is, with a host copy: Resize's scales).
struct Operand {
  Tensor values;
  bool float_data = true;
};

// op on CUDA in `dtype`; Y's bytes.
Result<std::vector<std::uint8_t>> run_cuda_bytes(OpType op, const OpAttributes& attrs,
                                                 const std::vector<Operand>& inputs, const Shape& y_shape,
                                                 DType dtype, const std::vector<TensorView>& extra_outputs = {}) {
  std::vector<std::unique_ptr<DeviceBuffer>> buffers;
  std::vector<TensorView> views, host_views;
  for (const Operand& in : inputs) {
    const DType d = in.float_data ? dtype : in.values.dtype();
    buffers.push_back(upload(in.values, d));
    views.push_back({d, in.values.shape(), buffers.back()->data});
    host_views.push_back(in.float_data ? TensorView{} : in.values.view());
  }
  DeviceBuffer y(static_cast<std::size_t>(shape_elements(y_shape)) * dtype_size(dtype));
  std::vector<TensorView> outputs = {{dtype, y_shape, y.data}};
  outputs.insert(outputs.end(), extra_outputs.begin(), extra_outputs.end());
  FSWAP_RETURN_IF_ERROR(cuda::cuda_kernel(op)({op, attrs, views, outputs, host_views, kernel_gpu().ctx}));
  return download_bytes(y.data, static_cast<std::size_t>(shape_elements(y_shape)) * dtype_size(dtype));
}

// op on the CPU (float32).
Tensor run_cpu(OpType op, const OpAttributes& attrs, const std::vector<Operand>& inputs, const Shape& y_shape) {
  std::vector<TensorView> views;
  for (const Operand& in : inputs) views.push_back(in.values.view());
  Tensor y = Tensor::zeros(DType::kFloat32, y_shape);
  const Status s = cpu_kernel(op)({op, attrs, views, {y.view()}});
  EXPECT_TRUE(s.is_ok()) << op_name(op) << " on the CPU: " << s.to_string();
  return y;
}

// The float inputs as the device sees them in `dtype` (rounded to half for fp16).
std::vector<Operand> as_seen_in(std::vector<Operand> inputs, DType dtype) {
  if (dtype != DType::kFloat16) return inputs;
  for (Operand& in : inputs)
    if (in.float_data) in.values = std::move(test::rounded_to_half({std::move(in.values)})[0]);
  return inputs;
}

// op on CUDA in fp32 and fp16 against the CPU on the same (rounded) inputs.
void expect_cuda_matches_cpu(OpType op, const OpAttributes& attrs, const std::vector<Operand>& inputs,
                             const Shape& y_shape, const std::string& what) {
  for (const DType dtype : {DType::kFloat32, DType::kFloat16}) {
    const std::vector<Operand> seen = as_seen_in(inputs, dtype);
    const Tensor want = run_cpu(op, attrs, seen, y_shape);
    Result<std::vector<std::uint8_t>> got = run_cuda_bytes(op, attrs, seen, y_shape, dtype);
    ASSERT_TRUE(got.is_ok()) << what << ": " << got.status().to_string();
    const double rtol = dtype == DType::kFloat16 ? 1e-2 : 1e-4;
    const test::Comparison c = test::compare(want, as_float(*got, y_shape, dtype), rtol);
    EXPECT_EQ(c.bad, 0) << what << " (" << dtype_name(dtype) << "): " << c.describe();
  }
}

OpAttributes channels_last(OpAttributes a = {}) {
  a.values["channels_last"] = std::int64_t{1};
  return a;
}

Operand random(const Shape& shape, unsigned seed, float low = -1, float high = 1) {
  return {test::random_tensor(shape, seed, low, high)};
}

TEST(CudaNhwcNormPool, BatchNormalization) {
  SKIP_WITHOUT_GPU();
  // NHWC shapes; C = 300 spans two blocks of channels; C = 64 and 136 run in 16-byte groups of
  // channels (a group of 8 float16 or 4 float32 values), 300 too in float32.
  for (const Shape& x : {Shape{2, 7, 6, 5}, Shape{1, 16, 16, 64}, Shape{1, 3, 5, 300}, Shape{3, 9, 7, 136}}) {
    const std::int64_t c = x[3];
    const std::vector<Operand> in = {random(x, 1, -2, 2), random({c}, 2), random({c}, 3), random({c}, 4),
                                     random({c}, 5, 0.1f, 2.0f)};
    OpAttributes a = channels_last();
    a.values["epsilon"] = 1e-3f;
    expect_cuda_matches_cpu(OpType::kBatchNormalization, a, in, x, "BatchNormalization " + shape_to_string(x));
    a.activation.kind = Activation::kRelu;
    expect_cuda_matches_cpu(OpType::kBatchNormalization, a, in, x, "BatchNormalization+Relu " + shape_to_string(x));
  }
}

TEST(CudaNhwcNormPool, InstanceNormalization) {
  SKIP_WITHOUT_GPU();
  // Odd sizes, one pixel, channels beyond a warp, and planes long enough to be gathered in slices.
  for (const Shape& x : {Shape{2, 7, 5, 3}, Shape{1, 1, 1, 4}, Shape{3, 17, 33, 40}, Shape{1, 128, 96, 64},
                         Shape{2, 64, 64, 256}}) {
    const std::int64_t c = x[3];
    // An offset mean, as real activations have, tests the moments' accuracy.
    const std::vector<Operand> in = {random(x, 6, 2, 4), random({c}, 7), random({c}, 8)};
    expect_cuda_matches_cpu(OpType::kInstanceNormalization, channels_last(), in, x,
                            "InstanceNormalization " + shape_to_string(x));
  }
}

// With the style input of the swappers' fused AdaIN (backends/op.h) and a fused Relu: per (n, c)
// a scale and a shift from a row of the style, one row per image or one for all; channels-last in
// and out of 16-byte groups, and NCHW.
TEST(CudaNhwcNormPool, InstanceNormalizationWithStyleAndRelu) {
  SKIP_WITHOUT_GPU();
  struct Case {
    Shape x;
    bool last;
    std::int64_t style_rows, scale_at, shift_at;
  };
  for (const Case& k : {Case{{2, 32, 32, 64}, true, 2, 8, 72}, Case{{1, 5, 3, 3}, true, 1, 3, 0},
                        Case{{3, 9, 11, 40}, true, 1, 40, 0}, Case{{3, 40, 9, 11}, false, 3, 0, 40},
                        Case{{2, 16, 64, 64}, false, 1, 16, 40}, Case{{1, 2, 256, 256}, false, 1, 0, 2}}) {
    const std::int64_t c = k.last ? k.x[3] : k.x[1];
    const std::int64_t row = std::max(k.scale_at, k.shift_at) + c;
    const std::vector<Operand> in = {random(k.x, 9, 2, 4), random({c}, 10), random({c}, 11),
                                     random({k.style_rows, row}, 12, -2, 2)};
    OpAttributes a = k.last ? channels_last() : OpAttributes{};
    a.values["style_scale"] = k.scale_at;
    a.values["style_shift"] = k.shift_at;
    a.activation.kind = Activation::kRelu;
    expect_cuda_matches_cpu(OpType::kInstanceNormalization, a, in, k.x,
                            "styled InstanceNormalization+Relu " + shape_to_string(k.x));
  }
}

TEST(CudaNhwcNormPool, FilterResponseNorm) {
  SKIP_WITHOUT_GPU();
  // C = 5 (channels one by one), 40 and 64 (16-byte groups of channels); one pixel, odd and
  // 64 × 64 planes; NCHW and NHWC. [1, 2, 256, 256] NCHW gathers its long planes in slices.
  std::vector<std::pair<Shape, bool>> cases;  // (X, channels_last)
  for (const std::int64_t c : {5, 40, 64})
    for (const auto& [h, w] : {std::pair{1, 1}, std::pair{7, 9}, std::pair{64, 64}}) {
      cases.push_back({{2, c, h, w}, false});
      cases.push_back({{2, h, w, c}, true});
    }
  cases.push_back({{1, 2, 256, 256}, false});
  for (const auto& [x, last] : cases) {
    const std::int64_t c = last ? x[3] : x[1];
    // An offset mean, as real activations have; tau [1, C, 1, 1] (any shape of C values) high
    // enough that the floor clips part of each channel.
    const std::vector<Operand> in = {random(x, 40, -1, 3), random({c}, 41, 0.5f, 1.5f), random({c}, 42),
                                     random({1, c, 1, 1}, 43, -0.5f, 0.5f)};
    OpAttributes a = last ? channels_last() : OpAttributes{};
    a.values["epsilon"] = 1e-6f;
    expect_cuda_matches_cpu(OpType::kFilterResponseNorm, a, in, x,
                            std::string("FilterResponseNorm ") + (last ? "NHWC " : "NCHW ") + shape_to_string(x));
  }
}

struct PoolCase {
  Shape x;  // NHWC
  I64s kernel, strides, pads, dilations;
  bool ceil_mode = false, count_include_pad = false;
};

// Y [N, OH, OW, C] as ONNX computes it (explicit pads).
Shape pool_output(const PoolCase& c) {
  Shape y{c.x[0]};
  for (std::size_t d = 0; d < 2; ++d) {
    const std::int64_t s = c.strides.empty() ? 1 : c.strides[d], dil = c.dilations.empty() ? 1 : c.dilations[d];
    const std::int64_t pb = c.pads.empty() ? 0 : c.pads[d], pe = c.pads.empty() ? 0 : c.pads[d + 2];
    const std::int64_t num = c.x[1 + d] + pb + pe - ((c.kernel[d] - 1) * dil + 1);
    std::int64_t out = (c.ceil_mode ? (num + s - 1) / s : num / s) + 1;
    if (c.ceil_mode && (out - 1) * s >= c.x[1 + d] + pb) --out;  // the last window starts inside
    y.push_back(out);
  }
  y.push_back(c.x[3]);
  return y;
}

OpAttributes pool_attrs(const PoolCase& c) {
  OpAttributes a = channels_last();
  a.values["kernel_shape"] = c.kernel;
  if (!c.strides.empty()) a.values["strides"] = c.strides;
  if (!c.pads.empty()) a.values["pads"] = c.pads;
  if (!c.dilations.empty()) a.values["dilations"] = c.dilations;
  if (c.ceil_mode) a.values["ceil_mode"] = std::int64_t{1};
  if (c.count_include_pad) a.values["count_include_pad"] = std::int64_t{1};
  return a;
}

TEST(CudaNhwcNormPool, MaxPoolAndAveragePool) {
  SKIP_WITHOUT_GPU();
  const std::vector<PoolCase> cases = {
      {{2, 9, 11, 5}, {3, 3}, {2, 2}, {1, 1, 1, 1}, {}},
      {{1, 9, 8, 3}, {3, 2}, {2, 2}, {1, 0, 0, 1}, {}, true},          // ceil_mode
      {{2, 7, 7, 4}, {3, 3}, {2, 2}, {1, 1, 1, 1}, {}, true, true},    // ceil_mode + count_include_pad
      {{1, 6, 5, 6}, {3, 3}, {1, 1}, {1, 1, 1, 1}, {}, false, true},   // count_include_pad
      {{2, 11, 10, 3}, {3, 3}, {1, 2}, {2, 1, 2, 1}, {2, 2}},          // dilation 2
      {{1, 64, 64, 96}, {2, 2}, {2, 2}, {}, {}},                       // 2dfan4-like
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const PoolCase& c = cases[i];
    const std::vector<Operand> in = {random(c.x, 10 + static_cast<unsigned>(i), -4, 4)};
    const std::string name = "case " + std::to_string(i) + " " + shape_to_string(c.x);
    expect_cuda_matches_cpu(OpType::kMaxPool, pool_attrs(c), in, pool_output(c), "MaxPool " + name);
    expect_cuda_matches_cpu(OpType::kAveragePool, pool_attrs(c), in, pool_output(c), "AveragePool " + name);
  }
}

TEST(CudaNhwcNormPool, ChannelsLastNeedsAFourDimensionalInput) {
  SKIP_WITHOUT_GPU();
  const Operand x = random({2, 6, 5}, 20), c = random({5}, 21), var = random({5}, 22, 0.5f, 1.0f);
  for (const OpType op : {OpType::kBatchNormalization, OpType::kInstanceNormalization, OpType::kFilterResponseNorm,
                          OpType::kMaxPool, OpType::kAveragePool}) {
    const bool pool = op == OpType::kMaxPool || op == OpType::kAveragePool;
    OpAttributes a = channels_last();
    if (pool) a.values["kernel_shape"] = I64s{3};
    const std::vector<Operand> in = op == OpType::kBatchNormalization      ? std::vector{x, c, c, c, var}
                                    : op == OpType::kInstanceNormalization ? std::vector{x, c, c}
                                    : op == OpType::kFilterResponseNorm    ? std::vector{x, c, c, c}
                                                                           : std::vector{x};
    const Result<std::vector<std::uint8_t>> got =
        run_cuda_bytes(op, a, in, pool ? Shape{2, 4, 5} : Shape{2, 6, 5}, DType::kFloat32);
    ASSERT_FALSE(got.is_ok()) << op_name(op);
    EXPECT_EQ(got.status().code(), StatusCode::kInvalidInput) << got.status().to_string();
    EXPECT_NE(got.status().message().find("channels_last needs a 4-D input"), std::string::npos)
        << got.status().to_string();
  }
}

TEST(CudaNhwcNormPool, MaxPoolIndicesAreUnsupportedWithChannelsLast) {
  SKIP_WITHOUT_GPU();
  OpAttributes a = channels_last();
  a.values["kernel_shape"] = I64s{2, 2};
  a.values["strides"] = I64s{2, 2};
  DeviceBuffer indices(27 * sizeof(std::int64_t));
  const Result<std::vector<std::uint8_t>> got =
      run_cuda_bytes(OpType::kMaxPool, a, {random({1, 6, 6, 3}, 23)}, {1, 3, 3, 3}, DType::kFloat32,
                     {{DType::kInt64, {1, 3, 3, 3}, indices.data}});
  ASSERT_FALSE(got.is_ok());
  EXPECT_EQ(got.status().code(), StatusCode::kUnsupported) << got.status().to_string();
}

// ---- Resize of [N, H, W, C] on axes 1 and 2

struct ResizeCase {
  std::string name;
  std::string mode, coordinates, nearest_mode;
  Shape x;  // NHWC
  float scale_h, scale_w;
};

OpAttributes resize_attrs(const ResizeCase& c) {
  OpAttributes a;
  a.values["mode"] = c.mode;
  a.values["coordinate_transformation_mode"] = c.coordinates;
  if (!c.nearest_mode.empty()) a.values["nearest_mode"] = c.nearest_mode;
  return a;
}

// Resize's inputs (X, roi, scales) for X of `x_shape` holding x's values and one scale per axis.
std::vector<Operand> resize_inputs(const Tensor& x, const Shape& x_shape, const std::vector<float>& scales) {
  Tensor reshaped = Tensor::zeros(DType::kFloat32, x_shape);
  std::copy(x.data<float>(), x.data<float>() + x.elements(), reshaped.data<float>());
  Tensor s = Tensor::zeros(DType::kFloat32, {static_cast<std::int64_t>(scales.size())});
  std::copy(scales.begin(), scales.end(), s.data<float>());
  return {{std::move(reshaped)}, {Tensor::zeros(DType::kFloat32, {0}), false}, {std::move(s), false}};
}

TEST(CudaNhwcNormPool, ResizeOfHeightAndWidth) {
  SKIP_WITHOUT_GPU();
  std::vector<ResizeCase> cases;
  for (const auto& [x, scale] : {std::pair{Shape{2, 7, 9, 5}, 2.0f}, std::pair{Shape{1, 9, 11, 70}, 0.5f},
                                 std::pair{Shape{1, 32, 32, 256}, 2.0f}}) {
    const std::string size = shape_to_string(x) + " x" + std::to_string(scale);
    cases.push_back({"nearest asymmetric floor " + size, "nearest", "asymmetric", "floor", x, scale, scale});
    cases.push_back({"nearest half_pixel " + size, "nearest", "half_pixel", "round_prefer_floor", x, scale, scale});
    cases.push_back({"linear half_pixel " + size, "linear", "half_pixel", "", x, scale, scale});
    cases.push_back({"linear align_corners " + size, "linear", "align_corners", "", x, scale, scale});
    cases.push_back({"linear asymmetric " + size, "linear", "asymmetric", "", x, scale, scale});
    cases.push_back({"cubic half_pixel " + size, "cubic", "half_pixel", "", x, scale, scale});
  }
  // Only H moves; H and W by different factors.
  cases.push_back({"linear half_pixel H only", "linear", "half_pixel", "", {1, 5, 6, 33}, 2.0f, 1.0f});
  cases.push_back({"cubic asymmetric 2x0.5", "cubic", "asymmetric", "", {2, 6, 10, 7}, 2.0f, 0.5f});
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const ResizeCase& c = cases[i];
    const Tensor x = test::random_tensor(c.x, 30 + static_cast<unsigned>(i));
    const Shape y{c.x[0], static_cast<std::int64_t>(std::floor(static_cast<float>(c.x[1]) * c.scale_h)),
                  static_cast<std::int64_t>(std::floor(static_cast<float>(c.x[2]) * c.scale_w)), c.x[3]};
    const OpAttributes a = resize_attrs(c);
    const std::vector<Operand> in = resize_inputs(x, c.x, {1.0f, c.scale_h, c.scale_w, 1.0f});
    expect_cuda_matches_cpu(OpType::kResize, a, in, y, "Resize " + c.name);
    // The same resize as 5-D [N, H, W, C, 1] takes the generic N-D kernel: the same bytes.
    const Shape x5{c.x[0], c.x[1], c.x[2], c.x[3], 1}, y5{y[0], y[1], y[2], y[3], 1};
    for (const DType dtype : {DType::kFloat32, DType::kFloat16}) {
      const Result<std::vector<std::uint8_t>> fast = run_cuda_bytes(OpType::kResize, a, in, y, dtype);
      const Result<std::vector<std::uint8_t>> generic =
          run_cuda_bytes(OpType::kResize, a, resize_inputs(x, x5, {1.0f, c.scale_h, c.scale_w, 1.0f, 1.0f}), y5, dtype);
      ASSERT_TRUE(fast.is_ok() && generic.is_ok()) << c.name;
      EXPECT_TRUE(*fast == *generic) << "Resize " << c.name << " (" << dtype_name(dtype)
                                     << "): the NHWC kernel differs from the generic one";
    }
  }
}

// ---- throughput

// The median ms of op in fp16 over 20 timed runs (after 3 warm-up runs) on device copies of inputs.
double median_ms(OpType op, const OpAttributes& attrs, const std::vector<Operand>& inputs, const Shape& y_shape) {
  std::vector<std::unique_ptr<DeviceBuffer>> buffers;
  std::vector<TensorView> views, host_views;
  for (const Operand& in : inputs) {
    const DType d = in.float_data ? DType::kFloat16 : in.values.dtype();
    buffers.push_back(upload(in.values, d));
    views.push_back({d, in.values.shape(), buffers.back()->data});
    host_views.push_back(in.float_data ? TensorView{} : in.values.view());
  }
  DeviceBuffer y(static_cast<std::size_t>(shape_elements(y_shape)) * 2);
  const auto launch = [&] {
    const Status s = cuda::cuda_kernel(op)({op, attrs, views, {{DType::kFloat16, y_shape, y.data}}, host_views, kernel_gpu().ctx});
    EXPECT_TRUE(s.is_ok()) << op_name(op) << ": " << s.to_string();
  };
  return test::median_gpu_ms(launch);
}

Shape nhwc_shape(const Shape& nchw) { return {nchw[0], nchw[2], nchw[3], nchw[1]}; }

TEST(CudaNhwcNormPool, NhwcThroughput) {
  SKIP_WITHOUT_GPU();
  std::printf("| op (fp16) | NCHW shape | NCHW ms | NHWC ms |\n|---|---|---|---|\n");
  const auto row = [](const char* op, const Shape& x, double nchw, double nhwc) {
    std::printf("| %s | %s | %.4f | %.4f |\n", op, shape_to_string(x).c_str(), nchw, nhwc);
  };
  for (const Shape& x : {Shape{1, 256, 64, 64}, Shape{1, 64, 256, 256}}) {
    const std::int64_t c = x[1];
    const std::vector<Operand> rest = {random({c}, 2), random({c}, 3), random({c}, 4), random({c}, 5, 0.1f, 2.0f)};
    std::vector<Operand> first = {random(x, 1)}, last = {random(nhwc_shape(x), 1)};
    first.insert(first.end(), rest.begin(), rest.end());
    last.insert(last.end(), rest.begin(), rest.end());
    row("BatchNormalization", x, median_ms(OpType::kBatchNormalization, {}, first, x),
        median_ms(OpType::kBatchNormalization, channels_last(), last, nhwc_shape(x)));
  }
  for (const Shape& x : {Shape{1, 1024, 32, 32}, Shape{1, 512, 64, 64}, Shape{1, 128, 128, 128}}) {
    const std::int64_t c = x[1];
    row("InstanceNormalization", x,
        median_ms(OpType::kInstanceNormalization, {}, {random(x, 1), random({c}, 2), random({c}, 3)}, x),
        median_ms(OpType::kInstanceNormalization, channels_last(),
                  {random(nhwc_shape(x), 1), random({c}, 2), random({c}, 3)}, nhwc_shape(x)));
  }
  // xseg's FRN + TLU sizes (its 256 × 256 input).
  for (const Shape& x : {Shape{1, 32, 256, 256}, Shape{1, 64, 128, 128}, Shape{1, 256, 32, 32}}) {
    const std::int64_t c = x[1];
    const std::vector<Operand> rest = {random({c}, 2, 0.5f, 1.5f), random({c}, 3), random({c}, 4)};
    std::vector<Operand> first = {random(x, 1)}, last = {random(nhwc_shape(x), 1)};
    first.insert(first.end(), rest.begin(), rest.end());
    last.insert(last.end(), rest.begin(), rest.end());
    row("FilterResponseNorm", x, median_ms(OpType::kFilterResponseNorm, {}, first, x),
        median_ms(OpType::kFilterResponseNorm, channels_last(), last, nhwc_shape(x)));
  }
  for (const OpType op : {OpType::kMaxPool, OpType::kAveragePool}) {
    const Shape x{1, 128, 128, 128}, y{1, 128, 64, 64};
    OpAttributes a;
    a.values["kernel_shape"] = I64s{2, 2};
    a.values["strides"] = I64s{2, 2};
    row(op_name(op), x, median_ms(op, a, {random(x, 1)}, y),
        median_ms(op, channels_last(a), {random(nhwc_shape(x), 1)}, nhwc_shape(y)));
  }
  OpAttributes linear;
  linear.values["mode"] = std::string("linear");
  // The last: gfpgan's largest upsample, to [1, 128, 512, 512].
  for (const Shape& x : {Shape{1, 256, 32, 32}, Shape{1, 64, 128, 128}, Shape{1, 128, 256, 256}}) {
    const Shape y{x[0], x[1], 2 * x[2], 2 * x[3]}, x5{x[0], x[2], x[3], x[1], 1}, y5{y[0], y[2], y[3], y[1], 1};
    const Tensor values = test::random_tensor(x, 1);
    const double nchw = median_ms(OpType::kResize, linear, resize_inputs(values, x, {1, 1, 2, 2}), y);
    const double nhwc =
        median_ms(OpType::kResize, linear, resize_inputs(values, nhwc_shape(x), {1, 2, 2, 1}), nhwc_shape(y));
    const double generic = median_ms(OpType::kResize, linear, resize_inputs(values, x5, {1, 2, 2, 1, 1}), y5);
    row("Resize linear x2", x, nchw, nhwc);
    row("Resize linear x2, NHWC as 5-D (generic kernel)", x, nchw, generic);
  }
}

}  // namespace
}  // namespace fswap
