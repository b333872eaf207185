// align_conv_channels (runtime/channels_last.h, run by the CUDA backend at float16 after the
// channels-last pass): a channels_last Conv with a filter count that is not a multiple of 8, read
// only by channels_last Convs, gets zero filters up to the next multiple and its readers zero input
// channels. The widened graph must compute what the original does (CPU backend, whose NHWC kernels
// are the CUDA ones' references); the CUDA side runs it in test_cuda_models (scrfd's stem).
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>

#include "runtime/channels_last.h"
#include "runtime/device_graph.h"
#include "runtime/passes.h"
#include "support/graph_builder.h"
#include "support/graph_outputs.h"

namespace fswap {
namespace {

using Ints = std::vector<std::int64_t>;
using test::expect_close;
using test::GraphBuilder;
using test::run_on_cpu;
using test::seeded_uniform;

// A 3×3 Conv (pad 1, stride `stride`) from `in` to `out` channels with a bias, then a Relu.
int conv_relu(GraphBuilder& b, int x, std::int64_t in, std::int64_t out, std::mt19937& rng, std::int64_t stride = 1) {
  const std::string k = std::to_string(b.g.values.size());
  const int y = b.one(OpType::kConv, {x, b.random("w" + k, {out, in, 3, 3}, rng), b.random("b" + k, {out}, rng)},
                      {{"pads", Ints{1, 1, 1, 1}}, {"strides", Ints{stride, stride}}});
  return b.one(OpType::kRelu, {y});
}

// scrfd's stem: 3 → 12 (stride 2) → 12 → 24 channels, then whatever `tail` adds.
struct Stem {
  GraphBuilder b;
  std::mt19937 rng{5};
  int x = -1, y = -1;
  Stem() {
    x = b.input("x", {-1, 3, 20, 20});
    y = conv_relu(b, conv_relu(b, conv_relu(b, x, 3, 12, rng, 2), 12, 12, rng), 12, 24, rng);
    b.g.outputs = {y};
  }
  Graph optimised() const {
    Graph g = b.g;
    EXPECT_TRUE(optimize(g).is_ok());
    return g;
  }
};

// The device graph's Conv weight shapes ([M, kH, kW, C]), in node order.
std::vector<Shape> conv_weights(const Graph& g) {
  std::vector<Shape> shapes;
  for (const Node& n : g.nodes)
    if (n.op == OpType::kConv) shapes.push_back(g.values[n.inputs[1]].shape);
  return shapes;
}

ChannelsLastPlan aligned_plan(ChannelsLastWeights& weights) {
  return {.choice = LayoutChoice::kEverywhere, .weights = &weights, .align_channels = true};
}

TEST(AlignConvChannels, TheStemWidensTo16ChannelsAndComputesTheSame) {
  const Stem stem;
  const Graph g = stem.optimised();
  ChannelsLastWeights weights;
  auto widened = device_graph(g, {{2, 3, 20, 20}}, Precision::kFloat32, aligned_plan(weights));
  ASSERT_TRUE(widened.is_ok()) << widened.status().to_string();
  EXPECT_EQ(conv_weights(*widened), (std::vector<Shape>{{16, 3, 3, 3}, {16, 3, 3, 16}, {24, 3, 3, 16}}));
  const std::vector<Tensor> input = {seeded_uniform({2, 3, 20, 20}, 3)};
  expect_close(run_on_cpu(g, input), run_on_cpu(g, input, aligned_plan(weights)));
}

// Without the flag (fp32 on the GPU, the CPU backend) nothing is widened.
TEST(AlignConvChannels, OnlyWhenThePlanAsks) {
  const Graph g = Stem().optimised();
  ChannelsLastWeights weights;
  auto nhwc = device_graph(g, {{1, 3, 20, 20}}, Precision::kFloat32, {LayoutChoice::kEverywhere, &weights});
  ASSERT_TRUE(nhwc.is_ok()) << nhwc.status().to_string();
  EXPECT_EQ(conv_weights(*nhwc), (std::vector<Shape>{{12, 3, 3, 3}, {12, 3, 3, 12}, {24, 3, 3, 12}}));
}

// A 12-filter output that a MaxPool, an Add or the graph's caller reads keeps its 12 channels
// (their shapes are the model's); the Conv before a graph output too.
TEST(AlignConvChannels, AnOutputReadByAnythingButConvsKeepsItsChannels) {
  Stem stem;
  GraphBuilder& b = stem.b;
  const int pooled = b.one(OpType::kMaxPool, {conv_relu(b, stem.y, 24, 12, stem.rng)},
                           {{"kernel_shape", Ints{2, 2}}, {"strides", Ints{2, 2}}});
  const int seen = conv_relu(b, pooled, 12, 12, stem.rng);
  // Stride 2: not a sibling of `seen` (fuse_sibling_convs would merge the two).
  b.g.outputs = {b.one(OpType::kAdd, {seen, seen}), conv_relu(b, pooled, 12, 4, stem.rng, 2)};
  const Graph g = stem.optimised();
  ChannelsLastWeights weights;
  auto widened = device_graph(g, {{1, 3, 20, 20}}, Precision::kFloat32, aligned_plan(weights));
  ASSERT_TRUE(widened.is_ok()) << widened.status().to_string();
  const std::vector<Shape> shapes = conv_weights(*widened);
  ASSERT_EQ(shapes.size(), 6u);
  EXPECT_EQ(shapes[3], (Shape{12, 3, 3, 24}));  // read by the MaxPool
  EXPECT_EQ(shapes[4][0], 12);                  // read by the Add
  EXPECT_EQ(shapes[5][0], 4);                   // a graph output
  const std::vector<Tensor> input = {seeded_uniform({1, 3, 20, 20}, 8)};
  expect_close(run_on_cpu(g, input), run_on_cpu(g, input, aligned_plan(weights)));
}

// Every batch size of a model reads the same widened copies.
TEST(AlignConvChannels, EveryShapeReadsTheSameWidenedWeights) {
  const Graph g = Stem().optimised();
  ChannelsLastWeights weights;
  auto one = device_graph(g, {{1, 3, 20, 20}}, Precision::kFloat32, aligned_plan(weights));
  auto two = device_graph(g, {{2, 3, 20, 20}}, Precision::kFloat32, aligned_plan(weights));
  ASSERT_TRUE(one.is_ok() && two.is_ok());
  EXPECT_EQ(conv_weights(*one)[0], (Shape{16, 3, 3, 3}));
  const auto conv_data = [](const Graph& d) {
    std::vector<const Tensor*> data;
    for (const Node& n : d.nodes)
      if (n.op == OpType::kConv) data.push_back(d.constant_data(n.inputs[1]));
    return data;
  };
  EXPECT_EQ(conv_data(*one), conv_data(*two));
}

}  // namespace
}  // namespace fswap
