#include "runtime/engines/executor.h"

#include <cstring>

#include "runtime/device_graph.h"

namespace fswap {

TensorView Executor::view_of(int value) {
  const Value& v = graph_.values[value];
  if (const Tensor* data = graph_.constant_data(value)) return data->view();
  return {v.dtype, v.shape, arena_ + plan_.offset[value]};
}

Result<std::unique_ptr<Executor>> Executor::create(const Graph& optimized, const std::vector<Shape>& input_shapes,
                                                   const ChannelsLastPlan& layout) {
  std::unique_ptr<Executor> e(new Executor());
  FSWAP_ASSIGN_OR_RETURN(e->graph_, device_graph(optimized, input_shapes, Precision::kFloat32, layout));
  FSWAP_ASSIGN_OR_RETURN(e->plan_, plan_memory(e->graph_));
  const std::size_t align = MemoryPlan::kAlignment;
  e->arena_storage_ = std::make_unique<std::byte[]>(e->plan_.arena_bytes + align);
  const auto base = reinterpret_cast<std::uintptr_t>(e->arena_storage_.get());
  e->arena_ = e->arena_storage_.get() + ((align - base % align) % align);

  for (const Node& node : e->graph_.nodes) {
    BoundNode b;
    b.node = &node;
    b.kernel = cpu_kernel(node.op);
    if (!b.kernel)
      return unsupported(e->graph_.path + ": node " + node.name + ": operator " + op_name(node.op) +
                         " has no CPU kernel yet");
    for (int in : node.inputs) b.inputs.push_back(in < 0 ? TensorView{} : e->view_of(in));
    for (int out : node.outputs) b.outputs.push_back(e->view_of(out));
    e->nodes_.push_back(std::move(b));
  }
  return e;
}

Result<std::vector<Tensor>> Executor::run(const std::vector<TensorView>& inputs, TimeLedger* per_op) {
  if (inputs.size() != graph_.inputs.size())
    return invalid_input(graph_.path + ": expected " + std::to_string(graph_.inputs.size()) + " inputs, got " +
                         std::to_string(inputs.size()));
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const TensorView dst = view_of(graph_.inputs[i]);
    if (inputs[i].shape != dst.shape || inputs[i].dtype != dst.dtype)
      return invalid_input(graph_.path + ": input " + graph_.values[graph_.inputs[i]].name + " is " +
                           dtype_name(inputs[i].dtype) + shape_to_string(inputs[i].shape) + ", this plan expects " +
                           dtype_name(dst.dtype) + shape_to_string(dst.shape));
    std::memcpy(dst.data, inputs[i].data, dst.bytes());
  }
  for (const BoundNode& b : nodes_) {
    ScopedTimer t(per_op, op_name(b.node->op));
    Status s = b.kernel({b.node->op, b.node->attrs, b.inputs, b.outputs});
    if (!s.is_ok()) return Status(s.code(), graph_.path + ": node " + b.node->name + ": " + s.message());
  }
  std::vector<Tensor> outputs;
  for (int out : graph_.outputs) outputs.push_back(Tensor::copy_of(view_of(out)));
  return outputs;
}

}  // namespace fswap
