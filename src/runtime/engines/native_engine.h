// NativeEngine: fswap's own executor over the graph IR (CPU backend now; the CUDA backend and
// the memory manager plug in here later).
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
  std::vector<std::string> available_devices() const override { return {"cpu"}; }
};

}  // namespace fswap
