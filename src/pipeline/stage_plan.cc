#include "pipeline/stage_plan.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

namespace fswap {
namespace {

const char* reason_text(WindowReason r) {
  switch (r) {
    case WindowReason::kPerFrame: return "per frame";
    case WindowReason::kWeightsFit: return "weights fit";
    case WindowReason::kNotMeasured: return "weights over budget, compute not measured yet";
    case WindowReason::kReloadBound: return "weights over budget: reloads within the compute share";
    case WindowReason::kHostMemoryCap: return "host memory cap on held frames";
  }
  return "?";
}

}  // namespace

std::string StagePlan::to_string() const {
  std::string s = "window " + std::to_string(window) + (window == 1 ? " frame, " : " frames, ") +
                  std::to_string(lanes) + (lanes == 1 ? " lane (" : " lanes (") + reason_text(reason) + ")";
  if (!weights_fit) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "; reload %.2f ms per window, %.1f%% of compute", reload_s * 1e3,
                  reload_fraction * 100);
    s += buf;
  }
  if (take_turns) s += "; analysis and stages take turns on the GPU";
  return s;
}

StagePlan plan_stages(const StagePlanInput& in) {
  StagePlan plan;
  const int batch = std::max(1, in.batch_frames);
  const std::uint64_t stages =
      std::accumulate(in.stage_weight_bytes.begin(), in.stage_weight_bytes.end(), std::uint64_t{0});
  plan.weights_fit = !in.budget_bytes || (in.resident_weight_bytes + stages <= *in.budget_bytes && !in.evicting);
  plan.take_turns = !plan.weights_fit;
  std::int64_t window = batch;
  plan.reason = batch == 1 ? WindowReason::kPerFrame : WindowReason::kWeightsFit;
  if (!plan.weights_fit) {
    // Taking turns, the analysis's weights are reloaded once per window as well as the stages'.
    const std::uint64_t reload =
        in.measured_reload_bytes > 0 ? in.measured_reload_bytes : in.resident_weight_bytes + stages;
    plan.reload_s = static_cast<double>(reload) / in.copy_bytes_per_s + in.measured_recapture_s;
    plan.reason = WindowReason::kNotMeasured;
    if (in.compute_s_per_frame > 0) {
      // reload_s ≤ fraction · window · compute  ⇔  window ≥ reload_s / (fraction · compute)
      const double needed = std::ceil(plan.reload_s / (in.max_reload_fraction * in.compute_s_per_frame));
      window = std::max<std::int64_t>(batch, static_cast<std::int64_t>(std::min(needed, 1e9)));
      plan.reason = WindowReason::kReloadBound;
    }
  }
  if (in.frame_bytes > 0) {
    const auto cap =
        static_cast<std::int64_t>(std::max<std::uint64_t>(1, in.host_frames_cap_bytes / (kWindowsHeld * in.frame_bytes)));
    if (window > cap) window = cap, plan.reason = WindowReason::kHostMemoryCap;
  }
  plan.window = static_cast<int>(std::min<std::int64_t>(window, 1 << 20));
  plan.lanes = std::min(batch, plan.window);
  if (!plan.weights_fit && in.compute_s_per_frame > 0)
    plan.reload_fraction = plan.reload_s / (plan.window * in.compute_s_per_frame);
  return plan;
}

std::uint64_t host_frames_cap(std::uint64_t physical_bytes) {
  return std::max<std::uint64_t>(1ull << 30, physical_bytes / 8);
}

std::uint64_t physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page) : 0;
}

}  // namespace fswap
