// The static memory plan: no two simultaneously live values share bytes, in-place reuse,
// arena bounds and FLOP counts, on hand-built graphs and on the four shipped models.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "onnx/onnx_loader.h"
#include "runtime/memory_plan.h"
#include "runtime/passes.h"

using namespace fswap;

namespace {

using Ints = std::vector<std::int64_t>;

struct GraphBuilder {
  Graph g;
  GraphBuilder() {
    g.opset = 13;
    g.path = "test.onnx";
  }
  int value(const std::string& name) {
    Value v;
    v.name = name;
    g.values.push_back(v);
    return static_cast<int>(g.values.size()) - 1;
  }
  int input(const std::string& name, Shape shape) {
    const int id = value(name);
    g.values[id].shape = std::move(shape);
    g.values[id].known_shape = true;
    g.inputs.push_back(id);
    return id;
  }
  int floats(const std::string& name, Shape shape) {
    const int id = value(name);
    Tensor t = Tensor::zeros(DType::kFloat32, shape);
    g.values[id].shape = std::move(shape);
    g.values[id].known_shape = true;
    g.values[id].weight = static_cast<int>(g.weights.size());
    g.weights.push_back(WeightBlock{id, std::make_shared<const Tensor>(std::move(t))});
    return id;
  }
  int ints(const std::string& name, const std::vector<std::int64_t>& data) {
    const int id = value(name);
    Tensor t = Tensor::zeros(DType::kInt64, {static_cast<std::int64_t>(data.size())});
    std::copy(data.begin(), data.end(), t.data<std::int64_t>());
    g.values[id].dtype = DType::kInt64;
    g.values[id].shape = t.shape();
    g.values[id].known_shape = true;
    g.values[id].weight = static_cast<int>(g.weights.size());
    g.weights.push_back(WeightBlock{id, std::make_shared<const Tensor>(std::move(t))});
    return id;
  }
  int one(OpType op, std::vector<int> inputs, std::map<std::string, AttributeValue> attrs = {}) {
    Node n;
    n.op = op;
    n.name = std::string(op_name(op)) + "_" + std::to_string(g.nodes.size());
    n.inputs = std::move(inputs);
    n.outputs.push_back(value(n.name));
    for (auto& [k, v] : attrs) n.attrs.values.emplace(k, v);
    g.nodes.push_back(std::move(n));
    return g.nodes.back().outputs[0];
  }
};

struct Interval {
  int first, last;
};

std::size_t bytes_of(const Value& v) {
  const std::size_t b = static_cast<std::size_t>(shape_elements(v.shape)) * dtype_size(v.dtype);
  return (b + MemoryPlan::kAlignment - 1) / MemoryPlan::kAlignment * MemoryPlan::kAlignment;
}

// Checks every pair of arena values whose lifetimes overlap for disjoint byte ranges, except an
// element-wise node's output over its dying input 0 (in place).
void check_plan(const Graph& g, const MemoryPlan& plan) {
  const int nn = static_cast<int>(g.nodes.size());
  std::map<int, Interval> life;
  for (int v : g.inputs) life[v] = {-1, -1};
  for (int i = 0; i < nn; ++i) {
    for (int v : g.nodes[i].outputs)
      if (v >= 0 && g.values[v].weight < 0 && g.values[v].constant < 0) life[v] = {i, i};
    for (int v : g.nodes[i].inputs)
      if (life.count(v)) life[v].last = std::max(life[v].last, i);
  }
  for (int v : g.outputs)
    if (life.count(v)) life[v].last = nn;
  std::size_t total = 0, largest = 0;
  for (const auto& [v, iv] : life) {
    ASSERT_GE(plan.offset[v], 0) << g.values[v].name;
    ASSERT_EQ(plan.offset[v] % static_cast<std::int64_t>(MemoryPlan::kAlignment), 0);
    ASSERT_LE(static_cast<std::size_t>(plan.offset[v]) + bytes_of(g.values[v]), plan.arena_bytes) << g.values[v].name;
    total += bytes_of(g.values[v]);
    largest = std::max(largest, bytes_of(g.values[v]));
  }
  for (std::size_t v = 0; v < g.values.size(); ++v)
    if (!life.count(static_cast<int>(v))) {
      EXPECT_EQ(plan.offset[v], -1) << g.values[v].name;
    }
  auto in_place_pair = [&](int x, int y) {
    const Interval& ix = life[x];
    const Interval& iy = life[y];
    if (ix.last != iy.first || iy.first < 0) return false;
    const Node& n = g.nodes[iy.first];
    return !n.inputs.empty() && n.inputs[0] == x && n.outputs[0] == y && plan.offset[x] == plan.offset[y];
  };
  for (auto a = life.begin(); a != life.end(); ++a) {
    for (auto b = std::next(a); b != life.end(); ++b) {
      const bool overlap_time = a->second.first <= b->second.last && b->second.first <= a->second.last;
      if (!overlap_time) continue;
      if (in_place_pair(a->first, b->first) || in_place_pair(b->first, a->first)) continue;
      const auto a0 = static_cast<std::size_t>(plan.offset[a->first]), a1 = a0 + bytes_of(g.values[a->first]);
      const auto b0 = static_cast<std::size_t>(plan.offset[b->first]), b1 = b0 + bytes_of(g.values[b->first]);
      EXPECT_TRUE(a1 <= b0 || b1 <= a0) << g.values[a->first].name << " [" << a0 << "," << a1 << ") and "
                                        << g.values[b->first].name << " [" << b0 << "," << b1 << ") are live together";
    }
  }
  EXPECT_LE(plan.arena_bytes, total);
  EXPECT_GE(plan.arena_bytes, largest);
  EXPECT_GE(plan.arena_bytes, plan.live_peak_bytes);
  EXPECT_GE(plan.live_peak_bytes, largest);
}

}  // namespace

TEST(MemoryPlan, ChainReusesAndGoesInPlace) {
  GraphBuilder b;
  int x = b.input("x", {1, 256});
  int a = b.one(OpType::kNeg, {x});   // x is a graph input: never overwritten
  int r = b.one(OpType::kRelu, {a});  // in place over a
  int e = b.one(OpType::kExp, {r});   // in place over r
  int t = b.one(OpType::kTranspose, {e});
  int s = b.one(OpType::kSigmoid, {t});  // graph output: not in place
  b.g.outputs = {s};
  ASSERT_TRUE(specialize(b.g, {{1, 256}}).is_ok());
  auto plan = plan_memory(b.g);
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  EXPECT_EQ(plan->in_place_nodes, 2);
  EXPECT_EQ(plan->offset[r], plan->offset[a]);
  EXPECT_EQ(plan->offset[e], plan->offset[a]);
  EXPECT_NE(plan->offset[x], plan->offset[a]);
  check_plan(b.g, *plan);
  // x, a (shared by r and e) and t, s: t reuses nothing live; the arena holds at most 4 blocks of 1 KiB.
  EXPECT_LE(plan->arena_bytes, 4u * 1024u);
}

// A Reshape, Flatten, Squeeze or Unsqueeze keeps the bytes as they are: its output takes the
// block of an input that dies there (the kernels then copy nothing), and gets its own block while
// the input is still read.
TEST(MemoryPlan, ReshapesTakeTheBytesOfAnInputThatDiesThere) {
  GraphBuilder b;
  int x = b.input("x", {2, 3, 4, 4});
  int a = b.one(OpType::kNeg, {x});
  int r = b.one(OpType::kReshape, {a, b.ints("to", {6, 16})});  // a dies here: in place
  int f = b.one(OpType::kFlatten, {r});                          // in place over r
  int u = b.one(OpType::kUnsqueeze, {f, b.ints("axes", {0})});   // in place over f
  int sq = b.one(OpType::kSqueeze, {u, b.ints("axes0", {0})});   // in place over u
  int kept = b.one(OpType::kReshape, {sq, b.ints("to2", {96})}); // sq is read again below: own block
  int sum = b.one(OpType::kAdd, {kept, b.one(OpType::kReshape, {sq, b.ints("to3", {96})})});
  b.g.outputs = {sum};
  ASSERT_TRUE(specialize(b.g, {{2, 3, 4, 4}}).is_ok());
  auto plan = plan_memory(b.g);
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  for (int v : {r, f, u, sq}) EXPECT_EQ(plan->offset[v], plan->offset[a]) << b.g.values[v].name;
  EXPECT_NE(plan->offset[kept], plan->offset[sq]);
  check_plan(b.g, *plan);
}

TEST(MemoryPlan, BranchesDoNotOverlap) {
  GraphBuilder b;
  int x = b.input("x", {1, 8, 16, 16});
  int w = b.floats("w", {8, 8, 3, 3});
  int c1 = b.one(OpType::kConv, {x, w}, {{"pads", Ints{1, 1, 1, 1}}});
  int c2 = b.one(OpType::kConv, {c1, w}, {{"pads", Ints{1, 1, 1, 1}}});
  int c3 = b.one(OpType::kConv, {c2, w}, {{"pads", Ints{1, 1, 1, 1}}});
  int sum = b.one(OpType::kAdd, {c3, c1});  // c1 stays live across c2 and c3
  int p = b.one(OpType::kMaxPool, {sum}, {{"kernel_shape", Ints{2, 2}}, {"strides", Ints{2, 2}}});
  int c4 = b.one(OpType::kConv, {p, w}, {{"pads", Ints{1, 1, 1, 1}}});
  b.g.outputs = {c4, c2};
  ASSERT_TRUE(specialize(b.g, {{1, 8, 16, 16}}).is_ok());
  auto plan = plan_memory(b.g);
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  check_plan(b.g, *plan);
  EXPECT_EQ(plan->offset[w], -1);
  EXPECT_EQ(plan->weight_bytes, 8u * 8u * 9u * 4u);
  EXPECT_EQ(plan->in_place_nodes, 1);  // the Add over c3
  // FLOPs: 4 convs (three at 16×16, one at 8×8) + Add + MaxPool elements.
  const std::int64_t conv16 = 2LL * 8 * 16 * 16 * 8 * 9, conv8 = 2LL * 8 * 8 * 8 * 8 * 9;
  EXPECT_EQ(plan->flops, 3 * conv16 + conv8 + 8 * 16 * 16 + 8 * 8 * 8);
}

TEST(MemoryPlan, MatMulFlops) {
  GraphBuilder b;
  int x = b.input("x", {2, 3, 4});
  int w = b.floats("w", {4, 5});
  int y = b.one(OpType::kMatMul, {x, w});
  int g1 = b.input("g", {6, 7});
  int gw = b.floats("gw", {9, 7});
  int z = b.one(OpType::kGemm, {g1, gw}, {{"transB", std::int64_t{1}}});
  b.g.outputs = {y, z};
  ASSERT_TRUE(specialize(b.g, {{2, 3, 4}, {6, 7}}).is_ok());
  auto plan = plan_memory(b.g);
  ASSERT_TRUE(plan.is_ok());
  EXPECT_EQ(plan->flops, 2 * 2 * 3 * 5 * 4 + 2 * 6 * 9 * 7);
  check_plan(b.g, *plan);
}

TEST(MemoryPlan, UnshapedGraphIsRefused) {
  GraphBuilder b;
  int x = b.input("x", {1, 4});
  b.g.values[x].shape = {-1, 4};
  b.g.values[x].known_shape = false;
  b.g.outputs = {b.one(OpType::kRelu, {x})};
  auto plan = plan_memory(b.g);
  EXPECT_EQ(plan.status().code(), StatusCode::kInvalidInput);
}

TEST(MemoryPlan, RealModelsPackWithoutOverlap) {
  const std::vector<std::pair<const char*, Shape>> models = {{"fr_detect.onnx", {1, 3, 240, 320}},
                                                             {"fr_landmark.onnx", {1, 1, 64, 64}},
                                                             {"fr_feature.onnx", {1, 3, 112, 112}},
                                                             {"blazeface_back_256.onnx", {1, 256, 256, 3}}};
  // Element-wise nodes are the ones planned in place; after fusion (residual Adds into their
  // convolutions) some models have none left, so in-place reuse is expected across the set.
  int in_place = 0;
  for (const auto& [file, shape] : models) {
    SCOPED_TRACE(file);
    auto loaded = load_onnx(std::string(FSWAP_THIRD_PARTY_DIR) + "/models/" + file);
    ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
    Graph g = std::move(loaded).value();
    ASSERT_TRUE(optimize(g).is_ok());
    ASSERT_TRUE(specialize(g, {shape}).is_ok());
    auto plan = plan_memory(g);
    ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
    check_plan(g, *plan);
    EXPECT_EQ(plan->arena_bytes, plan->live_peak_bytes);  // packed to its bound (fr_detect: 3.52 MiB, 5.57 in order of first use)
    in_place += plan->in_place_nodes;
  }
  EXPECT_GT(in_place, 0);
}
