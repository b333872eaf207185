// Memory-aware node order. The activation arena (runtime/memory_plan.h) is the peak of the values
// live at once, and what is live at once depends on the order the nodes run in: a branch computed
// early and read late (gfpgan's SFT conditions, computed in the U-Net and read by the StyleGAN
// decoder) holds its outputs all the way across.
//
//   FSWAP_RETURN_IF_ERROR(specialize(g, shapes));
//   FSWAP_ASSIGN_OR_RETURN(ScheduleReport r, order_for_memory(g));   // r.given_bytes → r.arena_bytes
//   FSWAP_ASSIGN_OR_RETURN(MemoryPlan plan, plan_memory(g));         // plan.arena_bytes == r.arena_bytes
//
// order_for_memory plans a few topological orders of the same nodes and keeps the one whose plan
// has the smallest arena (the given order on ties, so it never makes the arena larger):
//   - given:   the graph's order;
//   - list:    forward, among the nodes whose inputs are computed, the one that frees the most
//              bytes net of what it allocates (inputs it reads last, minus its outputs);
//   - reverse: the same greedy from the graph's end backwards (a node placed last-first frees its
//              outputs and makes live the inputs nothing later made live);
//   - late:    every node as late as the given order allows (just before its first reader);
//   - each of those "+sunk": nodes moved, last first, to just before their first reader when that
//              lowers the most bytes live at one step, or keeps it and the node's outputs are at
//              least the inputs it reads last (a branch made early and read late moves to its
//              reader as a whole; passes repeat, at most 4, while one moves a node).
// Ties within a greedy go to the node earlier in the given order. Only the order changes: the
// same nodes with the same inputs, attributes and kernels, so every output is the same.
// Needs a specialised graph (every arena value shaped): plan_memory's errors otherwise.
#pragma once

#include <cstddef>
#include <string>

#include "core/status.h"
#include "runtime/graph.h"

namespace fswap {

struct ScheduleReport {
  std::size_t given_bytes = 0;  // plan_memory's arena in the given order
  std::size_t arena_bytes = 0;  // in the order kept
  std::string order;            // the order kept: "given", "list", "reverse", "late", or one of them + "+sunk"
};

// Reorders g.nodes in place (see above).
Result<ScheduleReport> order_for_memory(Graph& g);

}  // namespace fswap
