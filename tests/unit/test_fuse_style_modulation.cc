// fuse_style_modulation (runtime/passes.cc, run by optimize): the swappers' AdaIN, an
// InstanceNormalization followed by Mul and Add of the two halves of a style vector (Gemm →
// Reshape → Split), becomes one InstanceNormalization reading the Gemm's output as its style input
// (backends/op.h), and a Relu after it becomes its fused activation. The optimised graph must
// compute what the original does, at a batch other than the probes', in NCHW and channels-last.
// The CUDA kernels are tested against these on the GPU (test_cuda_nhwc_norm_pool, and
// test_cuda_models: the swapper replicas, CUDA against the CPU backend).
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>

#include "runtime/engines/executor.h"
#include "runtime/engines/model_report.h"
#include "runtime/passes.h"
#include "support/graph_builder.h"
#include "support/graph_outputs.h"
#include "support/replicas.h"

namespace fswap {
namespace {

using Ints = std::vector<std::int64_t>;
using test::count_ops;
using test::expect_close;
using test::run_on_cpu;
using test::GraphBuilder;
using test::seeded_uniform;

constexpr std::int64_t kChannels = 8, kStyleIn = 5;

struct AdaInCase {
  std::string name;
  bool scale_from_first_half = true;  // the Mul reads the Split's output 0 (the replicas' order)
  bool style_operand_first = false;   // Mul(s, y) and Add(t, ·) instead of Mul(y, s), Add(·, t)
  bool relu = true;
  std::int64_t style_batch = -1;      // the source's batch: -1 = the target's, 1 = one row for all
};

struct AdaIn {
  GraphBuilder b;
  int split = -1;  // the Split's node index
};

// x [-1, C, 6, 7] and source [style_batch, 5]: Gemm(source) [·, 2C] → Reshape [·, 2C, 1, 1] →
// Split in halves; InstanceNormalization(x) → Mul(scale half) → Add(shift half) [→ Relu].
AdaIn adain(const AdaInCase& c) {
  std::mt19937 rng(7);
  AdaIn a;
  GraphBuilder& b = a.b;
  const int x = b.input("x", {-1, kChannels, 6, 7});
  const int source = b.input("source", {c.style_batch, kStyleIn});
  const int norm = b.one(OpType::kInstanceNormalization,
                         {x, b.random("scale", {kChannels}, rng, 0.5f, 1.5f), b.random("bias", {kChannels}, rng)});
  const int gemm = b.one(OpType::kGemm, {source, b.random("w", {kStyleIn, 2 * kChannels}, rng),
                                         b.random("b", {2 * kChannels}, rng)});
  const int reshaped = b.one(OpType::kReshape, {gemm, b.ints("to", {-1, 2 * kChannels, 1, 1})});
  const std::vector<int> halves =
      b.node(OpType::kSplit, {reshaped, b.ints("split", {kChannels, kChannels})}, 2, {{"axis", std::int64_t{1}}});
  a.split = static_cast<int>(b.g.nodes.size()) - 1;
  const int s = halves[c.scale_from_first_half ? 0 : 1], t = halves[c.scale_from_first_half ? 1 : 0];
  const int scaled = b.one(OpType::kMul, c.style_operand_first ? std::vector{s, norm} : std::vector{norm, s});
  int y = b.one(OpType::kAdd, c.style_operand_first ? std::vector{t, scaled} : std::vector{scaled, t});
  if (c.relu) y = b.one(OpType::kRelu, {y});
  b.g.outputs = {y};
  return a;
}

const Node* only_instance_norm(const Graph& g) {
  const auto it = std::find_if(g.nodes.begin(), g.nodes.end(),
                               [](const Node& n) { return n.op == OpType::kInstanceNormalization; });
  return count_ops(g, OpType::kInstanceNormalization) == 1 ? &*it : nullptr;
}

TEST(FuseStyleModulation, AdaInBecomesOneInstanceNormalizationAndComputesTheSame) {
  const std::vector<AdaInCase> cases = {
      {.name = "ReplicaOrder"},
      {.name = "ScaleFromTheSecondHalf", .scale_from_first_half = false},
      {.name = "StyleOperandFirst", .style_operand_first = true},
      {.name = "NoRelu", .relu = false},
      {.name = "OneStyleRowForTheBatch", .style_batch = 1},
  };
  for (const AdaInCase& c : cases) {
    SCOPED_TRACE(c.name);
    const AdaIn a = adain(c);
    Graph fused = a.b.g;
    ASSERT_TRUE(optimize(fused).is_ok());
    for (OpType gone : {OpType::kMul, OpType::kAdd, OpType::kSplit, OpType::kReshape, OpType::kRelu})
      EXPECT_EQ(count_ops(fused, gone), 0) << op_name(gone);
    const Node* norm = only_instance_norm(fused);
    ASSERT_NE(norm, nullptr);
    ASSERT_EQ(norm->inputs.size(), 4u);
    EXPECT_EQ(norm->attrs.i("style_scale", -1), c.scale_from_first_half ? 0 : kChannels);
    EXPECT_EQ(norm->attrs.i("style_shift", -1), c.scale_from_first_half ? kChannels : 0);
    EXPECT_EQ(norm->attrs.activation.kind, c.relu ? Activation::kRelu : Activation::kNone);

    const std::int64_t batch = 3;  // not a probe's
    const std::vector<Tensor> input = {seeded_uniform({batch, kChannels, 6, 7}, 5),
                                       seeded_uniform({c.style_batch == 1 ? 1 : batch, kStyleIn}, 6)};
    const std::vector<Tensor> want = run_on_cpu(a.b.g, input);
    expect_close(want, run_on_cpu(fused, input));
    expect_close(want, run_on_cpu(fused, input, /*channels_last=*/true));
  }
}

// The inswapper replica (FaceFusion's graph: twelve AdaIN blocks) loses every Mul, Split and
// Reshape of its style path, as `fswap model inspect` reports.
TEST(FuseStyleModulation, EveryAdaInOfTheInswapperReplicaFuses) {
  std::string why;
  const std::string dir = test::replica_dir(&why);
  if (dir.empty()) GTEST_SKIP() << why;
  auto text = describe_model(dir + "/inswapper_128.onnx");
  ASSERT_TRUE(text.is_ok()) << text.status().to_string();
  EXPECT_NE(text->find("12 style Mul+Add into InstanceNormalization"), std::string::npos) << *text;
  EXPECT_NE(text->find("after optimize (68 nodes): Conv 20, Pad 14, Gemm 12, InstanceNormalization 12, Add 7, "
                       "Resize 2, Mul 1"),
            std::string::npos)
      << *text;
}

// A half that something else also reads must still exist: nothing fuses, and the Mul and Add stay.
TEST(FuseStyleModulation, AHalfReadElsewhereKeepsTheChain) {
  AdaIn a = adain({.name = "Shared"});
  GraphBuilder& b = a.b;
  b.g.outputs.push_back(b.one(OpType::kRelu, {b.g.nodes[static_cast<std::size_t>(a.split)].outputs[0]}));
  Graph fused = b.g;
  ASSERT_TRUE(optimize(fused).is_ok());
  EXPECT_EQ(count_ops(fused, OpType::kMul), 1);
  EXPECT_EQ(count_ops(fused, OpType::kAdd), 1);
  const Node* norm = only_instance_norm(fused);
  ASSERT_NE(norm, nullptr);
  EXPECT_EQ(norm->inputs.size(), 3u);
}

// A malformed style input is an error naming the op, not a read past the row.
TEST(FuseStyleModulation, AStyleRowTooShortIsAnError) {
  const AdaIn a = adain({.name = "Short"});
  Graph fused = a.b.g;
  ASSERT_TRUE(optimize(fused).is_ok());
  Node* norm = nullptr;
  for (Node& n : fused.nodes)
    if (n.op == OpType::kInstanceNormalization) norm = &n;
  ASSERT_NE(norm, nullptr);
  norm->attrs.values["style_shift"] = std::int64_t{kChannels + 1};  // C shifts from C + 1: one past the row
  auto exec = Executor::create(fused, {{2, kChannels, 6, 7}, {2, kStyleIn}}, {});
  ASSERT_TRUE(exec.is_ok()) << exec.status().to_string();
  const Tensor x = seeded_uniform({2, kChannels, 6, 7}, 1), source = seeded_uniform({2, kStyleIn}, 2);
  auto out = (*exec)->run({x.view(), source.view()});
  ASSERT_FALSE(out.is_ok());
  EXPECT_NE(out.status().message().find("InstanceNormalization"), std::string::npos) << out.status().to_string();
  EXPECT_NE(out.status().message().find("style"), std::string::npos) << out.status().to_string();
}

}  // namespace
}  // namespace fswap
