// DeviceArena: every device byte fswap uses goes through it. It reserves segments from the
// device, carves allocations out of them best-fit, keeps freed ranges cached for reuse (stream
// ordered, as cudaMallocAsync's pool would) and never holds more than the budget from the device.
// Three pools: requests below small_limit share small segments and are served only from them
// (as in PyTorch's caching allocator); larger requests get segments of their own and are served
// only from large segments' free ranges; scratch (activation buffers, kernel workspaces, which
// live long and change size) only from scratch segments. So a small weight chunk never splits the
// hole an evicted large one left, a workspace never pins part of a weight segment, and a budget a
// few layers wide does not fail on fragmentation. Within the large and scratch pools, a cached
// range over four times a request stays whole while the request's own segment fits the budget
// (a face region's buffer does not split the hole an enhancer's activations left). Only when a
// request would otherwise be refused (no room for a segment of its pool) is it carved from
// another pool's cached range.
// Device memory held outside the arena (managed memory for unified mode) counts against the same
// cap through charge()/uncharge().
//
//   DeviceArena arena(device, {.cap_bytes = budget.bytes});
//   FSWAP_ASSIGN_OR_RETURN(DeviceAllocation a, arena.allocate(64 << 20));
//   // The bytes may have been freed by work still in flight: order the first use after it.
//   device.copy_to_device(a.ptr, host, 64 << 20, HostMemoryKind::kPinned, a.ready_after);
//   ...
//   FSWAP_RETURN_IF_ERROR(arena.free(a.ptr, {device.record_compute()}));  // reusable after the kernels
//
// Stream-ordered semantics: free(ptr, after) returns the range at once, tagged with the events
// of the work still using it; whoever reuses it gets those events in ready_after and must make
// its first access wait on them (copy `after`, compute_wait). Only returning a segment to the
// device (release_cached) waits for them on the host.
// Accounting: reserved = bytes held from the device (≤ cap, always); allocated = bytes handed out
// (rounded to the alignment); reserved − allocated = cached free bytes.
// Failures are clean: kOutOfMemory, nothing reserved on the failed call stays allocated, and
// last_failure() tells a budget shortfall (evicting something helps) from a device refusal.
// Thread-safety: none; one arena per device, used by the GPU worker thread.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "memory/device.h"

namespace fswap::memory {

struct ArenaOptions {
  std::uint64_t cap_bytes = 0;                // the budget; 0 = the device's total
  std::uint64_t alignment = 256;              // every allocation is rounded up to this
  std::uint64_t small_limit = 1ull << 20;     // requests below this share segments...
  std::uint64_t small_segment_bytes = 32ull << 20;  // ...of this size
  std::uint64_t granularity = 2ull << 20;     // larger requests get a segment rounded up to this
};

struct AllocateOptions {
  // When a new segment does not fit the cap, the cached segments go back to the device after the
  // host waits for the work still using them; with may_block false (a prefetch: the host must not
  // wait) only those whose work has finished.
  bool may_block = true;
  bool scratch = false;  // served from scratch segments only (see above)
};

struct DeviceAllocation {
  DevicePtr ptr;
  std::uint64_t bytes = 0;                    // as requested
  std::vector<DeviceEvent> ready_after;       // first use must wait on these (stream-ordered reuse)
};

enum class ArenaFailure { kNone, kBudget, kDevice };

struct ArenaStats {
  std::uint64_t cap_bytes = 0;
  // reserved: held from the device by the arena; peak_reserved counts charged bytes too.
  std::uint64_t reserved_bytes = 0, peak_reserved_bytes = 0;
  std::uint64_t charged_bytes = 0;  // held outside the arena, within the cap (charge())
  std::uint64_t allocated_bytes = 0, peak_allocated_bytes = 0;
  std::uint64_t live_allocations = 0;
  std::uint64_t allocate_calls = 0, reused_allocations = 0;  // reused: served from cached ranges
  std::uint64_t budget_failures = 0, device_failures = 0;
  std::uint64_t segments = 0, segment_allocations = 0, segment_releases = 0;
  // Host seconds spent reserving segments from the device and returning them (waits for the work
  // still using a returned one included): what changing allocation sizes cost the caller.
  double segment_seconds = 0;
  std::uint64_t free_ranges = 0, free_bytes = 0, largest_free_range = 0;
  // 1 − largest free range / free bytes: 0 when the cached bytes are one hole (or none).
  double fragmentation() const {
    return free_bytes == 0 ? 0.0 : 1.0 - static_cast<double>(largest_free_range) / static_cast<double>(free_bytes);
  }
};

class DeviceArena {
 public:
  DeviceArena(DeviceBackend& device, ArenaOptions options);
  // Waits for pending work and returns every segment to the device. Live allocations at this
  // point are a bug of the caller and are logged.
  ~DeviceArena();
  DeviceArena(const DeviceArena&) = delete;
  DeviceArena& operator=(const DeviceArena&) = delete;

  // kInvalidInput for 0 bytes; kOutOfMemory when the budget or the device cannot supply it.
  Result<DeviceAllocation> allocate(std::uint64_t bytes, AllocateOptions options = {});
  // `ptr` from allocate(); `after`: events of work still using it. kInternal for an unknown ptr.
  Status free(DevicePtr ptr, std::span<const DeviceEvent> after = {});
  // Returns fully free segments to the device (call at model or stage switches; cudaMemPoolTrimTo),
  // waiting for the work still using them; with wait = false only those whose work has finished.
  Status release_cached(bool wait = true);
  // Counts `bytes` held outside the arena against the cap (returning cached segments if that
  // makes room). kOutOfMemory, with last_failure() kBudget, when the cap cannot take them.
  Status charge(std::uint64_t bytes);
  void uncharge(std::uint64_t bytes);

  std::uint64_t cap_bytes() const { return options_.cap_bytes; }
  std::uint64_t reserved_bytes() const { return reserved_; }
  std::uint64_t charged_bytes() const { return charged_; }
  std::uint64_t allocated_bytes() const { return allocated_; }
  ArenaFailure last_failure() const { return last_failure_; }
  ArenaStats stats() const;
  DeviceBackend& device() { return device_; }

 private:
  struct Range {
    std::uint64_t bytes = 0;
    std::uint64_t segment = 0;  // base address of its segment
    bool free = true;
    std::vector<DeviceEvent> after;
  };
  enum class Pool { kSmall, kLarge, kScratch };
  struct Segment {
    std::uint64_t bytes = 0;
    std::uint64_t used = 0;
    Pool pool = Pool::kLarge;  // the requests it serves
  };
  using FreeSet = std::set<std::pair<std::uint64_t, std::uint64_t>>;  // (bytes, address) of free ranges

  Result<DeviceAllocation> carve(std::map<std::uint64_t, Range>::iterator range, std::uint64_t size, std::uint64_t requested);
  // A new segment, counted in reserved_. kOutOfMemory when the device refuses it, or (over_cap
  // set) when the device would then hold more than the cap: its pieces are coarser than the
  // segments, and a freed segment's share of a piece stays held while a neighbour lives.
  Status reserve_segment(std::uint64_t size, Pool pool, bool& over_cap);
  FreeSet& free_set(Pool pool) { return pool == Pool::kSmall ? free_small_ : pool == Pool::kLarge ? free_large_ : free_scratch_; }
  FreeSet& pool_of(const Range& range) { return free_set(segments_.at(range.segment).pool); }
  void insert_free(std::uint64_t address, Range range);
  void prune(std::vector<DeviceEvent>& events) const;

  DeviceBackend& device_;
  ArenaOptions options_;
  std::map<std::uint64_t, Segment> segments_;                      // by base address
  std::map<std::uint64_t, Range> ranges_;                          // by address; tile each segment
  FreeSet free_small_, free_large_, free_scratch_;                  // by segment pool
  std::uint64_t reserved_ = 0, allocated_ = 0, charged_ = 0;
  ArenaFailure last_failure_ = ArenaFailure::kNone;
  mutable ArenaStats counters_;  // the monotonic counters; the rest is computed in stats()
};

// Owns one arena allocation; frees it when destroyed (or on reset()), ordered after all compute
// issued by then, so early returns on error paths leak nothing.
//
//   FSWAP_ASSIGN_OR_RETURN(DeviceAllocation a, manager.allocate_scratch(bytes));
//   ScopedAllocation act(arena, std::move(a));
//   FSWAP_RETURN_IF_ERROR(run(act.ptr()));   // freed on every path
class ScopedAllocation {
 public:
  ScopedAllocation() = default;
  ScopedAllocation(DeviceArena& arena, DeviceAllocation allocation) : arena_(&arena), allocation_(std::move(allocation)) {}
  ~ScopedAllocation() { (void)reset(); }
  ScopedAllocation(ScopedAllocation&& o) noexcept : arena_(o.arena_), allocation_(std::move(o.allocation_)) { o.arena_ = nullptr; }
  ScopedAllocation& operator=(ScopedAllocation&& o) noexcept {
    if (this != &o) {
      (void)reset();
      arena_ = o.arena_;
      allocation_ = std::move(o.allocation_);
      o.arena_ = nullptr;
    }
    return *this;
  }
  ScopedAllocation(const ScopedAllocation&) = delete;
  ScopedAllocation& operator=(const ScopedAllocation&) = delete;

  DevicePtr ptr() const { return allocation_.ptr; }
  const DeviceAllocation& get() const { return allocation_; }
  // Frees now (after the compute issued so far). A no-op when empty.
  Status reset() {
    if (arena_ == nullptr) return Status::ok();
    DeviceArena* arena = arena_;
    arena_ = nullptr;
    const DeviceEvent done = arena->device().record_compute();
    return arena->free(allocation_.ptr, {&done, 1});
  }

 private:
  DeviceArena* arena_ = nullptr;
  DeviceAllocation allocation_;
};

}  // namespace fswap::memory
