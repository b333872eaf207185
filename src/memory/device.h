// The narrow seam between the memory layer and a device: allocation, asynchronous copies on
// copy streams, and events that order copies against compute. The residency manager and the
// device arena talk only to this interface, so the whole memory logic runs on the CPU against
// SimulatedDevice (simulated_device.h); the CUDA implementation lives in a CUDA target.
//
//   SimulatedDevice dev({.capacity_bytes = 8ull << 30});
//   FSWAP_ASSIGN_OR_RETURN(DevicePtr p, dev.allocate(64 << 20));
//   FSWAP_ASSIGN_OR_RETURN(DeviceEvent copied, dev.copy_to_device(p, host, 64 << 20, HostMemoryKind::kPinned));
//   dev.compute_wait(copied);            // kernels issued from now on run after the copy
//   ... launch kernels reading p ...
//   DeviceEvent used = dev.record_compute();
//   FSWAP_RETURN_IF_ERROR(dev.wait(used));  // host blocks until the kernels finished
//   FSWAP_RETURN_IF_ERROR(dev.free(p));
//
// Streams: compute lanes, one host→device copy stream, one device→host copy stream
// (reference/memory.md lesson 8), so write-backs overlap prefetches and both overlap compute.
// Compute lanes are compute streams whose kernels may run at the same time (a frame's analysis
// beside the previous frame's swap): every compute call (record_compute, compute_wait,
// record_compute_timed, the stall figure) is about the current lane, lane 0 until
// set_compute_lane() picks another. Lanes share the copy streams and the memory; what orders work
// across them is the events callers keep (the residency manager keeps a block's last use on every
// lane, the arena tags freed ranges with the freeing lane's event).
// Thread-safety: a backend is used from one thread at a time (the GPU worker, or whoever holds
// the runtime's lock), which also picks the lane.
#pragma once

#include <compare>
#include <cstdint>
#include <span>
#include <string>

#include "core/status.h"

namespace fswap::memory {

// A device address. Opaque to the memory layer: never dereferenced on the host.
struct DevicePtr {
  std::uint64_t address = 0;  // 0 = null

  bool is_null() const { return address == 0; }
  DevicePtr offset(std::uint64_t bytes) const { return {address + bytes}; }
  auto operator<=>(const DevicePtr&) const = default;
};

// Completion marker of work issued on a stream (cudaEvent_t on CUDA). Cheap to copy.
// id 0 is the event that has always completed.
struct DeviceEvent {
  std::uint64_t id = 0;
  bool is_null() const { return id == 0; }
  auto operator<=>(const DeviceEvent&) const = default;
};

// Where a host buffer lives. Pinned copies run at ~54 GB/s on the H100 (PCIe Gen5), pageable
// ones at ~7.8 GB/s (GPU.md); pinning costs ~330 ms per GiB, so pin once and pool.
enum class HostMemoryKind { kPinned, kPageable };

class DeviceBackend {
 public:
  virtual ~DeviceBackend() = default;

  virtual std::string name() const = 0;
  // Bytes of device memory the card has in all / free now (cudaMemGetInfo).
  virtual std::uint64_t total_bytes() const = 0;
  virtual std::uint64_t free_bytes() const = 0;
  // Device bytes held for the live allocations of allocate(): their sum, or more where the device
  // maps memory in larger pieces (CudaDevice: each allocation rounded up to 2 MiB).
  virtual std::uint64_t held_bytes() const = 0;
  // An allocation of at least this many bytes is held in whole multiples of it (CudaDevice maps
  // 2 MiB units: a 65 MiB allocation holds 66 MiB); on a device whose smaller allocations may share
  // such a piece (the simulation can model one), the piece stays held while any of them lives.
  // 1 when allocations are held as asked.
  virtual std::uint64_t mapping_granularity() const = 0;

  // Device memory, aligned to at least 256 bytes. kOutOfMemory when the device refuses.
  // Called only by DeviceArena: everything else allocates through the arena.
  virtual Result<DevicePtr> allocate(std::uint64_t bytes) = 0;
  // `ptr` from allocate(). The caller guarantees no issued work still uses it (it has waited
  // for the events of that work). kInternal for a pointer allocate() did not return.
  virtual Status free(DevicePtr ptr) = 0;

  // Asynchronous copy on the host→device stream, started after every event in `after`.
  // `src` stays valid and unchanged until the returned event completes. A null `src` is allowed
  // only by backends that model cost without data (the simulation).
  virtual Result<DeviceEvent> copy_to_device(DevicePtr dst, const void* src, std::uint64_t bytes,
                                             HostMemoryKind src_kind,
                                             std::span<const DeviceEvent> after = {}) = 0;
  // Asynchronous copy on the device→host stream, started after every event in `after`.
  virtual Result<DeviceEvent> copy_to_host(void* dst, DevicePtr src, std::uint64_t bytes,
                                           HostMemoryKind dst_kind,
                                           std::span<const DeviceEvent> after = {}) = 0;

  // How many compute lanes there are (≥ 1), and which one compute calls use now.
  virtual int compute_lanes() const = 0;
  virtual int compute_lane() const = 0;
  // kInvalidInput outside [0, compute_lanes()).
  virtual Status set_compute_lane(int lane) = 0;

  // An event that completes when all compute issued so far on the current lane has completed.
  virtual DeviceEvent record_compute() = 0;
  // Compute issued from now on starts only after `event` (cudaStreamWaitEvent); the host does
  // not block. Time the compute stream spends idle because of it counts as copy stall.
  virtual void compute_wait(DeviceEvent event) = 0;

  // Non-blocking query.
  virtual bool is_done(DeviceEvent event) const = 0;
  // The host blocks until `event` has completed.
  virtual Status wait(DeviceEvent event) = 0;

  // Seconds on the backend's clock: virtual in the simulation, steady wall time on CUDA.
  virtual double now_seconds() const = 0;
  // Total seconds the compute stream has waited on copies through compute_wait (a real device
  // measures it with event pairs and may report it late; the simulation knows it exactly).
  virtual double compute_stall_seconds() const = 0;

  // Compute-stream timing (GPU-busy figures); ComputeSpan below is the way to use it.
  // record_compute_timed(): record_compute() whose event also keeps when it completed (CUDA: a
  // timing-enabled cudaEvent_t; record_compute's events skip timing to stay cheap). It serves as
  // any DeviceEvent does (wait, is_done, compute_wait, `after`). On an idle stream it completes
  // when recorded. The backend holds its timing until release_timed().
  virtual DeviceEvent record_compute_timed() = 0;
  // Seconds of the compute stream from `from` to `to`, both record_compute_timed() events,
  // recorded in that order, both complete (the host waited for `to`). It counts everything the
  // stream went through in between: kernels, waits on copies, gaps where the host issued nothing.
  // Never blocks: kInternal for an event that is not held timed, not complete yet, or recorded
  // after `to`.
  virtual Result<double> elapsed_seconds(DeviceEvent from, DeviceEvent to) const = 0;
  // Drops a timed event's timing. Afterwards the id may read as complete (CUDA forgets it, as it
  // does a retired event), so release only events nothing waits on any more. Unheld ids: no-op.
  virtual void release_timed(DeviceEvent event) = 0;
};

// The compute stream's time over a stretch of work (a model run): from when the compute issued
// before the span is done to when the compute issued inside it is.
//
//   ComputeSpan span(dev);                     // span.begin(): the start mark
//   ... copies, dev.compute_wait(copied), kernels ...
//   const DeviceEvent end = span.mark_end();
//   FSWAP_RETURN_IF_ERROR(dev.wait(end));
//   FSWAP_ASSIGN_OR_RETURN(double seconds, span.seconds());  // after the end completed: no sync
//
// Releases its events when destroyed, however the stretch ended. Not copyable; one thread.
class ComputeSpan {
 public:
  explicit ComputeSpan(DeviceBackend& device) : device_(device), begin_(device.record_compute_timed()) {}
  ~ComputeSpan() {
    device_.release_timed(begin_);
    device_.release_timed(end_);
  }
  ComputeSpan(const ComputeSpan&) = delete;
  ComputeSpan& operator=(const ComputeSpan&) = delete;

  DeviceEvent begin() const { return begin_; }
  // Records the end mark (once; the compute issued so far is inside the span).
  DeviceEvent mark_end() {
    FSWAP_CHECK(end_.is_null(), "ComputeSpan::mark_end called twice");
    end_ = device_.record_compute_timed();
    return end_;
  }
  // DeviceBackend::elapsed_seconds(begin(), end): kInternal before mark_end() or before the end completed.
  Result<double> seconds() const { return device_.elapsed_seconds(begin_, end_); }

 private:
  DeviceBackend& device_;
  DeviceEvent begin_, end_;
};

}  // namespace fswap::memory
