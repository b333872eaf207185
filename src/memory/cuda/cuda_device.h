// CudaDevice: the DeviceBackend on the CUDA runtime. Device memory is mapped by the driver's
// virtual memory calls (cuMemCreate + cuMemMap) in whole units of the card's allocation
// granularity (2 MiB on the H100), one mapping per allocate(), unmapped by free(): the card then
// holds exactly the live allocations rounded to 2 MiB. cudaMallocAsync's pool was used before and
// dropped: it maps 32 MiB pieces that neighbouring allocations share, so a budget of a few hundred
// MiB lost up to a piece per segment (docs/BENCHMARKS.md, session 10). Mapping costs 0.1–1 ms, so
// the arena (device_arena.h) caches what it frees and calls free() only under pressure or at model
// switches. Copies run on their own streams; DeviceEvents are pooled cudaEvent_t.
//
//   FSWAP_ASSIGN_OR_RETURN(std::unique_ptr<CudaDevice> dev, CudaDevice::create());
//   DeviceArena arena(*dev, {.cap_bytes = 4ull << 30});
//   FSWAP_ASSIGN_OR_RETURN(PinnedHostPool pinned, PinnedHostPool::create(1ull << 30));  // pins once
//   FSWAP_ASSIGN_OR_RETURN(void* host, pinned.allocate(64 << 20));
//   ResidencyManager rm(arena);   // ...as with SimulatedDevice
//
// Streams: one per compute lane, host→device, device→host (non-blocking streams: they never
// synchronise with the legacy default stream). Kernels of other targets run on compute_stream(),
// the current lane's. A new allocation is mapped when allocate() returns, so every stream may use it.
// Events: a DeviceEvent id names a recording; ids are never reused. The cudaEvent_t behind an id
// goes back to the pool once the event is seen complete, after which the id reads as done.
// Timed events (record_compute_timed) come from a second pool of timing-enabled events and stay
// held, complete or not, until release_timed() returns them to it.
// Errors: every CUDA call is checked; a failure becomes a Status naming the call, file and line
// (kOutOfMemory for cudaErrorMemoryAllocation, kInternal otherwise).
// Thread-safety: one thread (the GPU worker), like every DeviceBackend.
// This header needs no CUDA headers: the CUDA handle types are declared opaquely below.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "memory/device.h"

struct CUstream_st;
struct CUevent_st;

namespace fswap::memory {

// Turns a cudaError_t (as int, so this header stays CUDA-free) into a Status:
// "<call> failed at <file>:<line>: <cudaGetErrorName>: <cudaGetErrorString>". ok for 0.
// Also clears the runtime's last-error state for non-sticky errors.
Status cuda_status(int error, const char* call, const char* file, int line);

// CUDA_CHECK(cudaMemcpyAsync(...)): returns the Status of a failed call from the enclosing
// function (which returns Status or Result<T>).
#define FSWAP_CUDA_CHECK(call) \
  FSWAP_RETURN_IF_ERROR(::fswap::memory::cuda_status(static_cast<int>(call), #call, __FILE__, __LINE__))

namespace cuda_detail {
struct StreamDeleter { void operator()(CUstream_st* s) const; };
struct EventDeleter { void operator()(CUevent_st* e) const; };
struct PinnedDeleter { void operator()(void* p) const; };
}  // namespace cuda_detail
using CudaStream = std::unique_ptr<CUstream_st, cuda_detail::StreamDeleter>;
using CudaEvent = std::unique_ptr<CUevent_st, cuda_detail::EventDeleter>;
using PinnedHostPtr = std::unique_ptr<void, cuda_detail::PinnedDeleter>;  // cudaFreeHost

struct CudaDeviceOptions {
  int device = 0;                 // CUDA device ordinal
  // Compute streams (device.h: compute lanes). Lanes after the first run at the device's highest
  // stream priority: the face analysis's short kernels there go ahead of the processors' long
  // ones on lane 0 instead of waiting for SMs behind them.
  int compute_lanes = 1;
};

class CudaDevice final : public DeviceBackend {
 public:
  // Selects the device, finds the driver's virtual memory calls, creates the streams.
  // kUnsupported when there is no CUDA device (or no driver, or one without virtual memory
  // management); kInternal for other failures.
  static Result<std::unique_ptr<CudaDevice>> create(CudaDeviceOptions options = {});
  // Synchronises the streams; frees allocations still live (logging them).
  ~CudaDevice() override;
  CudaDevice(const CudaDevice&) = delete;
  CudaDevice& operator=(const CudaDevice&) = delete;

  std::string name() const override;   // "cuda:0 NVIDIA H100 80GB HBM3"
  std::uint64_t total_bytes() const override;  // cudaMemGetInfo, device-wide
  std::uint64_t free_bytes() const override;   // cudaMemGetInfo, device-wide (other processes too)
  // The live allocations, each rounded up to the mapping granularity.
  std::uint64_t held_bytes() const override { return held_; }
  // The driver's recommended allocation granularity for device memory (2 MiB on the H100).
  std::uint64_t mapping_granularity() const override { return mapping_granularity_; }
  // Maps new device memory (blocks the host for the mapping, 0.1–1 ms). kOutOfMemory when the
  // card has too little free, naming the driver call.
  Result<DevicePtr> allocate(std::uint64_t bytes) override;
  Status free(DevicePtr ptr) override;  // unmaps: the bytes go back to the driver at once
  Result<DeviceEvent> copy_to_device(DevicePtr dst, const void* src, std::uint64_t bytes, HostMemoryKind src_kind,
                                     std::span<const DeviceEvent> after = {}) override;
  Result<DeviceEvent> copy_to_host(void* dst, DevicePtr src, std::uint64_t bytes, HostMemoryKind dst_kind,
                                   std::span<const DeviceEvent> after = {}) override;
  int compute_lanes() const override { return static_cast<int>(lanes_.size()); }
  int compute_lane() const override { return lane_; }
  Status set_compute_lane(int lane) override;
  DeviceEvent record_compute() override;
  void compute_wait(DeviceEvent event) override;
  bool is_done(DeviceEvent event) const override;
  Status wait(DeviceEvent event) override;
  double now_seconds() const override;  // steady clock since construction
  // Measured with a timing-event pair around each compute_wait on an unfinished event. Pairs are
  // read in wait() and synchronize() (host-blocking points), never here or in compute_wait(), so the
  // figure lags the work in flight: a stall shows up after the next host wait, not at the acquire
  // that caused it (ResidencyManager then counts that prefetch as a hit).
  double compute_stall_seconds() const override;
  DeviceEvent record_compute_timed() override;
  // cudaEventElapsedTime (about 0.5 µs resolution).
  Result<double> elapsed_seconds(DeviceEvent from, DeviceEvent to) const override;
  void release_timed(DeviceEvent event) override;
  std::size_t timed_events_held() const { return timed_events_.size(); }

  // The host waits for every stream.
  Status synchronize();
  // Seconds the host spent blocked in wait() (eviction and segment release waiting for work,
  // result downloads): time it could not spend issuing work ahead of the GPU.
  double host_wait_seconds() const { return host_wait_s_; }
  // Seconds the host spent in allocate() and free(), mapping and unmapping the arena's segments
  // (0.1–1 ms a map, GPU.md), so a steady state that keeps trading segments pays it per pass.
  double mapping_seconds() const { return mapping_s_; }
  // Unified mode (managed memory for read-only weights). allocate_managed: cudaMallocManaged,
  // refused with kOutOfMemory unless the card has `bytes` plus a 256 MiB margin free now: asking
  // for more managed memory than the card has free can hang a shared GPU (GPU.md). The caller
  // fills it from the host, then advise_read_mostly() marks it read-mostly with the device as the
  // preferred location; prefetch_managed() starts its migration on the host→device stream.
  Result<void*> allocate_managed(std::uint64_t bytes);
  Status free_managed(void* ptr);
  Status advise_read_mostly(const void* ptr, std::uint64_t bytes);
  Result<DeviceEvent> prefetch_managed(const void* ptr, std::uint64_t bytes);
  std::uint64_t managed_bytes() const { return managed_bytes_; }

  // Failure injection, counted over allocate() calls since construction (1-based), as in
  // SimulatedDevice: the injected failure is kOutOfMemory and allocates nothing.
  void fail_allocation(int call);
  void fail_allocations_from(int call);
  int allocation_calls() const { return allocation_calls_; }
  std::size_t live_allocations() const { return allocations_.size(); }
  std::size_t events_created() const { return events_created_; }  // cudaEvent_t made so far (pool size)

  int ordinal() const { return options_.device; }
  // Makes this GPU the calling thread's current device (cudaSetDevice; cheap when it already is).
  void make_current() const;
  CUstream_st* compute_stream() const { return lanes_[static_cast<std::size_t>(lane_)].get(); }
  CUstream_st* h2d_stream() const { return h2d_.get(); }
  CUstream_st* d2h_stream() const { return d2h_.get(); }

 private:
  explicit CudaDevice(CudaDeviceOptions options);
  Status init();
  // Records a pooled event on `stream` and returns its new id; a `timed` one comes from the timed
  // pool and is held in timed_events_.
  Result<DeviceEvent> record_on(CUstream_st* stream, bool timed = false);
  Status wait_all(CUstream_st* stream, std::span<const DeviceEvent> after);
  // The lanes' streams, then host→device and device→host.
  std::vector<CudaStream*> all_streams();
  CUevent_st* live_event(DeviceEvent event) const;  // null when known complete (or a released timed event)
  void retire(DeviceEvent event) const;            // event complete: its cudaEvent_t back to the pool
  void sweep() const;                               // retires every completed event
  void harvest_stalls() const;

  CudaDeviceOptions options_;
  std::string name_;
  std::uint64_t total_bytes_ = 0;
  struct DriverMemory;                    // the driver's virtual memory calls (cuda_device.cc)
  std::unique_ptr<DriverMemory> driver_;
  std::uint64_t mapping_granularity_ = 2ull << 20;
  std::vector<CudaStream> lanes_;  // compute streams, by lane
  int lane_ = 0;
  CudaStream h2d_, d2h_;
  std::map<std::uint64_t, std::uint64_t> allocations_;  // address → mapped bytes
  std::uint64_t held_ = 0;                              // their sum
  std::map<const void*, std::uint64_t> managed_;        // managed allocations → bytes
  std::uint64_t managed_bytes_ = 0;

  mutable std::vector<CudaEvent> free_events_;            // completed, ready for reuse
  mutable std::map<std::uint64_t, CudaEvent> live_events_;  // id → event not yet seen complete
  std::vector<CudaEvent> free_timed_events_;                  // timing enabled, released
  std::map<std::uint64_t, CudaEvent> timed_events_;           // id → timed event held
  std::uint64_t next_event_id_ = 1;
  std::size_t events_created_ = 0;
  std::size_t sweep_at_ = 64;

  struct StallPair { CudaEvent begin, end; };
  mutable std::vector<StallPair> pending_stalls_;
  mutable std::vector<StallPair> free_stall_pairs_;
  mutable double stall_s_ = 0;
  double host_wait_s_ = 0;
  double mapping_s_ = 0;

  int allocation_calls_ = 0, fail_call_ = 0, fail_from_call_ = 0;
  double start_s_ = 0;
};

// Pinned host memory, pinned once (cudaHostAlloc costs ~330 ms per GiB) and carved first-fit
// into 256-byte-aligned buffers. Not thread-safe. The pool must outlive the copies using it.
class PinnedHostPool {
 public:
  static Result<PinnedHostPool> create(std::uint64_t capacity_bytes);
  PinnedHostPool(PinnedHostPool&&) = default;
  PinnedHostPool& operator=(PinnedHostPool&&) = default;

  // kOutOfMemory when no free range holds `bytes`.
  Result<void*> allocate(std::uint64_t bytes);
  // kInternal for a pointer allocate() did not return.
  Status free(void* ptr);
  std::uint64_t capacity_bytes() const { return capacity_; }
  std::uint64_t allocated_bytes() const { return allocated_; }

 private:
  PinnedHostPool(PinnedHostPtr base, std::uint64_t capacity);
  PinnedHostPtr base_;
  std::uint64_t capacity_ = 0, allocated_ = 0;
  std::map<std::uint64_t, std::uint64_t> free_;  // offset → bytes, coalesced
  std::map<std::uint64_t, std::uint64_t> used_;  // offset → bytes
};

}  // namespace fswap::memory
