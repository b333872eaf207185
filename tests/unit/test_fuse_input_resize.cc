// fuse_input_resize (runtime/passes.h): which Resize → channels_last Conv pairs it fuses, that the
// CPU Conv kernel with an input resize computes Resize then Conv exactly, and the plan it saves;
// band_large_resizes, which the CUDA executor applies when memory is short. The CUDA kernel's bands
// are tested against these CPU kernels on the GPU (tests/gpu/test_cuda_channels_last.cc,
// CudaInputResize).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "backends/cpu/cpu_kernels.h"
#include "backends/op_rules.h"
#include "runtime/channels_last.h"
#include "runtime/device_graph.h"
#include "runtime/memory_plan.h"
#include "runtime/passes.h"
#include "support/graph_builder.h"

namespace fswap {
namespace {

using Ints = std::vector<std::int64_t>;
using test::GraphBuilder;
using test::count_ops;
using test::seeded_uniform;

// x [1, c, size, size] → Resize (scales, mode) → Conv 3×3 pad 1 (c → out channels, c by default)
// → LeakyRelu, and optionally a second reader of the resized tensor.
struct UpsampleConv {
  GraphBuilder b;
  std::mt19937 rng{11};
  int x = -1, up = -1, y = -1;

  UpsampleConv(std::int64_t channels, std::int64_t size, std::vector<float> scales, const std::string& mode,
               bool second_reader = false, std::int64_t out_channels = 0) {
    if (out_channels == 0) out_channels = channels;
    x = b.input("x", {1, channels, size, size});
    up = b.one(OpType::kResize, {x, -1, b.floats("scales", {4}, scales)}, {{"mode", mode}});
    y = b.one(OpType::kConv,
              {up, b.random("w", {out_channels, channels, 3, 3}, rng), b.random("b", {out_channels}, rng)},
              {{"pads", Ints{1, 1, 1, 1}}});
    y = b.one(OpType::kLeakyRelu, {y}, {{"alpha", 0.1f}});
    if (second_reader) y = b.one(OpType::kAdd, {y, up});
    b.g.outputs = {y};
  }
  // Specialised, fused and every island channels-last: the graph the pass sees on a device.
  Graph device_ready() {
    Graph g = b.g;
    EXPECT_TRUE(optimize(g).is_ok());
    EXPECT_TRUE(specialize(g, {g.values[x].shape}).is_ok());
    ChannelsLastWeights weights;
    EXPECT_TRUE(to_channels_last(g, weights, LayoutChoice::kEverywhere).is_ok());
    return g;
  }
};

TEST(FuseInputResize, TakesAnUpsamplingThatOnlyAChannelsLastConvReads) {
  UpsampleConv net(4, 8, {1, 1, 2, 2}, "linear");
  Graph g = net.device_ready();
  ASSERT_EQ(count_ops(g, OpType::kResize), 1);
  EXPECT_EQ(fuse_input_resize(g, 0), 1);
  EXPECT_EQ(count_ops(g, OpType::kResize), 0);
  const auto conv = std::find_if(g.nodes.begin(), g.nodes.end(), [](const Node& n) { return n.op == OpType::kConv; });
  ASSERT_NE(conv, g.nodes.end());
  ASSERT_TRUE(conv->attrs.input_resize);
  EXPECT_EQ(conv->attrs.input_resize->resized, (Shape{1, 16, 16, 4}));  // NHWC
  EXPECT_EQ(conv->attrs.input_resize->mode.interp, InterpMode::kLinear);
  EXPECT_EQ(g.values[conv->inputs[0]].shape, (Shape{1, 8, 8, 4}));
}

TEST(FuseInputResize, LeavesResizesItCannotTake) {
  // Below the size threshold.
  {
    UpsampleConv net(4, 8, {1, 1, 2, 2}, "nearest");
    Graph g = net.device_ready();
    EXPECT_EQ(fuse_input_resize(g, 16u << 20), 0);
    EXPECT_EQ(count_ops(g, OpType::kResize), 1);
  }
  // Another node reads the resized tensor: it must exist whole.
  {
    UpsampleConv net(4, 8, {1, 1, 2, 2}, "nearest", /*second_reader=*/true);
    Graph g = net.device_ready();
    EXPECT_EQ(fuse_input_resize(g, 0), 0);
  }
  // Scales 1.5 on 5 pixels give 7 (floor): the kernel would read scale 7 / 5, not the model's 1.5.
  {
    UpsampleConv net(4, 5, {1, 1, 1.5f, 1.5f}, "linear");
    Graph g = net.device_ready();
    EXPECT_EQ(fuse_input_resize(g, 0), 0);
  }
  // An NCHW Conv (no channels-last pass): bands of its output rows are not contiguous.
  {
    UpsampleConv net(4, 8, {1, 1, 2, 2}, "linear");
    Graph g = net.b.g;
    ASSERT_TRUE(specialize(g, {g.values[net.x].shape}).is_ok());
    EXPECT_EQ(fuse_input_resize(g, 0), 0);
  }
}

// The CPU kernel of a Conv with an input resize is Resize, then Conv: the same bits.
TEST(FuseInputResize, TheCpuConvWithAnInputResizeIsResizeThenConv) {
  const Tensor x = seeded_uniform({2, 5, 6, 3}, 1);  // NHWC
  const Tensor w = seeded_uniform({4, 3, 3, 3}, 2);  // [M, kH, kW, C]
  const Tensor bias = seeded_uniform({4}, 3);
  OpAttributes conv;
  conv.values["channels_last"] = std::int64_t{1};
  conv.values["pads"] = Ints{1, 0, 1, 2};
  conv.values["strides"] = Ints{2, 1};
  OpAttributes resize;
  resize.values["mode"] = std::string("linear");
  Result<ResizeMode> mode = resize_mode("test", resize, false);
  ASSERT_TRUE(mode.is_ok());
  const Shape resized = {2, 10, 12, 3};
  const Shape y_shape = {2, 5, 12, 4};  // (10 + 2 - 3) / 2 + 1 rows, 12 + 2 - 3 + 1 columns

  Tensor up = Tensor::zeros(DType::kFloat32, resized);
  const Tensor scales = [] {
    Tensor t = Tensor::zeros(DType::kFloat32, {4});
    std::copy_n(std::vector<float>{1, 2, 2, 1}.begin(), 4, t.data<float>());
    return t;
  }();
  ASSERT_TRUE(cpu_kernel(OpType::kResize)({OpType::kResize, resize, {x.view(), {}, scales.view()}, {up.view()}}).is_ok());
  Tensor want = Tensor::zeros(DType::kFloat32, y_shape);
  ASSERT_TRUE(cpu_kernel(OpType::kConv)({OpType::kConv, conv, {up.view(), w.view(), bias.view()}, {want.view()}}).is_ok());

  OpAttributes fused = conv;
  fused.input_resize = std::make_shared<const InputResize>(InputResize{*mode, resized});
  Tensor got = Tensor::zeros(DType::kFloat32, y_shape);
  const Status s = cpu_kernel(OpType::kConv)({OpType::kConv, fused, {x.view(), w.view(), bias.view()}, {got.view()}});
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  ASSERT_EQ(got.bytes(), want.bytes());
  EXPECT_TRUE(std::equal(want.data<float>(), want.data<float>() + want.elements(), got.data<float>()));
}

// The plan of a channels-last graph loses the resized tensor when it is fused (one output channel,
// so that the peak is at the Conv).
TEST(FuseInputResize, ThePlanLosesTheResizedTensor) {
  UpsampleConv net(16, 64, {1, 1, 2, 2}, "linear", false, 1);
  const Graph unfused = net.device_ready();
  Graph fused = unfused;
  ASSERT_EQ(fuse_input_resize(fused, 0), 1);
  auto before = plan_memory(unfused);
  auto after = plan_memory(fused);
  ASSERT_TRUE(before.is_ok() && after.is_ok());
  // At the Conv, X [1, 64, 64, 16] is live instead of the resized [1, 128, 128, 16]; the peak is then
  // at X's transpose to NHWC (X twice).
  const std::size_t resized_bytes = 16 * 128 * 128 * sizeof(float), x_bytes = 16 * 64 * 64 * sizeof(float);
  EXPECT_GE(before->arena_bytes, resized_bytes);
  EXPECT_EQ(after->arena_bytes, 2 * x_bytes)
      << "fused " << after->arena_bytes << " bytes, unfused " << before->arena_bytes;
}

// band_large_resizes, the CUDA executor's step when its plan is large beside the budget: a device
// graph's resizes to 16 MiB and more (fp32 [1, 16, 512, 512]), not smaller ones.
TEST(FuseInputResize, BandLargeResizesTakesResizedTensorsFrom16MiB) {
  for (const auto& [size, want] : {std::pair{256, 1}, std::pair{128, 0}}) {
    UpsampleConv net(16, size, {1, 1, 2, 2}, "linear", false, 1);
    Graph optimized = net.b.g;
    ASSERT_TRUE(optimize(optimized).is_ok());
    ChannelsLastWeights weights;
    auto g = device_graph(optimized, {{1, 16, size, size}}, Precision::kFloat32, {LayoutChoice::kEverywhere, &weights});
    ASSERT_TRUE(g.is_ok()) << g.status().to_string();
    auto before = plan_memory(*g);
    ASSERT_TRUE(before.is_ok());
    auto banded = band_large_resizes(*g);
    ASSERT_TRUE(banded.is_ok()) << banded.status().to_string();
    EXPECT_EQ(*banded, want) << "x " << size << "²";
    EXPECT_EQ(count_ops(*g, OpType::kResize), 1 - want);
    auto after = plan_memory(*g);
    ASSERT_TRUE(after.is_ok());
    // Banded, X is live at the Conv instead of the resized tensor (four times its size).
    const std::size_t x_bytes = 16 * static_cast<std::size_t>(size * size) * sizeof(float);
    EXPECT_EQ(after->arena_bytes + want * 4 * x_bytes, before->arena_bytes + want * x_bytes);
  }
}

}  // namespace
}  // namespace fswap
