// The CUDA Conv and ConvTranspose kernels with channels_last = 1 against the CPU kernels on the
// same NHWC data (tests/support/conv_layout_cases.h; tests/unit/test_channels_last_conv.cc checks
// the CPU's channels_last path against its NCHW one): fp32 within 1e-4 relative, fp16 within 1e-2
// (the CPU fed the same half-rounded inputs). The kernels run directly on a CudaContext made here:
// one stream, cuDNN and cuBLASLt, an in-memory algorithm cache and a device workspace.
// CudaConvResidual: a Conv or ConvTranspose with a residual input 3 (the fused Add, backends/op.h)
// in NCHW and NHWC, fp32 and fp16, against the CPU kernel in the same layout; CudaConvBatchResidual
// the same with a residual of batch 1 added to every item (a folded BatchNormalization's border
// term), and CudaConvPRelu with either residual.
// Also: the algorithm cache keeps NCHW and NHWC problems apart, and its file format carries the layout;
// a channels_last depthwise Conv bypasses cuDNN, and CudaChannelsLastDepthwise.ThroughputAgainstCudnn
// prints its kernel's fp16 ms beside cuDNN's on MobileNet-like layers.
#include <gtest/gtest.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "backends/cpu/cpu_kernels.h"
#include "backends/cuda/conv_algo_cache.h"
#include "backends/cuda/conv_graph.h"
#include "backends/cuda/cuda_kernels.h"
#include "backends/cuda/depthwise.h"
#include "backends/cuda/libraries.h"
#include "backends/op_rules.h"
#include "core/half.h"
#include "gpu/compare.h"
#include "gpu/gpu_env.h"
#include "gpu/kernel_env.h"
#include "support/conv_layout_cases.h"

namespace fswap {
namespace {

using test::ConvLayoutCase;
using test::DeviceBuffer;
using test::download;
using test::kernel_gpu;
using test::upload;

// The case's operands (NCHW), rounded to half for fp16 so the CPU computes on what the GPU reads;
// with `residual`, also R of Y's shape (NCHW; each node reads it in its own layout), or with
// `one_item` of Y's shape with batch 1.
struct Operands {
  Tensor x, w, b;
  std::optional<Tensor> r;
};
Operands operands(const ConvLayoutCase& c, DType dtype, bool residual = false, bool one_item = false) {
  std::vector<Tensor> t = {test::seeded_tensor(c.x, 1), test::seeded_tensor(c.w, 2),
                           test::seeded_tensor({test::out_channels(c)}, 3)};
  if (residual) {
    Shape r = test::inferred_output(c, false).value();
    if (one_item) r[0] = 1;
    t.push_back(test::seeded_tensor(r, 4));
  }
  if (dtype == DType::kFloat16) t = test::rounded_to_half(std::move(t));
  Operands o{std::move(t[0]), std::move(t[1]), std::move(t[2]), std::nullopt};
  if (residual) o.r = std::move(t[3]);
  return o;
}

// An NCHW operand as a node of the given layout reads it.
Tensor in_layout(const Tensor& nchw, bool nhwc) { return nhwc ? test::nhwc_of(nchw) : Tensor::copy_of(nchw.view()); }

// The case's node on the device in the given layout: operands uploaded, Y allocated.
struct DeviceNode {
  OpType op = OpType::kConv;
  DType dtype = DType::kFloat32;
  OpAttributes attrs;
  Shape y_shape;
  std::unique_ptr<DeviceBuffer> x, w, b, r, y;
  std::vector<TensorView> inputs;

  Status run(cuda::CudaKernel kernel) const {
    const std::vector<TensorView> host_inputs(inputs.size());
    return kernel({op, attrs, inputs, {{dtype, y_shape, y->data}}, host_inputs, kernel_gpu().ctx});
  }
  Tensor result() const { return download(y->data, y_shape, dtype); }
};

Result<DeviceNode> device_node(const ConvLayoutCase& c, const Operands& o, DType dtype, bool nhwc) {
  DeviceNode node;
  node.op = c.op;
  node.dtype = dtype;
  node.attrs = test::node_attributes(c, nhwc);
  FSWAP_ASSIGN_OR_RETURN(node.y_shape, test::inferred_output(c, nhwc));
  const Tensor x = in_layout(o.x, nhwc), w = in_layout(o.w, nhwc);
  node.x = upload(x, dtype);
  node.w = upload(w, dtype);
  node.b = upload(o.b, dtype);
  node.y = std::make_unique<DeviceBuffer>(static_cast<std::size_t>(shape_elements(node.y_shape)) * dtype_size(dtype));
  node.inputs = {{dtype, x.shape(), node.x->data}, {dtype, w.shape(), node.w->data}};
  if (c.bias) node.inputs.push_back({dtype, o.b.shape(), node.b->data});
  if (o.r) {
    const Tensor r = in_layout(*o.r, nhwc);
    node.r = upload(r, dtype);
    if (!c.bias) node.inputs.push_back({});  // absent bias
    node.inputs.push_back({dtype, r.shape(), node.r->data});
  }
  return node;
}

// The case's node on CUDA in the given layout; Y as float32 on the host.
Result<Tensor> run_cuda(const ConvLayoutCase& c, const Operands& o, DType dtype, bool nhwc) {
  FSWAP_ASSIGN_OR_RETURN(const DeviceNode node, device_node(c, o, dtype, nhwc));
  FSWAP_RETURN_IF_ERROR(node.run(cuda::cuda_kernel(c.op)));
  return node.result();
}

// The CPU kernel on the operands in the given layout (channels_last by default).
Tensor run_cpu(const ConvLayoutCase& c, const Operands& o, bool nhwc = true) {
  const Tensor x = in_layout(o.x, nhwc), w = in_layout(o.w, nhwc);
  const Tensor r = o.r ? in_layout(*o.r, nhwc) : Tensor{};
  Tensor y = Tensor::zeros(DType::kFloat32, test::inferred_output(c, nhwc).value());
  std::vector<TensorView> inputs = {x.view(), w.view()};
  if (c.bias) inputs.push_back(o.b.view());
  if (o.r) {
    if (!c.bias) inputs.push_back({});
    inputs.push_back(r.view());
  }
  const Status s = cpu_kernel(c.op)({c.op, test::node_attributes(c, nhwc), inputs, {y.view()}});
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  return y;
}

class CudaChannelsLast : public ::testing::TestWithParam<std::tuple<ConvLayoutCase, DType>> {};

TEST_P(CudaChannelsLast, MatchesTheCpuKernel) {
  ASSERT_TRUE(kernel_gpu().ready.is_ok()) << kernel_gpu().ready.to_string();
  const auto& [c, dtype] = GetParam();
  const Operands o = operands(c, dtype);
  const Tensor want = run_cpu(c, o);
  const double rtol = dtype == DType::kFloat16 ? 1e-2 : 1e-4;
  // The first run searches cuDNN's algorithms, the second takes the cached choice (depthwise cases
  // run CUDA's own kernel both times).
  for (const char* run : {"searched", "cached"}) {
    Result<Tensor> got = run_cuda(c, o, dtype, true);
    ASSERT_TRUE(got.is_ok()) << run << ": " << got.status().to_string();
    ASSERT_EQ(got->shape(), want.shape()) << run;
    const test::Comparison cmp = test::compare(want, *got, rtol);
    EXPECT_EQ(cmp.bad, 0) << run << ": " << cmp.describe() << " (rtol " << rtol << ")";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, CudaChannelsLast,
    ::testing::Combine(::testing::ValuesIn(test::conv_layout_cases()),
                       ::testing::Values(DType::kFloat32, DType::kFloat16)),
    [](const ::testing::TestParamInfo<std::tuple<ConvLayoutCase, DType>>& param) {
      return std::get<0>(param.param).name + (std::get<1>(param.param) == DType::kFloat16 ? "_fp16" : "_fp32");
    });

// Y = act(conv(X, W) + B + R) on CUDA in both layouts and dtypes against the CPU kernel in the same
// layout: cuDNN's forward and backward-data paths (direct and through the staging window) with the
// residual in the epilogue, the NHWC depthwise kernel (its channel-pair and one-channel paths), and
// the NHWC 1×1 convolutions cuBLASLt runs (the residual as its C).
// The shared layout cases of these names, in the shared list's order.
std::vector<ConvLayoutCase> cases_named(const std::vector<std::string>& names) {
  std::vector<ConvLayoutCase> cases;
  for (const ConvLayoutCase& c : test::conv_layout_cases())
    if (std::find(names.begin(), names.end(), c.name) != names.end()) cases.push_back(c);
  return cases;
}

// A parameterised conv test's name: the case, the dtype and the layout.
std::string conv_param_name(const ::testing::TestParamInfo<std::tuple<ConvLayoutCase, DType, bool>>& param) {
  return std::get<0>(param.param).name + (std::get<1>(param.param) == DType::kFloat16 ? "_fp16" : "_fp32") +
         (std::get<2>(param.param) ? "_nhwc" : "_nchw");
}

std::vector<ConvLayoutCase> residual_cases() {
  return cases_named({"Conv3x3Bias", "ConvDilation2", "ConvAsymmetricPads", "ConvRelu", "ConvWide", "ConvDepthwise",
                      "DepthwiseLeakyReluC3", "DepthwiseClipBatch2", "ConvTransposeStride2",
                      "ConvTransposeAsymmetricPads", "ConvPointwise", "PointwiseLeakyReluBatch2",
                      "PointwiseOnePixelRelu"});
}

class CudaConvResidual : public ::testing::TestWithParam<std::tuple<ConvLayoutCase, DType, bool>> {};

TEST_P(CudaConvResidual, MatchesTheCpuKernel) {
  ASSERT_TRUE(kernel_gpu().ready.is_ok()) << kernel_gpu().ready.to_string();
  const auto& [c, dtype, nhwc] = GetParam();
  const Operands o = operands(c, dtype, /*residual=*/true);
  const Tensor want = run_cpu(c, o, nhwc);
  const double rtol = dtype == DType::kFloat16 ? 1e-2 : 1e-4;
  Result<Tensor> got = run_cuda(c, o, dtype, nhwc);
  ASSERT_TRUE(got.is_ok()) << got.status().to_string();
  ASSERT_EQ(got->shape(), want.shape());
  const test::Comparison cmp = test::compare(want, *got, rtol);
  EXPECT_EQ(cmp.bad, 0) << cmp.describe() << " (rtol " << rtol << ")";
  // The residual counts: without it the result differs.
  const Operands plain{Tensor::copy_of(o.x.view()), Tensor::copy_of(o.w.view()), Tensor::copy_of(o.b.view()),
                       std::nullopt};
  EXPECT_GT(test::compare(run_cpu(c, plain, nhwc), *got, rtol).bad, 0);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, CudaConvResidual,
    ::testing::Combine(::testing::ValuesIn(residual_cases()), ::testing::Values(DType::kFloat32, DType::kFloat16),
                       ::testing::Bool()),
    conv_param_name);

// Y = act(conv(X, W) + B + R[0]) with R of batch 1 under Y's batch of 2 (a folded
// BatchNormalization's border term, backends/op.h), as CudaConvResidual: the epilogue pass reads R
// by row modulo one item's rows in both layouts; the NHWC depthwise kernel and 1×1 GEMM, which
// cannot, leave their whole epilogue to that pass; a graph plan never fuses it (ConvWide at fp16
// would otherwise take Relu and the residual into the plan). Searched, then cached.
std::vector<ConvLayoutCase> batch_residual_cases() {
  return cases_named({"Conv3x3Bias", "ConvLeakyRelu", "ConvWide", "DepthwiseClipBatch2", "Depthwise5x5Batch2C144",
                      "PointwiseLeakyReluBatch2", "ConvTransposeAsymmetricPads"});
}

class CudaConvBatchResidual : public ::testing::TestWithParam<std::tuple<ConvLayoutCase, DType, bool>> {};

TEST_P(CudaConvBatchResidual, MatchesTheCpuKernel) {
  ASSERT_TRUE(kernel_gpu().ready.is_ok()) << kernel_gpu().ready.to_string();
  const auto& [c, dtype, nhwc] = GetParam();
  ASSERT_GE(c.x[0], 2) << "a batch of one would not broadcast";
  const Operands o = operands(c, dtype, /*residual=*/true, /*one_item=*/true);
  const Tensor want = run_cpu(c, o, nhwc);
  const double rtol = dtype == DType::kFloat16 ? 1e-2 : 1e-4;
  for (const char* run : {"searched", "cached"}) {
    Result<Tensor> got = run_cuda(c, o, dtype, nhwc);
    ASSERT_TRUE(got.is_ok()) << run << ": " << got.status().to_string();
    ASSERT_EQ(got->shape(), want.shape()) << run;
    const test::Comparison cmp = test::compare(want, *got, rtol);
    EXPECT_EQ(cmp.bad, 0) << run << ": " << cmp.describe() << " (rtol " << rtol << ")";
    const Operands plain{Tensor::copy_of(o.x.view()), Tensor::copy_of(o.w.view()), Tensor::copy_of(o.b.view()),
                         std::nullopt};
    EXPECT_GT(test::compare(run_cpu(c, plain, nhwc), *got, rtol).bad, 0) << run << ": the residual was not added";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, CudaConvBatchResidual,
    ::testing::Combine(::testing::ValuesIn(batch_residual_cases()), ::testing::Values(DType::kFloat32, DType::kFloat16),
                       ::testing::Bool()),
    conv_param_name);

// A Conv with a fused per-channel PRelu (Activation::kPRelu, the slope as input 4) on CUDA against
// the CPU kernel: cuDNN's epilogue in both layouts, and in NHWC the depthwise kernel and the 1×1
// GEMM followed by their slope pass; without a residual, with one of Y's shape and with one of
// batch 1 (ArcFace's Conv after a folded BatchNormalization; the batch-2 cases broadcast it);
// fp32 and fp16.
TEST(CudaConvPRelu, MatchesTheCpuKernel) {
  ASSERT_TRUE(kernel_gpu().ready.is_ok()) << kernel_gpu().ready.to_string();
  enum class Residual { kNone, kFull, kOneItem };
  for (const ConvLayoutCase& c : test::conv_layout_cases()) {
    if (c.name != "Conv3x3Bias" && c.name != "ConvDepthwise" && c.name != "ConvPointwise" &&
        c.name != "DepthwiseClipBatch2" && c.name != "PointwiseLeakyReluBatch2")
      continue;
    for (const DType dtype : {DType::kFloat32, DType::kFloat16})
      for (const bool nhwc : {false, true})
        for (const Residual residual : {Residual::kNone, Residual::kFull, Residual::kOneItem}) {
          const char* kind[] = {" ", " residual ", " batch-1 residual "};
          SCOPED_TRACE(c.name + (nhwc ? " nhwc" : " nchw") + kind[static_cast<int>(residual)] + dtype_name(dtype));
          const Operands o = operands(c, dtype, residual != Residual::kNone, residual == Residual::kOneItem);
          std::vector<Tensor> slope_only = {test::seeded_tensor({test::out_channels(c)}, 5)};
          if (dtype == DType::kFloat16) slope_only = test::rounded_to_half(std::move(slope_only));
          const Tensor& slope = slope_only[0];
          OpAttributes attrs = test::node_attributes(c, nhwc);
          attrs.activation = {Activation::kPRelu, 0, 0};
          const Tensor x = in_layout(o.x, nhwc), w = in_layout(o.w, nhwc);
          const Tensor r = o.r ? in_layout(*o.r, nhwc) : Tensor{};
          const Shape y_shape = test::inferred_output(c, nhwc).value();

          Tensor want = Tensor::zeros(DType::kFloat32, y_shape);
          const std::vector<TensorView> cpu_inputs = {x.view(), w.view(), c.bias ? o.b.view() : TensorView{},
                                                      o.r ? r.view() : TensorView{}, slope.view()};
          const Status cpu = cpu_kernel(OpType::kConv)({OpType::kConv, attrs, cpu_inputs, {want.view()}});
          ASSERT_TRUE(cpu.is_ok()) << cpu.to_string();

          const auto dx = upload(x, dtype), dw = upload(w, dtype), db = upload(o.b, dtype), ds = upload(slope, dtype);
          const auto dr = o.r ? upload(r, dtype) : nullptr;
          DeviceBuffer dy(static_cast<std::size_t>(shape_elements(y_shape)) * dtype_size(dtype));
          const std::vector<TensorView> inputs = {
              {dtype, x.shape(), dx->data}, {dtype, w.shape(), dw->data},
              c.bias ? TensorView{dtype, o.b.shape(), db->data} : TensorView{},
              o.r ? TensorView{dtype, r.shape(), dr->data} : TensorView{}, {dtype, slope.shape(), ds->data}};
          const Status s = cuda::cuda_kernel(OpType::kConv)(
              {OpType::kConv, attrs, inputs, {{dtype, y_shape, dy.data}}, std::vector<TensorView>(5), kernel_gpu().ctx});
          ASSERT_TRUE(s.is_ok()) << s.to_string();
          const test::Comparison cmp = test::compare(want, download(dy.data, y_shape, dtype), dtype == DType::kFloat16 ? 1e-2 : 1e-4);
          EXPECT_EQ(cmp.bad, 0) << cmp.describe();
        }
  }
}

// A channels_last Conv with a fused input resize (OpAttributes::input_resize) against the CPU's
// Resize, then Conv, on the same NHWC data. The CUDA kernel stages the resized input band by band
// (8 MiB of staged rows a band): these sizes give 2 to 4 bands, the last one shorter where the
// rows do not divide evenly; pads (asymmetric too), stride 2, bias, residual and activation.
struct InputResizeCase {
  std::string name;
  Shape x, resized;  // NHWC
  std::string mode, coordinates;
  std::int64_t out_channels = 0, kernel = 3;
  std::vector<std::int64_t> pads, strides;
  bool residual = false;
};

std::vector<InputResizeCase> input_resize_cases() {
  return {{"LinearHalfPixelBatch2Residual", {2, 192, 256, 32}, {2, 384, 512, 32}, "linear", "half_pixel", 16, 3,
           {1, 1, 1, 1}, {1, 1}, true},
          {"NearestAsymmetricStride2", {1, 100, 130, 64}, {1, 300, 390, 64}, "nearest", "asymmetric", 16, 3,
           {0, 2, 1, 1}, {2, 2}, false},
          {"CubicAlignCorners1x1", {1, 40, 50, 16}, {1, 80, 100, 16}, "cubic", "align_corners", 8, 1, {0, 0, 0, 0},
           {1, 1}, false}};
}

class CudaInputResize : public ::testing::TestWithParam<std::tuple<InputResizeCase, DType>> {};

TEST_P(CudaInputResize, MatchesTheCpuResizeThenConv) {
  ASSERT_TRUE(kernel_gpu().ready.is_ok()) << kernel_gpu().ready.to_string();
  const auto& [c, dtype] = GetParam();
  const std::int64_t channels = c.x[3];
  Shape y_shape = {c.x[0], 0, 0, c.out_channels};
  for (int d = 0; d < 2; ++d)
    y_shape[1 + d] = (c.resized[1 + d] + c.pads[d] + c.pads[2 + d] - c.kernel) / c.strides[d] + 1;
  std::vector<Tensor> t = {test::seeded_tensor(c.x, 1), test::seeded_tensor({c.out_channels, c.kernel, c.kernel, channels}, 2),
                           test::seeded_tensor({c.out_channels}, 3), test::seeded_tensor(y_shape, 4)};
  if (dtype == DType::kFloat16) t = test::rounded_to_half(std::move(t));
  const Tensor &x = t[0], &w = t[1], &b = t[2], &r = t[3];

  OpAttributes resize;
  resize.values["mode"] = c.mode;
  resize.values["coordinate_transformation_mode"] = c.coordinates;
  Tensor scales = Tensor::zeros(DType::kFloat32, {4});
  for (int a = 0; a < 4; ++a) scales.data<float>()[a] = static_cast<float>(c.resized[a]) / static_cast<float>(c.x[a]);
  OpAttributes conv;
  conv.values["channels_last"] = std::int64_t{1};
  conv.values["pads"] = c.pads;
  conv.values["strides"] = c.strides;
  conv.activation = {Activation::kLeakyRelu, 0.1f};

  Tensor up = Tensor::zeros(DType::kFloat32, c.resized);
  ASSERT_TRUE(cpu_kernel(OpType::kResize)({OpType::kResize, resize, {x.view(), {}, scales.view()}, {up.view()}}).is_ok());
  Tensor want = Tensor::zeros(DType::kFloat32, y_shape);
  std::vector<TensorView> cpu_inputs = {up.view(), w.view(), b.view()};
  if (c.residual) cpu_inputs.push_back(r.view());
  const Status cpu = cpu_kernel(OpType::kConv)({OpType::kConv, conv, cpu_inputs, {want.view()}});
  ASSERT_TRUE(cpu.is_ok()) << cpu.to_string();

  Result<ResizeMode> mode = resize_mode("test", resize, false);
  ASSERT_TRUE(mode.is_ok()) << mode.status().to_string();
  OpAttributes fused = conv;
  fused.input_resize = std::make_shared<const InputResize>(InputResize{*mode, c.resized});
  const auto dx = upload(x, dtype), dw = upload(w, dtype), db = upload(b, dtype), dr = upload(r, dtype);
  DeviceBuffer dy(static_cast<std::size_t>(shape_elements(y_shape)) * dtype_size(dtype));
  std::vector<TensorView> inputs = {{dtype, x.shape(), dx->data}, {dtype, w.shape(), dw->data}, {dtype, b.shape(), db->data}};
  if (c.residual) inputs.push_back({dtype, y_shape, dr->data});
  const double rtol = dtype == DType::kFloat16 ? 1e-2 : 1e-4;
  for (const char* run : {"searched", "cached"}) {
    const Status s = cuda::cuda_kernel(OpType::kConv)(
        {OpType::kConv, fused, inputs, {{dtype, y_shape, dy.data}}, std::vector<TensorView>(inputs.size()), kernel_gpu().ctx});
    ASSERT_TRUE(s.is_ok()) << run << ": " << s.to_string();
    const test::Comparison cmp = test::compare(want, download(dy.data, y_shape, dtype), rtol);
    EXPECT_EQ(cmp.bad, 0) << run << ": " << cmp.describe() << " (rtol " << rtol << ")";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, CudaInputResize,
    ::testing::Combine(::testing::ValuesIn(input_resize_cases()), ::testing::Values(DType::kFloat32, DType::kFloat16)),
    [](const ::testing::TestParamInfo<std::tuple<InputResizeCase, DType>>& param) {
      return std::get<0>(param.param).name + (std::get<1>(param.param) == DType::kFloat16 ? "_fp16" : "_fp32");
    });

// The same sizes in NCHW and NHWC are two searches, two entries, and the two layouts agree.
TEST(CudaChannelsLastCache, LayoutsAreSeparateProblems) {
  ASSERT_TRUE(kernel_gpu().ready.is_ok()) << kernel_gpu().ready.to_string();
  ConvLayoutCase c = test::conv_layout_cases()[0];
  c.x = {1, 24, 17, 19};  // sizes no other test uses
  c.w = {16, 24, 3, 3};
  const Operands o = operands(c, DType::kFloat16);
  const std::size_t entries = kernel_gpu().algos.size();
  const std::uint64_t searches = kernel_gpu().algos.searches();
  Result<Tensor> nchw = run_cuda(c, o, DType::kFloat16, false);
  ASSERT_TRUE(nchw.is_ok()) << nchw.status().to_string();
  Result<Tensor> nhwc = run_cuda(c, o, DType::kFloat16, true);
  ASSERT_TRUE(nhwc.is_ok()) << nhwc.status().to_string();
  EXPECT_EQ(kernel_gpu().algos.size(), entries + 2);
  EXPECT_EQ(kernel_gpu().algos.searches(), searches + 2);
  EXPECT_EQ(test::compare(test::nhwc_of(*nchw), *nhwc, 1e-2).bad, 0);
}

// A channels_last depthwise Conv runs the depthwise kernel, not cuDNN: nothing is searched or cached,
// and cuDNN's result (cudnn_conv_kernel) on the same node agrees.
TEST(CudaChannelsLastDepthwise, BypassesCudnn) {
  ASSERT_TRUE(kernel_gpu().ready.is_ok()) << kernel_gpu().ready.to_string();
  ConvLayoutCase c = test::conv_layout_cases()[0];
  c.name = "DepthwiseBypass";
  c.x = {1, 40, 19, 21};  // sizes no other test uses
  c.w = {40, 1, 3, 3};
  c.attrs["group"] = std::int64_t{40};
  const Operands o = operands(c, DType::kFloat16);
  Result<DeviceNode> node = device_node(c, o, DType::kFloat16, true);
  ASSERT_TRUE(node.is_ok()) << node.status().to_string();
  const std::size_t entries = kernel_gpu().algos.size();
  const std::uint64_t searches = kernel_gpu().algos.searches();
  ASSERT_TRUE(node->run(cuda::cuda_kernel(OpType::kConv)).is_ok());
  const Tensor ours = node->result();
  EXPECT_EQ(kernel_gpu().algos.size(), entries);
  EXPECT_EQ(kernel_gpu().algos.searches(), searches);
  const Status s = node->run(cuda::cudnn_conv_kernel);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  EXPECT_EQ(kernel_gpu().algos.searches(), searches + 1);
  const test::Comparison cmp = test::compare(node->result(), ours, 1e-2);
  EXPECT_EQ(cmp.bad, 0) << cmp.describe();
}

// Milliseconds per run of `kernel` on the node: the mean of kRuns after one untimed run (cuDNN's
// algorithm search).
Result<double> milliseconds_per_run(const DeviceNode& node, cuda::CudaKernel kernel) {
  constexpr int kRuns = 200;
  FSWAP_RETURN_IF_ERROR(node.run(kernel));
  struct Event {
    cudaEvent_t e = nullptr;
    Event() { EXPECT_EQ(cudaEventCreate(&e), cudaSuccess); }
    ~Event() { cudaEventDestroy(e); }
  } start, stop;
  EXPECT_EQ(cudaEventRecord(start.e, kernel_gpu().stream), cudaSuccess);
  for (int i = 0; i < kRuns; ++i) FSWAP_RETURN_IF_ERROR(node.run(kernel));
  EXPECT_EQ(cudaEventRecord(stop.e, kernel_gpu().stream), cudaSuccess);
  EXPECT_EQ(cudaEventSynchronize(stop.e), cudaSuccess);
  float ms = 0;
  EXPECT_EQ(cudaEventElapsedTime(&ms, start.e, stop.e), cudaSuccess);
  return static_cast<double>(ms) / kRuns;
}

// MobileNet-like fp16 depthwise layers (3×3, bias, ReLU6): ms of the depthwise kernel and of cuDNN's
// NHWC grouped convolution on the same node, printed; their outputs agree.
TEST(CudaChannelsLastDepthwise, ThroughputAgainstCudnn) {
  ASSERT_TRUE(kernel_gpu().ready.is_ok()) << kernel_gpu().ready.to_string();
  using I = std::vector<std::int64_t>;
  struct Layer {
    std::int64_t h, w, c, stride;
  };
  for (const Layer l : {Layer{56, 56, 144, 1}, Layer{28, 28, 192, 2}, Layer{14, 14, 576, 1}, Layer{112, 112, 32, 1}}) {
    const std::string name = "[1," + std::to_string(l.h) + "," + std::to_string(l.w) + "," + std::to_string(l.c) +
                             "] 3x3 s" + std::to_string(l.stride);
    const ConvLayoutCase c{name, OpType::kConv, {1, l.c, l.h, l.w}, {l.c, 1, 3, 3}, true,
                           {{"group", l.c}, {"strides", I{l.stride, l.stride}}, {"pads", I{1, 1, 1, 1}}},
                           {Activation::kClip, 0.0f, 6.0f}};
    const Operands o = operands(c, DType::kFloat16);
    Result<DeviceNode> node = device_node(c, o, DType::kFloat16, true);
    ASSERT_TRUE(node.is_ok()) << name << ": " << node.status().to_string();
    Result<double> ours = milliseconds_per_run(*node, cuda::cuda_kernel(OpType::kConv));
    ASSERT_TRUE(ours.is_ok()) << name << ": " << ours.status().to_string();
    const Tensor ours_y = node->result();
    Result<double> cudnn = milliseconds_per_run(*node, cuda::cudnn_conv_kernel);
    ASSERT_TRUE(cudnn.is_ok()) << name << ": " << cudnn.status().to_string();
    const test::Comparison cmp = test::compare(node->result(), ours_y, 1e-2);
    EXPECT_EQ(cmp.bad, 0) << name << ": " << cmp.describe();
    std::printf("depthwise fp16 %-22s  kernel %.4f ms  cuDNN NHWC %.4f ms  (%.2fx)\n", name.c_str(), *ours, *cudnn,
                *cudnn / *ours);
  }
}

// A float16 channels_last 3×3 convolution, pad 1, stride 1, over [batch, channels, size, size].
cuda::ConvProblem nhwc_3x3(std::int64_t batch, std::int64_t channels, std::int64_t out_channels, std::int64_t size,
                           cuda::ConvEpilogue epilogue = {}) {
  return {.direction = cuda::ConvDirection::kForward, .dtype = DType::kFloat16, .layout = cuda::ConvLayout::kNhwc,
          .math = 1, .spatial_rank = 2, .batch = batch, .channels = channels, .out_channels = out_channels,
          .groups = 1, .input = {size, size, 0}, .kernel = {3, 3, 0}, .pad = {1, 1, 0}, .stride = {1, 1, 0},
          .dilation = {1, 1, 0}, .epilogue = epilogue};
}

TEST(CudaChannelsLastCache, EntriesCarryTheLayout) {
  cuda::ConvProblem p = nhwc_3x3(1, 64, 128, 56);
  const cuda::ConvAlgoChoice choice{1, 1, 4096, {}, false};
  const std::string line = cuda::format_conv_entry(p, choice);
  EXPECT_NE(line.find(" layout=nhwc "), std::string::npos) << line;
  const auto parsed = cuda::parse_conv_entry(line);
  ASSERT_TRUE(parsed.has_value()) << line;
  EXPECT_EQ(parsed->first, p);
  EXPECT_EQ(parsed->second, choice);
  cuda::ConvProblem nchw = p;
  nchw.layout = cuda::ConvLayout::kNchw;
  EXPECT_NE(nchw, p);
  EXPECT_EQ(cuda::parse_conv_entry(cuda::format_conv_entry(nchw, choice))->first.layout, cuda::ConvLayout::kNchw);
  // A version-1 line (no layout) and an NHWC line over 3 spatial dims are not entries.
  std::string v1 = line;
  v1.erase(v1.find(" layout=nhwc"), std::string(" layout=nhwc").size());
  EXPECT_FALSE(cuda::parse_conv_entry(v1).has_value()) << v1;
  cuda::ConvProblem volume = p;
  volume.spatial_rank = 3;
  volume.input[2] = volume.kernel[2] = volume.stride[2] = volume.dilation[2] = 1;
  EXPECT_FALSE(cuda::parse_conv_entry(cuda::format_conv_entry(volume, choice)).has_value());
}

// A graph-API engine configuration survives the file: index and knob values, negative ones included,
// and the epilogue a plan fuses.
TEST(CudaChannelsLastCache, EntriesCarryTheGraphEngine) {
  const cuda::ConvProblem p =
      nhwc_3x3(32, 64, 64, 56, {.bias = true, .residual = true, .act = cuda::ConvEpilogue::Act::kRelu});
  const cuda::ConvAlgoChoice choice{1, 1, 1 << 20, {.index = 12, .knobs = {{3, 1}, {5, -1}, {17, 64}}}, true};
  const std::string line = cuda::format_conv_entry(p, choice);
  EXPECT_NE(line.find(" epilogue=bias+residual+relu "), std::string::npos) << line;
  EXPECT_NE(line.find(" engine=12 knobs=3.1,5.-1,17.64 fused=1"), std::string::npos) << line;
  const auto parsed = cuda::parse_conv_entry(line);
  ASSERT_TRUE(parsed.has_value()) << line;
  EXPECT_EQ(parsed->first, p);
  EXPECT_EQ(parsed->second, choice);
  cuda::ConvProblem leaky = p;
  leaky.epilogue = {.bias = true, .act = cuda::ConvEpilogue::Act::kLeakyRelu, .slope = 0.1f};
  const cuda::ConvAlgoChoice legacy{1, 1, 0, {}, false};
  const std::string leaky_line = cuda::format_conv_entry(leaky, legacy);
  EXPECT_NE(leaky_line.find(" epilogue=bias+leaky@0.100000001 "), std::string::npos) << leaky_line;
  EXPECT_NE(leaky_line.find(" engine=- knobs=- fused=0"), std::string::npos) << leaky_line;
  EXPECT_EQ(cuda::parse_conv_entry(leaky_line)->first, leaky);
  EXPECT_EQ(cuda::parse_conv_entry(leaky_line)->second, legacy);
  for (const auto& [field, bad] : std::vector<std::pair<std::string, std::string>>{
           {" knobs=", " knobs=3"}, {" knobs=", " knobs=3.x"}, {" knobs=", " knobs=,3.1"},
           {" epilogue=", " epilogue=relu+relu"}, {" epilogue=", " epilogue=gelu"}, {" fused=", " fused=2"}}) {
    std::string broken = line;
    const std::size_t at = broken.find(field), end = broken.find(' ', at + 1);
    broken.replace(at, end == std::string::npos ? std::string::npos : end - at, bad);
    EXPECT_FALSE(cuda::parse_conv_entry(broken).has_value()) << broken;
  }
}

// Every engine configuration the graph API offers for a float16 channels_last convolution computes
// what the CPU kernel does, and the plan rebuilt from its stored identity runs too.
TEST(CudaConvGraph, EveryCandidateMatchesTheCpuKernel) {
  SKIP_WITHOUT_GPU();
  using I = std::vector<std::int64_t>;
  const std::vector<ConvLayoutCase> cases = {
      {"ResNet3x3", OpType::kConv, {1, 64, 28, 28}, {64, 64, 3, 3}, false, {{"pads", I{1, 1, 1, 1}}}, {}},
      {"Stride2Batch4", OpType::kConv, {4, 32, 20, 20}, {64, 32, 3, 3}, false,
       {{"pads", I{1, 1, 1, 1}}, {"strides", I{2, 2}}}, {}},
      {"Stem7x7", OpType::kConv, {1, 8, 64, 64}, {32, 8, 7, 7}, false, {{"pads", I{3, 3, 3, 3}}, {"strides", I{2, 2}}},
       {}},
  };
  for (const ConvLayoutCase& c : cases) {
    const Operands o = operands(c, DType::kFloat16);
    const Tensor cpu = run_cpu(c, o);
    Result<DeviceNode> node = device_node(c, o, DType::kFloat16, true);
    ASSERT_TRUE(node.is_ok()) << c.name << ": " << node.status().to_string();
    const std::int64_t pad = c.w[2] / 2, stride = c.attrs.count("strides") ? 2 : 1;
    const cuda::ConvProblem p{.direction = cuda::ConvDirection::kForward, .dtype = DType::kFloat16,
                              .layout = cuda::ConvLayout::kNhwc, .math = 1, .spatial_rank = 2, .batch = c.x[0],
                              .channels = c.x[1], .out_channels = c.w[0], .groups = 1, .input = {c.x[2], c.x[3], 0},
                              .kernel = {c.w[2], c.w[3], 0}, .pad = {pad, pad, 0}, .stride = {stride, stride, 0},
                              .dilation = {1, 1, 0}, .epilogue = {}};
    cudnnContext* handle = kernel_gpu().ctx.cudnn;
    auto candidates = cuda::graph_candidates(handle, p, 8);
    ASSERT_TRUE(candidates.is_ok()) << c.name << ": " << candidates.status().to_string();
    EXPECT_FALSE(candidates->empty());
    for (const cuda::ConvGraphPlan& plan : *candidates) {
      const std::string name = c.name + " engine " + std::to_string(plan.engine().index);
      ASSERT_LE(plan.workspace_bytes(), test::KernelGpu::kWorkspaceBytes) << name;
      const cuda::ConvGraphOperands operands{node->x->data, node->w->data, node->y->data, kernel_gpu().workspace->data};
      ASSERT_TRUE(cuda::graph_aligned(operands));
      ASSERT_EQ(cudaMemsetAsync(node->y->data, 0, static_cast<std::size_t>(shape_elements(node->y_shape)) * 2,
                                kernel_gpu().stream), cudaSuccess);
      const Status s = plan.execute(handle, operands);
      ASSERT_TRUE(s.is_ok()) << name << ": " << s.to_string();
      const test::Comparison cmp = test::compare(node->result(), cpu, 1e-2);
      EXPECT_EQ(cmp.bad, 0) << name << ": " << cmp.describe();
      Result<cuda::ConvGraphPlan> rebuilt = cuda::build_graph_plan(handle, p, plan.engine());
      ASSERT_TRUE(rebuilt.is_ok()) << name << ": " << rebuilt.status().to_string();
      EXPECT_EQ(rebuilt->workspace_bytes(), plan.workspace_bytes()) << name;
    }
    std::printf("graph candidates %-14s %zu\n", c.name.c_str(), candidates->size());
  }
}

// The graph API's plans with the epilogue fused (bias, residual, Relu or LeakyRelu after the
// convolution) compute what the CPU kernel does with the same fused node. cuDNN 9.19 on the H100
// offers precompiled engines for a bias and for a bias and Relu (conv.cc relies on those); for a
// residual or LeakyRelu it has none, and those cases only check any it may offer.
TEST(CudaConvGraph, FusedEpilogueCandidatesMatchTheCpuKernel) {
  SKIP_WITHOUT_GPU();
  using I = std::vector<std::int64_t>;
  const FusedActivation relu{Activation::kRelu, 0, 0}, leaky{Activation::kLeakyRelu, 0.1f, 0};
  struct FusedCase {
    ConvLayoutCase c;
    bool residual;
    bool engines_expected;
  };
  const std::vector<FusedCase> cases = {
      {{"BiasRelu", OpType::kConv, {1, 64, 28, 28}, {64, 64, 3, 3}, true, {{"pads", I{1, 1, 1, 1}}}, relu}, false,
       true},
      {{"Bias", OpType::kConv, {1, 64, 28, 28}, {64, 64, 3, 3}, true, {{"pads", I{1, 1, 1, 1}}}, {}}, false, true},
      {{"BiasResidualRelu", OpType::kConv, {2, 32, 20, 20}, {32, 32, 3, 3}, true, {{"pads", I{1, 1, 1, 1}}}, relu},
       true, false},
      {{"BiasLeaky", OpType::kConv, {1, 16, 32, 32}, {32, 16, 3, 3}, true, {{"pads", I{1, 1, 1, 1}}}, leaky}, false,
       false},
  };
  for (const auto& [c, residual, engines_expected] : cases) {
    const Operands o = operands(c, DType::kFloat16, residual);
    const Tensor cpu = run_cpu(c, o);
    Result<DeviceNode> node = device_node(c, o, DType::kFloat16, true);
    ASSERT_TRUE(node.is_ok()) << c.name << ": " << node.status().to_string();
    cuda::ConvEpilogue e{.bias = true, .residual = residual};
    if (c.activation.kind == Activation::kRelu) e.act = cuda::ConvEpilogue::Act::kRelu;
    if (c.activation.kind == Activation::kLeakyRelu) e.act = cuda::ConvEpilogue::Act::kLeakyRelu, e.slope = 0.1f;
    ASSERT_EQ(c.x[2], c.x[3]) << c.name;
    const cuda::ConvProblem p = nhwc_3x3(c.x[0], c.x[1], c.w[0], c.x[2], e);
    cudnnContext* handle = kernel_gpu().ctx.cudnn;
    auto candidates = cuda::graph_candidates(handle, p, 8);
    std::printf("fused graph candidates %-18s %s\n", c.name.c_str(),
                candidates ? std::to_string(candidates->size()).c_str() : candidates.status().to_string().c_str());
    if (engines_expected) {
      ASSERT_TRUE(candidates.is_ok()) << c.name << ": " << candidates.status().to_string();
    }
    if (!candidates) continue;
    for (const cuda::ConvGraphPlan& plan : *candidates) {
      const std::string name = c.name + " engine " + std::to_string(plan.engine().index);
      const cuda::ConvGraphOperands operands{.x = node->x->data, .w = node->w->data, .y = node->y->data,
                                             .workspace = kernel_gpu().workspace->data, .bias = node->b->data,
                                             .residual = residual ? node->r->data : nullptr};
      ASSERT_EQ(cudaMemsetAsync(node->y->data, 0, static_cast<std::size_t>(shape_elements(node->y_shape)) * 2,
                                kernel_gpu().stream), cudaSuccess);
      const Status s = plan.execute(handle, operands);
      ASSERT_TRUE(s.is_ok()) << name << ": " << s.to_string();
      const test::Comparison cmp = test::compare(node->result(), cpu, 1e-2);
      EXPECT_EQ(cmp.bad, 0) << name << ": " << cmp.describe();
    }
  }
}

// Refused from the shapes alone, before any device work (so no device memory is needed).
TEST(CudaChannelsLastErrors, Non4DInputIsRefused) {
  OpAttributes attrs;
  attrs.values.emplace("channels_last", std::int64_t{1});
  cuda::CudaContext ctx;
  for (OpType op : {OpType::kConv, OpType::kConvTranspose}) {
    const std::vector<TensorView> inputs = {{DType::kFloat32, {1, 3, 8}, nullptr},
                                            {DType::kFloat32, {3, 3, 3}, nullptr}};
    const Status s =
        cuda::cuda_kernel(op)({op, attrs, inputs, {{DType::kFloat32, {1, 3, 6}, nullptr}}, {{}, {}}, ctx});
    EXPECT_EQ(s.code(), StatusCode::kInvalidInput) << op_name(op);
    EXPECT_NE(s.message().find(std::string(op_name(op)) + ": channels_last needs a 4-D input, got [1,3,8]"),
              std::string::npos)
        << s.message();
  }
}

}  // namespace
}  // namespace fswap
