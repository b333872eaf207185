#include "runtime/engines/native_engine.h"

#include <filesystem>
#include <map>

#include "onnx/onnx_loader.h"
#include "runtime/engines/executor.h"
#include "runtime/engines/native_backend.h"
#include "runtime/passes.h"
#if FSWAP_HAS_CUDA
#include "runtime/engines/cuda_runtime.h"
#endif

namespace fswap {
namespace {

class CpuBackend final : public NativeBackend {
 public:
  Result<std::vector<Tensor>> run(const Graph& graph, const std::vector<Shape>& shapes,
                                  const std::vector<TensorView>& inputs) override {
    auto it = executors_.find(shapes);
    if (it == executors_.end()) {
      FSWAP_ASSIGN_OR_RETURN(auto exec, Executor::create(graph, shapes));
      it = executors_.emplace(shapes, std::move(exec)).first;
    }
    return it->second->run(inputs);
  }

 private:
  std::map<std::vector<Shape>, std::unique_ptr<Executor>> executors_;
};

class NativeSession final : public InferenceSession {
 public:
  NativeSession(Graph graph, std::unique_ptr<NativeBackend> backend)
      : graph_(std::move(graph)), backend_(std::move(backend)) {
    for (int v : graph_.inputs) inputs_.push_back(info_of(v));
    for (int v : graph_.outputs) outputs_.push_back(info_of(v));
  }
  const std::vector<TensorInfo>& inputs() const override { return inputs_; }
  const std::vector<TensorInfo>& outputs() const override { return outputs_; }

  Result<std::vector<Tensor>> run(const std::vector<Tensor>& inputs) override {
    if (inputs.size() != inputs_.size())
      return invalid_input(graph_.path + ": expected " + std::to_string(inputs_.size()) + " inputs, got " +
                           std::to_string(inputs.size()));
    std::vector<Shape> shapes;
    std::vector<TensorView> views;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      FSWAP_RETURN_IF_ERROR(check_input(inputs_[i], inputs[i]));
      shapes.push_back(inputs[i].shape());
      views.push_back(inputs[i].view());
    }
    return backend_->run(graph_, shapes, views);
  }

 private:
  TensorInfo info_of(int value) const {
    const Value& v = graph_.values[value];
    return {v.name, v.dtype, v.shape};
  }
  Status check_input(const TensorInfo& info, const Tensor& t) const {
    bool fits = info.shape.size() == t.shape().size() && info.dtype == t.dtype();
    for (std::size_t d = 0; fits && d < info.shape.size(); ++d) fits = info.shape[d] < 0 || info.shape[d] == t.shape()[d];
    if (fits) return Status::ok();
    return invalid_input(graph_.path + ": input " + info.name + " must be " + dtype_name(info.dtype) +
                         shape_to_string(info.shape) + " (-1 = any), got " + dtype_name(t.dtype()) +
                         shape_to_string(t.shape()));
  }

  Graph graph_;
  std::unique_ptr<NativeBackend> backend_;  // after graph_: its plans point into copies, not graph_
  std::vector<TensorInfo> inputs_, outputs_;
};

}  // namespace

#if !FSWAP_HAS_CUDA
Result<std::unique_ptr<NativeBackend>> make_cuda_backend(const std::string&, const SessionOptions& options) {
  return unsupported("--device " + options.device.to_string() +
                     ": this build of fswap has no CUDA backend (configure with the cuda preset); use --device cpu");
}
std::string cuda_memory_summary() { return {}; }
#endif

Result<std::unique_ptr<InferenceSession>> NativeEngine::load(const std::string& model_path,
                                                              const SessionOptions& options) {
  const bool cuda = options.device.kind == DeviceKind::kCuda;
  if (!cuda && options.precision == Precision::kFloat16)
    return invalid_input(model_path + ": --precision fp16 needs --device cuda (the CPU backend computes in fp32)");
  if (!cuda && options.memory_mode == MemoryMode::kUnified)
    return invalid_input(model_path + ": --memory-mode unified needs --device cuda");
  FSWAP_ASSIGN_OR_RETURN(Graph graph, load_onnx(model_path));
  FSWAP_RETURN_IF_ERROR(optimize(graph));
  std::unique_ptr<NativeBackend> backend;
  if (cuda) {
    FSWAP_ASSIGN_OR_RETURN(backend, make_cuda_backend(std::filesystem::path(model_path).stem().string(), options));
  } else {
    backend = std::make_unique<CpuBackend>();
  }
  return std::unique_ptr<InferenceSession>(std::make_unique<NativeSession>(std::move(graph), std::move(backend)));
}

std::vector<std::string> NativeEngine::available_devices() const {
  std::vector<std::string> devices = {"cpu"};
#if FSWAP_HAS_CUDA
  for (const std::string& d : cuda_device_names()) devices.push_back(d);
#endif
  return devices;
}

std::string NativeEngine::memory_summary() const { return cuda_memory_summary(); }

}  // namespace fswap
