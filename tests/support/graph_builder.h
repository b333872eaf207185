// A graph built directly in the IR, for tests of shape rules and passes.
//
//   test::GraphBuilder b;
//   const int x = b.input("x", {1, 3, 8, 8});
//   const int y = b.one(OpType::kRelu, {x});
//   b.g.outputs = {y};
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "runtime/graph.h"
#include "runtime/shape_inference.h"

namespace fswap::test {

// Builds an IR graph by hand.
struct GraphBuilder {
  Graph g;

  explicit GraphBuilder(std::int64_t opset = 13) {
    g.opset = opset;
    g.path = "test.onnx";
  }
  int value(const std::string& name) {
    Value v;
    v.name = name;
    g.values.push_back(v);
    return static_cast<int>(g.values.size()) - 1;
  }
  int input(const std::string& name, Shape shape, DType dtype = DType::kFloat32) {
    const int id = value(name);
    Value& v = g.values[id];
    v.dtype = dtype;
    v.known_shape = std::none_of(shape.begin(), shape.end(), [](auto d) { return d < 0; });
    v.shape = std::move(shape);
    g.inputs.push_back(id);
    return id;
  }
  int weight(const std::string& name, Tensor t) {
    const int id = value(name);
    Value& v = g.values[id];
    v.dtype = t.dtype();
    v.shape = t.shape();
    v.known_shape = true;
    v.weight = static_cast<int>(g.weights.size());
    g.weights.push_back(WeightBlock{id, std::make_shared<const Tensor>(std::move(t))});
    return id;
  }
  int ints(const std::string& name, const std::vector<std::int64_t>& data, bool scalar = false) {
    Tensor t = Tensor::zeros(DType::kInt64, scalar ? Shape{} : Shape{static_cast<std::int64_t>(data.size())});
    std::copy(data.begin(), data.end(), t.data<std::int64_t>());
    return weight(name, std::move(t));
  }
  int floats(const std::string& name, Shape shape, std::vector<float> data = {}) {
    Tensor t = Tensor::zeros(DType::kFloat32, std::move(shape));
    std::copy(data.begin(), data.end(), t.data<float>());
    return weight(name, std::move(t));
  }
  int random(const std::string& name, Shape shape, std::mt19937& rng, float lo = -1, float hi = 1) {
    Tensor t = Tensor::zeros(DType::kFloat32, std::move(shape));
    std::uniform_real_distribution<float> u(lo, hi);
    for (std::int64_t i = 0; i < t.elements(); ++i) t.data<float>()[i] = u(rng);
    return weight(name, std::move(t));
  }
  // Adds a node; returns its output ids.
  std::vector<int> node(OpType op, std::vector<int> inputs, int outputs = 1,
                        std::map<std::string, AttributeValue> attrs = {}) {
    Node n;
    n.op = op;
    n.name = std::string(op_name(op)) + "_" + std::to_string(g.nodes.size());
    n.inputs = std::move(inputs);
    for (int i = 0; i < outputs; ++i) n.outputs.push_back(value(n.name + ":" + std::to_string(i)));
    for (auto& [k, v] : attrs) n.attrs.values.emplace(k, v);
    g.nodes.push_back(std::move(n));
    return g.nodes.back().outputs;
  }
  int one(OpType op, std::vector<int> inputs, std::map<std::string, AttributeValue> attrs = {}) {
    return node(op, std::move(inputs), 1, std::move(attrs))[0];
  }
  // Infers the last node; returns its first output's shape.
  Shape infer_last() {
    Status s = infer_node_shapes(g, g.nodes.back());
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    return g.values[g.nodes.back().outputs[0]].shape;
  }
  Status infer_last_status() { return infer_node_shapes(g, g.nodes.back()); }
  const Shape& shape(int v) const { return g.values[v].shape; }
};

// How many nodes of g run `op`.
inline int count_ops(const Graph& g, OpType op) {
  return static_cast<int>(std::count_if(g.nodes.begin(), g.nodes.end(), [op](const Node& n) { return n.op == op; }));
}

// A float32 tensor of uniform values in [-1, 1] drawn from `seed`.
inline Tensor seeded_uniform(const Shape& shape, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  Tensor t = Tensor::zeros(DType::kFloat32, shape);
  for (std::int64_t i = 0; i < t.elements(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

}  // namespace fswap::test
