#include "memory/stats.h"

#include <cstdio>

#include "memory/budget.h"

namespace fswap::memory {

namespace {
std::string counters_line(const ResidencyCounters& c) {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "H2D %s in %llu copies, D2H %s in %llu, evictions %llu (%s), acquires %llu: %llu resident, "
                "%llu prefetched, %llu late, %llu on demand; prefetches wasted %llu, skipped %llu; copy stall %.3f ms; "
                "resident %s now, %s at peak",
                format_bytes(c.h2d_bytes).c_str(), static_cast<unsigned long long>(c.h2d_copies),
                format_bytes(c.d2h_bytes).c_str(), static_cast<unsigned long long>(c.d2h_copies),
                static_cast<unsigned long long>(c.evictions), format_bytes(c.evicted_bytes).c_str(),
                static_cast<unsigned long long>(c.acquires), static_cast<unsigned long long>(c.resident_hits),
                static_cast<unsigned long long>(c.prefetch_hits), static_cast<unsigned long long>(c.prefetch_late),
                static_cast<unsigned long long>(c.prefetch_misses), static_cast<unsigned long long>(c.prefetches_wasted),
                static_cast<unsigned long long>(c.prefetches_skipped), c.stall_seconds * 1e3,
                format_bytes(c.resident_bytes).c_str(), format_bytes(c.peak_resident_bytes).c_str());
  std::string line = buf;
  if (c.ring_passes > 0)
    line += "; " + std::to_string(c.ring_passes) + " passes through a weight ring (" + format_bytes(c.ring_ahead_bytes) +
            " of their " + format_bytes(c.ring_h2d_bytes) + " copied during the run before)";
  if (c.managed_bytes > 0 || c.managed_prefetch_bytes > 0)
    line += "; unified: " + format_bytes(c.managed_bytes) + " managed, " + format_bytes(c.managed_prefetch_bytes) +
            " prefetched in " + std::to_string(c.managed_prefetches) + " prefetches";
  return line;
}
}  // namespace

std::string format_memory_summary(const MemoryStats& stats, const ArenaStats& a) {
  std::string out = "memory: " + counters_line(stats.total) + "\n";
  char buf[512];
  const double peak_share = a.cap_bytes == 0 ? 0.0 : 100.0 * static_cast<double>(a.peak_reserved_bytes) / static_cast<double>(a.cap_bytes);
  std::snprintf(buf, sizeof buf,
                "device arena: budget %s, peak reserved %s (%.0f%%), peak allocated %s, now %s allocated in %llu "
                "segments, %s cached in %llu free ranges (fragmentation %.0f%%), %llu budget / %llu device failures; "
                "%llu segments made and %llu returned in %.2f s\n",
                format_bytes(a.cap_bytes).c_str(), format_bytes(a.peak_reserved_bytes).c_str(), peak_share,
                format_bytes(a.peak_allocated_bytes).c_str(), format_bytes(a.allocated_bytes).c_str(),
                static_cast<unsigned long long>(a.segments), format_bytes(a.free_bytes).c_str(),
                static_cast<unsigned long long>(a.free_ranges), 100.0 * a.fragmentation(),
                static_cast<unsigned long long>(a.budget_failures), static_cast<unsigned long long>(a.device_failures),
                static_cast<unsigned long long>(a.segment_allocations), static_cast<unsigned long long>(a.segment_releases),
                a.segment_seconds);
  out += buf;
  for (const auto& [model, c] : stats.per_model) out += "  " + model + ": " + counters_line(c) + "\n";
  return out;
}

}  // namespace fswap::memory
