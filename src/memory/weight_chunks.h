// Weight chunks: the unit in which a model's weights move. Tensors are packed, in the order the
// model first reads them, into chunks of about chunk_bytes; each chunk is one residency block
// (one contiguous device allocation and one pinned host range), so a pass streams tens of chunks
// instead of a thousand tensors: fewer copies issued, fewer evictions, fewer victim scans.
// ChunkWalk runs a model's nodes over those blocks: a node holds the chunks it reads while its
// kernels are issued (a chunk read by consecutive nodes stays held), and the chunks of the next
// `prefetch_bytes` of the run are prefetched on the copy stream.
//
//   const ChunkGeometry g = chunk_geometry(budget.bytes);
//   DeviceArena arena(device, g.arena_options(budget.bytes));
//   ChunkPacking p = pack_chunks(tensor_bytes_in_run_order, g.chunk_bytes);
//   ... register one block per p.chunk_bytes[c]; tensor t lives at p.slots[t].offset in its chunk ...
//   ChunkWalk walk(blocks_read_by_each_node, block_bytes);
//   rm.set_schedule(walk.schedule());
//   for (std::size_t n = 0; n < nodes; ++n) {
//     FSWAP_RETURN_IF_ERROR(walk.enter(rm, n, g.prefetch_bytes));  // walk.pointers(): node n's blocks
//     ... launch node n's kernels ...
//   }
//   FSWAP_RETURN_IF_ERROR(walk.leave(rm));
//
// Thread-safety: none; a walk is used by one run at a time (the runtime's mutex).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "memory/device_arena.h"
#include "memory/residency.h"

namespace fswap::memory {

// Sizes that follow from the budget. Small budgets get small chunks and small arena segments so
// that the activations plus a few chunks fit; large ones get 16 MiB chunks in 64 MiB segments
// (copies of that size run at the link's full rate: reference/memory.md §0).
struct ChunkGeometry {
  std::uint64_t chunk_bytes = 16ull << 20;      // packing target of a weight chunk
  std::uint64_t segment_bytes = 64ull << 20;    // the arena's small segments...
  std::uint64_t small_limit = 32ull << 20;      // ...serve requests below this
  std::uint64_t prefetch_bytes = 64ull << 20;   // how far ahead of the running node chunks are prefetched
  ArenaOptions arena_options(std::uint64_t cap_bytes) const;
};
// segment = the power of two at or below budget / 4, clamped to [2 MiB, 64 MiB]; small_limit =
// segment / 2; chunk = segment / 4; prefetch = max(64 MiB, 4 chunks), at most half the budget.
ChunkGeometry chunk_geometry(std::uint64_t budget_bytes);

struct ChunkSlot {
  std::uint32_t chunk = 0;
  std::uint64_t offset = 0;  // bytes from the chunk's start, a multiple of the alignment
};
struct ChunkPacking {
  std::vector<std::uint64_t> chunk_bytes;  // each chunk's size (its last tensor's end)
  std::vector<ChunkSlot> slots;            // per tensor, in input order
};
// Greedy, in order: a tensor joins the open chunk if the chunk stays within `target_bytes`, else
// it opens a new one. A tensor larger than the target opens a chunk of its own, which the small
// tensors right after it (its bias, its scales) may join up to a quarter of the target more, so a
// node reading a large weight holds one chunk, not two. Zero-byte tensors take `alignment` bytes.
// kInvalidInput for a zero target.
Result<ChunkPacking> pack_chunks(std::span<const std::uint64_t> tensor_bytes, std::uint64_t target_bytes,
                                 std::uint64_t alignment = 256);

class ChunkWalk {
 public:
  ChunkWalk() = default;
  // node_blocks[n]: the blocks node n reads (duplicates allowed, empty for nodes without weights).
  explicit ChunkWalk(std::vector<std::vector<BlockId>> node_blocks);

  // The acquire order of one run (a block is acquired when a node reads it and the node before
  // did not): ResidencyManager::set_schedule's input.
  const std::vector<BlockId>& schedule() const { return schedule_; }
  std::size_t nodes() const { return node_blocks_.size(); }
  // The distinct blocks of node n, in the order pointers() gives their addresses.
  std::span<const BlockId> blocks(std::size_t n) const { return node_blocks_[n]; }
  // The schedule index of the first acquire after node n's: where its prefetch window starts.
  std::size_t next_acquire(std::size_t n) const { return next_acquire_[n]; }

  // Before node n's kernels, nodes in increasing order within a run: releases the held blocks
  // node n does not read, acquires the others, and when node n acquired something prefetches the
  // blocks of the next `prefetch_bytes` of the schedule (sparing dearer models' blocks:
  // ResidencyManager::prefetch). On failure everything held is released.
  Status enter(ResidencyManager& rm, std::size_t n, std::uint64_t prefetch_bytes);
  // Device addresses of blocks(n) after enter(n).
  std::span<const DevicePtr> pointers() const { return pointers_; }
  // After the last node's kernels were issued (or to abandon a run): releases everything held.
  Status leave(ResidencyManager& rm);

 private:
  std::vector<std::vector<BlockId>> node_blocks_;  // distinct, first-read order
  std::vector<BlockId> schedule_;
  std::vector<std::size_t> next_acquire_;  // per node: schedule index after its acquires
  struct Held {
    BlockId block = 0;
    DevicePtr ptr;
  };
  std::vector<Held> held_;  // acquired by this walk, not yet released
  std::vector<DevicePtr> pointers_;
};

}  // namespace fswap::memory
