// The native engine's CUDA backend: the model's weights in the runtime's residency manager, one
// CudaExecutor per set of input shapes.
#include <chrono>
#include <map>
#include <mutex>

#include "core/log.h"
#include "core/time_ledger.h"
#include "runtime/engines/cuda_executor.h"
#include "runtime/engines/cuda_runtime.h"
#include "runtime/engines/native_backend.h"

namespace fswap {
namespace {

class CudaBackend final : public NativeBackend {
 public:
  CudaBackend(std::shared_ptr<CudaRuntime> runtime, const std::string& model_name, Precision precision,
              MemoryMode mode, Layout layout, int lane)
      : runtime_(std::move(runtime)), constants_(*runtime_, model_name, mode), precision_(precision), lane_(lane) {
    // Channels-last pays where cuDNN's tensor cores run: at fp16 (fp32 stays off them, conv.cc).
    if (layout == Layout::kNhwc) layout_ = {LayoutChoice::kEverywhere, &transposed_};
    if (layout == Layout::kAuto && precision == Precision::kFloat16) layout_ = {LayoutChoice::kWherePays, &transposed_};
    layout_.align_channels = precision == Precision::kFloat16;  // where the tensor cores run
  }
  ~CudaBackend() override {
    auto lock = runtime_->enter(lane_);
    executors_.clear();
  }

  Result<std::vector<Tensor>> run(const Graph& graph, const std::vector<Shape>& shapes,
                                  const std::vector<TensorView>& inputs) override {
    CudaExecutor::IssuedRun issued;
    {
      auto lock = runtime_->enter(lane_);
      FSWAP_ASSIGN_OR_RETURN(CudaExecutor* exec, executor(graph, shapes));
      const auto start = std::chrono::steady_clock::now();
      FSWAP_ASSIGN_OR_RETURN(issued, exec->issue(inputs));
      runtime_->issue_times().total_s += seconds_since(start);
    }
    // Waiting for the outputs holds nothing: another session's work queues behind this run.
    FSWAP_RETURN_IF_ERROR(issued.wait());
    return std::move(issued.outputs);
  }

  Result<std::vector<NodeTime>> profile(const Graph& graph, const std::vector<Shape>& shapes,
                                        const std::vector<TensorView>& inputs) override {
    auto lock = runtime_->enter(lane_);
    FSWAP_ASSIGN_OR_RETURN(CudaExecutor* exec, executor(graph, shapes));
    return exec->profile(inputs);
  }

  DeviceWork* device_work() override { return runtime_.get(); }

  Status run_on_device(const Graph& graph, const std::vector<Shape>& shapes, std::span<const DeviceTensor> inputs,
                       const DeviceOutputsFn& consume) override {
    // The caller holds device_work() (lane 0): a session of another lane would run on lane 0's
    // stream and buffers.
    if (lane_ != runtime_->device().compute_lane())
      return invalid_input(graph.path + ": run_on_device of a lane-" + std::to_string(lane_) + " session while lane " +
                           std::to_string(runtime_->device().compute_lane()) + " holds the device");
    FSWAP_ASSIGN_OR_RETURN(CudaExecutor* exec, executor(graph, shapes));
    Status s = exec->run_on_device(inputs, consume);
    if (s.code() == StatusCode::kOutOfMemory) {
      // As NativeSession::run: the shared scratch may be sized for another session's larger plan.
      FSWAP_RETURN_IF_ERROR(runtime_->release_scratch());
      s = exec->run_on_device(inputs, consume);
    }
    return s;
  }

  Status release_scratch() override {
    auto lock = runtime_->enter(lane_);  // frees are stream-ordered: after the output copies still queued
    return runtime_->release_scratch();
  }

 private:
  // The executor of these input shapes, created on first use. Caller holds the runtime's mutex.
  Result<CudaExecutor*> executor(const Graph& graph, const std::vector<Shape>& shapes) {
    auto it = executors_.find(shapes);
    if (it == executors_.end()) {
      const auto start = std::chrono::steady_clock::now();
      FSWAP_ASSIGN_OR_RETURN(auto exec, CudaExecutor::create(*runtime_, constants_, graph, shapes, precision_, layout_));
      std::string shapes_text;
      for (const Shape& s : shapes) shapes_text += shape_to_string(s);
      log_debug(graph.path + " " + shapes_text + ": CUDA executor made in " + ms_since(start));
      it = executors_.emplace(shapes, std::move(exec)).first;
    }
    return it->second.get();
  }

  std::shared_ptr<CudaRuntime> runtime_;
  DeviceConstants constants_;  // after runtime_: destroyed before it
  Precision precision_;
  int lane_ = 0;  // SessionOptions::lane: every entry issues to it
  ChannelsLastWeights transposed_;  // the host copies DeviceConstants places, by their address
  ChannelsLastPlan layout_;
  std::map<std::vector<Shape>, std::unique_ptr<CudaExecutor>> executors_;
};

}  // namespace

Result<std::unique_ptr<NativeBackend>> make_cuda_backend(const std::string& model_name, const SessionOptions& options) {
  FSWAP_ASSIGN_OR_RETURN(std::shared_ptr<CudaRuntime> runtime,
                         CudaRuntime::acquire({.device = options.device.index, .vram_budget = options.vram_budget}));
  if (Status s = runtime->open_lane(options.lane); !s.is_ok()) return Status(s.code(), model_name + ": " + s.message());
  const Precision precision = options.precision == Precision::kFloat32 ? Precision::kFloat32 : Precision::kFloat16;
  return std::unique_ptr<NativeBackend>(std::make_unique<CudaBackend>(std::move(runtime), model_name, precision,
                                                                                options.memory_mode, options.layout,
                                                                                options.lane));
}

std::string cuda_memory_summary() {
  std::string out;
  for (const std::shared_ptr<CudaRuntime>& rt : CudaRuntime::live()) {
    auto lock = rt->enter();
    out += rt->memory_summary();
  }
  return out;
}

Status cuda_release_scratch() {
  for (const std::shared_ptr<CudaRuntime>& rt : CudaRuntime::live()) {
    auto lock = rt->enter();
    FSWAP_RETURN_IF_ERROR(rt->release_scratch());
  }
  return Status::ok();
}

void cuda_end_stage() {
  for (const std::shared_ptr<CudaRuntime>& rt : CudaRuntime::live()) {
    auto lock = rt->enter();
    rt->residency().end_stage();
  }
}

std::optional<EngineMemoryStats> cuda_memory_stats() {
  std::optional<EngineMemoryStats> sum;
  for (const std::shared_ptr<CudaRuntime>& rt : CudaRuntime::live()) {
    auto lock = rt->enter();
    const memory::ArenaStats arena = rt->arena().stats();
    const memory::ResidencyCounters& moved = rt->residency().stats().total;
    if (!sum) sum.emplace();
    sum->budget_bytes += rt->budget().bytes;
    sum->used_bytes += arena.allocated_bytes;
    sum->peak_bytes += arena.peak_allocated_bytes;
    sum->reserved_bytes += arena.reserved_bytes;
    sum->h2d_bytes += moved.h2d_bytes;
    sum->ring_h2d_bytes += moved.ring_h2d_bytes;
    sum->d2h_bytes += moved.d2h_bytes;
    sum->evictions += moved.evictions;
    sum->evicted_bytes += moved.evicted_bytes;
    sum->gpu_busy_seconds += rt->gpu_busy().seconds;
    sum->capture_seconds += rt->issue_times().capture_s;
  }
  return sum;
}

}  // namespace fswap
