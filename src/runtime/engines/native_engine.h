// NativeEngine: fswap's own executor over the graph IR, on the CPU backend or (builds with
// FSWAP_CUDA) the CUDA backend under the device-memory budget.
//
//   NativeEngine engine;
//   FSWAP_ASSIGN_OR_RETURN(auto session, engine.load("model.onnx", {}));
//
// A session loads and optimises the model once, then keeps one Executor (specialised graph +
// memory plan + arena) per distinct set of input shapes, built on first use.
#pragma once

#include "runtime/engine.h"

namespace fswap {

class NativeEngine final : public Engine {
 public:
  std::string name() const override { return "native"; }
  Result<std::unique_ptr<InferenceSession>> load(const std::string& model_path, const SessionOptions& options) override;
  // "cpu", then each CUDA device when the build has the CUDA backend.
  std::vector<std::string> available_devices() const override;
  std::string memory_summary() const override;
  // Summed over the CUDA devices in use; nullopt on the CPU.
  std::optional<EngineMemoryStats> memory_stats() const override;
};

}  // namespace fswap
