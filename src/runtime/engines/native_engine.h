// NativeEngine: fswap's own executor over the graph IR, on the CPU backend or (builds with
// FSWAP_CUDA) the CUDA backend under the device-memory budget.
//
//   NativeEngine engine;
//   FSWAP_ASSIGN_OR_RETURN(auto session, engine.load("model.onnx", {}));
//
// A session loads and optimises the model once, then keeps one Executor (specialised graph +
// memory plan + arena) per distinct set of input shapes, built on first use.
//
// Where a model's GPU time goes, op by op (bench_native profile):
//   FSWAP_ASSIGN_OR_RETURN(std::vector<NodeTime> nodes,
//                          profile_cuda_nodes("gfpgan_1.4.onnx", inputs, Precision::kFloat16, 3));
#pragma once

#include <string>
#include <vector>

#include "runtime/engine.h"

namespace fswap {

// One node of a profiled run, in run order.
struct NodeTime {
  std::string name;           // the node's name in the optimised graph
  std::string op;             // op_name() of its operator
  std::string output_shapes;  // its outputs' shapes, space-separated: "[1,64,256,256]"
  double ms = 0;              // GPU ms from the end of the previous node (or the run's start) to its end
};

// The model on CUDA device 0 as a native session runs it (the same loading, optimisation and
// executor), inputs in host memory in Graph::inputs order: `warmup_runs` plain runs (the first
// searches cuDNN's algorithms), then one run node by node with a timed event after each node.
// The nodes are issued while the stream is held, so the GPU runs them back to back and each
// node's ms is its kernels' time (plus one event record), not the host's time to issue it: their
// sum is comparable to a plain run's GPU time (a CUDA graph). Creates and drops its own session
// state (weights uploaded and freed); the profiled run is not counted in the runtime's GPU-busy
// figure. kUnsupported in builds without the CUDA backend or on machines without a GPU.
Result<std::vector<NodeTime>> profile_cuda_nodes(const std::string& model_path, const std::vector<Tensor>& inputs,
                                                 Precision precision, int warmup_runs);

class NativeEngine final : public Engine {
 public:
  std::string name() const override { return "native"; }
  Result<std::unique_ptr<InferenceSession>> load(const std::string& model_path, const SessionOptions& options) override;
  // "cpu", then each CUDA device when the build has the CUDA backend.
  std::vector<std::string> available_devices() const override;
  std::string memory_summary() const override;
  // Summed over the CUDA devices in use; nullopt on the CPU.
  std::optional<EngineMemoryStats> memory_stats() const override;
  Status release_scratch() override;  // every CUDA device in use
  void end_stage() override;          // every CUDA device in use
};

}  // namespace fswap
