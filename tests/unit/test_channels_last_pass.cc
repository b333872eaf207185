// The channels-last layout pass (runtime/channels_last.h): which islands it converts, how it
// rewrites them, and that the rewritten graph computes the same outputs on the CPU backend (whose
// NHWC kernels are the references the CUDA ones are tested against on the GPU).
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "runtime/channels_last.h"
#include "runtime/engine.h"
#include "runtime/engines/executor.h"
#include "runtime/passes.h"
#include "support/graph_builder.h"
#include "support/graph_outputs.h"
#include "support/replicas.h"

namespace fswap {
namespace {

using Ints = std::vector<std::int64_t>;
using test::GraphBuilder;
using test::count_ops;
using test::expect_close;
using test::seeded_uniform;

const Node* first(const Graph& g, OpType op) {
  for (const Node& n : g.nodes)
    if (n.op == op) return &n;
  return nullptr;
}

// x [1, 8, 16, 16] → Conv 3×3 (8 → 8) → Relu → Conv 3×3 (8 → 8): two convolutions, and the
// boundary (input and output, 2048 elements each... 8·16·16 = 2048) is below the trivial size.
struct ConvChain {
  GraphBuilder b;
  std::mt19937 rng{7};
  int x = -1, y = -1;

  explicit ConvChain(std::int64_t channels = 8, std::int64_t size = 16, int convs = 2) {
    x = b.input("x", {1, channels, size, size});
    y = x;
    for (int i = 0; i < convs; ++i) {
      const std::string k = std::to_string(i);
      y = b.one(OpType::kConv, {y, b.random("w" + k, {channels, channels, 3, 3}, rng), b.random("b" + k, {channels}, rng)},
                {{"pads", Ints{1, 1, 1, 1}}});
      if (i + 1 < convs) y = b.one(OpType::kRelu, {y});
    }
  }
  Graph specialised() {
    Graph g = b.g;
    g.outputs = {y};
    EXPECT_TRUE(specialize(g, {g.values[x].shape}).is_ok());
    return g;
  }
};

// Runs g on the CPU with and without the plan: the same outputs within rtol.
void expect_same_outputs(const Graph& g, const std::vector<Tensor>& inputs, const ChannelsLastPlan& plan,
                         double rtol = 1e-5) {
  std::vector<Shape> shapes;
  std::vector<TensorView> views;
  for (const Tensor& t : inputs) {
    shapes.push_back(t.shape());
    views.push_back(t.view());
  }
  auto plain = Executor::create(g, shapes);
  ASSERT_TRUE(plain.is_ok()) << plain.status().to_string();
  auto nhwc = Executor::create(g, shapes, plan);
  ASSERT_TRUE(nhwc.is_ok()) << nhwc.status().to_string();
  auto want = (*plain)->run(views);
  ASSERT_TRUE(want.is_ok()) << want.status().to_string();
  auto got = (*nhwc)->run(views);
  ASSERT_TRUE(got.is_ok()) << got.status().to_string();
  expect_close(*want, *got, rtol);
}

TEST(ChannelsLastPass, ConvertsAConvChainWithTransposesOnlyAtItsEdges) {
  ConvChain chain(16, 32);  // boundary tensors of 16·32·32 elements: not trivial
  Graph g = chain.specialised();
  ChannelsLastWeights weights;
  auto r = to_channels_last(g, weights, LayoutChoice::kWherePays);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->islands, 1);
  EXPECT_EQ(r->convs, 2);
  EXPECT_EQ(r->nodes, 3);
  EXPECT_EQ(r->transposes, 2);
  EXPECT_EQ(count_ops(g, OpType::kTranspose), 2);
  for (const Node& n : g.nodes) {
    if (n.op != OpType::kConv) continue;
    EXPECT_EQ(n.attrs.i("channels_last", 0), 1);
    EXPECT_EQ(g.values[n.inputs[0]].shape, (Shape{1, 32, 32, 16}));
    EXPECT_EQ(g.values[n.inputs[1]].shape, (Shape{16, 3, 3, 16}));
  }
  // The graph's own input and output keep their layout.
  EXPECT_EQ(g.values[g.inputs[0]].shape, (Shape{1, 16, 32, 32}));
  EXPECT_EQ(g.values[g.outputs[0]].shape, (Shape{1, 16, 32, 32}));
}

TEST(ChannelsLastPass, LeavesAnIsolatedConvolutionAloneUnlessAskedEverywhere) {
  ConvChain chain(16, 32, 1);
  Graph g = chain.specialised();
  ChannelsLastWeights weights;
  auto r = to_channels_last(g, weights, LayoutChoice::kWherePays);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->islands, 0);
  EXPECT_EQ(count_ops(g, OpType::kTranspose), 0);
  r = to_channels_last(g, weights, LayoutChoice::kEverywhere);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->islands, 1);
  EXPECT_EQ(r->transposes, 2);
}

TEST(ChannelsLastPass, TrivialBoundariesDoNotCount) {
  ConvChain chain(8, 8, 1);  // one conv, 512-element boundaries: worth converting
  Graph g = chain.specialised();
  ChannelsLastWeights weights;
  auto r = to_channels_last(g, weights, LayoutChoice::kWherePays);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->islands, 1);
}

TEST(ChannelsLastPass, ATransposeOfAnIslandValueTakesTheLayout) {
  ConvChain chain(16, 32);
  GraphBuilder& b = chain.b;
  const int heads = b.one(OpType::kTranspose, {chain.y}, {{"perm", Ints{0, 2, 3, 1}}});  // scrfd's heads
  const int other = b.one(OpType::kTranspose, {chain.y}, {{"perm", Ints{0, 1, 3, 2}}});
  Graph g = b.g;
  g.outputs = {heads, other};
  ASSERT_TRUE(specialize(g, {{1, 16, 32, 32}}).is_ok());
  const Graph before = g;
  ChannelsLastWeights weights;
  auto r = to_channels_last(g, weights, LayoutChoice::kWherePays);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->absorbed, 2);
  EXPECT_EQ(r->transposes, 1);  // only the input's: nothing leaves the island in NCHW
  ASSERT_NE(first(g, OpType::kIdentity), nullptr);
  EXPECT_EQ(count_ops(g, OpType::kTranspose), 2);  // the input's and the folded (0, 1, 3, 2)
  for (const Node& n : g.nodes)
    if (n.op == OpType::kTranspose && n.outputs[0] != g.inputs[0] && n.inputs[0] != g.inputs[0]) {
      EXPECT_EQ(n.attrs.ints("perm", {}), (Ints{0, 3, 2, 1}));
    }
  expect_same_outputs(before, {seeded_uniform({1, 16, 32, 32}, 3)},
                      {LayoutChoice::kWherePays, &weights});
}

TEST(ChannelsLastPass, AWeightComputedInTheGraphJoinsTheIsland) {
  // StyleGAN2's modulated convolution (gfpgan): W = weight · style, demodulated, then Conv(x, W).
  ConvChain chain(16, 32);
  GraphBuilder& b = chain.b;
  const int style = b.input("style", {1, 16, 1, 1});
  const int w = b.one(OpType::kMul, {b.random("modulated", {16, 16, 3, 3}, chain.rng), style});
  const int energy = b.one(OpType::kReduceMean, {b.one(OpType::kMul, {w, w})}, {{"axes", Ints{1, 2, 3}}});
  const int demodulated = b.one(OpType::kDiv, {w, b.one(OpType::kSqrt, {energy})});
  const int y = b.one(OpType::kConv, {chain.y, demodulated}, {{"pads", Ints{1, 1, 1, 1}}});
  Graph g = b.g;
  g.outputs = {y};
  ASSERT_TRUE(specialize(g, {{1, 16, 32, 32}, {1, 16, 1, 1}}).is_ok());
  const Graph before = g;
  ChannelsLastWeights weights;
  auto r = to_channels_last(g, weights, LayoutChoice::kWherePays);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->islands, 1);
  EXPECT_EQ(r->convs, 3);
  // x in, y out, and the style's [1, 16, 1, 1]: the weight itself is never transposed at run time.
  EXPECT_EQ(r->transposes, 3);
  expect_same_outputs(before, {seeded_uniform({1, 16, 32, 32}, 3), seeded_uniform({1, 16, 1, 1}, 4)},
                      {LayoutChoice::kWherePays, &weights});
}

TEST(ChannelsLastPass, ResidualJoinsTheIsland) {
  // A ResNet block after the fusion pass: Relu(Conv(y) + y) is one Conv whose residual input 3 is
  // y, an island value: it stays NHWC, with no transpose of its own.
  ConvChain chain(16, 32);
  GraphBuilder& b = chain.b;
  const int z = b.one(OpType::kConv, {chain.y, b.random("w_block", {16, 16, 3, 3}, chain.rng)}, {{"pads", Ints{1, 1, 1, 1}}});
  const int out = b.one(OpType::kRelu, {b.one(OpType::kAdd, {z, chain.y})});
  Graph g = b.g;
  g.outputs = {out};
  ASSERT_TRUE(optimize(g).is_ok());
  ASSERT_EQ(count_ops(g, OpType::kAdd), 0);
  ASSERT_TRUE(specialize(g, {{1, 16, 32, 32}}).is_ok());
  const Graph before = g;
  ChannelsLastWeights weights;
  auto r = to_channels_last(g, weights, LayoutChoice::kWherePays);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->islands, 1);
  EXPECT_EQ(r->convs, 3);
  EXPECT_EQ(r->transposes, 2);  // x in, the block's output out
  int residuals = 0;
  for (const Node& n : g.nodes) {
    if (n.op != OpType::kConv || n.inputs.size() < 4) continue;
    ++residuals;
    EXPECT_EQ(n.attrs.i("channels_last", 0), 1);
    EXPECT_EQ(n.attrs.activation.kind, Activation::kRelu);
    EXPECT_EQ(g.values[n.inputs[3]].shape, (Shape{1, 32, 32, 16}));
  }
  EXPECT_EQ(residuals, 1);
  expect_same_outputs(before, {seeded_uniform({1, 16, 32, 32}, 5)}, {LayoutChoice::kWherePays, &weights});
}

TEST(ChannelsLastPass, AFusedPReluKeepsItsSlopePerChannel) {
  // ArcFace's block end: PRelu(Conv(y) + y) with a [C, 1, 1] slope is one Conv with the residual
  // and a per-channel slope ([C], input 4), which the layout leaves as it is.
  ConvChain chain(16, 32);
  GraphBuilder& b = chain.b;
  const int z = b.one(OpType::kConv, {chain.y, b.random("w_block", {16, 16, 3, 3}, chain.rng)}, {{"pads", Ints{1, 1, 1, 1}}});
  const int sum = b.one(OpType::kAdd, {z, chain.y});
  const int out = b.one(OpType::kPRelu, {sum, b.random("slope", {16, 1, 1}, chain.rng, -0.5f, 0.5f)});
  Graph g = b.g;
  g.outputs = {out};
  ASSERT_TRUE(optimize(g).is_ok());
  ASSERT_EQ(count_ops(g, OpType::kPRelu), 0);
  ASSERT_TRUE(specialize(g, {{1, 16, 32, 32}}).is_ok());
  const Graph before = g;
  ChannelsLastWeights weights;
  auto r = to_channels_last(g, weights, LayoutChoice::kWherePays);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  int fused = 0;
  for (const Node& n : g.nodes) {
    if (n.op != OpType::kConv || n.attrs.activation.kind != Activation::kPRelu) continue;
    ++fused;
    EXPECT_EQ(n.attrs.i("channels_last", 0), 1);
    ASSERT_EQ(n.inputs.size(), 5u);
    EXPECT_EQ(g.values[n.inputs[3]].shape, (Shape{1, 32, 32, 16}));
    EXPECT_EQ(g.values[n.inputs[4]].shape, (Shape{16}));
  }
  EXPECT_EQ(fused, 1);
  expect_same_outputs(before, {seeded_uniform({1, 16, 32, 32}, 5)}, {LayoutChoice::kWherePays, &weights});
}

TEST(ChannelsLastPass, EveryShapeOfAModelReadsTheSameWeightCopy) {
  ConvChain chain(16, 32);
  chain.b.g.values[chain.x].shape = {-1, 16, 32, 32};
  Graph one = chain.b.g, two = chain.b.g;
  one.outputs = two.outputs = {chain.y};
  ASSERT_TRUE(specialize(one, {{1, 16, 32, 32}}).is_ok());
  ASSERT_TRUE(specialize(two, {{2, 16, 32, 32}}).is_ok());
  ChannelsLastWeights weights;
  ASSERT_TRUE(to_channels_last(one, weights, LayoutChoice::kWherePays).is_ok());
  ASSERT_TRUE(to_channels_last(two, weights, LayoutChoice::kWherePays).is_ok());
  std::vector<const Tensor*> a, b;
  for (const WeightBlock& w : one.weights) a.push_back(w.data.get());
  for (const WeightBlock& w : two.weights) b.push_back(w.data.get());
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  EXPECT_EQ(a.size(), 4u);  // two transposed kernels, two biases
  EXPECT_EQ(a, b);
}

TEST(ChannelsLastPass, RewritesTheAxesOfEveryLayoutFreeOp) {
  // One island of ops with axis arguments; no convolution, so converted only when asked everywhere.
  GraphBuilder b;
  std::mt19937 rng(11);
  const int x = b.input("x", {2, 6, 9, 10});
  const int slope = b.random("slope", {6, 1, 1}, rng);
  const int act = b.one(OpType::kPRelu, {x, slope});
  const int padded = b.one(OpType::kPad, {act, b.ints("pads", {0, 1, 2, 0, 0, 1, 1, 0})});
  const int up = b.one(OpType::kResize, {padded, -1, b.floats("scales", {4}, {1, 1, 2, 0.5f})}, {{"mode", std::string("linear")}});
  const auto halves = b.node(OpType::kSplit, {up}, 2, {{"axis", std::int64_t{1}}});
  const int mean = b.one(OpType::kReduceMean, {halves[0]}, {{"axes", Ints{2, 3}}});
  const int scaled = b.one(OpType::kMul, {halves[1], mean});
  const int joined = b.one(OpType::kConcat, {scaled, halves[0]}, {{"axis", std::int64_t{1}}});
  const int soft = b.one(OpType::kSoftmax, {joined}, {{"axis", std::int64_t{1}}});
  const int pooled = b.one(OpType::kGlobalAveragePool, {soft});
  const int biased = b.one(OpType::kAdd, {soft, pooled});
  const int flat = b.one(OpType::kTranspose, {biased}, {{"perm", Ints{0, 2, 3, 1}}});
  b.g.outputs = {biased, flat, pooled};
  Graph g = b.g;
  const Status shaped = specialize(g, {{2, 6, 9, 10}});
  ASSERT_TRUE(shaped.is_ok()) << shaped.to_string();

  ChannelsLastWeights weights;
  Graph rewritten = g;
  auto r = to_channels_last(rewritten, weights, LayoutChoice::kWherePays);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->islands, 0) << "no convolution: nothing pays";
  r = to_channels_last(rewritten, weights, LayoutChoice::kEverywhere);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->islands, 1);
  EXPECT_EQ(r->absorbed, 1);
  EXPECT_EQ(count_ops(rewritten, OpType::kGlobalAveragePool), 0);
  EXPECT_EQ(first(rewritten, OpType::kConcat)->attrs.i("axis", 0), 3);
  EXPECT_EQ(first(rewritten, OpType::kSplit)->attrs.i("axis", 0), 3);
  EXPECT_EQ(first(rewritten, OpType::kSoftmax)->attrs.i("axis", 0), 3);
  EXPECT_EQ(first(rewritten, OpType::kReduceMean)->attrs.ints("axes", {}), (Ints{1, 2}));
  expect_same_outputs(g, {seeded_uniform({2, 6, 9, 10}, 5)}, {LayoutChoice::kEverywhere, &weights});
}

TEST(ChannelsLastPass, RefusesAGraphThatIsNotSpecialised) {
  ConvChain chain;
  Graph g = chain.b.g;
  g.outputs = {chain.y};
  ChannelsLastWeights weights;
  auto r = to_channels_last(g, weights, LayoutChoice::kEverywhere);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("specialised"), std::string::npos) << r.status().message();
}

// FaceFusion replicas on the CPU engine, every island channels-last against ONNX's layout: Conv
// chains with InstanceNormalization, Pad and Resize (inswapper), pools, absorbed head transposes
// (scrfd), Split/Concat/Sigmoid (yoloface), fused FilterResponseNorms (xseg_1).
class ChannelsLastReplica : public ::testing::TestWithParam<const char*> {};

TEST_P(ChannelsLastReplica, GivesTheSameOutputs) {
  std::string why;
  const std::string name = GetParam();
  const std::string dir = name == "inswapper_128" ? test::replica_dir(&why)
                          : name == "xseg_1"      ? test::swapper_replica_dir(&why)
                                                  : test::detector_replica_dir(&why);
  if (dir.empty()) GTEST_SKIP() << why;
  const std::string path = dir + "/" + name + ".onnx";
  auto engine = make_engine("native");
  ASSERT_TRUE(engine.is_ok());
  auto plain = (*engine)->load(path, {});
  ASSERT_TRUE(plain.is_ok()) << plain.status().to_string();
  SessionOptions channels_last;
  channels_last.layout = Layout::kNhwc;
  auto nhwc = (*engine)->load(path, channels_last);
  ASSERT_TRUE(nhwc.is_ok()) << nhwc.status().to_string();
  std::vector<Tensor> inputs;
  std::uint32_t seed = 1;
  for (const TensorInfo& in : (*plain)->inputs()) {
    Shape shape = in.shape;
    for (std::size_t d = 0; d < shape.size(); ++d)
      if (shape[d] < 0) shape[d] = d == 0 ? 1 : 64;  // detectors take any multiple of 32
    inputs.push_back(seeded_uniform(shape, seed++));
  }
  auto want = (*plain)->run(inputs);
  ASSERT_TRUE(want.is_ok()) << want.status().to_string();
  auto got = (*nhwc)->run(inputs);
  ASSERT_TRUE(got.is_ok()) << got.status().to_string();
  expect_close(*want, *got, 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Replicas, ChannelsLastReplica,
                         ::testing::Values("inswapper_128", "scrfd_2.5g", "yoloface_8n", "retinaface_10g", "xseg_1"));

}  // namespace
}  // namespace fswap
