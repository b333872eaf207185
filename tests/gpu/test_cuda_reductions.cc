// The CUDA Reduce* kernels against the CPU kernels on the same data, on the shapes the
// channels-last pass makes (NHWC reduced over H and W: the innermost axis kept, few outputs, long
// rows, which take the sliced two-pass path of backends/cuda/reduce.cu) and on shapes that keep
// the one-thread-per-output path ([1, 7, 5, 3]: rows of 35). Every Reduce* op, fp32 and fp16,
// keepdims 1 and 0 (the kernels read only the output's size; both shapes are passed here);
// int64 and int32 exactly.
//
// Tolerances: the CPU accumulates in double, so it is the exact side. The sliced path adds at
// most 64 float32 values per slice and combines at most 1024 partials (32 per lane, then a
// 5-level shuffle tree): its rounding is about (64 + 32 + 5) ulps of the largest partial sum in
// the worst case, ~1e-5 relative on these sizes, so fp32 is held to 1e-4 relative (with the
// comparison's floor at the reference's mean magnitude, gpu/compare.h); fp16 to 1e-2 (the output's
// own rounding is 2^-11; the CPU is fed the same half-rounded inputs). The baseline path
// (reduce_one_thread_per_output, one float32 running sum of up to 65,536 values) is checked on
// the same cases and tolerances: its rounding errors (half an ulp of the running sum per add)
// add up like a random walk, about sqrt(65536) · 2^-24 ≈ 2e-5 relative. Both paths must also
// give the same bytes on a second run (no atomics: a fixed order of combination). Without a
// workspace the sliced shapes still reduce (one thread per output).
// ReductionThroughput prints fp16 ms (CUDA events, median of 20 after warm-up) of the path
// cuda_kernel picks and of the one-thread-per-output baseline.
// The kernels run directly on a CudaContext made here (a stream and a device workspace).
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/cpu_kernels.h"
#include "backends/cuda/cuda_kernels.h"
#include "backends/cuda/reduce.h"
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

const OpType kReduceOps[] = {OpType::kReduceMean, OpType::kReduceSum,  OpType::kReduceMax,      OpType::kReduceMin,
                             OpType::kReduceProd, OpType::kReduceL2, OpType::kReduceSumSquare};


// One reduction: the input's shape, the axes (an attribute, as in opset 13) and the output's shape.
struct Case {
  Shape x;
  I64s axes;
  Shape y;
  bool keepdims = true;
};

OpAttributes attrs_of(const Case& c) {
  OpAttributes a;
  a.values["axes"] = c.axes;
  a.values["keepdims"] = std::int64_t{c.keepdims ? 1 : 0};
  return a;
}

// Inputs in ranges whose reductions are well away from 0 and from overflow: a product of up to
// 65,536 values near 1 stays finite and non-zero.
Tensor input_for(OpType op, const Shape& shape, unsigned seed) {
  return op == OpType::kReduceProd ? test::random_tensor(shape, seed, 0.99f, 1.01f) : test::random_tensor(shape, seed);
}

// The path cuda_kernel(op) picks, or the one-thread-per-output baseline.
enum class Path { kPicked, kBaseline };

const char* path_name(Path path) { return path == Path::kPicked ? "picked path" : "one thread per output"; }

cuda::CudaKernel kernel_for(Path path, OpType op) {
  return path == Path::kPicked ? cuda::cuda_kernel(op) : cuda::reduce_one_thread_per_output;
}

// The reduction of x (float32 values, sent as `dtype`) on CUDA by `path`; Y's bytes.
Result<std::vector<std::uint8_t>> run_cuda_bytes(Path path, OpType op, const Case& c, const Tensor& x, DType dtype) {
  const std::unique_ptr<DeviceBuffer> in = upload(x, dtype);
  const std::size_t y_bytes = static_cast<std::size_t>(shape_elements(c.y)) * dtype_size(dtype);
  DeviceBuffer y(y_bytes);
  const OpAttributes attrs = attrs_of(c);
  FSWAP_RETURN_IF_ERROR(
      kernel_for(path, op)({op, attrs, {{dtype, c.x, in->data}}, {{dtype, c.y, y.data}}, {TensorView{}}, kernel_gpu().ctx}));
  EXPECT_EQ(cudaStreamSynchronize(kernel_gpu().stream), cudaSuccess);
  std::vector<std::uint8_t> out(y_bytes);
  EXPECT_EQ(cudaMemcpy(out.data(), y.data, y_bytes, cudaMemcpyDeviceToHost), cudaSuccess);
  return out;
}

// The reduction on the CPU (float32).
Tensor run_cpu(OpType op, const Case& c, const Tensor& x) {
  Tensor y = Tensor::zeros(DType::kFloat32, c.y);
  const OpAttributes attrs = attrs_of(c);
  const Status s = cpu_kernel(op)({op, attrs, {x.view()}, {y.view()}});
  EXPECT_TRUE(s.is_ok()) << op_name(op) << " on the CPU: " << s.to_string();
  return y;
}

// Every Reduce* op of case c by `path`, fp32 and fp16, against the CPU; a second run gives the
// same bytes.
void expect_matches_cpu(Path path, const Case& c) {
  for (const OpType op : kReduceOps) {
    for (const DType dtype : {DType::kFloat32, DType::kFloat16}) {
      Tensor x = input_for(op, c.x, 7);
      if (dtype == DType::kFloat16) x = std::move(test::rounded_to_half({std::move(x)})[0]);
      const std::string what = std::string(op_name(op)) + " " + shape_to_string(c.x) + " → " + shape_to_string(c.y) +
                               " (" + dtype_name(dtype) + ", " + path_name(path) + ")";
      const Tensor want = run_cpu(op, c, x);
      Result<std::vector<std::uint8_t>> got = run_cuda_bytes(path, op, c, x, dtype);
      ASSERT_TRUE(got.is_ok()) << what << ": " << got.status().to_string();
      const double rtol = dtype == DType::kFloat16 ? 1e-2 : 1e-4;
      const test::Comparison cmp = test::compare(want, as_float(*got, c.y, dtype), rtol);
      EXPECT_EQ(cmp.bad, 0) << what << ": " << cmp.describe();
      Result<std::vector<std::uint8_t>> again = run_cuda_bytes(path, op, c, x, dtype);
      ASSERT_TRUE(again.is_ok()) << what << ": " << again.status().to_string();
      EXPECT_EQ(*again, *got) << what << ": a second run differs";
    }
  }
}

const Case kCases[] = {
    {{1, 256, 256, 64}, {1, 2}, {1, 1, 1, 64}},    // 64 outputs, rows of 65,536: sliced
    {{2, 64, 64, 320}, {1, 2}, {2, 1, 1, 320}},    // outer and inner kept axes: sliced
    {{1, 7, 5, 3}, {1, 2}, {1, 1, 1, 3}},          // rows of 35: one thread per output
    {{4, 1000, 16}, {1}, {4, 1, 16}},              // 31 slices, the last one shorter
    {{1, 32, 32, 8}, {1, 2}, {1, 8}, false},       // keepdims 0
    {{2, 16, 4, 16, 8}, {1, 3}, {2, 1, 4, 1, 8}},  // two reduced runs apart: sliced, generic offsets
};

TEST(CudaReductions, MatchTheCpu) {
  SKIP_WITHOUT_GPU();
  for (const Case& c : kCases) expect_matches_cpu(Path::kPicked, c);
}

TEST(CudaReductions, BaselineMatchesTheCpu) {
  SKIP_WITHOUT_GPU();
  for (const Case& c : kCases) expect_matches_cpu(Path::kBaseline, c);
}

// With no workspace to give (a small budget), a shape the sliced path would take reduces one
// thread per output instead.
TEST(CudaReductions, NoWorkspaceFallsBackToOneThreadPerOutput) {
  SKIP_WITHOUT_GPU();
  cuda::CudaContext starved = kernel_gpu().ctx;
  starved.workspace = [](std::size_t bytes) -> Result<void*> {
    return out_of_memory("test: no workspace for " + std::to_string(bytes) + " bytes");
  };
  const Case c{{1, 64, 64, 16}, {1, 2}, {1, 1, 1, 16}};
  const Tensor x = test::random_tensor(c.x, 5);
  const std::unique_ptr<DeviceBuffer> in = upload(x, DType::kFloat32);
  DeviceBuffer y(16 * sizeof(float));
  const OpAttributes attrs = attrs_of(c);
  const std::vector<TensorView> ins = {{DType::kFloat32, c.x, in->data}}, outs = {{DType::kFloat32, c.y, y.data}};
  const OpType op = OpType::kReduceMean;
  const Status s = cuda::cuda_kernel(op)({op, attrs, ins, outs, {TensorView{}}, starved});
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  Tensor got = Tensor::zeros(DType::kFloat32, c.y);
  ASSERT_EQ(cudaStreamSynchronize(kernel_gpu().stream), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(got.raw(), y.data, got.bytes(), cudaMemcpyDeviceToHost), cudaSuccess);
  const test::Comparison cmp = test::compare(run_cpu(op, c, x), got, 1e-4);
  EXPECT_EQ(cmp.bad, 0) << cmp.describe();
}

// int64 and int32 storage take the same paths with an integer accumulator: exact results.
TEST(CudaReductions, IntegersMatchTheCpuExactly) {
  SKIP_WITHOUT_GPU();
  const Case c{{1, 64, 64, 16}, {1, 2}, {1, 1, 1, 16}};  // 16 outputs, rows of 4096: sliced
  const Tensor values = test::random_tensor(c.x, 3, -9, 9);
  for (const DType dtype : {DType::kInt64, DType::kInt32}) {
    Tensor x = Tensor::zeros(dtype, c.x);
    for (std::int64_t i = 0; i < x.elements(); ++i) {
      const auto v = static_cast<std::int64_t>(values.data<float>()[i]);
      if (dtype == DType::kInt64) x.data<std::int64_t>()[i] = v;
      else x.data<std::int32_t>()[i] = static_cast<std::int32_t>(v);
    }
    DeviceBuffer in(x.bytes());
    ASSERT_EQ(cudaMemcpy(in.data, x.raw(), x.bytes(), cudaMemcpyHostToDevice), cudaSuccess);
    for (const OpType op : {OpType::kReduceSum, OpType::kReduceMean, OpType::kReduceMax, OpType::kReduceMin,
                            OpType::kReduceSumSquare}) {
      for (const Path path : {Path::kPicked, Path::kBaseline}) {
        const OpAttributes attrs = attrs_of(c);
        Tensor want = Tensor::zeros(dtype, c.y), got = Tensor::zeros(dtype, c.y);
        ASSERT_TRUE(cpu_kernel(op)({op, attrs, {x.view()}, {want.view()}}).is_ok()) << op_name(op);
        DeviceBuffer y(got.bytes());
        const std::vector<TensorView> ins = {{dtype, c.x, in.data}}, outs = {{dtype, c.y, y.data}};
        const Status s = kernel_for(path, op)({op, attrs, ins, outs, {TensorView{}}, kernel_gpu().ctx});
        ASSERT_TRUE(s.is_ok()) << op_name(op) << ": " << s.to_string();
        ASSERT_EQ(cudaStreamSynchronize(kernel_gpu().stream), cudaSuccess);
        ASSERT_EQ(cudaMemcpy(got.raw(), y.data, got.bytes(), cudaMemcpyDeviceToHost), cudaSuccess);
        EXPECT_EQ(test::compare(want, got, 0).bad, 0)
            << op_name(op) << " " << dtype_name(dtype) << " (" << path_name(path) << ")";
      }
    }
  }
}

// Median ms of op on case c in fp16 by `path`.
double median_ms(Path path, OpType op, const Case& c) {
  const std::unique_ptr<DeviceBuffer> in = upload(input_for(op, c.x, 1), DType::kFloat16);
  DeviceBuffer y(static_cast<std::size_t>(shape_elements(c.y)) * 2);
  const OpAttributes attrs = attrs_of(c);
  const auto launch = [&] {
    const Status s = kernel_for(path, op)(
        {op, attrs, {{DType::kFloat16, c.x, in->data}}, {{DType::kFloat16, c.y, y.data}}, {TensorView{}}, kernel_gpu().ctx});
    EXPECT_TRUE(s.is_ok()) << op_name(op) << ": " << s.to_string();
  };
  return test::median_gpu_ms(launch);
}

TEST(CudaReductions, ReductionThroughput) {
  SKIP_WITHOUT_GPU();
  std::printf("| op (fp16) | x | axes | picked path ms | one thread per output ms |\n|---|---|---|---|---|\n");
  const Case cases[] = {{{1, 256, 256, 64}, {1, 2}, {1, 1, 1, 64}},
                        {{1, 64, 64, 512}, {1, 2}, {1, 1, 1, 512}},
                        {{2, 64, 64, 320}, {1, 2}, {2, 1, 1, 320}}};
  for (const OpType op : {OpType::kReduceMean, OpType::kReduceMax}) {
    for (const Case& c : cases) {
      std::printf("| %s | %s | [1, 2] | %.4f | %.4f |\n", op_name(op), shape_to_string(c.x).c_str(),
                  median_ms(Path::kPicked, op, c), median_ms(Path::kBaseline, op, c));
    }
  }
}

}  // namespace
}  // namespace fswap
