// Memory statistics: what the residency manager and the arena did, in one plain struct per model
// plus totals, and a printable summary for the CLI summary, `fswap bench` and /metrics.
//
//   const MemoryStats& s = manager.stats();
//   std::cout << format_memory_summary(s, arena.stats());
//   // memory: budget 4.00 GiB, peak 3.71 GiB (93%), H2D 12.4 GiB in 310 copies, D2H 0 B, ...
//
// Units: bytes and seconds (seconds on the device clock: virtual in the simulation).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "memory/device_arena.h"

namespace fswap::memory {

struct ResidencyCounters {
  std::uint64_t h2d_bytes = 0, h2d_copies = 0;   // host→device: loads and prefetches
  std::uint64_t d2h_bytes = 0, d2h_copies = 0;   // device→host: write-backs of device-written blocks
  std::uint64_t evictions = 0, evicted_bytes = 0;
  std::uint64_t acquires = 0;
  std::uint64_t resident_hits = 0;    // acquire found the block resident, not brought by a prefetch
  std::uint64_t prefetch_hits = 0;    // acquire of a prefetched block: compute did not wait for its copy
  std::uint64_t prefetch_late = 0;    // acquire of a prefetched block: compute waited for the rest of its copy
  std::uint64_t prefetch_misses = 0;  // acquire had to load the block on demand
  std::uint64_t prefetches_issued = 0, prefetches_skipped = 0;  // skipped: no room without hurting
  std::uint64_t prefetches_wasted = 0;  // prefetched, then evicted before any acquire
  double stall_seconds = 0;             // compute waited on copies in acquire()
  std::uint64_t ring_passes = 0;        // passes that streamed the weights through a weight ring
  std::uint64_t ring_h2d_bytes = 0;     // their copies (also in h2d_bytes, h2d_copies)
  std::uint64_t ring_ahead_bytes = 0;   // of those, copied while the run before executed (the rings' heads)
  std::uint64_t resident_bytes = 0, peak_resident_bytes = 0;
  // Unified mode: weights in managed memory (counted in the budget, never evicted), and the
  // bytes cudaMemPrefetchAsync moved to the device ahead of the kernels reading them.
  std::uint64_t managed_bytes = 0, managed_prefetch_bytes = 0, managed_prefetches = 0;
};

struct MemoryStats {
  ResidencyCounters total;
  std::map<std::string, ResidencyCounters> per_model;  // by owning model name
};

// Multi-line human summary: one line of totals, one of the arena, one per model.
std::string format_memory_summary(const MemoryStats& stats, const ArenaStats& arena);

}  // namespace fswap::memory
