// Weight ring: how a model whose weights do not fit the budget beside its activations streams them
// through one fixed range of device memory, inside one CUDA graph. Each load copies a weight chunk
// into the ring on a copy stream; the first node reading it waits for that copy, and the copy
// waits for the last node reading the bytes it overwrites. Every address and every dependency is
// fixed by the plan, so the graph is captured once and a pass costs one launch: no host work per
// chunk, and the copies run at the link's rate as far ahead of the kernels as the ring allows.
//
//   FSWAP_ASSIGN_OR_RETURN(RingPlan ring, plan_weight_ring(node_blocks, block_bytes, ring_bytes));
//   copy stream, for each load j in order:  wait for node loads[j].after_node's kernels (if >= 0),
//                                           copy block loads[j].block to ring + loads[j].offset
//   compute, node n:  wait for the copies of the loads whose first_node is n, then read block
//                     node_blocks[n][i] at ring + loads[node_loads[n][i]].offset
//
// Thread-safety: a plan is plain data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "memory/residency.h"

namespace fswap::memory {

// Places and sizes in a ring are multiples of this by default (an address every kernel may read).
inline constexpr std::uint64_t kRingAlignment = 256;
inline std::uint64_t ring_aligned(std::uint64_t bytes) {
  return (bytes + kRingAlignment - 1) / kRingAlignment * kRingAlignment;
}

struct RingLoad {
  BlockId block = 0;
  std::uint64_t offset = 0;  // in the ring, a multiple of the alignment
  std::uint64_t bytes = 0;   // the block's bytes
  std::size_t first_node = 0, last_node = 0;  // the nodes reading this copy
  // The copy may start once this node's kernels are done (the last reader of the bytes it
  // overwrites); -1: at the start of the pass. Always below first_node.
  std::ptrdiff_t after_node = -1;
};

struct RingPlan {
  std::uint64_t ring_bytes = 0;  // the extent the loads use, at most the ring given
  std::uint64_t load_bytes = 0;  // copied per pass
  std::vector<RingLoad> loads;   // in copy order (by first_node)
  std::vector<std::vector<std::size_t>> node_loads;  // per node, per block of node_blocks[n]: its load
  std::string describe() const;  // one line, for logs
};

// node_blocks[n]: the distinct blocks node n reads (memory::ChunkWalk::blocks); block_bytes[b]: the
// bytes of block b. A block read again continues its load when at most a quarter of the ring was
// loaded since its last read (a chunk read across weightless nodes is copied once); otherwise it is
// loaded again. Each load takes the place in the ring whose last reader finishes earliest, so the
// copies run in ring order, as far ahead as the ring allows. kOutOfMemory when some node's blocks
// and those still in use cannot be placed in `ring_bytes` (a bigger ring is needed), naming the node.
// kInvalidInput for a zero-byte ring or a block outside block_bytes.
Result<RingPlan> plan_weight_ring(std::span<const std::vector<BlockId>> node_blocks,
                                  std::span<const std::uint64_t> block_bytes, std::uint64_t ring_bytes,
                                  std::uint64_t alignment = kRingAlignment);

}  // namespace fswap::memory
