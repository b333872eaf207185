// The graph an executor plans and runs: a model's optimised graph made concrete for one set of
// input shapes, the same way on every device (the CPU Executor, the CudaExecutor, and
// `fswap model inspect`, which reports the plan the GPU would make without one).
//
//   ChannelsLastWeights transposed;  // one per model
//   FSWAP_ASSIGN_OR_RETURN(Graph g, device_graph(optimized, {{1, 3, 512, 512}}, Precision::kFloat16,
//                                                {LayoutChoice::kWherePays, &transposed}));
//   FSWAP_ASSIGN_OR_RETURN(MemoryPlan plan, plan_memory(g));
//
// The sequence: specialize (shapes) → layout.apply (channels-last islands, when the plan has a
// choice) → convert_to_fp16 (kFloat16 only; kDefault and kFloat32 keep float32) →
// order_for_memory (runtime/schedule.h: the node order with the smallest arena), whose report
// goes to *schedule when given. Weights stay shared with `optimized`. Errors: those of the
// passes, naming the model.
#pragma once

#include <vector>

#include "core/status.h"
#include "runtime/channels_last.h"
#include "runtime/engine.h"
#include "runtime/graph.h"
#include "runtime/schedule.h"

namespace fswap {

Result<Graph> device_graph(const Graph& optimized, const std::vector<Shape>& input_shapes, Precision precision,
                           const ChannelsLastPlan& layout = {}, ScheduleReport* schedule = nullptr);

// For a budget short of memory: a device graph's resizes to 16 MiB and more banded into the
// channels_last Conv reading them (runtime/passes.h's fuse_input_resize), then the node order
// chosen again (its report to *schedule). Returns how many; 0 leaves the graph as it was.
// The plan loses the resized tensors (gfpgan_1.4's fp16 plan 112.5 → 80.4 MiB) at the cost of the
// bands' launches (its latency 4.5 → 5.1 ms on the H100).
Result<int> band_large_resizes(Graph& g, ScheduleReport* schedule = nullptr);

}  // namespace fswap
