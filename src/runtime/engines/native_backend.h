// Internal to the native engine: where a session's optimised graph runs. One implementation per
// device kind (the CPU executor, the CUDA executor); each keeps one plan per set of input shapes,
// built on first use.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "runtime/engine.h"
#include "runtime/engines/native_engine.h"
#include "runtime/graph.h"

namespace fswap {

class NativeBackend {
 public:
  virtual ~NativeBackend() = default;
  // Runs `graph` (the session's optimised graph, the same object on every call) on `inputs`,
  // whose shapes and dtypes the session has checked against the model.
  virtual Result<std::vector<Tensor>> run(const Graph& graph, const std::vector<Shape>& shapes,
                                          const std::vector<TensorView>& inputs) = 0;
  // Gives back the device's shared scratch (activations and kernel workspace, sized for the
  // largest plan any session ran), so a run that found the budget full can retry with its own
  // plan's size. Nothing to give on the CPU.
  virtual Status release_scratch() { return Status::ok(); }
  // The GPU of a backend that runs device tensors (InferenceSession::device_work); null on the CPU.
  virtual DeviceWork* device_work() { return nullptr; }
  // run() on device tensors, the caller holding device_work()->hold() (InferenceSession::run_on_device).
  virtual Status run_on_device(const Graph& graph, const std::vector<Shape>& shapes,
                               std::span<const DeviceTensor> inputs, const DeviceOutputsFn& consume) {
    (void)graph, (void)shapes, (void)inputs, (void)consume;
    return unsupported("this backend runs host tensors only");
  }
  // One run of `graph` on `inputs` timed node by node (profile_cuda_nodes); the CUDA backend only.
  virtual Result<std::vector<NodeTime>> profile(const Graph& graph, const std::vector<Shape>& shapes,
                                                const std::vector<TensorView>& inputs) {
    (void)graph, (void)shapes, (void)inputs;
    return unsupported("only the CUDA backend profiles its nodes");
  }
};

// kUnsupported when this build has no CUDA backend or the machine no usable GPU.
Result<std::unique_ptr<NativeBackend>> make_cuda_backend(const std::string& model_name, const SessionOptions& options);
// The memory summary of every CUDA device in use (CudaRuntime::memory_summary), empty when none.
std::string cuda_memory_summary();
// The same as numbers, summed over those devices; nullopt when none is in use.
std::optional<EngineMemoryStats> cuda_memory_stats();
// CudaRuntime::release_scratch on every CUDA device in use (Engine::release_scratch).
Status cuda_release_scratch();
// ResidencyManager::end_stage on every CUDA device in use (Engine::end_stage).
void cuda_end_stage();

}  // namespace fswap
