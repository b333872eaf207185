#include "runtime/engine.h"
#include "runtime/engines/native_engine.h"
#include "runtime/ort_engine.h"

namespace fswap {

Result<std::unique_ptr<Engine>> make_engine(const std::string& name) {
  // auto → ONNX Runtime while the native CPU backend is slower than it (ARCHITECTURE.md).
  if (name == "ort" || name == "auto") return std::unique_ptr<Engine>(std::make_unique<OrtEngine>());
  if (name == "native") return std::unique_ptr<Engine>(std::make_unique<NativeEngine>());
  return invalid_input("unknown engine '" + name + "': use auto, native or ort");
}

}  // namespace fswap
