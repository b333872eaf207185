// The CUDA Conv and ConvTranspose kernels with channels_last = 1 against the CPU kernels on the
// same NHWC data (tests/support/conv_layout_cases.h; tests/unit/test_channels_last_conv.cc checks
// the CPU's channels_last path against its NCHW one): fp32 within 1e-4 relative, fp16 within 1e-2
// (the CPU fed the same half-rounded inputs). The kernels run directly on a CudaContext made here:
// one stream, cuDNN and cuBLASLt, an in-memory algorithm cache and a device workspace.
// Also: the algorithm cache keeps NCHW and NHWC problems apart, and its file format carries the layout.
#include <gtest/gtest.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "backends/cpu/cpu_kernels.h"
#include "backends/cuda/conv_algo_cache.h"
#include "backends/cuda/cuda_kernels.h"
#include "backends/cuda/libraries.h"
#include "core/half.h"
#include "gpu/compare.h"
#include "gpu/gpu_env.h"
#include "support/conv_layout_cases.h"

namespace fswap {
namespace {

using test::ConvLayoutCase;

constexpr std::size_t kWorkspaceBytes = 320u << 20;  // the search's first cap (256 MiB) plus staging

// Device memory freed on destruction.
struct DeviceBuffer {
  void* data = nullptr;
  explicit DeviceBuffer(std::size_t bytes) {
    EXPECT_EQ(cudaMalloc(&data, std::max<std::size_t>(bytes, 1)), cudaSuccess);
  }
  ~DeviceBuffer() { cudaFree(data); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

// Everything a CUDA kernel uses besides its tensors, made once for the program.
struct Gpu {
  cudaStream_t stream = nullptr;
  std::optional<cuda::CudaLibraries> libraries;
  cuda::ConvAlgoCache algos{std::filesystem::path()};  // in memory only
  std::unique_ptr<DeviceBuffer> workspace;
  cuda::CudaContext ctx;
  Status ready = Status::ok();

  Gpu() {
    if (cudaStreamCreate(&stream) != cudaSuccess) {
      ready = unsupported("no CUDA device");
      return;
    }
    Result<cuda::CudaLibraries> libs = cuda::CudaLibraries::create(reinterpret_cast<CUstream_st*>(stream));
    if (!libs) {
      ready = libs.status();
      return;
    }
    libraries.emplace(std::move(*libs));
    workspace = std::make_unique<DeviceBuffer>(kWorkspaceBytes);
    ctx.stream = reinterpret_cast<CUstream_st*>(stream);
    ctx.cudnn = libraries->cudnn();
    ctx.cublaslt = libraries->cublaslt();
    ctx.conv_algos = &algos;
    ctx.workspace = [this](std::size_t bytes) -> Result<void*> {
      if (bytes > kWorkspaceBytes) return out_of_memory("test workspace: " + std::to_string(bytes) + " bytes");
      return workspace->data;
    };
  }
};

Gpu& gpu() {
  static Gpu g;
  return g;
}

// A float32 host tensor's values on the device as `dtype` (float32 or float16).
std::unique_ptr<DeviceBuffer> upload(const Tensor& t, DType dtype) {
  auto buffer = std::make_unique<DeviceBuffer>(static_cast<std::size_t>(t.elements()) * dtype_size(dtype));
  if (dtype == DType::kFloat32) {
    EXPECT_EQ(cudaMemcpy(buffer->data, t.raw(), t.bytes(), cudaMemcpyHostToDevice), cudaSuccess);
  } else {
    std::vector<std::uint16_t> half(static_cast<std::size_t>(t.elements()));
    for (std::size_t i = 0; i < half.size(); ++i) half[i] = float_to_half(t.data<float>()[i]);
    EXPECT_EQ(cudaMemcpy(buffer->data, half.data(), half.size() * 2, cudaMemcpyHostToDevice), cudaSuccess);
  }
  return buffer;
}

// The device tensor (of `dtype`) as float32 on the host, after the stream's work.
Tensor download(const void* data, const Shape& shape, DType dtype) {
  EXPECT_EQ(cudaStreamSynchronize(gpu().stream), cudaSuccess);
  Tensor t = Tensor::zeros(DType::kFloat32, shape);
  if (dtype == DType::kFloat32) {
    EXPECT_EQ(cudaMemcpy(t.raw(), data, t.bytes(), cudaMemcpyDeviceToHost), cudaSuccess);
  } else {
    std::vector<std::uint16_t> half(static_cast<std::size_t>(t.elements()));
    EXPECT_EQ(cudaMemcpy(half.data(), data, half.size() * 2, cudaMemcpyDeviceToHost), cudaSuccess);
    for (std::size_t i = 0; i < half.size(); ++i) t.data<float>()[i] = half_to_float(half[i]);
  }
  return t;
}

// The case's operands (NCHW), rounded to half for fp16 so the CPU computes on what the GPU reads.
struct Operands {
  Tensor x, w, b;
};
Operands operands(const ConvLayoutCase& c, DType dtype) {
  std::vector<Tensor> t = {test::seeded_tensor(c.x, 1), test::seeded_tensor(c.w, 2),
                           test::seeded_tensor({test::out_channels(c)}, 3)};
  if (dtype == DType::kFloat16) t = test::rounded_to_half(std::move(t));
  return {std::move(t[0]), std::move(t[1]), std::move(t[2])};
}

// The case's node on CUDA in the given layout; Y as float32 on the host.
Result<Tensor> run_cuda(const ConvLayoutCase& c, const Operands& o, DType dtype, bool nhwc) {
  FSWAP_ASSIGN_OR_RETURN(const Shape y_shape, test::inferred_output(c, nhwc));
  const OpAttributes attrs = test::node_attributes(c, nhwc);
  const Tensor x = nhwc ? test::nhwc_of(o.x) : Tensor::copy_of(o.x.view());
  const Tensor w = nhwc ? test::nhwc_of(o.w) : Tensor::copy_of(o.w.view());
  const auto dx = upload(x, dtype), dw = upload(w, dtype), db = upload(o.b, dtype);
  DeviceBuffer dy(static_cast<std::size_t>(shape_elements(y_shape)) * dtype_size(dtype));
  std::vector<TensorView> inputs = {{dtype, x.shape(), dx->data}, {dtype, w.shape(), dw->data}};
  if (c.bias) inputs.push_back({dtype, o.b.shape(), db->data});
  const std::vector<TensorView> host_inputs(inputs.size());
  FSWAP_RETURN_IF_ERROR(cuda::cuda_kernel(c.op)({c.op, attrs, inputs, {{dtype, y_shape, dy.data}}, host_inputs,
                                                 gpu().ctx}));
  return download(dy.data, y_shape, dtype);
}

// The CPU kernel on the channels_last operands.
Tensor run_cpu(const ConvLayoutCase& c, const Operands& o) {
  const Tensor x = test::nhwc_of(o.x), w = test::nhwc_of(o.w);
  Tensor y = Tensor::zeros(DType::kFloat32, test::inferred_output(c, true).value());
  std::vector<TensorView> inputs = {x.view(), w.view()};
  if (c.bias) inputs.push_back(o.b.view());
  const Status s = cpu_kernel(c.op)({c.op, test::node_attributes(c, true), inputs, {y.view()}});
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  return y;
}

class CudaChannelsLast : public ::testing::TestWithParam<std::tuple<ConvLayoutCase, DType>> {};

TEST_P(CudaChannelsLast, MatchesTheCpuKernel) {
  ASSERT_TRUE(gpu().ready.is_ok()) << gpu().ready.to_string();
  const auto& [c, dtype] = GetParam();
  const Operands o = operands(c, dtype);
  const Tensor want = run_cpu(c, o);
  const double rtol = dtype == DType::kFloat16 ? 1e-2 : 1e-4;
  // The first run searches cuDNN's algorithms, the second takes the cached choice.
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

// The same sizes in NCHW and NHWC are two searches, two entries, and the two layouts agree.
TEST(CudaChannelsLastCache, LayoutsAreSeparateProblems) {
  ASSERT_TRUE(gpu().ready.is_ok()) << gpu().ready.to_string();
  ConvLayoutCase c = test::conv_layout_cases()[0];
  c.x = {1, 24, 17, 19};  // sizes no other test uses
  c.w = {16, 24, 3, 3};
  const Operands o = operands(c, DType::kFloat16);
  const std::size_t entries = gpu().algos.size();
  const std::uint64_t searches = gpu().algos.searches();
  Result<Tensor> nchw = run_cuda(c, o, DType::kFloat16, false);
  ASSERT_TRUE(nchw.is_ok()) << nchw.status().to_string();
  Result<Tensor> nhwc = run_cuda(c, o, DType::kFloat16, true);
  ASSERT_TRUE(nhwc.is_ok()) << nhwc.status().to_string();
  EXPECT_EQ(gpu().algos.size(), entries + 2);
  EXPECT_EQ(gpu().algos.searches(), searches + 2);
  EXPECT_EQ(test::compare(test::nhwc_of(*nchw), *nhwc, 1e-2).bad, 0);
}

TEST(CudaChannelsLastCache, EntriesCarryTheLayout) {
  cuda::ConvProblem p{.direction = cuda::ConvDirection::kForward, .dtype = DType::kFloat16,
                      .layout = cuda::ConvLayout::kNhwc, .math = 1, .spatial_rank = 2, .batch = 1, .channels = 64,
                      .out_channels = 128, .groups = 1, .input = {56, 56, 0}, .kernel = {3, 3, 0},
                      .pad = {1, 1, 0}, .stride = {1, 1, 0}, .dilation = {1, 1, 0}};
  const cuda::ConvAlgoChoice choice{1, 1, 4096};
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
