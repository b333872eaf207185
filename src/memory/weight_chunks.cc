#include "memory/weight_chunks.h"

#include <algorithm>
#include <bit>

namespace fswap::memory {

namespace {
std::uint64_t round_up(std::uint64_t v, std::uint64_t to) { return (v + to - 1) / to * to; }
}  // namespace

ArenaOptions ChunkGeometry::arena_options(std::uint64_t cap_bytes) const {
  // Large requests (activation buffers, oversized chunks) get segments rounded to 64 KiB.
  return {.cap_bytes = cap_bytes, .small_limit = small_limit, .small_segment_bytes = segment_bytes,
          .granularity = 64ull << 10};
}

ChunkGeometry chunk_geometry(std::uint64_t budget_bytes) {
  constexpr std::uint64_t kMinSegment = 2ull << 20, kMaxSegment = 64ull << 20;
  ChunkGeometry g;
  const std::uint64_t quarter = std::max<std::uint64_t>(budget_bytes / 4, 1);
  g.segment_bytes = std::clamp(std::bit_floor(quarter), kMinSegment, kMaxSegment);
  g.small_limit = g.segment_bytes / 2;
  g.chunk_bytes = g.segment_bytes / 4;
  g.prefetch_bytes = std::min(std::max<std::uint64_t>(64ull << 20, 4 * g.chunk_bytes),
                              std::max<std::uint64_t>(budget_bytes / 2, g.chunk_bytes));
  return g;
}

Result<ChunkPacking> pack_chunks(std::span<const std::uint64_t> tensor_bytes, std::uint64_t target_bytes,
                                 std::uint64_t alignment) {
  if (target_bytes == 0) return invalid_input("weight chunks: a target size of 0 bytes");
  if (alignment == 0) alignment = 1;
  ChunkPacking p;
  p.slots.reserve(tensor_bytes.size());
  std::uint64_t capacity = 0;  // of the open chunk
  for (std::uint64_t bytes : tensor_bytes) {
    const std::uint64_t size = round_up(std::max<std::uint64_t>(bytes, 1), alignment);
    const bool fits = !p.chunk_bytes.empty() && round_up(p.chunk_bytes.back(), alignment) + size <= capacity;
    if (!fits) {
      p.chunk_bytes.push_back(0);
      capacity = size > target_bytes ? size + target_bytes / 4 : target_bytes;
    }
    const std::uint64_t offset = round_up(p.chunk_bytes.back(), alignment);
    p.slots.push_back({static_cast<std::uint32_t>(p.chunk_bytes.size() - 1), offset});
    p.chunk_bytes.back() = offset + size;
  }
  return p;
}

ChunkWalk::ChunkWalk(std::vector<std::vector<BlockId>> node_blocks) : node_blocks_(std::move(node_blocks)) {
  std::vector<BlockId> previous;
  for (std::vector<BlockId>& blocks : node_blocks_) {
    std::vector<BlockId> distinct;
    for (BlockId b : blocks)
      if (std::find(distinct.begin(), distinct.end(), b) == distinct.end()) distinct.push_back(b);
    blocks = std::move(distinct);
    for (BlockId b : blocks)
      if (std::find(previous.begin(), previous.end(), b) == previous.end()) schedule_.push_back(b);
    next_acquire_.push_back(schedule_.size());
    previous = blocks;
  }
}

Status ChunkWalk::enter(ResidencyManager& rm, std::size_t n, std::uint64_t prefetch_bytes) {
  const std::vector<BlockId>& want = node_blocks_[n];
  // Release first: what this node no longer reads may make room for what it does.
  Status s = Status::ok();
  std::vector<Held> kept;
  for (const Held& h : held_) {
    if (std::find(want.begin(), want.end(), h.block) != want.end()) kept.push_back(h);
    else if (Status r = rm.release(h.block); s.is_ok()) s = r;
  }
  held_ = std::move(kept);
  if (!s.is_ok()) {
    (void)leave(rm);
    return s;
  }
  pointers_.assign(want.size(), DevicePtr{});
  bool acquired = false;
  for (std::size_t i = 0; i < want.size(); ++i) {
    auto h = std::find_if(held_.begin(), held_.end(), [&](const Held& x) { return x.block == want[i]; });
    if (h != held_.end()) {  // pinned since an earlier node
      pointers_[i] = h->ptr;
      continue;
    }
    Result<DevicePtr> p = rm.acquire(want[i]);
    if (!p.is_ok()) {
      (void)leave(rm);
      return p.status();
    }
    pointers_[i] = *p;
    held_.push_back({want[i], *p});
    acquired = true;
  }
  if (!acquired) return Status::ok();
  std::uint64_t ahead = 0;
  for (std::size_t i = next_acquire_[n]; i < schedule_.size() && ahead < prefetch_bytes; ++i) {
    const BlockId b = schedule_[i];
    ahead += rm.block(b).bytes;
    if (rm.is_resident(b)) continue;
    if (Status p = rm.prefetch(b, /*spare_dearer=*/true); !p.is_ok()) {
      (void)leave(rm);
      return p;
    }
  }
  return Status::ok();
}

Status ChunkWalk::leave(ResidencyManager& rm) {
  Status s = Status::ok();
  for (const Held& h : held_)
    if (Status r = rm.release(h.block); s.is_ok()) s = r;
  held_.clear();
  return s;
}

}  // namespace fswap::memory
