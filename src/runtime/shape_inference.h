// Shape inference: the output dtype and shape of every op in FSWAP_OP_LIST, with ONNX semantics
// (numpy broadcasting, Conv/Pool sizes with pads, dilations, ceil_mode and auto_pad, Reshape's
// 0 and -1, axes given as attributes or inputs depending on the opset, ...).
//
//   for (const Node& n : g.nodes) FSWAP_RETURN_IF_ERROR(infer_node_shapes(g, n));
//
// Rules read the values of constant inputs (Reshape's shape, Resize's sizes, Slice's starts, ...)
// through Graph::constant_data; a value that is needed but not constant is an error naming the
// node. specialize() (runtime/passes.h) is the usual caller.
#pragma once

#include <cstdint>
#include <optional>

#include "core/status.h"
#include "core/tensor.h"
#include "runtime/graph.h"

namespace fswap {

// ONNX TensorProto.DataType → DType. kUnsupported for types the engine has no dtype for
// (strings, int16, bfloat16, complex, ...).
Result<DType> dtype_from_onnx(std::int64_t onnx_type);

// Sets dtype, shape and known_shape of node's outputs. Every present input must have
// known_shape. Errors: kInvalidInput naming the node for inconsistent shapes or attributes,
// kUnsupported for data-dependent shapes (a needed input that is not constant).
Status infer_node_shapes(Graph& g, const Node& node);

// Runs infer_node_shapes over every node in order.
Status infer_shapes(Graph& g);

// The value of node's only output when the node is cheap shape arithmetic that can be computed
// now, without a kernel: Constant; Shape and Size of a shaped value; and Gather, Concat,
// Unsqueeze, Squeeze, Slice, Reshape, Flatten, Identity, Cast, Neg, Add, Sub, Mul, Div, Min, Max,
// Equal, Less, Greater, Where, Expand, ConstantOfShape, Range on constant tensors (integer,
// float32 or float64) of at most 4096 elements. This keeps shape subgraphs foldable whatever
// the CPU kernels cover. Output shapes must already be inferred (except for Constant).
// std::nullopt when the node is not such arithmetic.
std::optional<Tensor> evaluate_shape_op(const Graph& g, const Node& node);

}  // namespace fswap
