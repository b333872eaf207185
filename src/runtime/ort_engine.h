// The ONNX Runtime engine: runs ONNX models through ORT's C++ API on the CPU EP, or the CUDA EP
// when its provider libraries are installed next to libonnxruntime.so.1.
//
//   OrtEngine engine;
//   FSWAP_ASSIGN_OR_RETURN(auto session, engine.load("fr_detect.onnx", {.threads = 2}));
//   FSWAP_ASSIGN_OR_RETURN(auto outs, session->run({Tensor::zeros(DType::kFloat32, {1, 3, 240, 320})}));
//
// Usually reached through make_engine("ort"). All engines share one process-wide Ort::Env
// (created on first use, thread-safe, log level warning); every session keeps it alive.
// No Ort::Exception leaves this engine: each becomes a Status.
// Sessions: inter-op threads 1, sequential execution, all graph optimisations;
// run() feeds the caller's tensors to ORT without copying and copies the outputs out.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/engine.h"

namespace fswap {

class OrtEngine final : public Engine {
 public:
  std::string name() const override { return "ort"; }
  // Errors: missing file (kNotFound), not ONNX or unsupported by ORT (kInvalidInput),
  // CUDA requested but the provider libraries cannot be loaded (kUnsupported).
  Result<std::unique_ptr<InferenceSession>> load(const std::string& model_path,
                                                 const SessionOptions& options) override;
  // "cpu", plus "cuda" when ORT lists CUDAExecutionProvider and its provider library exists.
  std::vector<std::string> available_devices() const override;
};

// Directory that holds the loaded libonnxruntime.so.1 (where provider libraries are looked up).
std::string ort_library_dir();

}  // namespace fswap
