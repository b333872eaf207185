// The static memory plan of a specialised graph: every activation gets an offset in one arena,
// computed from liveness intervals before anything runs (plan, then execute).
//
//   FSWAP_ASSIGN_OR_RETURN(MemoryPlan plan, plan_memory(specialized_graph));
//   std::byte* arena = ...;  // plan.arena_bytes, 64-byte aligned
//   void* y = arena + plan.offset[value_id];
//
// Best-fit placement in order of first use; an element-wise node's output reuses its input 0's
// block when that input dies at the node and has the same size (in place). Graph inputs and
// outputs live in the arena too; weights and constants do not (offset −1).
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "runtime/graph.h"

namespace fswap {

struct MemoryPlan {
  static constexpr std::size_t kAlignment = 64;
  std::vector<std::int64_t> offset;  // per value id: byte offset in the arena, −1 when not in it
  std::size_t arena_bytes = 0;       // the arena's size: peak live activation bytes after packing
  std::size_t weight_bytes = 0;      // weights and constants
  std::int64_t flops = 0;            // 2 × multiply-adds of Conv/ConvTranspose/Gemm/MatMul, + 1 per element elsewhere
  int in_place_nodes = 0;            // nodes whose output reuses an input's block
};

// Needs every value shaped (after specialize()). kInvalidInput if a value has no shape.
Result<MemoryPlan> plan_memory(const Graph& g);

}  // namespace fswap
