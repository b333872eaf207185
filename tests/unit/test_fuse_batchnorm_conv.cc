// fuse_batchnorm_conv (runtime/passes.cc, run by optimize): a BatchNormalization before a Conv
// folds into the Conv's weight, plus a constant residual of batch 1 for a padded Conv (the BN's
// shift seen through the zero padding) or a bias for an unpadded one. The optimised graph must
// compute what the original does, at a batch other than the probes', in NCHW and channels-last
// (the pass's residual is transposed like any constant residual). Also: the CPU Conv kernels add a
// batch-1 residual to every item (backends/op.h), and the shape rule takes it. The CUDA epilogue
// is tested against these kernels on the GPU (tests/gpu/test_cuda_channels_last.cc,
// CudaConvBatchResidual).
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>

#include "backends/cpu/cpu_kernels.h"
#include "runtime/passes.h"
#include "support/conv_layout_cases.h"
#include "support/graph_builder.h"
#include "support/graph_outputs.h"

namespace fswap {
namespace {

using Ints = std::vector<std::int64_t>;
using test::count_ops;
using test::expect_close;
using test::run_on_cpu;
using test::GraphBuilder;
using test::seeded_uniform;

// A BatchNormalization over `channels` with random statistics (scale and shift of either sign, so
// the fold's per-channel scaling and its border term both matter).
int batchnorm(GraphBuilder& b, int x, std::int64_t channels, std::mt19937& rng, const std::string& name) {
  return b.one(OpType::kBatchNormalization,
               {x, b.random(name + "_scale", {channels}, rng, -1.5f, 1.5f), b.random(name + "_shift", {channels}, rng),
                b.random(name + "_mean", {channels}, rng), b.random(name + "_var", {channels}, rng, 0.2f, 2.0f)},
               {{"epsilon", AttributeValue(1e-3f)}});
}

bool has_residual(const Node& n) { return n.inputs.size() > 3 && n.inputs[3] >= 0; }

// x [-1, 8, 9, 10] (a dynamic batch, as ArcFace's input) → BN → Conv k×k.
struct BnConvCase {
  std::string name;
  std::int64_t kernel = 3, stride = 1, group = 1, out_channels = 6;
  Ints pads{1, 1, 1, 1};
  bool bias = true;
};

TEST(FuseBatchNormConv, FoldsIntoTheConvAndComputesTheSame) {
  const std::vector<BnConvCase> cases = {
      {.name = "Pad1"},
      {.name = "Pad1NoBias", .bias = false},
      {.name = "Pad1Stride2", .stride = 2},
      {.name = "Pad1Stride2NoBias", .stride = 2, .bias = false},
      {.name = "Group2", .group = 2},
      {.name = "Group2Stride2NoBias", .stride = 2, .group = 2, .bias = false},
      {.name = "Depthwise", .group = 8, .out_channels = 8},
      {.name = "DepthwiseMultiplier2Stride2", .stride = 2, .group = 8, .out_channels = 16, .bias = false},
      {.name = "AsymmetricPads", .pads = {0, 1, 2, 0}},
      {.name = "Unpadded3x3", .pads = {0, 0, 0, 0}},
      {.name = "Pointwise", .kernel = 1, .pads = {0, 0, 0, 0}, .bias = false},
  };
  const std::int64_t channels = 8;
  for (const BnConvCase& c : cases) {
    SCOPED_TRACE(c.name);
    std::mt19937 rng(21);
    GraphBuilder b;
    const int x = b.input("x", {-1, channels, 9, 10});
    const int z = batchnorm(b, x, channels, rng, "bn");
    std::vector<int> conv_inputs = {z, b.random("w", {c.out_channels, channels / c.group, c.kernel, c.kernel}, rng)};
    if (c.bias) conv_inputs.push_back(b.random("b", {c.out_channels}, rng));
    b.g.outputs = {b.one(OpType::kConv, conv_inputs,
                         {{"pads", c.pads}, {"strides", Ints{c.stride, c.stride}}, {"group", c.group}})};
    Graph fused = b.g;
    ASSERT_TRUE(optimize(fused).is_ok());
    EXPECT_EQ(count_ops(fused, OpType::kBatchNormalization), 0);
    ASSERT_EQ(fused.nodes.size(), 1u);
    const Node& conv = fused.nodes[0];
    EXPECT_EQ(conv.inputs[0], fused.inputs[0]);
    const bool padded = std::any_of(c.pads.begin(), c.pads.end(), [](std::int64_t p) { return p != 0; });
    if (padded) {
      ASSERT_TRUE(has_residual(conv));
      const Tensor* m = fused.constant_data(conv.inputs[3]);
      ASSERT_NE(m, nullptr);
      EXPECT_EQ(m->shape()[0], 1);  // one item, broadcast over the batch
      EXPECT_EQ(conv.inputs[2] >= 0, c.bias);  // the bias stays the Conv's own
    } else {
      EXPECT_FALSE(has_residual(conv));
      ASSERT_EQ(conv.inputs.size(), 3u);  // the border term is one value per channel: a bias
      ASSERT_NE(fused.constant_data(conv.inputs[2]), nullptr);
    }

    const std::vector<Tensor> input = {seeded_uniform({3, channels, 9, 10}, 5)};  // batch 3: not a probe's
    const std::vector<Tensor> want = run_on_cpu(b.g, input);
    expect_close(want, run_on_cpu(fused, input));
    expect_close(want, run_on_cpu(fused, input, /*channels_last=*/true));
  }
}

// ArcFace's IResNet block: BN1 → Conv 3×3 → BN2 → PRelu → Conv 3×3 stride 2 → BN3, plus the
// shortcut Conv 1×1 stride 2 → BN. BN1 folds into the first Conv, which keeps BN2's fold (its
// bias), takes the border term as its residual and then the PRelu (kPRelu, slope input 4); the
// second Conv takes the shortcut's Add. No BatchNormalization is left.
TEST(FuseBatchNormConv, ArcFaceBlockBecomesTwoConvsAndAShortcut) {
  std::mt19937 rng(33);
  GraphBuilder b;
  const std::int64_t c = 8, m = 16;
  const Ints pad1{1, 1, 1, 1}, stride2{2, 2};
  const int x = b.input("x", {-1, c, 12, 12});
  int y = batchnorm(b, x, c, rng, "bn1");
  y = b.one(OpType::kConv, {y, b.random("w1", {m, c, 3, 3}, rng)}, {{"pads", pad1}});
  y = batchnorm(b, y, m, rng, "bn2");
  y = b.one(OpType::kPRelu, {y, b.random("slope", {m, 1, 1}, rng, 0.0f, 0.5f)});
  y = b.one(OpType::kConv, {y, b.random("w2", {m, m, 3, 3}, rng)}, {{"pads", pad1}, {"strides", stride2}});
  y = batchnorm(b, y, m, rng, "bn3");
  int s = b.one(OpType::kConv, {x, b.random("ws", {m, c, 1, 1}, rng)}, {{"strides", stride2}});
  s = batchnorm(b, s, m, rng, "bns");
  b.g.outputs = {b.one(OpType::kAdd, {y, s})};

  Graph fused = b.g;
  ASSERT_TRUE(optimize(fused).is_ok());
  EXPECT_EQ(count_ops(fused, OpType::kBatchNormalization), 0);
  EXPECT_EQ(count_ops(fused, OpType::kPRelu), 0);
  EXPECT_EQ(count_ops(fused, OpType::kAdd), 0);
  ASSERT_EQ(count_ops(fused, OpType::kConv), 3);
  const auto prelu = std::find_if(fused.nodes.begin(), fused.nodes.end(), [](const Node& n) {
    return n.op == OpType::kConv && n.attrs.activation.kind == Activation::kPRelu;
  });
  ASSERT_NE(prelu, fused.nodes.end());
  const Node* conv1 = &*prelu;
  EXPECT_EQ(conv1->inputs[0], fused.inputs[0]);
  EXPECT_NE(fused.constant_data(conv1->inputs[1]), b.g.constant_data(b.g.nodes[1].inputs[1]));  // W·a, new
  ASSERT_EQ(conv1->inputs.size(), 5u);
  ASSERT_NE(fused.constant_data(conv1->inputs[2]), nullptr);  // BN2's bias
  const Tensor* border = fused.constant_data(conv1->inputs[3]);
  ASSERT_NE(border, nullptr);
  EXPECT_EQ(border->shape(), (Shape{1, m, 12, 12}));
  ASSERT_NE(fused.constant_data(conv1->inputs[4]), nullptr);  // the PRelu's slope

  for (const std::int64_t batch : {1, 3}) {
    const std::vector<Tensor> input = {seeded_uniform({batch, c, 12, 12}, 9)};
    const std::vector<Tensor> want = run_on_cpu(b.g, input);
    expect_close(want, run_on_cpu(fused, input));
    expect_close(want, run_on_cpu(fused, input, /*channels_last=*/true));
  }
}

TEST(FuseBatchNormConv, LeavesWhatItCannotTake) {
  struct Options {
    Shape x{1, 4, 8, 8};
    bool bn_also_output = false, residual = false, weight_input = false, relu_after_bn = false;
  };
  const auto bn_conv = [](const Options& o) {
    std::mt19937 rng(4);
    GraphBuilder b;
    const int x = b.input("x", o.x);
    int z = batchnorm(b, x, 4, rng, "bn");
    if (o.relu_after_bn) z = b.one(OpType::kRelu, {z});  // BN → Relu → Conv: the BN takes the Relu
    const int w = o.weight_input ? b.input("w", {4, 4, 3, 3}) : b.random("w", {4, 4, 3, 3}, rng);
    std::vector<int> inputs = {z, w, -1};
    if (o.residual) inputs.push_back(b.input("r", {1, 4, 8, 8}));
    b.g.outputs = {b.one(OpType::kConv, inputs, {{"pads", Ints{1, 1, 1, 1}}})};
    if (o.bn_also_output) b.g.outputs.push_back(z);
    return b.g;
  };
  struct Case {
    const char* name;
    Graph g;
  };
  Case cases[] = {
      {"the BN's output also a graph output", bn_conv({.bn_also_output = true})},
      {"dynamic spatial dims", bn_conv({.x = {-1, 4, -1, -1}})},
      {"a Conv with a residual already", bn_conv({.residual = true})},
      {"a weight computed at run time", bn_conv({.weight_input = true})},
      {"an activation between", bn_conv({.relu_after_bn = true})},
  };
  for (Case& c : cases) {
    SCOPED_TRACE(c.name);
    ASSERT_TRUE(optimize(c.g).is_ok());
    EXPECT_EQ(count_ops(c.g, OpType::kBatchNormalization), 1);
  }
}

// The CPU Conv and ConvTranspose kernels with a residual of batch 1 (backends/op.h) give, bit for
// bit, what they give with that residual repeated for every item, in NCHW and channels-last.
// A BatchNormalization after a Gemm with B = [N, K] (transB = 1: ArcFace's embedding layer) folds
// into B's rows and C, whatever alpha and beta are (beta becomes 1); with transB = 0 it stays.
TEST(FuseGemmBatchNorm, FoldsIntoAGemmWithRowsPerOutputAndComputesTheSame) {
  for (const std::int64_t trans_b : {1, 0}) {
    SCOPED_TRACE(trans_b);
    std::mt19937 rng(21);
    GraphBuilder b;
    const int x = b.input("x", {-1, 12});
    const Shape weight = trans_b ? Shape{5, 12} : Shape{12, 5};
    const int y = b.one(OpType::kGemm, {x, b.random("w", weight, rng), b.random("c", {5}, rng)},
                        {{"transB", AttributeValue(trans_b)}, {"alpha", AttributeValue(2.0f)},
                         {"beta", AttributeValue(0.5f)}});
    b.g.outputs = {batchnorm(b, y, 5, rng, "bn")};
    Graph fused = b.g;
    ASSERT_TRUE(optimize(fused).is_ok());
    EXPECT_EQ(count_ops(fused, OpType::kBatchNormalization), trans_b ? 0 : 1);
    const std::vector<Tensor> input = {seeded_uniform({3, 12}, 4)};
    expect_close(run_on_cpu(b.g, input), run_on_cpu(fused, input));
  }
}

// ArcFace's tail: BatchNormalization → Flatten → Gemm (transB = 1) → BatchNormalization. Both BNs
// fold into the Gemm, the first through the flattened channel blocks; a Flatten at axis 2 keeps
// its BN.
TEST(FuseGemmBatchNorm, ABatchNormBeforeFlattenFoldsIntoTheGemm) {
  for (const std::int64_t axis : {1, 2}) {
    SCOPED_TRACE(axis);
    std::mt19937 rng(23);
    GraphBuilder b;
    const int x = b.input("x", {-1, 4, 3, 3});
    const int flat = b.one(OpType::kFlatten, {batchnorm(b, x, 4, rng, "bn2d")}, {{"axis", AttributeValue(axis)}});
    const Shape weight = axis == 1 ? Shape{5, 36} : Shape{5, 9};
    const int y = b.one(OpType::kGemm, {flat, b.random("w", weight, rng), b.random("c", {5}, rng)},
                        {{"transB", AttributeValue(std::int64_t{1})}, {"alpha", AttributeValue(2.0f)},
                         {"beta", AttributeValue(0.5f)}});
    b.g.outputs = {batchnorm(b, y, 5, rng, "bn1d")};
    Graph fused = b.g;
    ASSERT_TRUE(optimize(fused).is_ok());
    EXPECT_EQ(count_ops(fused, OpType::kBatchNormalization), axis == 1 ? 0 : 1);
    const std::int64_t batch = axis == 1 ? 3 : 1;  // Flatten at axis 2 gives [N·4, 9]: one item keeps it small
    const std::vector<Tensor> input = {seeded_uniform({batch, 4, 3, 3}, 6)};
    expect_close(run_on_cpu(b.g, input), run_on_cpu(fused, input));
  }
}

TEST(ConvBatchResidual, TheCpuKernelsAddItToEveryItem) {
  int checked = 0;
  for (const test::ConvLayoutCase& c : test::conv_layout_cases()) {
    if (c.x[0] < 2) continue;
    for (const bool nhwc : {false, true}) {
      SCOPED_TRACE(c.name + (nhwc ? " nhwc" : " nchw"));
      const Shape y_nchw = test::inferred_output(c, false).value();
      Shape item = y_nchw;
      item[0] = 1;
      const Tensor r_nchw = seeded_uniform(item, 4);
      Tensor tiled_nchw = Tensor::zeros(DType::kFloat32, y_nchw);
      for (std::int64_t n = 0; n < y_nchw[0]; ++n)
        std::copy_n(r_nchw.data<float>(), r_nchw.elements(), tiled_nchw.data<float>() + n * r_nchw.elements());
      const auto layout = [&](const Tensor& t) { return nhwc ? test::nhwc_of(t) : Tensor::copy_of(t.view()); };
      const Tensor x = layout(test::seeded_tensor(c.x, 1)), w = layout(test::seeded_tensor(c.w, 2));
      const Tensor bias = test::seeded_tensor({test::out_channels(c)}, 3);
      const Tensor r = layout(r_nchw), tiled = layout(tiled_nchw);
      const OpAttributes attrs = test::node_attributes(c, nhwc);
      const auto conv = [&](const Tensor& residual) {
        Tensor y = Tensor::zeros(DType::kFloat32, test::inferred_output(c, nhwc).value());
        const std::vector<TensorView> inputs = {x.view(), w.view(), c.bias ? bias.view() : TensorView{},
                                                residual.view()};
        const Status s = cpu_kernel(c.op)({c.op, attrs, inputs, {y.view()}});
        EXPECT_TRUE(s.is_ok()) << s.to_string();
        return y;
      };
      const Tensor want = conv(tiled), got = conv(r);
      for (std::int64_t i = 0; i < want.elements(); ++i)
        ASSERT_EQ(got.data<float>()[i], want.data<float>()[i]) << i;
      ++checked;
    }
  }
  EXPECT_GE(checked, 10);
}

// The shape rule takes a residual of Y's shape or Y's with batch 1, nothing else.
TEST(ConvBatchResidual, TheShapeRuleTakesBatchOneOnly) {
  std::mt19937 rng(2);
  for (const auto& [r_shape, ok] : {std::pair{Shape{3, 4, 6, 6}, true}, std::pair{Shape{1, 4, 6, 6}, true},
                                    std::pair{Shape{2, 4, 6, 6}, false}, std::pair{Shape{1, 4, 1, 6}, false},
                                    std::pair{Shape{4, 6, 6}, false}}) {
    SCOPED_TRACE(shape_to_string(r_shape));
    GraphBuilder b;
    const int x = b.input("x", {3, 4, 6, 6}), r = b.input("r", r_shape);
    b.one(OpType::kConv, {x, b.random("w", {4, 4, 3, 3}, rng), -1, r}, {{"pads", Ints{1, 1, 1, 1}}});
    const Status s = b.infer_last_status();
    EXPECT_EQ(s.is_ok(), ok) << s.to_string();
  }
}

}  // namespace
}  // namespace fswap
