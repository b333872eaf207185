// The static memory plan of a specialised graph: every activation gets an offset in one arena,
// computed from liveness intervals before anything runs (plan, then execute).
//
//   FSWAP_ASSIGN_OR_RETURN(MemoryPlan plan, plan_memory(specialized_graph));
//   std::byte* arena = ...;  // plan.arena_bytes, 64-byte aligned
//   void* y = arena + plan.offset[value_id];
//
// Liveness over the node order; an element-wise or reshaping node's output reuses its input 0's
// block when that input dies at the node (in place: writes_over_input). The blocks are placed twice and
// the smaller arena kept: largest first, each in the tightest gap beside the blocks live with it;
// and best fit in order of first use. The arena stays close to the most bytes live at one step
// (live_peak_bytes, its lower bound). Graph inputs and outputs live in the arena too; weights and
// constants do not (offset −1).
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
  std::size_t live_peak_bytes = 0;   // the most bytes live at one step: arena_bytes ≥ this
  int peak_node = -1;                // the node at that step (-1: before the first node)
  std::vector<int> live_at_peak;     // the arena values live then (value ids, in id order)
};

// Needs every value shaped (after specialize()). kInvalidInput if a value has no shape.
Result<MemoryPlan> plan_memory(const Graph& g);

// Whether the plan may give node n's output 0 the bytes of its input 0, should that input die at
// n: element-wise ops whose output has the input's shape and dtype size, and the ops that keep
// the bytes as they are (Reshape, Flatten, Squeeze, Unsqueeze, Identity: their kernels then copy
// nothing).
bool writes_over_input(const Graph& g, const Node& n);

}  // namespace fswap
