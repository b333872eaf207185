// Executor: one optimised graph specialised for one set of input shapes, planned once and
// then run many times without allocating (plan, then execute).
//
//   FSWAP_ASSIGN_OR_RETURN(auto exec, Executor::create(optimized_graph, {{1, 3, 240, 320}}));
//   FSWAP_ASSIGN_OR_RETURN(std::vector<Tensor> outputs, exec->run({input.view()}));
//
// Every activation lives in one arena laid out by the memory plan; each node's input and output
// views are computed at creation. CPU kernels only for now. run() is not thread-safe (one arena).
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "backends/cpu/cpu_kernels.h"
#include "core/status.h"
#include "core/time_ledger.h"
#include "runtime/channels_last.h"
#include "runtime/graph.h"
#include "runtime/memory_plan.h"

namespace fswap {

class Executor {
 public:
  // Makes the graph to run from `optimized` (weights shared) for input_shapes and the layout plan
  // (device_graph at fp32: specialised, reordered for memory), plans its memory and binds every
  // node to its kernel. kUnsupported names the first op without
  // a CPU kernel.
  static Result<std::unique_ptr<Executor>> create(const Graph& optimized, const std::vector<Shape>& input_shapes,
                                                  const ChannelsLastPlan& layout = {});

  // inputs in Graph::inputs order, with the shapes given at creation; outputs in
  // Graph::outputs order. With a ledger, time per op type is added under the op's name.
  Result<std::vector<Tensor>> run(const std::vector<TensorView>& inputs, TimeLedger* per_op = nullptr);

  const Graph& graph() const { return graph_; }
  const MemoryPlan& plan() const { return plan_; }

 private:
  struct BoundNode {
    CpuKernel kernel = nullptr;
    const Node* node = nullptr;
    std::vector<TensorView> inputs, outputs;
  };
  Executor() = default;
  TensorView view_of(int value);

  Graph graph_;
  MemoryPlan plan_;
  std::unique_ptr<std::byte[]> arena_storage_;
  std::byte* arena_ = nullptr;  // plan_.arena_bytes, aligned to MemoryPlan::kAlignment
  std::vector<BoundNode> nodes_;
};

}  // namespace fswap
