#include "memory/weight_ring.h"

#include <algorithm>

#include "memory/budget.h"

namespace fswap::memory {

namespace {

std::uint64_t round_up(std::uint64_t v, std::uint64_t to) { return (v + to - 1) / to * to; }

// A range of the ring and the last node reading what was copied there last (-1: nothing yet).
struct Span {
  std::uint64_t offset = 0, bytes = 0;
  std::ptrdiff_t last_node = -1;
  std::uint64_t end() const { return offset + bytes; }
};

// The last reader of anything in [offset, offset + bytes); spans are sorted and cover the ring.
std::ptrdiff_t last_reader(const std::vector<Span>& spans, std::uint64_t offset, std::uint64_t bytes) {
  std::ptrdiff_t last = -1;
  for (const Span& s : spans)
    if (s.offset < offset + bytes && s.end() > offset) last = std::max(last, s.last_node);
  return last;
}

void occupy(std::vector<Span>& spans, const Span& taken) {
  std::vector<Span> next;
  next.reserve(spans.size() + 2);
  for (const Span& s : spans) {
    if (s.end() <= taken.offset || s.offset >= taken.end()) {
      next.push_back(s);
      continue;
    }
    if (s.offset < taken.offset) next.push_back({s.offset, taken.offset - s.offset, s.last_node});
    if (s.end() > taken.end()) next.push_back({taken.end(), s.end() - taken.end(), s.last_node});
  }
  next.push_back(taken);
  std::sort(next.begin(), next.end(), [](const Span& a, const Span& b) { return a.offset < b.offset; });
  spans = std::move(next);
}

}  // namespace

std::string RingPlan::describe() const {
  return "weight ring of " + format_bytes(ring_bytes) + ": " + std::to_string(loads.size()) + " loads, " +
         format_bytes(load_bytes) + " copied a pass";
}

Result<RingPlan> plan_weight_ring(std::span<const std::vector<BlockId>> node_blocks,
                                  std::span<const std::uint64_t> block_bytes, std::uint64_t ring_bytes,
                                  std::uint64_t alignment) {
  if (ring_bytes == 0) return invalid_input("weight ring: a ring of 0 bytes");
  if (alignment == 0) alignment = 1;
  RingPlan plan;
  plan.node_loads.resize(node_blocks.size());

  // The loads: one per block and stretch of nodes reading it.
  constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  std::vector<std::size_t> open(block_bytes.size(), kNone);  // block → its current load
  std::vector<std::uint64_t> read_at(block_bytes.size(), 0);  // `loaded` at its last read
  std::uint64_t loaded = 0;
  for (std::size_t n = 0; n < node_blocks.size(); ++n) {
    for (BlockId b : node_blocks[n]) {
      if (b >= block_bytes.size())
        return invalid_input("weight ring: node " + std::to_string(n) + " reads block " + std::to_string(b) +
                             " of " + std::to_string(block_bytes.size()));
      if (open[b] != kNone && loaded - read_at[b] <= ring_bytes / 4) {
        plan.loads[open[b]].last_node = n;
      } else {
        open[b] = plan.loads.size();
        plan.loads.push_back({.block = b, .bytes = block_bytes[b], .first_node = n, .last_node = n});
        loaded += round_up(std::max<std::uint64_t>(block_bytes[b], 1), alignment);
        plan.load_bytes += block_bytes[b];
      }
      read_at[b] = loaded;
      plan.node_loads[n].push_back(open[b]);
    }
  }

  // Their places: where the last reader of the bytes overwritten finishes earliest, before the
  // load's first reader; on a tie, right after the previous load (ring order), else the lowest.
  std::vector<Span> spans = {{0, ring_bytes, -1}};
  std::uint64_t previous_end = 0;
  for (RingLoad& load : plan.loads) {
    const std::uint64_t size = round_up(std::max<std::uint64_t>(load.bytes, 1), alignment);
    const auto first = static_cast<std::ptrdiff_t>(load.first_node);
    bool found = false;
    std::uint64_t best = 0;
    std::ptrdiff_t best_wait = 0;
    for (const Span& s : spans) {
      if (s.offset + size > ring_bytes) break;
      const std::ptrdiff_t wait = last_reader(spans, s.offset, size);
      if (wait >= first) continue;
      if (!found || wait < best_wait || (wait == best_wait && s.offset == previous_end && best != previous_end)) {
        found = true;
        best = s.offset;
        best_wait = wait;
      }
    }
    if (!found)
      return out_of_memory("weight ring of " + format_bytes(ring_bytes) + ": no room for block " +
                           std::to_string(load.block) + " (" + format_bytes(load.bytes) + ") read by node " +
                           std::to_string(load.first_node) + " beside the blocks still in use");
    load.offset = best;
    load.after_node = best_wait;
    occupy(spans, {best, size, static_cast<std::ptrdiff_t>(load.last_node)});
    previous_end = best + size;
    plan.ring_bytes = std::max(plan.ring_bytes, previous_end);
  }
  return plan;
}

}  // namespace fswap::memory
