// channels_last Conv and ConvTranspose on the CPU against the NCHW kernels on the same data
// transposed (fp32, 1e-5), the shape rules of Conv, ConvTranspose and the pools with
// channels_last (one node and a specialised graph), and the errors for inputs that cannot be NHWC.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/cpu_kernels.h"
#include "runtime/passes.h"
#include "support/conv_layout_cases.h"

namespace fswap {
namespace {

using test::ConvLayoutCase;
using Ints = std::vector<std::int64_t>;

// Runs the CPU kernel of `op`; absent tensors are absent optional inputs.
Status run_cpu(OpType op, const OpAttributes& attrs, const std::vector<const Tensor*>& inputs, Tensor& y) {
  std::vector<TensorView> in;
  for (const Tensor* t : inputs) in.push_back(t != nullptr ? t->view() : TensorView{});
  return cpu_kernel(op)({op, attrs, in, {y.view()}});
}

void expect_near(const Tensor& want, const Tensor& got) {
  ASSERT_EQ(want.shape(), got.shape());
  int bad = 0;
  for (std::int64_t i = 0; i < want.elements(); ++i) {
    const float w = want.data<float>()[i], g = got.data<float>()[i];
    if (!(std::fabs(w - g) <= 1e-5f * (1.0f + std::fabs(w))) && ++bad <= 5)
      ADD_FAILURE() << "element " << i << ": " << g << ", want " << w;
  }
  EXPECT_EQ(bad, 0) << bad << " of " << want.elements() << " elements differ";
}

class ChannelsLastConv : public ::testing::TestWithParam<ConvLayoutCase> {};

TEST_P(ChannelsLastConv, MatchesTheNchwKernelOnTransposedData) {
  const ConvLayoutCase& c = GetParam();
  auto nchw_shape = test::inferred_output(c, false);
  auto nhwc_shape = test::inferred_output(c, true);
  ASSERT_TRUE(nchw_shape.is_ok()) << nchw_shape.status().to_string();
  ASSERT_TRUE(nhwc_shape.is_ok()) << nhwc_shape.status().to_string();
  EXPECT_EQ(*nhwc_shape, nhwc_from_nchw(*nchw_shape)) << "the shape rule";

  const Tensor x = test::seeded_tensor(c.x, 1), w = test::seeded_tensor(c.w, 2);
  const Tensor b = test::seeded_tensor({test::out_channels(c)}, 3);
  const Tensor* bias = c.bias ? &b : nullptr;
  Tensor want = Tensor::zeros(DType::kFloat32, *nchw_shape);
  ASSERT_TRUE(run_cpu(c.op, test::node_attributes(c, false), {&x, &w, bias}, want).is_ok());
  const Tensor x_nhwc = test::nhwc_of(x), w_nhwc = test::nhwc_of(w);
  Tensor got = Tensor::zeros(DType::kFloat32, *nhwc_shape);
  const Status s = run_cpu(c.op, test::node_attributes(c, true), {&x_nhwc, &w_nhwc, bias}, got);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  expect_near(test::nhwc_of(want), got);
}

INSTANTIATE_TEST_SUITE_P(Cases, ChannelsLastConv, ::testing::ValuesIn(test::conv_layout_cases()),
                         [](const ::testing::TestParamInfo<ConvLayoutCase>& param) { return param.param.name; });

TEST(ChannelsLastConvErrors, KernelsRefuseANon4DInput) {
  OpAttributes attrs;
  attrs.values.emplace("channels_last", std::int64_t{1});
  const Tensor x = test::seeded_tensor({1, 3, 8}, 1), w = test::seeded_tensor({3, 3, 3}, 2);
  Tensor y = Tensor::zeros(DType::kFloat32, {1, 3, 6});
  const Status conv = run_cpu(OpType::kConv, attrs, {&x, &w}, y);
  EXPECT_EQ(conv.code(), StatusCode::kInvalidInput);
  EXPECT_NE(conv.message().find("Conv: channels_last needs a 4-D input, got [1,3,8]"), std::string::npos)
      << conv.message();
  Tensor yt = Tensor::zeros(DType::kFloat32, {1, 3, 10});
  const Status transpose = run_cpu(OpType::kConvTranspose, attrs, {&x, &w}, yt);
  EXPECT_EQ(transpose.code(), StatusCode::kInvalidInput);
  EXPECT_NE(transpose.message().find("ConvTranspose: channels_last needs a 4-D input"), std::string::npos)
      << transpose.message();
  attrs.values["channels_last"] = std::int64_t{2};
  const Tensor x4 = test::seeded_tensor({1, 3, 3, 3}, 1), w4 = test::seeded_tensor({3, 3, 3, 3}, 2);
  Tensor y4 = Tensor::zeros(DType::kFloat32, {1, 3, 1, 1});
  const Status value = run_cpu(OpType::kConv, attrs, {&x4, &w4}, y4);
  EXPECT_EQ(value.code(), StatusCode::kInvalidInput);
  EXPECT_NE(value.message().find("channels_last is 2"), std::string::npos) << value.message();
}

// A hand-built graph: inputs, weights and nodes.
struct Builder {
  Graph g;
  Builder() {
    g.path = "channels_last.onnx";
    g.opset = 17;
  }
  int value(const std::string& name, Shape shape = {}) {
    Value v;
    v.name = name;
    v.shape = std::move(shape);
    g.values.push_back(v);
    return static_cast<int>(g.values.size()) - 1;
  }
  int input(const std::string& name, Shape shape) {
    const int id = value(name, std::move(shape));
    g.values[id].known_shape = true;
    g.inputs.push_back(id);
    return id;
  }
  int weight(const std::string& name, const Shape& shape) {
    const int id = value(name, shape);
    g.values[id].known_shape = true;
    g.values[id].weight = static_cast<int>(g.weights.size());
    g.weights.push_back(WeightBlock{id, std::make_shared<const Tensor>(Tensor::zeros(DType::kFloat32, shape))});
    return id;
  }
  // A node with channels_last = 1 and the given attributes; returns its outputs.
  std::vector<int> nhwc(OpType op, std::vector<int> inputs, std::map<std::string, AttributeValue> attrs,
                        int outputs = 1) {
    Node n;
    n.op = op;
    n.name = std::string(op_name(op)) + "_" + std::to_string(g.nodes.size());
    n.inputs = std::move(inputs);
    for (int i = 0; i < outputs; ++i) n.outputs.push_back(value(n.name + ":" + std::to_string(i)));
    n.attrs.values.insert(attrs.begin(), attrs.end());
    n.attrs.values.emplace("channels_last", std::int64_t{1});
    g.nodes.push_back(std::move(n));
    return g.nodes.back().outputs;
  }
  const Shape& shape(int v) const { return g.values[v].shape; }
};

TEST(ChannelsLastShapes, SpecializedGraphOfNhwcNodes) {
  Builder b;
  const int x = b.input("x", {1, -1, -1, 3});
  const int conv = b.nhwc(OpType::kConv, {x, b.weight("w0", {8, 3, 3, 3}), b.weight("b0", {8})},
                          {{"strides", Ints{2, 2}}, {"pads", Ints{1, 1, 1, 1}}})[0];
  const int max = b.nhwc(OpType::kMaxPool, {conv},
                         {{"kernel_shape", Ints{3, 3}}, {"strides", Ints{2, 2}}, {"pads", Ints{1, 1, 1, 1}}})[0];
  const int up = b.nhwc(OpType::kConvTranspose, {max, b.weight("w1", {8, 4, 4, 2})},
                        {{"group", std::int64_t{2}}, {"strides", Ints{2, 2}}, {"pads", Ints{1, 1, 1, 1}}})[0];
  const int avg = b.nhwc(OpType::kAveragePool, {up},
                         {{"kernel_shape", Ints{2, 2}}, {"strides", Ints{2, 2}}, {"ceil_mode", std::int64_t{1}}})[0];
  const int depthwise = b.nhwc(OpType::kConv, {avg, b.weight("w2", {8, 3, 3, 1})},
                               {{"group", std::int64_t{4}}, {"auto_pad", std::string("SAME_UPPER")}})[0];
  b.g.outputs = {depthwise};
  const Status s = specialize(b.g, {{1, 17, 15, 3}});
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  EXPECT_EQ(b.shape(conv), (Shape{1, 9, 8, 8}));
  EXPECT_EQ(b.shape(max), (Shape{1, 5, 4, 8}));
  EXPECT_EQ(b.shape(up), (Shape{1, 10, 8, 4}));
  EXPECT_EQ(b.shape(avg), (Shape{1, 5, 4, 4}));
  EXPECT_EQ(b.shape(depthwise), (Shape{1, 5, 4, 8}));
}

// Each pool attribute set gives the channels_last node the NCHW node's shape, permuted.
TEST(ChannelsLastShapes, PoolsMatchTheNchwRule) {
  const std::vector<std::map<std::string, AttributeValue>> attribute_sets = {
      {{"kernel_shape", Ints{3, 3}}, {"strides", Ints{2, 2}}, {"pads", Ints{1, 1, 1, 1}}},
      {{"kernel_shape", Ints{2, 2}}, {"strides", Ints{2, 2}}, {"ceil_mode", std::int64_t{1}}},
      {{"kernel_shape", Ints{3, 2}}, {"dilations", Ints{2, 1}}, {"pads", Ints{0, 1, 2, 0}}},
      {{"kernel_shape", Ints{3, 3}}, {"strides", Ints{2, 2}}, {"auto_pad", std::string("SAME_LOWER")}},
  };
  for (OpType op : {OpType::kMaxPool, OpType::kAveragePool}) {
    for (const auto& attrs : attribute_sets) {
      Builder b;
      const int x = b.input("x", {2, 7, 11, 10});
      const int x_nhwc = b.input("x_nhwc", {2, 11, 10, 7});
      Node nchw;
      nchw.op = op;
      nchw.name = "nchw";
      nchw.inputs = {x};
      nchw.outputs = {b.value("y")};
      nchw.attrs.values.insert(attrs.begin(), attrs.end());
      b.g.nodes.push_back(nchw);
      const int y_nhwc = b.nhwc(op, {x_nhwc}, attrs)[0];
      for (const Node& n : b.g.nodes) ASSERT_TRUE(infer_node_shapes(b.g, n).is_ok()) << n.name;
      EXPECT_EQ(b.shape(y_nhwc), nhwc_from_nchw(b.shape(nchw.outputs[0]))) << op_name(op);
    }
  }
}

TEST(ChannelsLastShapes, ErrorsNameTheNodeAndTheReason) {
  Builder b;
  const int x3 = b.input("x3", {1, 8, 3});
  b.nhwc(OpType::kConv, {x3, b.weight("w", {4, 3, 3})}, {});
  Status s = infer_node_shapes(b.g, b.g.nodes.back());
  EXPECT_EQ(s.code(), StatusCode::kInvalidInput);
  EXPECT_NE(s.message().find("node Conv_0 (Conv): channels_last needs a 4-D input, got [1,8,3]"), std::string::npos)
      << s.message();

  const int x = b.input("x", {1, 8, 8, 3});
  b.nhwc(OpType::kConvTranspose, {x, b.weight("w3", {3, 3, 3})}, {});
  s = infer_node_shapes(b.g, b.g.nodes.back());
  EXPECT_EQ(s.code(), StatusCode::kInvalidInput);
  EXPECT_NE(s.message().find("channels_last needs a 4-D weight, got [3,3,3]"), std::string::npos) << s.message();

  b.nhwc(OpType::kMaxPool, {x}, {{"kernel_shape", Ints{2, 2}}}, 2);  // Y and Indices
  s = infer_node_shapes(b.g, b.g.nodes.back());
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("channels_last with the Indices output"), std::string::npos) << s.message();

  b.nhwc(OpType::kAveragePool, {x3}, {{"kernel_shape", Ints{2}}});
  s = infer_node_shapes(b.g, b.g.nodes.back());
  EXPECT_EQ(s.code(), StatusCode::kInvalidInput);
  EXPECT_NE(s.message().find("channels_last needs a 4-D input"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace fswap
