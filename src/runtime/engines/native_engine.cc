#include "runtime/engines/native_engine.h"

#include <filesystem>
#include <map>

#include "onnx/onnx_loader.h"
#include "runtime/engines/executor.h"
#include "runtime/passes.h"

namespace fswap {
namespace {

class NativeSession final : public InferenceSession {
 public:
  explicit NativeSession(Graph graph) : graph_(std::move(graph)) {
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
    auto it = executors_.find(shapes);
    if (it == executors_.end()) {
      FSWAP_ASSIGN_OR_RETURN(auto exec, Executor::create(graph_, shapes));
      it = executors_.emplace(shapes, std::move(exec)).first;
    }
    return it->second->run(views);
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
  std::vector<TensorInfo> inputs_, outputs_;
  std::map<std::vector<Shape>, std::unique_ptr<Executor>> executors_;
};

}  // namespace

Result<std::unique_ptr<InferenceSession>> NativeEngine::load(const std::string& model_path,
                                                              const SessionOptions& options) {
  if (options.device.kind != DeviceKind::kCpu)
    return unsupported("--device " + options.device.to_string() +
                       ": the native engine's CUDA backend is not built yet; use --engine ort or --device cpu");
  FSWAP_ASSIGN_OR_RETURN(Graph graph, load_onnx(model_path));
  FSWAP_RETURN_IF_ERROR(optimize(graph));
  return std::unique_ptr<InferenceSession>(std::make_unique<NativeSession>(std::move(graph)));
}

}  // namespace fswap
