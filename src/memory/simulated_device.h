// A deterministic model of a GPU for the memory layer's tests: a capacity, compute lanes and two
// copy streams (host→device, device→host) on a virtual clock, a copy-cost model and failure
// injection. Nothing is timed: every number is computed, so tests assert exact values.
//
//   SimulatedDevice dev({.capacity_bytes = 1ull << 30});
//   dev.fail_allocations_from(3);                      // the 3rd allocate() and all later ones fail
//   auto p = dev.allocate(1 << 20);
//   auto e = dev.copy_to_device(*p, nullptr, 1 << 20, HostMemoryKind::kPinned);
//   dev.compute_wait(*e);
//   auto done = dev.run_compute(2e-3, {{*p, 1 << 20}}); // fails if it would read before the copy ends
//   dev.synchronize();                                 // dev.now_seconds() == copy + 2 ms
//
// Timed events (record_compute_timed) complete at max(host time, compute tail) when recorded, so
// elapsed_seconds() is the exact virtual-clock difference of the two marks.
// Clock model: the host issues work instantly and only waits in wait()/synchronize(). Work on a
// stream starts at max(host time, the stream's tail, the events it waits on) and takes
//   compute: the given seconds;  copy: copy_latency_s + bytes / bandwidth(direction, host kind).
// Hazard checks (the memory manager's correctness, not the device's): a copy or a kernel that
// reads device bytes before the copy/kernel writing them finished, or overwrites bytes a kernel
// still reads, or a free() with work pending on the allocation, returns kInternal.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "memory/device.h"

namespace fswap::memory {

struct SimulatedDeviceOptions {
  std::uint64_t capacity_bytes = 80ull << 30;
  double h2d_pinned_bytes_per_s = 54.0e9;  // GPU.md: H100 PCIe Gen5, measured 54.2 GB/s
  double d2h_pinned_bytes_per_s = 54.0e9;  // measured 54.5 GB/s
  double pageable_bytes_per_s = 7.8e9;     // measured pageable host→device
  double copy_latency_s = 3e-6;            // from the 64 KiB row of reference/memory.md §0
  bool backing_store = false;              // keep real bytes so tests can check data round trips
  std::uint64_t alignment = 256;
  // held_bytes() counts an allocation of at least this many bytes in whole multiples of it, as
  // CUDA's pool does (smaller ones are held as asked); 0 = every allocation as asked.
  std::uint64_t mapping_granularity = 0;
  int compute_lanes = 1;  // compute streams, each with its own tail on the clock
};

// A byte range on the device, for run_compute's hazard checks.
struct DeviceRange {
  DevicePtr ptr;
  std::uint64_t bytes = 0;
};

class SimulatedDevice final : public DeviceBackend {
 public:
  explicit SimulatedDevice(SimulatedDeviceOptions options = {});

  std::string name() const override { return "simulated"; }
  std::uint64_t total_bytes() const override { return options_.capacity_bytes; }
  std::uint64_t free_bytes() const override { return options_.capacity_bytes - used_bytes_; }
  std::uint64_t held_bytes() const override { return used_bytes_; }
  std::uint64_t mapping_granularity() const override { return std::max<std::uint64_t>(options_.mapping_granularity, 1); }
  Result<DevicePtr> allocate(std::uint64_t bytes) override;
  Status free(DevicePtr ptr) override;
  Result<DeviceEvent> copy_to_device(DevicePtr dst, const void* src, std::uint64_t bytes,
                                     HostMemoryKind src_kind,
                                     std::span<const DeviceEvent> after = {}) override;
  Result<DeviceEvent> copy_to_host(void* dst, DevicePtr src, std::uint64_t bytes,
                                   HostMemoryKind dst_kind,
                                   std::span<const DeviceEvent> after = {}) override;
  int compute_lanes() const override { return static_cast<int>(compute_tails_.size()); }
  int compute_lane() const override { return lane_; }
  Status set_compute_lane(int lane) override;
  DeviceEvent record_compute() override;
  void compute_wait(DeviceEvent event) override;
  bool is_done(DeviceEvent event) const override;
  Status wait(DeviceEvent event) override;
  double now_seconds() const override { return host_now_; }
  double compute_stall_seconds() const override { return stall_s_; }
  DeviceEvent record_compute_timed() override;
  Result<double> elapsed_seconds(DeviceEvent from, DeviceEvent to) const override;
  void release_timed(DeviceEvent event) override { timed_.erase(event.id); }
  std::size_t timed_events_held() const { return timed_.size(); }

  // A kernel of `seconds` on the current compute lane that reads `reads` and writes `writes`.
  Result<DeviceEvent> run_compute(double seconds, std::span<const DeviceRange> reads = {},
                                  std::span<const DeviceRange> writes = {});
  // The host waits for every stream.
  void synchronize();
  // Seconds a copy of `bytes` takes on this device.
  double copy_seconds(std::uint64_t bytes, bool to_device, HostMemoryKind kind) const;

  // Failure injection, counted over allocate() calls since construction (1-based).
  void fail_allocation(int call);         // exactly that call fails
  void fail_allocations_from(int call);   // that call and every later one fail
  int allocation_calls() const { return allocation_calls_; }

  std::uint64_t used_bytes() const { return used_bytes_; }
  std::uint64_t peak_used_bytes() const { return peak_used_bytes_; }
  std::size_t live_allocations() const { return allocations_.size(); }
  std::uint64_t h2d_bytes() const { return h2d_bytes_; }
  std::uint64_t d2h_bytes() const { return d2h_bytes_; }
  double compute_busy_seconds() const { return compute_busy_s_; }

  // Backing-store access for tests (needs options.backing_store).
  Status read(DevicePtr src, void* dst, std::uint64_t bytes) const;

 private:
  struct Allocation {
    std::uint64_t bytes = 0;
    std::uint64_t held = 0;  // bytes, rounded to the mapping granularity
    std::vector<unsigned char> data;  // only with backing_store
  };
  // A range last written by a copy or kernel: when the write ends, until when kernels read it.
  struct Written {
    std::uint64_t bytes = 0;
    double ready_s = 0;
    double read_until_s = 0;
  };

  Result<std::map<std::uint64_t, Allocation>::iterator> find(DevicePtr p, std::uint64_t bytes, const char* what);
  double start_after(double stream_tail, std::span<const DeviceEvent> after) const;
  DeviceEvent new_event(double end_s);
  Status check_read(std::uint64_t addr, std::uint64_t bytes, double start_s, const char* what);
  void mark_read(std::uint64_t addr, std::uint64_t bytes, double end_s);
  Status record_write(std::uint64_t addr, std::uint64_t bytes, double start_s, double end_s, const char* what);

  SimulatedDeviceOptions options_;
  std::map<std::uint64_t, Allocation> allocations_;  // by base address
  std::map<std::uint64_t, Written> written_;         // by start address, non-overlapping
  std::vector<double> event_end_s_{0.0};             // by event id
  std::set<std::uint64_t> timed_;                    // ids of the timed events held
  std::uint64_t next_address_ = 1ull << 32;
  std::uint64_t used_bytes_ = 0, peak_used_bytes_ = 0, h2d_bytes_ = 0, d2h_bytes_ = 0;
  int allocation_calls_ = 0, fail_call_ = 0, fail_from_call_ = 0;
  double host_now_ = 0, h2d_tail_ = 0, d2h_tail_ = 0;
  std::vector<double> compute_tails_;  // by lane
  int lane_ = 0;
  double& compute_tail() { return compute_tails_[static_cast<std::size_t>(lane_)]; }
  double stall_s_ = 0, compute_busy_s_ = 0;
};

}  // namespace fswap::memory
