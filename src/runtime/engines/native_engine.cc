#include "runtime/engines/native_engine.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <numeric>

#include "core/log.h"
#include "core/time_ledger.h"
#include "onnx/onnx_loader.h"
#include "runtime/engines/executor.h"
#include "runtime/engines/native_backend.h"
#include "runtime/passes.h"
#include "runtime/shape_inference.h"
#if FSWAP_HAS_CUDA
#include "runtime/engines/cuda_runtime.h"
#endif

namespace fswap {
namespace {

// Layout::kNhwc converts every island (its NHWC kernels are references); otherwise ONNX's layout.
class CpuBackend final : public NativeBackend {
 public:
  explicit CpuBackend(Layout layout) {
    if (layout == Layout::kNhwc) layout_ = {LayoutChoice::kEverywhere, &transposed_};
  }

  Result<std::vector<Tensor>> run(const Graph& graph, const std::vector<Shape>& shapes,
                                  const std::vector<TensorView>& inputs) override {
    auto it = executors_.find(shapes);
    if (it == executors_.end()) {
      FSWAP_ASSIGN_OR_RETURN(auto exec, Executor::create(graph, shapes, layout_));
      it = executors_.emplace(shapes, std::move(exec)).first;
    }
    return it->second->run(inputs);
  }

 private:
  ChannelsLastWeights transposed_;
  ChannelsLastPlan layout_;
  std::map<std::vector<Shape>, std::unique_ptr<Executor>> executors_;
};

// SessionOptions::batch: dim 0 of every input whose dim 0 is 1 becomes dynamic (before any
// pass, so nothing folds the 1 into a constant). Returns the position of the first input it
// opened, -1 when none.
int open_batch_dimension(Graph& g) {
  int first = -1;
  for (std::size_t i = 0; i < g.inputs.size(); ++i) {
    Value& in = g.values[g.inputs[i]];
    if (in.shape.empty() || in.shape[0] != 1) continue;
    in.shape[0] = -1;
    in.known_shape = false;
    if (first < 0) first = static_cast<int>(i);
  }
  return first;
}

// After open_batch_dimension and optimize: a Reshape to a constant shape [1, d1, ...] (every di
// > 0) of a value that is [1, ...] with as many elements per item at batch 1 keeps the item's
// elements together, so its 1 is the batch: it becomes -1, which gives the input's dim 0 at every
// batch (FAN's heatmaps flattened to [1, 68, 4096] before their softmax). A Reshape whose shape is
// not constant, or that folds the batch into another dim ([1, -1]), stays, and probe_batch
// refuses the graph. Nothing changes when the graph's batch-1 shapes cannot be inferred.
void open_batch_reshapes(Graph& g) {
  Graph one = g;
  for (int v : one.inputs)
    if (!one.values[v].shape.empty() && one.values[v].shape[0] < 0) one.values[v].shape[0] = 1;
  for (int v : one.inputs) {
    Value& in = one.values[v];
    in.known_shape = std::all_of(in.shape.begin(), in.shape.end(), [](std::int64_t d) { return d >= 0; });
    if (!in.known_shape) return;
  }
  if (!infer_shapes(one).is_ok()) return;
  const auto product = [](auto first, auto last) {
    return std::accumulate(first, last, std::int64_t{1}, std::multiplies<>());
  };
  for (Node& n : g.nodes) {
    if (n.op != OpType::kReshape || n.inputs.size() < 2) continue;
    const Tensor* to = g.constant_data(n.inputs[1]);
    const Shape& from = one.values[n.inputs[0]].shape;
    if (to == nullptr || to->dtype() != DType::kInt64 || to->elements() < 1 || from.empty() || from[0] != 1) continue;
    const std::int64_t* t = to->data<std::int64_t>();
    const std::int64_t rank = to->elements();
    if (t[0] != 1 || !std::all_of(t + 1, t + rank, [](std::int64_t d) { return d > 0; }) ||
        product(t + 1, t + rank) != product(from.begin() + 1, from.end()))
      continue;
    Tensor opened = *to;
    opened.data<std::int64_t>()[0] = -1;
    const int id = g.add_value(g.values[n.inputs[1]].name + ".batch", DType::kInt64, {rank});
    g.values[id].constant = static_cast<int>(g.constants.size());
    g.constants.push_back(std::move(opened));
    n.inputs[1] = id;
  }
}

Status baked_batch(const Graph& g, int batch, const std::string& why) {
  return unsupported(g.path + ": cannot run at batch " + std::to_string(batch) + ": the graph fixes the batch at 1 (" +
                     why + "); load it with batch 1");
}

// Every output of a run at batch `batch` must have dim 0 == batch, or the items cannot be split.
Status check_output_batch(const Graph& g, const std::vector<Shape>& outputs, int batch) {
  for (std::size_t i = 0; i < outputs.size(); ++i)
    if (outputs[i].empty() || outputs[i][0] != batch)
      return baked_batch(g, batch, "output " + g.values[g.outputs[i]].name + " is " + shape_to_string(outputs[i]));
  return Status::ok();
}

// Proves at load that batch N flows through: a copy specialised at N (weights shared) must infer
// and give every output dim 0 == N. Skipped when another input dim is dynamic (no sizes to try):
// NativeSession::run checks the outputs instead.
Status probe_batch(const Graph& g, int batch) {
  std::vector<Shape> shapes;
  for (int v : g.inputs) {
    Shape s = g.values[v].shape;
    if (!s.empty() && s[0] < 0) s[0] = batch;
    for (auto d : s)
      if (d < 0) return Status::ok();
    shapes.push_back(s);
  }
  Graph probe = g;
  if (Status s = specialize(probe, shapes); !s.is_ok()) return baked_batch(g, batch, s.message());
  std::vector<Shape> outputs;
  for (int v : probe.outputs) outputs.push_back(probe.values[v].shape);
  return check_output_batch(g, outputs, batch);
}

// The model's graph as a native session runs it: loaded, dim 0 opened when batch > 1 (batch_input:
// the first input opened, -1 when none), optimised, and batch `batch` proven to flow through.
Result<Graph> load_native_graph(const std::string& model_path, int batch, int& batch_input) {
  const auto start = std::chrono::steady_clock::now();
  FSWAP_ASSIGN_OR_RETURN(Graph graph, load_onnx(model_path));
  log_debug(model_path + ": read in " + ms_since(start));
  batch_input = batch > 1 ? open_batch_dimension(graph) : -1;
  FSWAP_RETURN_IF_ERROR(optimize(graph));
  if (batch_input >= 0) {
    open_batch_reshapes(graph);
    FSWAP_RETURN_IF_ERROR(probe_batch(graph, batch));
  }
  log_debug(model_path + ": loaded and optimised in " + ms_since(start));
  return graph;
}

class NativeSession final : public InferenceSession {
 public:
  // batch_input: the first input whose dim 0 SessionOptions::batch opened (a run's batch is its
  // dim 0 and every output must have it), -1 when none was.
  NativeSession(Graph graph, std::unique_ptr<NativeBackend> backend, int batch_input)
      : graph_(std::move(graph)), backend_(std::move(backend)), batch_input_(batch_input) {
    for (int v : graph_.inputs) inputs_.push_back(info_of(v));
    for (int v : graph_.outputs) outputs_.push_back(info_of(v));
  }
  const std::vector<TensorInfo>& inputs() const override { return inputs_; }
  const std::vector<TensorInfo>& outputs() const override { return outputs_; }
  std::uint64_t weight_bytes() const override { return graph_.weight_bytes(); }
  DeviceWork* device_work() override { return backend_->device_work(); }

  Status run_on_device(std::span<const DeviceTensor> inputs, const DeviceOutputsFn& consume) override {
    if (inputs.size() != inputs_.size())
      return invalid_input(graph_.path + ": expected " + std::to_string(inputs_.size()) + " inputs, got " +
                           std::to_string(inputs.size()));
    std::vector<Shape> shapes;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      FSWAP_RETURN_IF_ERROR(check_input(inputs_[i], inputs[i].dtype, inputs[i].shape));
      shapes.push_back(inputs[i].shape);
    }
    return backend_->run_on_device(graph_, shapes, inputs, consume);
  }

  Result<std::vector<Tensor>> run(const std::vector<Tensor>& inputs) override {
    if (inputs.size() != inputs_.size())
      return invalid_input(graph_.path + ": expected " + std::to_string(inputs_.size()) + " inputs, got " +
                           std::to_string(inputs.size()));
    std::vector<Shape> shapes;
    std::vector<TensorView> views;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      FSWAP_RETURN_IF_ERROR(check_input(inputs_[i], inputs[i].dtype(), inputs[i].shape()));
      shapes.push_back(inputs[i].shape());
      views.push_back(inputs[i].view());
    }
    const std::int64_t batch = batch_input_ >= 0 ? shapes[batch_input_][0] : 1;
    if (batch > max_batch_) return run_in_parts(inputs, batch);
    Result<std::vector<Tensor>> result = backend_->run(graph_, shapes, views);
    if (!result && result.status().code() == StatusCode::kOutOfMemory) {
      // The device's shared scratch may be sized for a larger plan of another session (a batch,
      // a bigger model): give it back and try once more with this plan's own size.
      FSWAP_RETURN_IF_ERROR(backend_->release_scratch());
      result = backend_->run(graph_, shapes, views);
    }
    if (!result && result.status().code() == StatusCode::kOutOfMemory && batch > 1) {
      // The batch's activations do not fit the device budget beside the weights: from now on no
      // batch larger than half of it is tried, and this one runs in parts.
      max_batch_ = batch / 2;
      return run_in_parts(inputs, batch);
    }
    if (!result) return result.status();
    std::vector<Tensor> outputs = std::move(*result);
    if (batch_input_ >= 0 && shapes[batch_input_][0] > 1) {
      std::vector<Shape> output_shapes;
      for (const Tensor& t : outputs) output_shapes.push_back(t.shape());
      FSWAP_RETURN_IF_ERROR(check_output_batch(graph_, output_shapes, static_cast<int>(shapes[batch_input_][0])));
    }
    return outputs;
  }

 private:
  // A batch of `batch` items run as two calls of its first and second halves (each split again
  // while over max_batch_), outputs joined along dim 0. Inputs whose dim 0 is the batch are split.
  Result<std::vector<Tensor>> run_in_parts(const std::vector<Tensor>& inputs, std::int64_t batch) {
    const std::int64_t first = std::max<std::int64_t>(1, std::min<std::int64_t>(max_batch_, batch / 2));
    std::vector<Tensor> head, tail;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const bool batched = inputs_[i].shape.size() > 0 && inputs_[i].shape[0] < 0 && inputs[i].shape()[0] == batch;
      head.push_back(batched ? batch_slice(inputs[i], 0, first) : inputs[i]);
      tail.push_back(batched ? batch_slice(inputs[i], first, batch - first) : inputs[i]);
    }
    FSWAP_ASSIGN_OR_RETURN(std::vector<Tensor> a, run(head));
    FSWAP_ASSIGN_OR_RETURN(std::vector<Tensor> b, run(tail));
    for (std::size_t o = 0; o < a.size(); ++o) a[o] = batch_concat({&a[o], &b[o]});
    return a;
  }

  TensorInfo info_of(int value) const {
    const Value& v = graph_.values[value];
    return {v.name, v.dtype, v.shape};
  }
  Status check_input(const TensorInfo& info, DType dtype, const Shape& shape) const {
    bool fits = info.shape.size() == shape.size() && info.dtype == dtype;
    for (std::size_t d = 0; fits && d < info.shape.size(); ++d) fits = info.shape[d] < 0 || info.shape[d] == shape[d];
    if (fits) return Status::ok();
    return invalid_input(graph_.path + ": input " + info.name + " must be " + dtype_name(info.dtype) +
                         shape_to_string(info.shape) + " (-1 = any), got " + dtype_name(dtype) + shape_to_string(shape));
  }

  Graph graph_;
  std::unique_ptr<NativeBackend> backend_;  // after graph_: its plans point into copies, not graph_
  int batch_input_ = -1;
  // The largest batch run whole: lowered when a batch's activations do not fit the device budget
  // (SessionOptions::vram_budget), so a smaller budget costs speed, never a failed run.
  std::atomic<std::int64_t> max_batch_{std::numeric_limits<std::int64_t>::max()};
  std::vector<TensorInfo> inputs_, outputs_;
};

}  // namespace

#if !FSWAP_HAS_CUDA
Result<std::unique_ptr<NativeBackend>> make_cuda_backend(const std::string&, const SessionOptions& options) {
  return unsupported("--device " + options.device.to_string() +
                     ": this build of fswap has no CUDA backend (configure with the cuda preset); use --device cpu");
}
std::string cuda_memory_summary() { return {}; }
std::optional<EngineMemoryStats> cuda_memory_stats() { return std::nullopt; }
Status cuda_release_scratch() { return Status::ok(); }
void cuda_end_stage() {}
#endif

Result<std::unique_ptr<InferenceSession>> NativeEngine::load(const std::string& model_path,
                                                              const SessionOptions& options) {
  const bool cuda = options.device.kind == DeviceKind::kCuda;
  if (!cuda && options.precision == Precision::kFloat16)
    return invalid_input(model_path + ": --precision fp16 needs --device cuda (the CPU backend computes in fp32)");
  if (!cuda && options.memory_mode == MemoryMode::kUnified)
    return invalid_input(model_path + ": --memory-mode unified needs --device cuda");
  if (options.batch < 1) return invalid_input(model_path + ": batch must be at least 1");
  int batch_input = -1;
  FSWAP_ASSIGN_OR_RETURN(Graph graph, load_native_graph(model_path, options.batch, batch_input));
  std::unique_ptr<NativeBackend> backend;
  if (cuda) {
    FSWAP_ASSIGN_OR_RETURN(backend, make_cuda_backend(std::filesystem::path(model_path).stem().string(), options));
  } else {
    backend = std::make_unique<CpuBackend>(options.layout);
  }
  return std::unique_ptr<InferenceSession>(std::make_unique<NativeSession>(std::move(graph), std::move(backend), batch_input));
}

Result<std::vector<NodeTime>> profile_cuda_nodes(const std::string& model_path, const std::vector<Tensor>& inputs,
                                                 Precision precision, int warmup_runs) {
  int batch_input = -1;
  FSWAP_ASSIGN_OR_RETURN(Graph graph, load_native_graph(model_path, 1, batch_input));
  // Declared after graph, as in NativeSession, so it is destroyed first.
  const SessionOptions options{.device = {DeviceKind::kCuda, 0}, .precision = precision};
  FSWAP_ASSIGN_OR_RETURN(std::unique_ptr<NativeBackend> backend,
                         make_cuda_backend(std::filesystem::path(model_path).stem().string(), options));
  std::vector<Shape> shapes;
  std::vector<TensorView> views;
  for (const Tensor& t : inputs) {
    shapes.push_back(t.shape());
    views.push_back(t.view());
  }
  for (int i = 0; i < warmup_runs; ++i) FSWAP_RETURN_IF_ERROR(backend->run(graph, shapes, views).status());
  return backend->profile(graph, shapes, views);
}

std::vector<std::string> NativeEngine::available_devices() const {
  std::vector<std::string> devices = {"cpu"};
#if FSWAP_HAS_CUDA
  for (const std::string& d : cuda_device_names()) devices.push_back(d);
#endif
  return devices;
}

std::string NativeEngine::memory_summary() const { return cuda_memory_summary(); }

std::optional<EngineMemoryStats> NativeEngine::memory_stats() const { return cuda_memory_stats(); }

Status NativeEngine::release_scratch() { return cuda_release_scratch(); }

void NativeEngine::end_stage() { cuda_end_stage(); }

}  // namespace fswap
