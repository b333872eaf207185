#include "runtime/device_graph.h"

#include "runtime/passes.h"

namespace fswap {

Result<Graph> device_graph(const Graph& optimized, const std::vector<Shape>& input_shapes, Precision precision,
                           const ChannelsLastPlan& layout, ScheduleReport* schedule) {
  Graph g = optimized;
  FSWAP_RETURN_IF_ERROR(specialize(g, input_shapes));
  FSWAP_RETURN_IF_ERROR(layout.apply(g));
  if (precision == Precision::kFloat16) FSWAP_RETURN_IF_ERROR(convert_to_fp16(g));
  FSWAP_ASSIGN_OR_RETURN(ScheduleReport report, order_for_memory(g));
  if (schedule != nullptr) *schedule = std::move(report);
  return g;
}

Result<int> band_large_resizes(Graph& g, ScheduleReport* schedule) {
  // Smaller resized tensors do not set a model's peak, and bands cost launches.
  constexpr std::size_t kBandedResizeBytes = 16u << 20;
  const int banded = fuse_input_resize(g, kBandedResizeBytes);
  if (banded == 0) return 0;
  FSWAP_ASSIGN_OR_RETURN(ScheduleReport report, order_for_memory(g));
  if (schedule != nullptr) *schedule = std::move(report);
  return banded;
}

}  // namespace fswap
