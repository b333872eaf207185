// fuse_sibling_convs (runtime/passes.cc, run by optimize): narrow Convs reading the same X with
// the same window (a detector's score, box and landmark heads) become one Conv with their filters
// stacked and zero-padded to a multiple of 8, then a Split into their outputs. The optimised graph
// must compute what the original does, in NCHW and channels-last; wider or differently windowed
// Convs stay apart. The CUDA kernels run the merged heads in test_cuda_models (the scrfd,
// retinaface and yunet replicas, CUDA against the CPU backend).
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "runtime/engines/model_report.h"
#include "runtime/passes.h"
#include "support/graph_builder.h"
#include "support/graph_outputs.h"
#include "support/replicas.h"

namespace fswap {
namespace {

using test::count_ops;
using test::expect_close;
using test::GraphBuilder;
using test::run_on_cpu;
using test::seeded_uniform;

constexpr std::int64_t kChannels = 16;

// A Conv of x with `filters` 3×3 filters (a bias when asked), its window given by `attrs`.
int conv(GraphBuilder& b, int x, std::int64_t filters, std::mt19937& rng, bool bias,
         std::map<std::string, AttributeValue> attrs = {{"pads", std::vector<std::int64_t>{1, 1, 1, 1}}}) {
  const std::string name = "w" + std::to_string(b.g.values.size());
  std::vector<int> inputs = {x, b.random(name, {filters, kChannels, 3, 3}, rng)};
  if (bias) inputs.push_back(b.random(name + "_bias", {filters}, rng));
  return b.one(OpType::kConv, inputs, std::move(attrs));
}

// The heads of one scrfd stride: scores (2 filters, then a Sigmoid), boxes (8, no bias) and
// landmarks (20).
GraphBuilder heads() {
  std::mt19937 rng(11);
  GraphBuilder b;
  const int x = b.input("x", {-1, kChannels, 9, 11});
  const int scores = b.one(OpType::kSigmoid, {conv(b, x, 2, rng, true)});
  const int boxes = conv(b, x, 8, rng, false);
  const int landmarks = conv(b, x, 20, rng, true);
  b.g.outputs = {scores, boxes, landmarks};
  return b;
}

TEST(FuseSiblingConvs, HeadsBecomeOneConvAndASplitAndComputeTheSame) {
  const GraphBuilder b = heads();
  Graph fused = b.g;
  ASSERT_TRUE(optimize(fused).is_ok());
  EXPECT_EQ(count_ops(fused, OpType::kConv), 1);
  EXPECT_EQ(count_ops(fused, OpType::kSplit), 1);
  EXPECT_EQ(count_ops(fused, OpType::kSigmoid), 1);  // no single activation for the merged Conv
  for (const Node& n : fused.nodes) {
    if (n.op == OpType::kConv) EXPECT_EQ(fused.constant_data(n.inputs[1])->shape(), (Shape{32, kChannels, 3, 3}));
    if (n.op == OpType::kSplit) {
      EXPECT_EQ(n.attrs.ints("split", {}), (std::vector<std::int64_t>{2, 8, 20, 2}));  // 30 filters padded to 32
      EXPECT_EQ(n.outputs.size(), 4u);
    }
  }
  const std::vector<Tensor> input = {seeded_uniform({3, kChannels, 9, 11}, 5)};
  const std::vector<Tensor> want = run_on_cpu(b.g, input);
  expect_close(want, run_on_cpu(fused, input));
  expect_close(want, run_on_cpu(fused, input, /*channels_last=*/true));
}

// Filters already a multiple of 8 take no padding output.
TEST(FuseSiblingConvs, AlignedFiltersNeedNoPadding) {
  std::mt19937 rng(3);
  GraphBuilder b;
  const int x = b.input("x", {1, kChannels, 6, 6});
  b.g.outputs = {conv(b, x, 8, rng, true), conv(b, x, 16, rng, true)};
  Graph fused = b.g;
  ASSERT_TRUE(optimize(fused).is_ok());
  ASSERT_EQ(count_ops(fused, OpType::kSplit), 1);
  for (const Node& n : fused.nodes)
    if (n.op == OpType::kSplit) EXPECT_EQ(n.attrs.ints("split", {}), (std::vector<std::int64_t>{8, 16}));
  const std::vector<Tensor> input = {seeded_uniform({1, kChannels, 6, 6}, 9)};
  expect_close(run_on_cpu(b.g, input), run_on_cpu(fused, input));
}

// Siblings that slide another window, a wide Conv (32 filters), a grouped one and one that reads
// another X all stay as they are.
TEST(FuseSiblingConvs, OtherWindowsWideOrGroupedConvsStayApart) {
  std::mt19937 rng(5);
  GraphBuilder b;
  const int x = b.input("x", {1, kChannels, 8, 8});
  const int y = b.input("y", {1, kChannels, 8, 8});
  const auto padded = std::vector<std::int64_t>{1, 1, 1, 1};
  b.g.outputs = {conv(b, x, 4, rng, true),
                 conv(b, x, 4, rng, true, {{"pads", padded}, {"strides", std::vector<std::int64_t>{2, 2}}}),
                 conv(b, x, 32, rng, true),
                 conv(b, y, 4, rng, true)};
  const int grouped = b.one(OpType::kConv, {x, b.random("wg", {4, kChannels / 2, 3, 3}, rng)},
                            {{"pads", padded}, {"group", std::int64_t{2}}});
  b.g.outputs.push_back(grouped);
  Graph fused = b.g;
  ASSERT_TRUE(optimize(fused).is_ok());
  EXPECT_EQ(count_ops(fused, OpType::kConv), 5);
  EXPECT_EQ(count_ops(fused, OpType::kSplit), 0);
}

// The scrfd replica (insightface's graph) loses two of the three head Convs of each stride.
TEST(FuseSiblingConvs, TheScrfdReplicasHeadsMerge) {
  std::string why;
  const std::string dir = test::detector_replica_dir(&why);
  if (dir.empty()) GTEST_SKIP() << why;
  auto text = describe_model(dir + "/scrfd_2.5g.onnx");
  ASSERT_TRUE(text.is_ok()) << text.status().to_string();
  EXPECT_NE(text->find("6 narrow Convs merged into siblings"), std::string::npos) << *text;
  EXPECT_NE(text->find("after optimize (81 nodes): Conv 51, Reshape 9, Transpose 9, AveragePool 3, Sigmoid 3, "
                       "Split 3, Resize 2, MaxPool 1"),
            std::string::npos)
      << *text;
}

}  // namespace
}  // namespace fswap
