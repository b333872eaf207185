// The native engine's graph IR: values, nodes and weights, loaded from ONNX and then shaped,
// folded, fused and planned before anything runs.
//
//   FSWAP_ASSIGN_OR_RETURN(Graph g, load_onnx("model.onnx"));          // src/onnx/onnx_loader.h
//   const Node& n = g.nodes[0];
//   if (n.op == OpType::kConv) { auto strides = n.attrs.ints("strides", {1, 1}); }
//   const Value& x = g.values[n.inputs[0]];                              // dtype, shape, name
//
// The op vocabulary (OpType, attributes) lives in backends/op.h, shared with the kernels.
// Plain data, no behaviour beyond lookups; not thread-safe to mutate.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backends/op.h"
#include "core/status.h"
#include "core/tensor.h"

namespace fswap {

struct Value {
  std::string name;
  DType dtype = DType::kFloat32;
  Shape shape;                  // -1: not known yet (dynamic input dims before shaping)
  bool known_shape = false;     // shape (and rank) inferred
  int weight = -1;              // index into Graph::weights when this value is an initializer
  int constant = -1;            // index into Graph::constants when folded to a constant
};

struct Node {
  OpType op = OpType::kIdentity;
  std::string name;
  std::vector<int> inputs;   // value ids; -1 for an absent optional input
  std::vector<int> outputs;  // value ids
  OpAttributes attrs;
};

// One initializer: the unit the memory manager will place, evict and stream. Shared so that
// graphs specialised for several batch sizes reuse one copy of the weights.
struct WeightBlock {
  int value = -1;  // the Value it initialises
  std::shared_ptr<const Tensor> data;
};

struct Graph {
  std::string path;                // the model file, for messages
  std::int64_t opset = 0;          // ai.onnx opset import
  std::vector<Value> values;
  std::vector<Node> nodes;         // topologically ordered
  std::vector<int> inputs;         // graph inputs (value ids), initializers excluded
  std::vector<int> outputs;        // graph outputs (value ids)
  std::vector<WeightBlock> weights;
  std::vector<Tensor> constants;   // values computed at load time (Constant, folded subgraphs)

  int find_value(std::string_view name) const;  // -1 when absent
  // A new value (its id): unshaped until shape inference, or with a known shape.
  int add_value(std::string name, DType dtype);
  int add_value(std::string name, DType dtype, Shape shape);
  // The data of a value that is a weight or a folded constant; nullptr otherwise.
  const Tensor* constant_data(int value) const;
  std::size_t weight_bytes() const;
};

}  // namespace fswap
