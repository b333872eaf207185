// CudaRuntime: what every native CUDA session on one device shares — the device, one arena under
// the budget (every device byte: weights, activations, workspaces), one residency manager (LRU
// across all loaded models), the cuDNN/cuBLASLt handles, the convolution algorithm cache and the
// kernel workspace. Built with FSWAP_CUDA only.
//
//   FSWAP_ASSIGN_OR_RETURN(std::shared_ptr<CudaRuntime> rt, CudaRuntime::acquire({.device = 0, .vram_budget = "4GiB"}));
//   auto lock = rt->enter();                    // one session runs at a time on a device
//   FSWAP_ASSIGN_OR_RETURN(DeviceAllocation a, rt->residency().allocate_scratch(bytes));
//   ... kernels get rt->context() ...
//
// Lifetime: one runtime per device ordinal per process, kept while a session holds it.
// Thread-safety: acquire() is thread-safe; everything else only under mutex(), taken by enter().
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backends/cuda/conv_graph.h"
#include "backends/cuda/cuda_kernels.h"
#include "core/status.h"
#include "memory/budget.h"
#include "memory/cuda/cuda_device.h"
#include "memory/device_arena.h"
#include "memory/residency.h"
#include "memory/run_order.h"
#include "memory/weight_chunks.h"
#include "memory/weight_ring.h"
#include "runtime/device_work.h"

namespace fswap {

namespace cuda {
class CudaLibraries;
}
class PinnedStaging;

struct CudaRuntimeOptions {
  int device = 0;
  std::string vram_budget;  // memory/budget.h syntax; "" = free memory minus a margin
};

// It is also the DeviceWork (runtime/device_work.h) of its sessions: hold() is enter(), stream() the
// compute stream, allocate() the arena under the budget.
class CudaRuntime final : public DeviceWork {
 public:
  // The runtime of options.device, created on first use. kUnsupported without a usable GPU,
  // kInvalidInput for a bad budget or one different from the budget the runtime already has.
  static Result<std::shared_ptr<CudaRuntime>> acquire(const CudaRuntimeOptions& options);
  // The runtimes alive now (held by some session), by device ordinal.
  static std::vector<std::shared_ptr<CudaRuntime>> live();
  ~CudaRuntime() override;
  CudaRuntime(const CudaRuntime&) = delete;
  CudaRuntime& operator=(const CudaRuntime&) = delete;

  // Compute lanes (memory/device.h): each has its own stream, cuDNN/cuBLASLt handles, kernel
  // workspace and activation buffer, so the kernels of sessions on different lanes may overlap
  // while their issuing stays serialised by mutex(). Weights, the arena and the budget are shared.
  static constexpr int kLanes = 2;

  std::mutex& mutex() { return mutex_; }
  // Makes the handles of `lane` (lane 0's come with the runtime): kInvalidInput outside
  // [0, kLanes), or the failure of making them. Thread-safe; takes mutex() only the first time a
  // lane opens, so a session of an open lane may be made while its thread holds the device.
  Status open_lane(int lane);
  // Locks mutex() and makes this runtime's GPU the calling thread's current device, with `lane`
  // (an open lane, checked) the lane its work goes to: every entry that issues CUDA work (runs,
  // loads, frees) goes through it, so a thread that last used another GPU (--device cuda:0,1 runs
  // one part per GPU on its own threads) issues to the right one.
  std::unique_lock<std::mutex> enter(int lane = 0);
  memory::CudaDevice& device() { return *device_; }
  memory::DeviceArena& arena() { return *arena_; }
  memory::ResidencyManager& residency() { return *residency_; }
  cuda::CudaContext& context() { return current().context; }
  const memory::Budget& budget() const { return budget_; }

  // Budget, GPU-busy time, the host's issue times, arena peak and fragmentation, copies,
  // evictions, prefetch hits, per model.
  std::string memory_summary();
  // The model runs' time on the compute lanes since the runtime was created, and their number
  // (CudaExecutor times each with a memory::ComputeSpan: from its start mark before its input
  // copies to its end mark after its last kernel; waits on copies inside a run count). Summed
  // over the lanes, whose runs may overlap.
  struct GpuBusy {
    double seconds = 0;
    std::uint64_t runs = 0;
  };
  // The runs whose end mark has completed by now (each counted once).
  GpuBusy gpu_busy();
  // A run just issued, its end mark recorded: counted by gpu_busy() once that completed.
  void count_run_when_done(std::unique_ptr<memory::ComputeSpan> span, memory::DeviceEvent end);
  // The host's time issuing runs, summed since the runtime was created: what a run costs before
  // the GPU can start on it. Added by each run under mutex(). total: the whole issue (weights
  // acquired and prefetched, kernels launched or a CUDA graph launched); residency: of it, in the
  // residency manager (acquires, prefetches, evictions); capture: of it, capturing and
  // instantiating CUDA graphs; with the runs that launched a graph and those issued node by node.
  struct IssueTimes {
    double total_s = 0, residency_s = 0, capture_s = 0;
    std::uint64_t graph_runs = 0, node_runs = 0, captures = 0;
  };
  IssueTimes& issue_times() { return issue_times_; }

  // DeviceWork, for the sessions' own device work beside their runs (lane 0, the processors').
  std::unique_lock<std::mutex> hold() override { return enter(); }
  CUstream_st* stream() override { return device_->compute_stream(); }
  Result<DeviceBuffer> allocate(std::uint64_t bytes) override;
  Status upload(void* device, const void* host, HostRows rows) override;
  Result<std::unique_ptr<PendingDownload>> download_later(const void* device, std::uint64_t bytes) override;
  // Frees (stream-ordered) every lane's kernel workspace, activation buffer and weight ring, so
  // their bytes can serve weights or the caller's buffers, and returns the arena's empty segments
  // to the device (waiting for the work that used them); the next run allocates them again. Call
  // between runs.
  Status release_scratch() override;
  // The activation buffer of the current lane, which every executor's run on that lane uses (runs
  // are serialised by mutex()): at least `bytes`, grown on demand, kept between runs, so all models
  // of a lane together need only the largest plan and a captured CUDA graph finds it at the same
  // address. Work on the lane's stream may use it at once; a copy on another stream must wait for
  // record_compute() first. The lane's weight ring lies above the largest plan in the same
  // allocation, so growing either moves both.
  Result<memory::DevicePtr> activations(std::uint64_t bytes);
  // The current lane's weight ring for a model whose activation plan takes `activation_bytes`
  // (CudaExecutor: the weights of a model that does not fit stream through it): the lane's buffer
  // from the end of that plan (rounded up to memory::kRingAlignment) to its end, at least `ring_bytes` long, so
  // the part of a larger plan's activations this model leaves unused streams its weights too. The
  // buffer grows above the largest plan only by what such a ring lacks there. Kept and grown like
  // the activations, given back by release_scratch.
  struct Ring {
    std::uint64_t address = 0, offset = 0, bytes = 0;  // offset: from the buffer's base
  };
  Result<Ring> weight_ring(std::uint64_t activation_bytes, std::uint64_t ring_bytes);
  // The bytes the current lane's buffer would grow by for weight_ring(activation_bytes,
  // ring_bytes) (ring_bytes 0: for activations(activation_bytes)); 0 when it holds them now.
  std::uint64_t lane_growth(std::uint64_t activation_bytes, std::uint64_t ring_bytes);
  // That ring where the lane's buffer lies now, without growing it ({} when the buffer holds no
  // more than `activation_bytes`).
  Ring current_weight_ring(std::uint64_t activation_bytes);
  // Whether [address, address + bytes) overlaps the current lane's buffer as it lies now (a
  // run's outputs, which the next run's activations overwrite).
  bool in_lane_buffer(const void* address, std::uint64_t bytes);

  // Ring heads loaded ahead. A model that streams through the weight ring copies its first loads
  // (those into ring bytes nothing read yet that pass) outside its ring graph, which waits for
  // them; when the runtime expects it next (ran()), it copies them while the current run's kernels
  // execute, where they land above everything the current run uses. begin_run() at each run's
  // start, before its buffers are taken: a run other than the head's owner waits for those copies
  // (they may write bytes it uses) and the head is forgotten; then it records the run's start.
  void begin_run(const void* executor);
  // The current lane's event recorded by the last begin_run (the work before the current run).
  CUevent_st* run_start_event();
  // A head was loaded for `executor` into the current lane's buffer, its copies done at `done`
  // (an event of the executor's, valid until it withdraws).
  void note_ring_head(const void* executor, CUevent_st* done);
  // Whether the head noted for `executor` is still in the current lane's buffer (no other run
  // began and the buffer did not move since): true once, the executor's run then reads it.
  bool take_ring_head(const void* executor);
  // The most workspace the current lane's kernels used since the last call (a plain run's need).
  std::size_t take_workspace_used();
  // Before a CUDA graph is captured: the current lane's workspace grows back to `bytes` (what the
  // model's plain run used; release_scratch gives it back between turns), since nothing can be
  // allocated while capturing. kOutOfMemory when the budget has no room for it now.
  Status restore_workspace(std::size_t bytes);
  // The current lane's workspace address now (0 when none): part of what a CUDA graph bakes in.
  std::uint64_t workspace_address() { return current().workspace.address(); }
  // The lanes' kept buffers for a message: "lane 0: activations 80.4 MiB, weight ring 8.90 MiB,
  // workspace 18.0 MiB" (allocate()'s out-of-memory errors carry it).
  std::string describe_lane_buffers() const;

  // Next-model prefetch (memory/run_order.h). An executor enrolls the prefetch of its first
  // weights when made and withdraws before it goes; after issuing a run's kernels it calls ran():
  // the runtime learns which executor follows which on the current lane and starts the prefetch
  // of the one expected next, so its first weights copy while this run's kernels execute.
  // The prefetch gets the bytes of the lane's buffer the current run uses (from its base; every
  // byte when it streams through the weight ring), which a head loaded ahead must leave alone.
  void enroll(const void* executor, std::function<Status(std::uint64_t used_bytes)> prefetch_head);
  void withdraw(const void* executor);
  Status ran(const void* executor, std::uint64_t used_bytes);

 private:
  CudaRuntime() = default;
  Status init(const CudaRuntimeOptions& options);
  Result<void*> workspace(std::size_t bytes);
  Status make_lane(int lane);  // under mutex_

  std::mutex mutex_;
  memory::Budget budget_;
  std::unique_ptr<memory::CudaDevice> device_;
  std::unique_ptr<memory::DeviceArena> arena_;
  std::unique_ptr<memory::ResidencyManager> residency_;
  std::unique_ptr<cuda::ConvAlgoCache> conv_algos_;
  // A device buffer a lane keeps between runs, grown on demand.
  struct KeptBuffer {
    memory::ScopedAllocation allocation;
    std::uint64_t bytes = 0;
    Status reset() {  // stream-ordered: after the work issued so far
      bytes = 0;
      return allocation.reset();
    }
    std::uint64_t address() const { return bytes > 0 ? allocation.ptr().address : 0; }
  };
  Result<memory::DevicePtr> kept_buffer(KeptBuffer& buffer, std::uint64_t bytes);
  struct Lane {
    std::unique_ptr<cuda::CudaLibraries> libraries;  // bound to the lane's stream; null until opened
    std::unique_ptr<cuda::ConvGraphPlans> conv_plans;  // built for libraries' cuDNN handle
    cuda::CudaContext context;
    KeptBuffer workspace;
    KeptBuffer buffer;  // the activations, then the weight ring
    std::uint64_t activation_part = 0, ring_part = 0;  // the largest plan; above it, the most a ring lacked there
    std::size_t workspace_used = 0;  // the most workspace() gave since take_workspace_used()
    memory::CudaEvent run_start;     // begin_run's
    const void* head_owner = nullptr;  // whose ring head was loaded ahead into `buffer`
    CUevent_st* head_done = nullptr;   // its copies' end
  };
  // The current lane's parts for a plan of `activation_bytes` with a ring of `ring_bytes` above
  // it: the largest plan, and above it what any ring asked so far lacks below the buffer's end
  // (each part only grows).
  struct LaneParts {
    std::uint64_t activations = 0, ring = 0;
    std::uint64_t bytes() const { return memory::ring_aligned(activations) + ring; }  // the buffer's
  };
  LaneParts lane_parts(std::uint64_t activation_bytes, std::uint64_t ring_bytes);
  // The current lane's buffer with those parts.
  Result<memory::DevicePtr> lane_buffer(std::uint64_t activation_bytes, std::uint64_t ring_bytes);
  // The current lane's stream waits for a head loaded ahead, which is then forgotten.
  void settle_ring_head(Lane& lane);
  std::vector<Lane> lanes_;  // by lane
  std::array<std::atomic<bool>, kLanes> open_{};  // lanes_[i] has its handles
  Lane& current() { return lanes_[static_cast<std::size_t>(device_->compute_lane())]; }
  GpuBusy gpu_busy_;
  IssueTimes issue_times_;
  struct PendingSpan {
    std::unique_ptr<memory::ComputeSpan> span;
    memory::DeviceEvent end;
  };
  std::vector<PendingSpan> pending_spans_;
  std::shared_ptr<PinnedStaging> staging_;  // download_later's buffers; shared with the copies under way
  memory::RunOrder run_order_;
  std::map<const void*, std::function<Status(std::uint64_t)>> head_prefetches_;  // by executor
};

// "cuda:0 NVIDIA H100 80GB HBM3" per visible device; empty without a GPU or driver.
std::vector<std::string> cuda_device_names();

}  // namespace fswap
