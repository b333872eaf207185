// The native engine on CUDA: a model's weights as residency blocks, and one executor per input
// shape that runs the graph's kernels on the device under the shared budget.
//
//   DeviceConstants constants(runtime, "inswapper_128");
//   FSWAP_ASSIGN_OR_RETURN(auto exec, CudaExecutor::create(runtime, constants, optimized, {{1, 3, 128, 128}, {1, 512}},
//                                                          Precision::kFloat16));
//   std::lock_guard lock(runtime.mutex());
//   FSWAP_ASSIGN_OR_RETURN(std::vector<Tensor> outputs, exec->run({target.view(), source.view()}));
//
// Memory: every weight and constant is a block of the runtime's ResidencyManager (its host copy
// pinned, converted to the device dtype), acquired by the node that reads it and released after,
// with the next nodes' blocks prefetched on the copy stream meanwhile. When everything fits the
// blocks simply stay resident; when the model's weights exceed what the budget leaves, the same
// loop streams them (the schedule makes eviction keep what is needed soonest). The activations
// are one scratch allocation per run, laid out by the static memory plan.
// From the second run on, a model whose weights stay resident runs as a CUDA graph (captured
// once, relaunched while the activation, workspace and weight addresses stay the same): one
// launch instead of a few hundred, and no per-node host work.
// Built with FSWAP_CUDA only. Thread-safety: run() under the runtime's mutex.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "backends/cuda/cuda_kernels.h"
#include "core/status.h"
#include "core/tensor.h"
#include "memory/cuda/cuda_device.h"
#include "runtime/engine.h"
#include "runtime/engines/cuda_runtime.h"
#include "runtime/graph.h"
#include "runtime/memory_plan.h"

struct CUgraphExec_st;

namespace fswap {

struct GraphExecDeleter {
  void operator()(CUgraphExec_st* exec) const;
};

// The device copies of one model's weights and constants, as residency blocks owned by `model`.
class DeviceConstants {
 public:
  DeviceConstants(CudaRuntime& runtime, std::string model) : runtime_(runtime), model_(std::move(model)) {}
  // Waits for the device, then unregisters every block and frees the pinned host copies.
  ~DeviceConstants();
  DeviceConstants(const DeviceConstants&) = delete;
  DeviceConstants& operator=(const DeviceConstants&) = delete;

  // The block holding `data` as `dtype` (float32 data is converted when dtype is kFloat16),
  // registered on first use. `data` must outlive this object. Caller holds the runtime's mutex.
  Result<memory::BlockId> block(const Tensor& data, DType dtype, const std::string& name);

 private:
  struct Entry {
    memory::BlockId id = 0;
    memory::PinnedHostPtr host;
  };
  CudaRuntime& runtime_;
  std::string model_;
  std::map<std::pair<const Tensor*, DType>, Entry> entries_;
};

class CudaExecutor {
 public:
  // Specialises a copy of `optimized` for input_shapes, converts it to fp16 storage when
  // precision is kFloat16, plans its activations and registers its weights and constants.
  // kUnsupported names the first op without a CUDA kernel.
  static Result<std::unique_ptr<CudaExecutor>> create(CudaRuntime& runtime, DeviceConstants& constants,
                                                      const Graph& optimized, const std::vector<Shape>& input_shapes,
                                                      Precision precision);

  // inputs in Graph::inputs order with the shapes given at creation; host memory in and out.
  Result<std::vector<Tensor>> run(const std::vector<TensorView>& inputs);


 private:
  struct BoundNode {
    cuda::CudaKernel kernel = nullptr;
    const Node* node = nullptr;
    std::vector<int> blocks;                    // per input: index into blocks_, or -1
    std::vector<std::int64_t> input_offsets;    // per input: byte offset in the arena, or -1
    std::vector<std::int64_t> output_offsets;
    std::vector<TensorView> inputs, outputs, host_inputs;  // device data filled in at run()
  };
  CudaExecutor(CudaRuntime& runtime, DeviceConstants& constants) : runtime_(runtime), constants_(constants) {}
  Status bind(const Node& node);
  void prefetch_after(std::size_t node);
  // Enqueues one node's kernel with the activations at `base` and block i at block_ptrs[i].
  Status launch_node(const BoundNode& b, std::uint64_t base, std::span<const memory::DevicePtr> block_ptrs);
  // Node by node, each acquiring its blocks and prefetching the next nodes'.
  Status run_nodes(std::uint64_t base);
  bool use_graph() const;
  // Acquires every block, (re)captures when an address changed, launches the graph.
  Status run_graph(std::uint64_t base);
  Status capture(std::uint64_t base, std::span<const memory::DevicePtr> block_ptrs);

  CudaRuntime& runtime_;
  DeviceConstants& constants_;
  Graph graph_;
  MemoryPlan plan_;
  std::vector<BoundNode> nodes_;
  std::vector<memory::BlockId> blocks_;       // distinct blocks this graph reads
  std::vector<memory::BlockId> schedule_;     // block acquire order of one run
  std::map<int, int> block_of_value_;         // value id → index into blocks_
  std::uint64_t weight_bytes_ = 0;
  bool streamed_ = false;                     // weights + activations exceed the budget
  int plain_runs_ = 0, graph_captures_ = 0;
  bool graph_disabled_ = false;               // capture failed or addresses kept changing
  std::unique_ptr<CUgraphExec_st, GraphExecDeleter> graph_exec_;
  std::vector<std::uint64_t> graph_signature_;  // addresses baked into graph_exec_
};

}  // namespace fswap
