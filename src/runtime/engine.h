// The engine interface: every inference backend (ONNX Runtime now, the native engine later)
// loads an ONNX model into a session that runs batches of named tensors.
//
//   FSWAP_ASSIGN_OR_RETURN(auto engine, make_engine("ort"));
//   FSWAP_ASSIGN_OR_RETURN(auto session, engine->load("fr_detect.onnx", {.device = {}, .threads = 2}));
//   Tensor in = Tensor::zeros(DType::kFloat32, {1, 3, 240, 320});
//   FSWAP_ASSIGN_OR_RETURN(auto outs, session->run({in}));   // in the order of session->outputs()
//
// A session is safe to run from one thread at a time; distinct sessions run concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "runtime/device_work.h"

namespace fswap {

enum class DeviceKind { kCpu, kCuda };

struct Device {
  DeviceKind kind = DeviceKind::kCpu;
  int index = 0;
  std::string to_string() const;  // "cpu", "cuda:0"
};
// Parses "cpu", "cuda", "cuda:N".
Result<Device> parse_device(const std::string& text);

// Storage precision of activations and weights. kDefault: fp16 on CUDA, fp32 on the CPU.
// fp16 stores float16 and computes in float32; models keep float32 inputs and outputs.
enum class Precision { kDefault, kFloat32, kFloat16 };
// Parses "auto", "fp32", "fp16".
Result<Precision> parse_precision(const std::string& text);

// How the native engine places device memory: explicit (our arena and residency manager) or
// unified (cudaMallocManaged with access hints).
enum class MemoryMode { kExplicit, kUnified };
// Parses "explicit", "unified".
Result<MemoryMode> parse_memory_mode(const std::string& text);

// Where the native engine stores 4-D activations channels-last (runtime/channels_last.h).
// kAuto: on CUDA at fp16, the islands where it pays; nowhere on the CPU. kNchw: nowhere (ONNX's
// own layout). kNhwc: every island, on either device (tests and comparisons; the CPU's NHWC
// kernels are references, not fast).
enum class Layout { kAuto, kNchw, kNhwc };
// Parses "auto", "nchw", "nhwc".
Result<Layout> parse_layout(const std::string& text);

struct SessionOptions {
  Device device;
  int threads = 0;  // intra-op threads; 0 = the engine's default (all cores)
  Precision precision = Precision::kDefault;
  // --vram-budget text (memory/budget.h: "4GiB", "50%", "" = free memory minus a margin). Every
  // native CUDA session on a device shares one budget: the first session fixes it, a later
  // session asking for a different one is kInvalidInput.
  std::string vram_budget = {};
  MemoryMode memory_mode = MemoryMode::kExplicit;
  Layout layout = Layout::kAuto;  // native engine only
  // Largest batch the session will be run with (native engine only; ort ignores it and keeps
  // the model's shapes). Above 1, dim 0 of every input whose dim 0 is 1 becomes dynamic, so
  // runs take any batch from 1 to `batch` (one plan per batch size, weights shared). When every
  // other input dim is static, load proves batch `batch` flows through the graph; a graph that
  // bakes batch 1 (a Reshape to a constant shape, an output whose dim 0 stays 1) is
  // kUnsupported naming the file, at load or at the first run that shows it.
  int batch = 1;
  // The compute lane of a native CUDA session (memory/device.h; 0 or 1): sessions on different
  // lanes of a device run their kernels on different streams, so they may overlap (the face
  // analysis beside the processors' work). Ignored elsewhere.
  int lane = 0;
};

struct TensorInfo {
  std::string name;
  DType dtype = DType::kFloat32;
  Shape shape;  // -1 marks a dynamic dimension (e.g. the batch)
};

class InferenceSession {
 public:
  virtual ~InferenceSession() = default;
  virtual const std::vector<TensorInfo>& inputs() const = 0;
  virtual const std::vector<TensorInfo>& outputs() const = 0;
  // inputs[i] feeds inputs()[i]; returns one tensor per outputs() entry, in that order.
  // Shapes and dtypes are checked against the model; a mismatch is kInvalidInput naming the input.
  virtual Result<std::vector<Tensor>> run(const std::vector<Tensor>& inputs) = 0;

  // Index of the named output, or -1.
  int output_index(const std::string& name) const;

  // Bytes of the model's weights and constants as the session holds them (the native engine:
  // its optimised graph's, float32 as loaded; fp16 storage on CUDA holds about half). 0 when the
  // engine does not say (ort).
  virtual std::uint64_t weight_bytes() const { return 0; }

  // The GPU this session runs on when it can run with its inputs and outputs in device memory
  // (the native engine on CUDA, runtime/device_work.h); null otherwise.
  virtual DeviceWork* device_work() { return nullptr; }
  // run() with inputs in device memory (the shapes and dtypes run() takes, batch 1 as loaded) and
  // the outputs left there: `consume` gets them, valid only during the call, and enqueues on
  // device_work()->stream() whatever reads them. The caller holds device_work()->hold().
  // kUnsupported when device_work() is null.
  virtual Status run_on_device(std::span<const DeviceTensor> inputs, const DeviceOutputsFn& consume);
};

// An engine's device-memory statistics, summed over the devices its sessions use (the native
// engine's CUDA runtimes: DeviceArena + ResidencyManager counters). Bytes; counters since start.
struct EngineMemoryStats {
  std::uint64_t budget_bytes = 0;      // --vram-budget in force
  std::uint64_t used_bytes = 0;        // device bytes allocated from the arena now
  std::uint64_t peak_bytes = 0;        // the most ever allocated at once
  std::uint64_t reserved_bytes = 0;    // device bytes the arena holds (allocated + cached)
  std::uint64_t h2d_bytes = 0;         // host→device copies (weight loads and prefetches)
  std::uint64_t ring_h2d_bytes = 0;    // of them, weight-ring passes' (memory/weight_ring.h): every
                                       // run of a model that streams copies them again
  std::uint64_t d2h_bytes = 0;         // device→host copies (write-backs)
  std::uint64_t evictions = 0;         // weight blocks dropped from the device to make room
  std::uint64_t evicted_bytes = 0;
  double gpu_busy_seconds = 0;         // model runs' time on the compute stream (event timing)
  double capture_seconds = 0;          // host time capturing CUDA graphs (again after addresses moved)
};

class Engine {
 public:
  virtual ~Engine() = default;
  virtual std::string name() const = 0;
  // Errors name the model path: missing (kNotFound), not a valid model (kInvalidInput),
  // device unavailable (kUnsupported, saying which libraries are missing).
  virtual Result<std::unique_ptr<InferenceSession>> load(const std::string& model_path,
                                                         const SessionOptions& options) = 0;
  // Devices this engine can use on this machine, for `fswap info`.
  virtual std::vector<std::string> available_devices() const = 0;
  // What the engine's sessions did with device memory (budget, peak, copies, evictions), one or
  // more lines for the CLI summary; empty when the engine keeps no such statistics.
  virtual std::string memory_summary() const { return {}; }
  // The same statistics as numbers (for /metrics); nullopt when the engine keeps none (the CPU,
  // ort, or no device session loaded yet).
  virtual std::optional<EngineMemoryStats> memory_stats() const { return std::nullopt; }
  // Gives back the device memory kept between runs beside the weights (activation buffers and
  // kernel workspaces, sized for the largest run so far), for when the models that run next are
  // not the ones that ran: the analysis and the processor stages taking turns on the GPU
  // (pipeline/gpu_turns.h), where one side's buffers would otherwise crowd out the other side's
  // weights. The next run allocates its own again. Nothing to give on the CPU or ort.
  virtual Status release_scratch() { return Status::ok(); }
  // A stage of the caller's work ended for now (a processor over a window of frames): the weights
  // of the models that ran may make room for the next stage's before anything protects them
  // (memory::ResidencyManager::end_stage). A hint; nothing moves until room is needed.
  virtual void end_stage() {}
};

// "ort" or "auto" (→ ort until the native engine lands). Unknown names are kInvalidInput.
Result<std::unique_ptr<Engine>> make_engine(const std::string& name);

}  // namespace fswap
