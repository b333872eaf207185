// Shape rules (ONNX semantics) and the graph passes: folding, fusion and specialisation.
// Graphs are built directly in the IR; numerical fusion checks run only where the CPU kernels
// exist.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <random>

#include "backends/cpu/cpu_kernels.h"
#include "runtime/memory_plan.h"
#include "runtime/passes.h"
#include "runtime/shape_inference.h"
#include "support/graph_builder.h"

using namespace fswap;

namespace {

using Ints = std::vector<std::int64_t>;
using test::GraphBuilder;

AttributeValue I(std::int64_t v) { return v; }
AttributeValue L(Ints v) { return v; }
AttributeValue S(const char* v) { return std::string(v); }

}  // namespace

TEST(ShapeInference, Conv) {
  GraphBuilder b;
  int x = b.input("x", {1, 3, 32, 32});
  int w = b.floats("w", {8, 3, 3, 3});
  b.one(OpType::kConv, {x, w}, {{"pads", L({1, 1, 1, 1})}, {"strides", L({2, 2})}});
  EXPECT_EQ(b.infer_last(), (Shape{1, 8, 16, 16}));
  b.one(OpType::kConv, {x, w}, {{"dilations", L({2, 2})}});
  EXPECT_EQ(b.infer_last(), (Shape{1, 8, 28, 28}));
  int x33 = b.input("x33", {2, 3, 33, 17});
  b.one(OpType::kConv, {x33, w}, {{"auto_pad", S("SAME_UPPER")}, {"strides", L({2, 2})}});
  EXPECT_EQ(b.infer_last(), (Shape{2, 8, 17, 9}));
  b.one(OpType::kConv, {x33, w}, {{"auto_pad", S("VALID")}, {"strides", L({2, 2})}});
  EXPECT_EQ(b.infer_last(), (Shape{2, 8, 16, 8}));
  int xd = b.input("xd", {1, 8, 10, 10});
  int wd = b.floats("wd", {8, 1, 3, 3});
  b.one(OpType::kConv, {xd, wd}, {{"group", I(8)}});
  EXPECT_EQ(b.infer_last(), (Shape{1, 8, 8, 8}));
  b.one(OpType::kConv, {xd, w});  // 8 channels into a 3-channel kernel
  EXPECT_EQ(b.infer_last_status().code(), StatusCode::kInvalidInput);
}

TEST(ShapeInference, Pool) {
  GraphBuilder b;
  int x = b.input("x", {1, 16, 112, 112});
  b.one(OpType::kMaxPool, {x}, {{"kernel_shape", L({3, 3})}, {"strides", L({2, 2})}, {"pads", L({1, 1, 1, 1})}});
  EXPECT_EQ(b.infer_last(), (Shape{1, 16, 56, 56}));
  int x5 = b.input("x5", {1, 1, 5, 5});
  b.one(OpType::kMaxPool, {x5}, {{"kernel_shape", L({2, 2})}, {"strides", L({2, 2})}});
  EXPECT_EQ(b.infer_last(), (Shape{1, 1, 2, 2}));
  b.one(OpType::kMaxPool, {x5}, {{"kernel_shape", L({2, 2})}, {"strides", L({2, 2})}, {"ceil_mode", I(1)}});
  EXPECT_EQ(b.infer_last(), (Shape{1, 1, 3, 3}));
  // ceil_mode: a window starting in the end padding is dropped (PyTorch, ONNX ≥ 19).
  b.one(OpType::kAveragePool, {x5},
        {{"kernel_shape", L({2, 2})}, {"strides", L({2, 2})}, {"pads", L({1, 1, 1, 1})}, {"ceil_mode", I(1)}});
  EXPECT_EQ(b.infer_last(), (Shape{1, 1, 3, 3}));
  b.one(OpType::kMaxPool, {x5}, {{"kernel_shape", L({2, 2})}, {"auto_pad", S("SAME_UPPER")}, {"strides", L({2, 2})}});
  EXPECT_EQ(b.infer_last(), (Shape{1, 1, 3, 3}));
  auto outs = b.node(OpType::kMaxPool, {x5}, 2, {{"kernel_shape", L({3, 3})}, {"dilations", L({2, 2})}});
  EXPECT_EQ(b.infer_last(), (Shape{1, 1, 1, 1}));
  EXPECT_EQ(b.g.values[outs[1]].dtype, DType::kInt64);
  b.one(OpType::kGlobalAveragePool, {x});
  EXPECT_EQ(b.infer_last(), (Shape{1, 16, 1, 1}));
}

TEST(ShapeInference, ConvTranspose) {
  GraphBuilder b;
  int x = b.input("x", {1, 4, 8, 8});
  int w = b.floats("w", {4, 2, 4, 4});
  b.one(OpType::kConvTranspose, {x, w}, {{"strides", L({2, 2})}, {"pads", L({1, 1, 1, 1})}});
  EXPECT_EQ(b.infer_last(), (Shape{1, 2, 16, 16}));
  b.one(OpType::kConvTranspose, {x, w}, {{"strides", L({2, 2})}, {"pads", L({1, 1, 1, 1})}, {"output_padding", L({1, 1})}});
  EXPECT_EQ(b.infer_last(), (Shape{1, 2, 17, 17}));
  b.one(OpType::kConvTranspose, {x, w}, {{"group", I(2)}});
  EXPECT_EQ(b.infer_last(), (Shape{1, 4, 11, 11}));
  b.one(OpType::kConvTranspose, {x, w}, {{"strides", L({2, 2})}, {"output_shape", L({20, 19})}});
  EXPECT_EQ(b.infer_last(), (Shape{1, 2, 20, 19}));
  b.one(OpType::kConvTranspose, {x, w}, {{"strides", L({3, 3})}, {"auto_pad", S("SAME_UPPER")}});
  EXPECT_EQ(b.infer_last(), (Shape{1, 2, 24, 24}));
}

TEST(ShapeInference, Reshape) {
  GraphBuilder b;
  int x = b.input("x", {2, 3, 4});
  b.one(OpType::kReshape, {x, b.ints("s1", {0, -1})});
  EXPECT_EQ(b.infer_last(), (Shape{2, 12}));
  b.one(OpType::kReshape, {x, b.ints("s2", {-1, 2, 2})});
  EXPECT_EQ(b.infer_last(), (Shape{6, 2, 2}));
  b.one(OpType::kReshape, {x, b.ints("s3", {5, -1})});
  EXPECT_EQ(b.infer_last_status().code(), StatusCode::kInvalidInput);
  int empty = b.input("empty", {0, 5});
  b.one(OpType::kReshape, {empty, b.ints("s4", {5, 0})}, {{"allowzero", I(1)}});
  EXPECT_EQ(b.infer_last(), (Shape{5, 0}));
  // A shape computed at run time is a clear kUnsupported, not a crash.
  int dyn = b.input("dyn", {2}, DType::kInt64);
  b.one(OpType::kReshape, {x, dyn});
  Status s = b.infer_last_status();
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("Reshape_4"), std::string::npos) << s.message();
  b.one(OpType::kFlatten, {x}, {{"axis", I(-1)}});
  EXPECT_EQ(b.infer_last(), (Shape{6, 4}));
}

TEST(ShapeInference, Slice) {
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  constexpr auto kMin = std::numeric_limits<std::int64_t>::min();
  GraphBuilder b(13);
  int x = b.input("x", {10, 20});
  b.one(OpType::kSlice, {x, b.ints("st", {1, -5}), b.ints("en", {kMax, -1}), b.ints("ax", {0, 1}), b.ints("sp", {2, 1})});
  EXPECT_EQ(b.infer_last(), (Shape{5, 4}));
  b.one(OpType::kSlice, {x, b.ints("st2", {-1}), b.ints("en2", {kMin}), b.ints("ax2", {0}), b.ints("sp2", {-1})});
  EXPECT_EQ(b.infer_last(), (Shape{10, 20}));
  b.one(OpType::kSlice, {x, b.ints("st3", {8}), b.ints("en3", {2}), b.ints("ax3", {-1}), b.ints("sp3", {-3})});
  EXPECT_EQ(b.infer_last(), (Shape{10, 2}));
  GraphBuilder old(9);
  int y = old.input("y", {10, 20});
  old.one(OpType::kSlice, {y}, {{"starts", L({2})}, {"ends", L({100})}, {"axes", L({1})}});
  EXPECT_EQ(old.infer_last(), (Shape{10, 18}));
}

TEST(ShapeInference, Broadcast) {
  GraphBuilder b;
  int a = b.input("a", {2, 1, 4});
  int c = b.input("c", {3, 1});
  b.one(OpType::kAdd, {a, c});
  EXPECT_EQ(b.infer_last(), (Shape{2, 3, 4}));
  b.one(OpType::kLess, {a, c});
  b.infer_last();
  EXPECT_EQ(b.g.values[b.g.nodes.back().outputs[0]].dtype, DType::kBool);
  int s = b.input("s", {});
  b.one(OpType::kMul, {s, a});
  EXPECT_EQ(b.infer_last(), (Shape{2, 1, 4}));
  int bad = b.input("bad", {2, 3});
  b.one(OpType::kAdd, {a, bad});
  EXPECT_EQ(b.infer_last_status().code(), StatusCode::kInvalidInput);
  int cond = b.input("cond", {4}, DType::kBool);
  b.one(OpType::kWhere, {cond, c, a});
  EXPECT_EQ(b.infer_last(), (Shape{2, 3, 4}));
  b.one(OpType::kSum, {a, c, s});
  EXPECT_EQ(b.infer_last(), (Shape{2, 3, 4}));
}

TEST(ShapeInference, MatMulAndGemm) {
  GraphBuilder b;
  int a = b.input("a", {2, 3, 4});
  int m = b.input("m", {4, 5});
  int v = b.input("v", {4});
  b.one(OpType::kMatMul, {a, m});
  EXPECT_EQ(b.infer_last(), (Shape{2, 3, 5}));
  b.one(OpType::kMatMul, {v, m});
  EXPECT_EQ(b.infer_last(), (Shape{5}));
  b.one(OpType::kMatMul, {a, v});
  EXPECT_EQ(b.infer_last(), (Shape{2, 3}));
  int bm = b.input("bm", {7, 1, 4, 6});
  b.one(OpType::kMatMul, {a, bm});
  EXPECT_EQ(b.infer_last(), (Shape{7, 2, 3, 6}));
  int g1 = b.input("g1", {8, 4});
  int g2 = b.input("g2", {5, 4});
  b.one(OpType::kGemm, {g1, g2, b.floats("gb", {5})}, {{"transB", I(1)}});
  EXPECT_EQ(b.infer_last(), (Shape{8, 5}));
}

TEST(ShapeInference, Resize) {
  GraphBuilder b(13);
  int x = b.input("x", {1, 3, 10, 10});
  b.one(OpType::kResize, {x, -1, b.floats("sc", {4}, {1, 1, 2, 2.5f})});
  EXPECT_EQ(b.infer_last(), (Shape{1, 3, 20, 25}));
  int empty_scales = b.floats("none", {0});
  b.one(OpType::kResize, {x, -1, empty_scales, b.ints("sz", {1, 3, 7, 9})});
  EXPECT_EQ(b.infer_last(), (Shape{1, 3, 7, 9}));
  GraphBuilder b18(18);
  int y = b18.input("y", {1, 3, 10, 20});
  b18.one(OpType::kResize, {y, -1, -1, b18.ints("sz", {30, 30})},
          {{"axes", L({2, 3})}, {"keep_aspect_ratio_policy", S("not_larger")}});
  EXPECT_EQ(b18.infer_last(), (Shape{1, 3, 15, 30}));
  GraphBuilder up(9);
  int z = up.input("z", {1, 2, 5, 5});
  up.one(OpType::kUpsample, {z, up.floats("s", {4}, {1, 1, 2, 2})}, {{"mode", S("nearest")}});
  EXPECT_EQ(up.infer_last(), (Shape{1, 2, 10, 10}));
  GraphBuilder r10(10);
  int w = r10.input("w", {1, 2, 5, 5});
  r10.one(OpType::kResize, {w, r10.floats("s", {4}, {1, 1, 3, 3})});
  EXPECT_EQ(r10.infer_last(), (Shape{1, 2, 15, 15}));
}

TEST(ShapeInference, Split) {
  GraphBuilder b(13);
  int x = b.input("x", {6, 4});
  auto outs = b.node(OpType::kSplit, {x, b.ints("sp", {2, 4})}, 2);
  EXPECT_EQ(b.infer_last(), (Shape{2, 4}));
  EXPECT_EQ(b.shape(outs[1]), (Shape{4, 4}));
  outs = b.node(OpType::kSplit, {x}, 3);
  b.infer_last();
  for (int o : outs) EXPECT_EQ(b.shape(o), (Shape{2, 4}));
  outs = b.node(OpType::kSplit, {x}, 2, {{"axis", I(-1)}});
  b.infer_last();
  EXPECT_EQ(b.shape(outs[1]), (Shape{6, 2}));
  GraphBuilder old(11);
  int y = old.input("y", {7});
  outs = old.node(OpType::kSplit, {y}, 2, {{"split", L({3, 4})}});
  old.infer_last();
  EXPECT_EQ(old.shape(outs[1]), (Shape{4}));
  GraphBuilder v18(18);
  int z = v18.input("z", {7, 2});
  outs = v18.node(OpType::kSplit, {z}, 3, {{"num_outputs", I(3)}});
  v18.infer_last();
  EXPECT_EQ(v18.shape(outs[0]), (Shape{3, 2}));
  EXPECT_EQ(v18.shape(outs[2]), (Shape{1, 2}));
}

TEST(ShapeInference, GatherConcatAndFriends) {
  GraphBuilder b(13);
  int x = b.input("x", {5, 6, 7});
  int idx = b.input("idx", {2, 3}, DType::kInt64);
  b.one(OpType::kGather, {x, idx}, {{"axis", I(1)}});
  EXPECT_EQ(b.infer_last(), (Shape{5, 2, 3, 7}));
  b.one(OpType::kGather, {x, b.ints("i0", {4}, /*scalar=*/true)});
  EXPECT_EQ(b.infer_last(), (Shape{6, 7}));
  int y = b.input("y", {5, 2, 7});
  b.one(OpType::kConcat, {x, y}, {{"axis", I(-2)}});
  EXPECT_EQ(b.infer_last(), (Shape{5, 8, 7}));
  b.one(OpType::kTranspose, {x}, {{"perm", L({2, 0, 1})}});
  EXPECT_EQ(b.infer_last(), (Shape{7, 5, 6}));
  b.one(OpType::kTranspose, {x});
  EXPECT_EQ(b.infer_last(), (Shape{7, 6, 5}));
  b.one(OpType::kUnsqueeze, {x, b.ints("ua", {0, -1})});
  EXPECT_EQ(b.infer_last(), (Shape{1, 5, 6, 7, 1}));
  int ones = b.input("ones", {1, 3, 1});
  b.one(OpType::kSqueeze, {ones});
  EXPECT_EQ(b.infer_last(), (Shape{3}));
  b.one(OpType::kSqueeze, {ones, b.ints("sa", {-1})});
  EXPECT_EQ(b.infer_last(), (Shape{1, 3}));
  b.one(OpType::kExpand, {ones, b.ints("es", {2, 1, 1, 4})});
  EXPECT_EQ(b.infer_last(), (Shape{2, 1, 3, 4}));
  b.one(OpType::kTile, {ones, b.ints("tr", {2, 1, 3})});
  EXPECT_EQ(b.infer_last(), (Shape{2, 3, 3}));
  auto topk = b.node(OpType::kTopK, {x, b.ints("k", {3})}, 2, {{"axis", I(1)}});
  EXPECT_EQ(b.infer_last(), (Shape{5, 3, 7}));
  EXPECT_EQ(b.g.values[topk[1]].dtype, DType::kInt64);
  b.one(OpType::kShape, {x}, {{"start", I(1)}});
  EXPECT_EQ(b.infer_last(), (Shape{2}));
  b.one(OpType::kConstantOfShape, {b.ints("cs", {2, 3})});
  EXPECT_EQ(b.infer_last(), (Shape{2, 3}));
  b.one(OpType::kRange, {b.ints("r0", {1}, true), b.ints("r1", {10}, true), b.ints("r2", {3}, true)});
  EXPECT_EQ(b.infer_last(), (Shape{3}));
  b.one(OpType::kDepthToSpace, {b.input("d", {1, 8, 2, 3})}, {{"blocksize", I(2)}});
  EXPECT_EQ(b.infer_last(), (Shape{1, 2, 4, 6}));
  b.one(OpType::kCast, {x}, {{"to", I(7)}});
  b.infer_last();
  EXPECT_EQ(b.g.values[b.g.nodes.back().outputs[0]].dtype, DType::kInt64);
}

TEST(ShapeInference, Pad) {
  GraphBuilder b(13);
  int x = b.input("x", {1, 3, 4, 4});
  b.one(OpType::kPad, {x, b.ints("p", {0, 0, 1, 2, 0, 0, 3, 4})});
  EXPECT_EQ(b.infer_last(), (Shape{1, 3, 8, 10}));
  b.one(OpType::kPad, {x, b.ints("neg", {0, 0, -1, 0, 0, 0, -1, 0})});
  EXPECT_EQ(b.infer_last(), (Shape{1, 3, 2, 4}));
  GraphBuilder old(9);
  int y = old.input("y", {2, 2});
  old.one(OpType::kPad, {y}, {{"pads", L({1, 0, 1, 0})}});
  EXPECT_EQ(old.infer_last(), (Shape{4, 2}));
  GraphBuilder v18(18);
  int z = v18.input("z", {1, 3, 4, 4});
  v18.one(OpType::kPad, {z, v18.ints("p", {1, 1, 2, 2}), -1, v18.ints("axes", {2, 3})});
  EXPECT_EQ(v18.infer_last(), (Shape{1, 3, 7, 7}));
}

TEST(ShapeInference, Reduce) {
  GraphBuilder b(13);
  int x = b.input("x", {2, 3, 4});
  b.one(OpType::kReduceMean, {x}, {{"axes", L({-1})}, {"keepdims", I(0)}});
  EXPECT_EQ(b.infer_last(), (Shape{2, 3}));
  b.one(OpType::kReduceSum, {x, b.ints("ax", {1})});
  EXPECT_EQ(b.infer_last(), (Shape{2, 1, 4}));
  b.one(OpType::kReduceSum, {x}, {{"noop_with_empty_axes", I(1)}});
  EXPECT_EQ(b.infer_last(), (Shape{2, 3, 4}));
  b.one(OpType::kReduceMax, {x});
  EXPECT_EQ(b.infer_last(), (Shape{1, 1, 1}));
  b.one(OpType::kArgMax, {x}, {{"axis", I(1)}, {"keepdims", I(0)}});
  EXPECT_EQ(b.infer_last(), (Shape{2, 4}));
  EXPECT_EQ(b.g.values[b.g.nodes.back().outputs[0]].dtype, DType::kInt64);
  GraphBuilder v18(18);
  int y = v18.input("y", {2, 3, 4});
  v18.one(OpType::kReduceL2, {y, v18.ints("ax", {0, 2})}, {{"keepdims", I(0)}});
  EXPECT_EQ(v18.infer_last(), (Shape{3}));
}

TEST(ShapeInference, EveryOpHasARule) {
  for (int i = 0; i < kOpCount; ++i) {
    const auto op = static_cast<OpType>(i);
    GraphBuilder b;
    int x = b.input("x", {2, 4, 6, 6});
    b.one(op, {x});
    Status s = b.infer_last_status();
    EXPECT_EQ(s.message().find("has no shape rule"), std::string::npos) << op_name(op) << ": " << s.message();
  }
}

TEST(Passes, SpecializeFoldsShapeChains) {
  GraphBuilder b(13);
  int x = b.input("x", {-1, 3, 4, 4});
  int s = b.one(OpType::kShape, {x});
  int n = b.one(OpType::kGather, {s, b.ints("zero", {0}, true)}, {{"axis", I(0)}});
  int n1 = b.one(OpType::kUnsqueeze, {n, b.ints("axes", {0})});
  int shape = b.one(OpType::kConcat, {n1, b.ints("rest", {-1})}, {{"axis", I(0)}});
  int y = b.one(OpType::kReshape, {x, shape});
  b.g.outputs = {y};
  Graph g = b.g;
  ASSERT_TRUE(optimize(g).is_ok());
  EXPECT_EQ(g.nodes.size(), 5u);  // nothing is constant before the input size is known
  Status st = specialize(g, {{2, 3, 4, 4}});
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].op, OpType::kReshape);
  const Tensor* folded = g.constant_data(g.nodes[0].inputs[1]);
  ASSERT_NE(folded, nullptr);
  EXPECT_EQ(folded->data<std::int64_t>()[0], 2);
  EXPECT_EQ(folded->data<std::int64_t>()[1], -1);
  EXPECT_EQ(g.values[g.outputs[0]].shape, (Shape{2, 48}));
  for (const Value& v : g.values) EXPECT_TRUE(v.known_shape) << v.name;
  EXPECT_EQ(specialize(g, {{2, 3, 5, 4}}).code(), StatusCode::kInvalidInput);
}

namespace {

// Conv → BatchNormalization → Relu with random weights, input [1,3,8,8].
GraphBuilder conv_bn_relu() {
  std::mt19937 rng(7);
  GraphBuilder b(13);
  int x = b.input("x", {1, 3, 8, 8});
  int w = b.random("w", {4, 3, 3, 3}, rng);
  int bias = b.random("b", {4}, rng);
  int y = b.one(OpType::kConv, {x, w, bias}, {{"pads", L({1, 1, 1, 1})}});
  int z = b.one(OpType::kBatchNormalization,
                {y, b.random("scale", {4}, rng, 0.5f, 1.5f), b.random("shift", {4}, rng), b.random("mean", {4}, rng),
                 b.random("var", {4}, rng, 0.2f, 2.0f)},
                {{"epsilon", AttributeValue(1e-3f)}});
  int r = b.one(OpType::kRelu, {z});
  b.g.outputs = {r};
  return b;
}

// Runs a specialised graph with the CPU kernels (one tensor per graph input, in order); nullopt
// when one is missing.
std::optional<Tensor> run_cpu(const Graph& g, const std::vector<Tensor>& inputs) {
  std::map<int, Tensor> live;
  for (std::size_t i = 0; i < inputs.size(); ++i) live[g.inputs[i]] = inputs[i];
  auto data = [&](int v) -> TensorView {
    if (v < 0) return {};
    if (const Tensor* t = g.constant_data(v)) return t->view();
    return live.at(v).view();
  };
  for (const Node& n : g.nodes) {
    CpuKernel k = cpu_kernel(n.op);
    if (!k) return std::nullopt;
    std::vector<TensorView> ins, outs;
    for (int v : n.inputs) ins.push_back(data(v));
    for (int v : n.outputs) {
      live[v] = Tensor::zeros(g.values[v].dtype, g.values[v].shape);
      outs.push_back(live[v].view());
    }
    if (!k(KernelArgs{n.op, n.attrs, ins, outs}).is_ok()) return std::nullopt;
  }
  return live.at(g.outputs[0]);
}
std::optional<Tensor> run_cpu(const Graph& g, const Tensor& input) { return run_cpu(g, std::vector<Tensor>{input}); }

}  // namespace

TEST(Passes, ConvBatchNormReluFusion) {
  GraphBuilder b = conv_bn_relu();
  Graph fused = b.g;
  ASSERT_TRUE(optimize(fused).is_ok());
  ASSERT_EQ(fused.nodes.size(), 1u);
  const Node& conv = fused.nodes[0];
  EXPECT_EQ(conv.op, OpType::kConv);
  EXPECT_EQ(conv.attrs.activation.kind, Activation::kRelu);
  ASSERT_EQ(conv.inputs.size(), 3u);
  EXPECT_EQ(conv.outputs[0], fused.outputs[0]);
  EXPECT_EQ(fused.weights.size(), 2u);  // the folded weight and bias; BN's statistics are gone
  EXPECT_NE(fused.constant_data(conv.inputs[1]), b.g.constant_data(1));  // new blocks, originals untouched

  Graph reference = b.g;
  ASSERT_TRUE(specialize(reference, {{1, 3, 8, 8}}).is_ok());
  ASSERT_TRUE(specialize(fused, {{1, 3, 8, 8}}).is_ok());
  EXPECT_EQ(fused.values[fused.outputs[0]].shape, (Shape{1, 4, 8, 8}));
  Tensor input = Tensor::zeros(DType::kFloat32, {1, 3, 8, 8});
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1, 1);
  for (std::int64_t i = 0; i < input.elements(); ++i) input.data<float>()[i] = u(rng);
  auto want = run_cpu(reference, input);
  auto got = run_cpu(fused, input);
  if (!want || !got) GTEST_SKIP() << "CPU kernels for Conv, BatchNormalization or Relu are not available yet";
  for (std::int64_t i = 0; i < want->elements(); ++i)
    EXPECT_NEAR(got->data<float>()[i], want->data<float>()[i], 1e-4f) << i;
}

TEST(Passes, FusionRespectsOtherConsumers) {
  GraphBuilder b = conv_bn_relu();
  const int conv_out = b.g.nodes[0].outputs[0];
  b.g.outputs.push_back(conv_out);  // the conv's raw output is needed too: BN cannot be folded
  Graph g = b.g;
  ASSERT_TRUE(optimize(g).is_ok());
  int bn = 0;
  for (const Node& n : g.nodes) bn += n.op == OpType::kBatchNormalization;
  EXPECT_EQ(bn, 1);
  EXPECT_EQ(g.nodes[0].attrs.activation.kind, Activation::kNone);
}

// A pre-activation block's BatchNormalization (its input is no Conv's) keeps its own node and
// takes the Relu that follows, with the CPU result unchanged.
TEST(Passes, StandaloneBatchNormTakesItsRelu) {
  std::mt19937 rng(11);
  GraphBuilder b(13);
  int x = b.input("x", {1, 4, 6, 6});
  int z = b.one(OpType::kBatchNormalization,
                {x, b.random("scale", {4}, rng, 0.5f, 1.5f), b.random("shift", {4}, rng), b.random("mean", {4}, rng),
                 b.random("var", {4}, rng, 0.2f, 2.0f)},
                {{"epsilon", AttributeValue(1e-3f)}});
  b.g.outputs = {b.one(OpType::kRelu, {z})};
  Graph fused = b.g;
  ASSERT_TRUE(optimize(fused).is_ok());
  ASSERT_EQ(fused.nodes.size(), 1u);
  EXPECT_EQ(fused.nodes[0].op, OpType::kBatchNormalization);
  EXPECT_EQ(fused.nodes[0].attrs.activation.kind, Activation::kRelu);

  Graph reference = b.g;
  ASSERT_TRUE(specialize(reference, {{1, 4, 6, 6}}).is_ok());
  ASSERT_TRUE(specialize(fused, {{1, 4, 6, 6}}).is_ok());
  Tensor input = Tensor::zeros(DType::kFloat32, {1, 4, 6, 6});
  std::uniform_real_distribution<float> u(-2, 2);
  for (std::int64_t i = 0; i < input.elements(); ++i) input.data<float>()[i] = u(rng);
  auto want = run_cpu(reference, input);
  auto got = run_cpu(fused, input);
  ASSERT_TRUE(want && got);
  int zeros = 0;
  for (std::int64_t i = 0; i < want->elements(); ++i) {
    EXPECT_EQ(got->data<float>()[i], want->data<float>()[i]) << i;
    zeros += want->data<float>()[i] == 0.f;
  }
  EXPECT_GT(zeros, 0) << "the Relu clipped nothing: the test would not see a missing activation";
}

TEST(Passes, ConvTakesItsSilu) {
  std::mt19937 rng(5);
  GraphBuilder b(13);
  int x = b.input("x", {1, 3, 6, 6});
  int y = b.one(OpType::kConv, {x, b.random("w", {4, 3, 3, 3}, rng), b.random("b", {4}, rng)},
                {{"pads", L({1, 1, 1, 1})}});
  b.g.outputs = {b.one(OpType::kMul, {y, b.one(OpType::kSigmoid, {y})})};
  Graph fused = b.g;
  ASSERT_TRUE(optimize(fused).is_ok());
  ASSERT_EQ(fused.nodes.size(), 1u);
  EXPECT_EQ(fused.nodes[0].attrs.activation.kind, Activation::kSilu);

  Graph reference = b.g;
  ASSERT_TRUE(specialize(reference, {{1, 3, 6, 6}}).is_ok());
  ASSERT_TRUE(specialize(fused, {{1, 3, 6, 6}}).is_ok());
  Tensor input = Tensor::zeros(DType::kFloat32, {1, 3, 6, 6});
  std::uniform_real_distribution<float> u(-2, 2);
  for (std::int64_t i = 0; i < input.elements(); ++i) input.data<float>()[i] = u(rng);
  auto want = run_cpu(reference, input);
  auto got = run_cpu(fused, input);
  ASSERT_TRUE(want && got);
  for (std::int64_t i = 0; i < want->elements(); ++i) EXPECT_EQ(got->data<float>()[i], want->data<float>()[i]) << i;

  // y read by anything else (here a graph output) stays unfused.
  GraphBuilder c(13);
  x = c.input("x", {1, 3, 6, 6});
  y = c.one(OpType::kConv, {x, c.random("w", {4, 3, 3, 3}, rng)});
  c.g.outputs = {c.one(OpType::kMul, {y, c.one(OpType::kSigmoid, {y})}), y};
  ASSERT_TRUE(optimize(c.g).is_ok());
  EXPECT_EQ(c.g.nodes.size(), 3u);
}

namespace {

Tensor random_tensor(Shape shape, std::mt19937& rng) {
  Tensor t = Tensor::zeros(DType::kFloat32, std::move(shape));
  std::uniform_real_distribution<float> u(-2, 2);
  for (std::int64_t i = 0; i < t.elements(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

// The graph optimised and unoptimised, specialised to `shapes` and run on the CPU with `inputs`:
// the fused graph's output must equal the reference's bit for bit. Returns the optimised graph.
Graph expect_fusion_exact(const Graph& g, const std::vector<Shape>& shapes, const std::vector<Tensor>& inputs) {
  Graph fused = g, reference = g;
  EXPECT_TRUE(optimize(fused).is_ok());
  Graph run = fused;
  EXPECT_TRUE(specialize(reference, shapes).is_ok());
  EXPECT_TRUE(specialize(run, shapes).is_ok());
  auto want = run_cpu(reference, inputs);
  auto got = run_cpu(run, inputs);
  EXPECT_TRUE(want && got);
  if (want && got) {
    EXPECT_EQ(got->shape(), want->shape());
    for (std::int64_t i = 0; i < want->elements(); ++i) EXPECT_EQ(got->data<float>()[i], want->data<float>()[i]) << i;
  }
  return fused;
}

bool has_residual(const Node& n) { return n.inputs.size() > 3 && n.inputs[3] >= 0; }

}  // namespace

// Conv → PRelu with a per-channel slope ([M, 1, 1], as PyTorch exports it): one Conv with
// activation kPRelu and the slope as input 4 ([M]); after a fused residual too; a one-value slope is
// a LeakyRelu; a slope over another axis stays a PRelu node. The CPU results are the unfused ones.
TEST(Passes, ConvTakesItsPerChannelPRelu) {
  std::mt19937 rng(13);
  const Shape xs{2, 4, 6, 7};
  const auto conv_prelu = [&](Shape slope_shape, bool residual) {
    GraphBuilder b(13);
    const int x = b.input("x", xs);
    int y = b.one(OpType::kConv, {x, b.random("w", {4, 4, 3, 3}, rng), b.random("b", {4}, rng)},
                  {{"pads", L({1, 1, 1, 1})}});
    if (residual) y = b.one(OpType::kAdd, {y, x});
    b.g.outputs = {b.one(OpType::kPRelu, {y, b.random("slope", std::move(slope_shape), rng, -0.5f, 0.5f)})};
    return expect_fusion_exact(b.g, {xs}, {random_tensor(xs, rng)});
  };
  {
    const Graph fused = conv_prelu({4, 1, 1}, false);
    ASSERT_EQ(fused.nodes.size(), 1u);
    const Node& conv = fused.nodes[0];
    EXPECT_EQ(conv.attrs.activation.kind, Activation::kPRelu);
    ASSERT_EQ(conv.inputs.size(), 5u);
    EXPECT_EQ(conv.inputs[3], -1);
    ASSERT_NE(fused.constant_data(conv.inputs[4]), nullptr);
    EXPECT_EQ(fused.constant_data(conv.inputs[4])->shape(), (Shape{4}));
  }
  {
    const Graph fused = conv_prelu({1, 4, 1, 1}, true);
    ASSERT_EQ(fused.nodes.size(), 1u);
    EXPECT_EQ(fused.nodes[0].attrs.activation.kind, Activation::kPRelu);
    ASSERT_EQ(fused.nodes[0].inputs.size(), 5u);
    EXPECT_TRUE(has_residual(fused.nodes[0]));
  }
  {
    const Graph fused = conv_prelu({1}, false);
    ASSERT_EQ(fused.nodes.size(), 1u);
    EXPECT_EQ(fused.nodes[0].attrs.activation.kind, Activation::kLeakyRelu);
    EXPECT_EQ(fused.nodes[0].inputs.size(), 3u);
  }
  {
    const Graph fused = conv_prelu({7}, false);  // over W, not the channels
    ASSERT_EQ(fused.nodes.size(), 2u);
    EXPECT_EQ(fused.nodes[1].op, OpType::kPRelu);
  }
}

TEST(Passes, ConvTakesItsResidualAdd) {
  std::mt19937 rng(7);
  const Shape xs{1, 4, 6, 6};
  // Conv → Add(skip = a graph input) → Relu: one Conv with the residual and activation Relu.
  {
    GraphBuilder b(13);
    const int x = b.input("x", xs), skip = b.input("skip", xs);
    const int y = b.one(OpType::kConv, {x, b.random("w", {4, 4, 3, 3}, rng), b.random("b", {4}, rng)},
                        {{"pads", L({1, 1, 1, 1})}});
    b.g.outputs = {b.one(OpType::kRelu, {b.one(OpType::kAdd, {skip, y})})};
    const Graph fused = expect_fusion_exact(b.g, {xs, xs}, {random_tensor(xs, rng), random_tensor(xs, rng)});
    ASSERT_EQ(fused.nodes.size(), 1u);
    EXPECT_EQ(fused.nodes[0].op, OpType::kConv);
    EXPECT_EQ(fused.nodes[0].attrs.activation.kind, Activation::kRelu);
    ASSERT_TRUE(has_residual(fused.nodes[0]));
    EXPECT_EQ(fused.nodes[0].inputs[3], fused.inputs[1]);
  }
  // The skip computed after the conv in node order, a conv without bias: the conv moves to the
  // Add's place; a ConvTranspose residual block takes its Add as well.
  {
    GraphBuilder b(13);
    const int x = b.input("x", xs);
    const int y = b.one(OpType::kConv, {x, b.random("w", {4, 4, 1, 1}, rng)});
    const int skip = b.one(OpType::kSigmoid, {x});
    const int z = b.one(OpType::kAdd, {y, skip});
    const int t = b.one(OpType::kConvTranspose, {z, b.random("wt", {4, 4, 3, 3}, rng), b.random("bt", {4}, rng)},
                        {{"pads", L({1, 1, 1, 1})}});
    b.g.outputs = {b.one(OpType::kAdd, {t, z})};
    const Graph fused = expect_fusion_exact(b.g, {xs}, {random_tensor(xs, rng)});
    ASSERT_EQ(fused.nodes.size(), 3u);
    EXPECT_EQ(fused.nodes[0].op, OpType::kSigmoid);
    EXPECT_EQ(fused.nodes[1].op, OpType::kConv);
    EXPECT_EQ(fused.nodes[2].op, OpType::kConvTranspose);
    EXPECT_TRUE(has_residual(fused.nodes[1]) && has_residual(fused.nodes[2]));
    EXPECT_EQ(fused.nodes[1].inputs[2], -1);  // no bias
  }
  // A dynamic batch: the probes agree at every size, so it fuses, and runs at batch 2.
  {
    GraphBuilder b(13);
    const int x = b.input("x", {-1, 4, 6, 6});
    const int y = b.one(OpType::kConv, {x, b.random("w", {4, 4, 3, 3}, rng)}, {{"pads", L({1, 1, 1, 1})}});
    b.g.outputs = {b.one(OpType::kAdd, {y, x})};
    const Graph fused = expect_fusion_exact(b.g, {{2, 4, 6, 6}}, {random_tensor({2, 4, 6, 6}, rng)});
    ASSERT_EQ(fused.nodes.size(), 1u);
    EXPECT_TRUE(has_residual(fused.nodes[0]));
  }
  // y also read elsewhere (a graph output), a broadcasting skip, a skip that matches only at one
  // batch size, and Add(y, y): none fuses.
  {
    GraphBuilder b(13);
    const int x = b.input("x", xs);
    const int y = b.one(OpType::kConv, {x, b.random("w", {4, 4, 3, 3}, rng)}, {{"pads", L({1, 1, 1, 1})}});
    b.g.outputs = {b.one(OpType::kAdd, {y, x}), y};
    ASSERT_TRUE(optimize(b.g).is_ok());
    EXPECT_EQ(b.g.nodes.size(), 2u);
  }
  {
    GraphBuilder b(13);
    const int x = b.input("x", xs), skip = b.input("skip", {1, 4, 1, 6});
    const int y = b.one(OpType::kConv, {x, b.random("w", {4, 4, 3, 3}, rng)}, {{"pads", L({1, 1, 1, 1})}});
    b.g.outputs = {b.one(OpType::kAdd, {y, skip})};
    expect_fusion_exact(b.g, {xs, {1, 4, 1, 6}}, {random_tensor(xs, rng), random_tensor({1, 4, 1, 6}, rng)});
    Graph g = b.g;
    ASSERT_TRUE(optimize(g).is_ok());
    EXPECT_EQ(g.nodes.size(), 2u);
  }
  {
    GraphBuilder b(13);
    const int x = b.input("x", {-1, 4, 6, 6}), skip = b.input("skip", {2, 4, 6, 6});
    const int y = b.one(OpType::kConv, {x, b.random("w", {4, 4, 3, 3}, rng)}, {{"pads", L({1, 1, 1, 1})}});
    b.g.outputs = {b.one(OpType::kAdd, {y, skip})};
    ASSERT_TRUE(optimize(b.g).is_ok());
    EXPECT_EQ(b.g.nodes.size(), 2u);
  }
  {
    GraphBuilder b(13);
    const int x = b.input("x", xs);
    const int y = b.one(OpType::kConv, {x, b.random("w", {4, 4, 3, 3}, rng)}, {{"pads", L({1, 1, 1, 1})}});
    b.g.outputs = {b.one(OpType::kAdd, {y, y})};
    ASSERT_TRUE(optimize(b.g).is_ok());
    EXPECT_EQ(b.g.nodes.size(), 2u);
  }
}

TEST(Passes, ConvResidualOfAnotherShapeIsRejectedNamingTheNode) {
  std::mt19937 rng(8);
  GraphBuilder b(13);
  const int x = b.input("x", {1, 4, 6, 6}), r = b.input("r", {1, 4, 6, 5});
  b.one(OpType::kConv, {x, b.random("w", {4, 4, 3, 3}, rng), -1, r}, {{"pads", L({1, 1, 1, 1})}});
  const Status s = b.infer_last_status();
  EXPECT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("Conv_0"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("residual"), std::string::npos) << s.message();
}

TEST(Passes, FoldConstantsAndRemoveDeadNodes) {
  GraphBuilder b(13);
  int x = b.input("x", {2, 3});
  int c = b.one(OpType::kConstant, {}, {{"value_ints", L({3, 2})}});
  int dead = b.one(OpType::kNeg, {x});  // reaches no output
  (void)dead;
  int y = b.one(OpType::kReshape, {x, c});
  b.g.outputs = {y};
  ASSERT_TRUE(optimize(b.g).is_ok());
  ASSERT_EQ(b.g.nodes.size(), 1u);
  EXPECT_EQ(b.g.nodes[0].op, OpType::kReshape);
  const Tensor* shape = b.g.constant_data(b.g.nodes[0].inputs[1]);
  ASSERT_NE(shape, nullptr);
  EXPECT_EQ(shape->data<std::int64_t>()[0], 3);
  EXPECT_EQ(b.g.values.size(), 3u);  // x, the folded shape, y
}

TEST(Passes, ClipFusesWithConstantBounds) {
  GraphBuilder b(13);
  int x = b.input("x", {2, 4});
  int m = b.one(OpType::kGemm, {x, b.floats("w", {4, 3})});
  int c = b.one(OpType::kClip, {m, b.floats("lo", {}, {0}), b.floats("hi", {}, {6})});
  b.g.outputs = {c};
  ASSERT_TRUE(optimize(b.g).is_ok());
  ASSERT_EQ(b.g.nodes.size(), 1u);
  EXPECT_EQ(b.g.nodes[0].attrs.activation.kind, Activation::kClip);
  EXPECT_FLOAT_EQ(b.g.nodes[0].attrs.activation.beta, 6.0f);
}

TEST(Passes, LegacySoftmaxIsLoweredToFlattenSoftmaxReshape) {
  // Opset 11 Softmax/LogSoftmax at axis 1 of [2,3,4,5]: normalise over each batch's 60 values.
  for (OpType op : {OpType::kSoftmax, OpType::kLogSoftmax}) {
    GraphBuilder b(11);
    int x = b.input("x", {2, 3, 4, 5});
    int y = b.one(op, {x}, {{"axis", I(1)}});
    b.g.outputs = {y};
    Graph g = b.g;
    ASSERT_TRUE(optimize(g).is_ok());
    ASSERT_EQ(g.nodes.size(), 4u);
    EXPECT_EQ(g.nodes[0].op, OpType::kShape);
    EXPECT_EQ(g.nodes[1].op, OpType::kFlatten);
    EXPECT_EQ(g.nodes[1].attrs.i("axis", 0), 1);
    EXPECT_EQ(g.nodes[2].op, op);
    EXPECT_EQ(g.nodes[2].attrs.i("axis", 0), 1);
    EXPECT_EQ(g.nodes[3].op, OpType::kReshape);
    EXPECT_EQ(g.nodes[3].outputs[0], g.outputs[0]);
    ASSERT_TRUE(optimize(g).is_ok());
    EXPECT_EQ(g.nodes.size(), 4u);  // idempotent: the lowered node's axis is the last of 2

    Status st = specialize(g, {{2, 3, 4, 5}});
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    ASSERT_EQ(g.nodes.size(), 3u);  // the Shape folded into Reshape's constant target
    EXPECT_EQ(g.values[g.outputs[0]].shape, (Shape{2, 3, 4, 5}));
    Tensor input = Tensor::zeros(DType::kFloat32, {2, 3, 4, 5});
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> u(-4, 4);
    for (std::int64_t i = 0; i < input.elements(); ++i) input.data<float>()[i] = u(rng);
    auto got = run_cpu(g, input);
    ASSERT_TRUE(got.has_value());
    for (int n = 0; n < 2; ++n) {
      const float* xs = input.data<float>() + n * 60;
      double mx = xs[0], sum = 0;
      for (int i = 0; i < 60; ++i) mx = std::max<double>(mx, xs[i]);
      for (int i = 0; i < 60; ++i) sum += std::exp(xs[i] - mx);
      for (int i = 0; i < 60; ++i) {
        const double want = op == OpType::kSoftmax ? std::exp(xs[i] - mx) / sum : xs[i] - mx - std::log(sum);
        EXPECT_NEAR(got->data<float>()[n * 60 + i], want, 1e-5) << op_name(op) << " " << n << "," << i;
      }
    }
  }
}

TEST(Passes, LegacySoftmaxLoweringOnlyWhereTheRulesDiffer) {
  auto lowered = [](std::int64_t opset, Shape shape, std::int64_t axis, bool through_relu) {
    GraphBuilder b(opset);
    int x = b.input("x", std::move(shape));
    if (through_relu) x = b.one(OpType::kRelu, {x});  // rank unknown before shaping
    std::map<std::string, AttributeValue> attrs;
    if (axis != 99) attrs["axis"] = I(axis);  // 99: default (1 before opset 13)
    b.g.outputs = {b.one(OpType::kSoftmax, {x}, attrs)};
    EXPECT_TRUE(lower_legacy_softmax(b.g).is_ok());
    bool any = false;
    for (const Node& n : b.g.nodes) any = any || n.op == OpType::kFlatten;
    return any;
  };
  EXPECT_TRUE(lowered(11, {2, 3, 4}, 99, false));   // default axis 1 of rank 3
  EXPECT_TRUE(lowered(11, {2, 3, 4}, -2, false));
  EXPECT_FALSE(lowered(11, {2, 3, 4}, 2, false));   // the last axis: same result either way
  EXPECT_FALSE(lowered(11, {2, 3, 4}, -1, false));
  EXPECT_FALSE(lowered(11, {6, 4}, 99, false));     // axis 1 of rank 2 is the last
  EXPECT_FALSE(lowered(12, {-1, 4}, 1, false));     // dynamic dims, rank still known
  EXPECT_TRUE(lowered(11, {2, 3, 4}, 2, true));     // rank unknown: rewrite, always correct
  EXPECT_FALSE(lowered(11, {2, 3, 4}, -1, true));
  EXPECT_FALSE(lowered(13, {2, 3, 4}, 1, false));   // opset 13: the kernel's own rule
}

TEST(Passes, Fp16KeepsTheBoundaryInFloat32AndCastsInside) {
  std::mt19937 rng(3);
  GraphBuilder b(13);
  int x = b.input("x", {1, 4});
  int idx = b.input("idx", {1, 4}, DType::kInt64);
  int m = b.one(OpType::kGemm, {x, b.random("w", {4, 4}, rng)});
  int r = b.one(OpType::kRelu, {m});
  int as_float = b.one(OpType::kCast, {idx}, {{"to", I(1)}});
  int y = b.one(OpType::kAdd, {r, as_float});
  int z = b.one(OpType::kNeg, {y});
  b.g.outputs = {y, z};  // y is an output that also feeds another node
  ASSERT_TRUE(specialize(b.g, {{1, 4}, {1, 4}}).is_ok());
  const int weight_value = b.g.weights[0].value;
  ASSERT_TRUE(convert_to_fp16(b.g).is_ok());

  const Graph& g = b.g;
  EXPECT_EQ(g.values[x].dtype, DType::kFloat32);
  EXPECT_EQ(g.values[y].dtype, DType::kFloat32);
  EXPECT_EQ(g.values[z].dtype, DType::kFloat32);
  EXPECT_EQ(g.values[idx].dtype, DType::kInt64);
  EXPECT_EQ(g.values[weight_value].dtype, DType::kFloat16);                 // the device copy
  EXPECT_EQ(g.constant_data(weight_value)->dtype(), DType::kFloat32);       // the host copy
  // First node: x → fp16; the Gemm reads the twin; the user's Cast now makes float16.
  ASSERT_EQ(g.nodes.front().op, OpType::kCast);
  EXPECT_EQ(g.nodes.front().inputs[0], x);
  EXPECT_EQ(g.nodes.front().attrs.i("to", 0), 10);
  const int x16 = g.nodes.front().outputs[0];
  EXPECT_EQ(g.values[x16].dtype, DType::kFloat16);
  for (const Node& n : g.nodes) {
    if (n.op == OpType::kGemm) {
      EXPECT_EQ(n.inputs[0], x16);
    }
    if (n.op == OpType::kCast && n.inputs[0] == idx) {
      EXPECT_EQ(n.attrs.i("to", 0), 10);
    }
    for (int v : n.outputs) {
      if (v != y && v != z) {
        EXPECT_NE(g.values[v].dtype, DType::kFloat32) << g.values[v].name;
      }
    }
  }
  // The last two nodes cast y's and z's float16 twins back; Neg reads y's twin.
  ASSERT_GE(g.nodes.size(), 2u);
  const Node& back_y = g.nodes[g.nodes.size() - 2];
  const Node& back_z = g.nodes.back();
  EXPECT_EQ(back_y.op, OpType::kCast);
  EXPECT_EQ(back_y.outputs[0], y);
  EXPECT_EQ(back_y.attrs.i("to", 0), 1);
  EXPECT_EQ(back_z.outputs[0], z);
  for (const Node& n : g.nodes) {
    if (n.op == OpType::kNeg) {
      EXPECT_EQ(n.inputs[0], back_y.inputs[0]);
    }
  }
  (void)as_float;
  EXPECT_TRUE(plan_memory(g).is_ok());
}

namespace {

// One filter response normalisation + TLU as XSeg's ONNX spells it (ten nodes, passes.h's fuse),
// with knobs for the variants the pass must take or refuse.
struct FrnTlu {
  bool swapped = false;     // Add(eps, nu2), Mul(gamma, x̂), Add(beta, ·), Add(tau, ·)
  bool axes_input = false;  // ReduceMean's axes as input 1 (opset 18), not an attribute
  Ints axes = {2, 3};
  Shape gamma_shape, beta_shape;  // [1, C, 1, 1] when empty
  bool other_tau_back = false;    // adds back another constant than the tau it subtracts
  int nu2 = -1, normed = -1, tau = -1;  // set by build

  int build(GraphBuilder& b, int x, std::int64_t c, std::mt19937& rng) {
    const std::string at = std::to_string(b.g.nodes.size());
    const auto or_channels = [&](const Shape& s) { return s.empty() ? Shape{1, c, 1, 1} : s; };
    const auto ordered = [&](int chain, int constant) {
      return swapped ? std::vector{constant, chain} : std::vector{chain, constant};
    };
    const int square = b.one(OpType::kMul, {x, x});
    nu2 = axes_input ? b.one(OpType::kReduceMean, {square, b.ints("axes" + at, axes)})
                     : b.one(OpType::kReduceMean, {square}, {{"axes", L(axes)}, {"keepdims", I(1)}});
    const int shifted = b.one(OpType::kAdd, ordered(nu2, b.floats("eps" + at, {}, {1e-6f})));
    normed = b.one(OpType::kDiv, {x, b.one(OpType::kSqrt, {shifted})});
    const int gamma = b.random("gamma" + at, or_channels(gamma_shape), rng, 0.5f, 1.5f);
    const int scaled = b.one(OpType::kMul, ordered(normed, gamma));
    const int beta = b.random("beta" + at, or_channels(beta_shape), rng, -0.3f, 0.3f);
    const int biased = b.one(OpType::kAdd, ordered(scaled, beta));
    tau = b.random("tau" + at, {1, c, 1, 1}, rng, -0.5f, 0.5f);
    const int clipped = b.one(OpType::kRelu, {b.one(OpType::kSub, {biased, tau})});
    const int back = other_tau_back ? b.random("tau_back" + at, {1, c, 1, 1}, rng, -0.5f, 0.5f) : tau;
    return b.one(OpType::kAdd, ordered(clipped, back));
  }
};

// Conv 3×3 (C → C, pad 1) then the block, as xseg_block does.
int conv_frn(GraphBuilder& b, int x, std::int64_t c, std::mt19937& rng, FrnTlu& frn) {
  const std::string at = std::to_string(b.g.nodes.size());
  const int w = b.random("w" + at, {c, c, 3, 3}, rng, -0.4f, 0.4f);
  const int y = b.one(OpType::kConv, {x, w}, {{"pads", L({1, 1, 1, 1})}});
  return frn.build(b, y, c, rng);
}

// The graph optimised and not, specialised to `shape` and run on the CPU: outputs within 1e-5
// relative (the fused kernel multiplies by gamma·rsqrt where the graph divides, then multiplies).
// Returns the optimised graph.
Graph expect_fusion_close(const Graph& g, const Shape& shape, const Tensor& input) {
  Graph fused = g, reference = g;
  EXPECT_TRUE(optimize(fused).is_ok());
  Graph run = fused;
  EXPECT_TRUE(specialize(reference, {shape}).is_ok());
  EXPECT_TRUE(specialize(run, {shape}).is_ok());
  auto want = run_cpu(reference, input);
  auto got = run_cpu(run, input);
  EXPECT_TRUE(want && got);
  if (want && got) {
    EXPECT_EQ(got->shape(), want->shape());
    int bad = 0;
    for (std::int64_t i = 0; i < want->elements(); ++i) {
      const float w = want->data<float>()[i], v = got->data<float>()[i];
      if (!(std::fabs(v - w) <= 1e-5f * std::max(1.0f, std::fabs(w))) && ++bad <= 5)
        ADD_FAILURE() << "element " << i << ": fused " << v << ", unfused " << w;
    }
    EXPECT_EQ(bad, 0);
  }
  return fused;
}

}  // namespace

// Two XSeg blocks (Conv → FRN + TLU), the second with its Add and Mul operands the other way round,
// opset-18 axes [-1, -2] as an input and a one-value beta; a dynamic batch. Each becomes one
// FilterResponseNorm, and the outputs are the ten nodes' within 1e-5, with the TLU clipping.
TEST(Passes, FilterResponseNormTakesTheTenNodesOfEachBlock) {
  std::mt19937 rng(21);
  const std::int64_t c = 5;
  GraphBuilder b(13);
  const int x = b.input("x", {-1, c, 7, 9});
  FrnTlu first, second;
  second.swapped = true;
  second.axes_input = true;
  second.axes = {-1, -2};
  second.beta_shape = {1};
  const int y = conv_frn(b, conv_frn(b, x, c, rng, first), c, rng, second);
  b.g.outputs = {y};
  const Shape shape{2, c, 7, 9};
  const Tensor input = random_tensor(shape, rng);
  const Graph fused = expect_fusion_close(b.g, shape, input);
  ASSERT_EQ(fused.nodes.size(), 4u);
  EXPECT_EQ(test::count_ops(fused, OpType::kFilterResponseNorm), 2);
  for (const Node& n : fused.nodes) {
    if (n.op != OpType::kFilterResponseNorm) continue;
    ASSERT_EQ(n.inputs.size(), 4u);
    EXPECT_FLOAT_EQ(n.attrs.f("epsilon", 0), 1e-6f);
    for (int k = 1; k < 4; ++k) {  // gamma, beta, tau: C values each (a one-value beta repeated)
      ASSERT_NE(fused.constant_data(n.inputs[k]), nullptr);
      EXPECT_EQ(fused.constant_data(n.inputs[k])->elements(), c);
    }
  }
  EXPECT_EQ(fused.nodes.back().outputs[0], fused.outputs[0]);
  // The TLU clipped some outputs to tau (its channel's floor), so a missing floor would show.
  Graph reference = b.g;
  ASSERT_TRUE(specialize(reference, {shape}).is_ok());
  const auto want = run_cpu(reference, input);
  ASSERT_TRUE(want);
  const float* tau = b.g.constant_data(second.tau)->data<float>();
  int clipped = 0;
  for (std::int64_t i = 0; i < want->elements(); ++i) clipped += want->data<float>()[i] == tau[(i / 63) % c];
  EXPECT_GT(clipped, 0);
}

// An intermediate read elsewhere (a graph output, another node), a reduction over other axes, a
// different constant added back, and gamma [C] (over W, not the channels): nothing fuses, and the
// graph still computes the same.
TEST(Passes, FilterResponseNormLeavesOtherPatternsAlone) {
  const std::int64_t c = 5;
  const Shape shape{1, c, 6, c};
  const auto unfused = [&](const std::function<void(FrnTlu&)>& vary,
                           const std::function<void(GraphBuilder&, FrnTlu&, int)>& read) {
    std::mt19937 rng(22);
    GraphBuilder b(13);
    FrnTlu frn;
    vary(frn);
    const int y = conv_frn(b, b.input("x", shape), c, rng, frn);
    b.g.outputs = {y};
    read(b, frn, y);
    const Graph fused = expect_fusion_close(b.g, shape, random_tensor(shape, rng));
    EXPECT_EQ(test::count_ops(fused, OpType::kFilterResponseNorm), 0);
    EXPECT_EQ(test::count_ops(fused, OpType::kRelu), 1);
  };
  const auto as_is = [](FrnTlu&) {};
  const auto no_reader = [](GraphBuilder&, FrnTlu&, int) {};
  unfused(as_is, [](GraphBuilder& b, FrnTlu& frn, int) { b.g.outputs.push_back(frn.normed); });
  unfused(as_is, [](GraphBuilder& b, FrnTlu& frn, int y) { b.g.outputs = {b.one(OpType::kAdd, {y, frn.nu2})}; });
  unfused([](FrnTlu& frn) { frn.axes = {1, 2, 3}; }, no_reader);
  unfused([](FrnTlu& frn) { frn.other_tau_back = true; }, no_reader);
  unfused([&](FrnTlu& frn) { frn.gamma_shape = {c}; }, no_reader);
}

TEST(Passes, FilterResponseNormIsNotAnOnnxOp) {
  EXPECT_EQ(op_from_name("FilterResponseNorm").status().code(), StatusCode::kUnsupported);
  EXPECT_EQ(op_name(OpType::kFilterResponseNorm), std::string("FilterResponseNorm"));
}
