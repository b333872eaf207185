#include "memory/device_arena.h"

#include <algorithm>

#include "core/log.h"
#include "core/time_ledger.h"
#include "memory/budget.h"

namespace fswap::memory {

namespace {
std::uint64_t round_up(std::uint64_t v, std::uint64_t to) { return (v + to - 1) / to * to; }
// A cached range over this many times a (large or scratch) request is kept whole while the
// request's own segment fits the budget (allocate()).
constexpr std::uint64_t kMaxSplit = 4;
}  // namespace

DeviceArena::DeviceArena(DeviceBackend& device, ArenaOptions options) : device_(device), options_(options) {
  if (options_.cap_bytes == 0) options_.cap_bytes = device.total_bytes();
  if (options_.alignment == 0) options_.alignment = 256;
  options_.granularity = round_up(std::max<std::uint64_t>(options_.granularity, 1), options_.alignment);
  options_.small_segment_bytes = round_up(std::max<std::uint64_t>(options_.small_segment_bytes, 1), options_.alignment);
  counters_.cap_bytes = options_.cap_bytes;
}

DeviceArena::~DeviceArena() {
  if (allocated_ > 0)
    log_warn("device arena destroyed with " + format_bytes(allocated_) + " still allocated; returning it to the device");
  for (auto& [address, range] : ranges_)
    for (DeviceEvent e : range.after) (void)device_.wait(e);
  for (auto& [base, segment] : segments_) (void)device_.free({base});
}

void DeviceArena::prune(std::vector<DeviceEvent>& events) const {
  std::sort(events.begin(), events.end());
  events.erase(std::unique(events.begin(), events.end()), events.end());
  std::erase_if(events, [&](DeviceEvent e) { return e.is_null() || device_.is_done(e); });
}

void DeviceArena::insert_free(std::uint64_t address, Range range) {
  range.free = true;
  prune(range.after);
  pool_of(range).insert({range.bytes, address});
  ranges_[address] = std::move(range);
}

Result<DeviceAllocation> DeviceArena::allocate(std::uint64_t bytes, AllocateOptions how) {
  ++counters_.allocate_calls;
  last_failure_ = ArenaFailure::kNone;
  if (bytes == 0) return invalid_input("device arena: allocation of 0 bytes");
  const std::uint64_t size = round_up(bytes, options_.alignment);
  const bool small = !how.scratch && size < options_.small_limit;
  const Pool kind = how.scratch ? Pool::kScratch : small ? Pool::kSmall : Pool::kLarge;
  FreeSet& pool = free_set(kind);

  // Segments are whole pieces of what the device maps at a time: the slack of a piece then serves
  // later requests instead of hiding in the device's pool, no two segments share a piece (one
  // freed would strand the piece, held by the card, outside the arena's count), and the arena's
  // reserved bytes are what the card holds.
  const std::uint64_t g = device_.mapping_granularity();
  const auto mapped = [&](std::uint64_t c) { return round_up(c, g); };
  const std::uint64_t preferred = small ? options_.small_segment_bytes : round_up(size, options_.granularity);
  const std::uint64_t candidates[] = {mapped(std::max(preferred, size)), mapped(round_up(size, options_.granularity)),
                                      mapped(size)};

  // Best fit among the pool's cached ranges: the smallest that holds the request (lowest address
  // on ties). Outside the small pool, a range over kMaxSplit times the request is kept whole for a
  // request of its size while a segment of the request's own fits the budget: a region's few MiB
  // carved from the hole a 4K enhancer's activations left would keep that segment from going back
  // to the device, and then 80 MiB found no room in a budget of 141 (docs/BENCHMARKS.md).
  std::uint64_t kept_whole = 0;  // the address of a range kept whole, 0 if none
  if (auto fit = pool.lower_bound({size, 0}); fit != pool.end()) {
    if (small || fit->first <= kMaxSplit * size || reserved_ + charged_ + candidates[0] > options_.cap_bytes) {
      ++counters_.reused_allocations;
      return carve(ranges_.find(fit->second), size, bytes);
    }
    kept_whole = fit->second;
  }

  // A new segment: the preferred size, else smaller ones, else after returning cached segments.
  std::uint64_t chosen = 0;
  for (int attempt = 0; attempt < 2 && chosen == 0; ++attempt) {
    for (std::uint64_t c : candidates)
      if (reserved_ + charged_ + c <= options_.cap_bytes) {
        chosen = c;
        break;
      }
    if (chosen == 0 && attempt == 0) FSWAP_RETURN_IF_ERROR(release_cached(/*wait=*/how.may_block));
  }
  if (chosen == 0) {
    // The last resort before refusing: another pool's cached range. The pools keep holes apart
    // against fragmentation, not at the price of a failure (a freed 4K frame's scratch range can
    // hold the weight chunk a budget has no segment left for).
    for (Pool other : {Pool::kLarge, Pool::kScratch, Pool::kSmall}) {
      if (other == kind) continue;
      FreeSet& set = free_set(other);
      if (auto fit = set.lower_bound({size, 0}); fit != set.end()) {
        ++counters_.reused_allocations;
        return carve(ranges_.find(fit->second), size, bytes);
      }
    }
    ++counters_.budget_failures;
    last_failure_ = ArenaFailure::kBudget;
    const ArenaStats s = stats();
    return out_of_memory("device arena: " + format_bytes(bytes) + " does not fit the " + format_bytes(options_.cap_bytes) +
                         " budget: " + format_bytes(allocated_) + " allocated, " +
                         (charged_ > 0 ? format_bytes(charged_) + " held outside the arena, " : std::string()) +
                         format_bytes(s.free_bytes) + " cached in " + std::to_string(s.free_ranges) +
                         " free ranges (largest " + format_bytes(s.largest_free_range) + ")");
  }
  bool over_cap = false;
  Status reserved = reserve_segment(chosen, kind, over_cap);
  if (!reserved.is_ok() && kept_whole != 0) {  // the device holds more than the arena's count
    ++counters_.reused_allocations;
    return carve(ranges_.find(kept_whole), size, bytes);
  }
  if (!reserved.is_ok() && reserved.code() == StatusCode::kOutOfMemory && !segments_.empty()) {
    FSWAP_RETURN_IF_ERROR(release_cached());  // the device may just be short of what we cache
    reserved = reserve_segment(chosen, kind, over_cap);
  }
  if (!reserved.is_ok() && over_cap) {
    ++counters_.budget_failures;
    last_failure_ = ArenaFailure::kBudget;
    return Status(reserved.code(), "device arena: " + format_bytes(bytes) + " does not fit the " +
                                       format_bytes(options_.cap_bytes) + " budget: " + reserved.message());
  }
  if (!reserved.is_ok()) {
    ++counters_.device_failures;
    last_failure_ = ArenaFailure::kDevice;
    return Status(reserved.code(), "device arena: the device refused " + format_bytes(chosen) + " within the " +
                                       format_bytes(options_.cap_bytes) + " budget (" + reserved.message() +
                                       "); lower --vram-budget or free device memory");
  }
  auto fit = pool.lower_bound({size, 0});
  return carve(ranges_.find(fit->second), size, bytes);
}

Status DeviceArena::reserve_segment(std::uint64_t size, Pool pool, bool& over_cap) {
  over_cap = false;
  const ScopedSeconds timed(counters_.segment_seconds);
  FSWAP_ASSIGN_OR_RETURN(DevicePtr base, device_.allocate(size));
  if (const std::uint64_t held = device_.held_bytes(); held + charged_ > options_.cap_bytes) {
    FSWAP_RETURN_IF_ERROR(device_.free(base));
    over_cap = true;
    return out_of_memory("the device would hold " + format_bytes(held + charged_) + " with a new " + format_bytes(size) +
                         " segment (" + format_bytes(reserved_) + " in " + std::to_string(segments_.size()) +
                         " segments before it: the device maps memory in coarser pieces)");
  }
  segments_[base.address] = Segment{size, 0, pool};
  reserved_ += size;
  ++counters_.segment_allocations;
  counters_.peak_reserved_bytes = std::max(counters_.peak_reserved_bytes, reserved_ + charged_);
  insert_free(base.address, Range{size, base.address, true, {}});
  return Status::ok();
}

Result<DeviceAllocation> DeviceArena::carve(std::map<std::uint64_t, Range>::iterator it, std::uint64_t size,
                                            std::uint64_t requested) {
  const std::uint64_t address = it->first;
  Range& r = it->second;
  pool_of(r).erase({r.bytes, address});
  if (r.bytes > size) {
    Range rest{r.bytes - size, r.segment, true, r.after};
    insert_free(address + size, std::move(rest));
    it = ranges_.find(address);  // insert_free may have rehashed nothing, but keep the iterator honest
  }
  Range& used = it->second;
  used.bytes = size;
  used.free = false;
  DeviceAllocation a{{address}, requested, std::move(used.after)};
  used.after.clear();
  prune(a.ready_after);
  segments_[used.segment].used += size;
  allocated_ += size;
  ++counters_.live_allocations;
  counters_.peak_allocated_bytes = std::max(counters_.peak_allocated_bytes, allocated_);
  return a;
}

Status DeviceArena::free(DevicePtr ptr, std::span<const DeviceEvent> after) {
  auto it = ranges_.find(ptr.address);
  if (it == ranges_.end() || it->second.free)
    return internal_error("device arena: free of a pointer it did not allocate (or freed twice)");
  Range r = std::move(it->second);
  const std::uint64_t address = it->first;
  segments_[r.segment].used -= r.bytes;
  allocated_ -= r.bytes;
  --counters_.live_allocations;
  r.after.assign(after.begin(), after.end());
  ranges_.erase(it);
  std::uint64_t start = address;
  // Coalesce with free neighbours of the same segment; the merged range waits on all their events.
  auto next = ranges_.lower_bound(address + r.bytes);
  if (next != ranges_.end() && next->first == address + r.bytes && next->second.free && next->second.segment == r.segment) {
    pool_of(next->second).erase({next->second.bytes, next->first});
    r.bytes += next->second.bytes;
    r.after.insert(r.after.end(), next->second.after.begin(), next->second.after.end());
    ranges_.erase(next);
  }
  auto prev = ranges_.lower_bound(address);
  if (prev != ranges_.begin()) {
    --prev;
    if (prev->first + prev->second.bytes == address && prev->second.free && prev->second.segment == r.segment) {
      pool_of(prev->second).erase({prev->second.bytes, prev->first});
      start = prev->first;
      r.bytes += prev->second.bytes;
      r.after.insert(r.after.end(), prev->second.after.begin(), prev->second.after.end());
      ranges_.erase(prev);
    }
  }
  insert_free(start, std::move(r));
  return Status::ok();
}

Status DeviceArena::release_cached(bool wait) {
  const ScopedSeconds timed(counters_.segment_seconds);
  for (auto s = segments_.begin(); s != segments_.end();) {
    if (s->second.used != 0) {
      ++s;
      continue;
    }
    auto r = ranges_.find(s->first);
    FSWAP_CHECK(r != ranges_.end() && r->second.free && r->second.bytes == s->second.bytes,
                "device arena: an empty segment is not one free range");
    if (!wait) {
      prune(r->second.after);
      if (!r->second.after.empty()) {
        ++s;
        continue;
      }
    }
    for (DeviceEvent e : r->second.after) FSWAP_RETURN_IF_ERROR(device_.wait(e));
    FSWAP_RETURN_IF_ERROR(device_.free({s->first}));
    pool_of(r->second).erase({r->second.bytes, r->first});
    ranges_.erase(r);
    reserved_ -= s->second.bytes;
    ++counters_.segment_releases;
    s = segments_.erase(s);
  }
  return Status::ok();
}

Status DeviceArena::charge(std::uint64_t bytes) {
  last_failure_ = ArenaFailure::kNone;
  if (reserved_ + charged_ + bytes > options_.cap_bytes) FSWAP_RETURN_IF_ERROR(release_cached());
  if (reserved_ + charged_ + bytes > options_.cap_bytes) {
    ++counters_.budget_failures;
    last_failure_ = ArenaFailure::kBudget;
    return out_of_memory("device arena: " + format_bytes(bytes) + " held outside the arena do not fit the " +
                         format_bytes(options_.cap_bytes) + " budget beside " + format_bytes(allocated_) +
                         " allocated and " + format_bytes(charged_) + " already held outside");
  }
  charged_ += bytes;
  counters_.peak_reserved_bytes = std::max(counters_.peak_reserved_bytes, reserved_ + charged_);
  return Status::ok();
}

void DeviceArena::uncharge(std::uint64_t bytes) {
  FSWAP_CHECK(bytes <= charged_, "device arena: uncharge of more than was charged");
  charged_ -= bytes;
}

ArenaStats DeviceArena::stats() const {
  ArenaStats s = counters_;
  s.cap_bytes = options_.cap_bytes;
  s.reserved_bytes = reserved_;
  s.charged_bytes = charged_;
  s.allocated_bytes = allocated_;
  s.segments = segments_.size();
  s.free_ranges = free_small_.size() + free_large_.size() + free_scratch_.size();
  s.free_bytes = reserved_ - allocated_;
  for (const FreeSet* f : {&free_small_, &free_large_, &free_scratch_})
    if (!f->empty()) s.largest_free_range = std::max(s.largest_free_range, f->rbegin()->first);
  return s;
}

}  // namespace fswap::memory
