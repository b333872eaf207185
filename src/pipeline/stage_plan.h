// StagePlan: how many video frames a job's face work takes at once (its window) and how many of
// them each processor stage works on concurrently (its lanes), from the processors' weights, the
// device-memory budget, the measured compute time and the host memory the held frames take.
//
//   StagePlanInput in;
//   in.batch_frames = job.batch_frames;                 // --batch-frames
//   in.stage_weight_bytes = {swapper_bytes, enhancer_bytes};
//   in.resident_weight_bytes = analysis_bytes;          // detector, landmarker, ...: every frame
//   in.budget_bytes = stats ? std::optional(stats->budget_bytes) : std::nullopt;
//   in.frame_bytes = width * height * 3;
//   in.compute_s_per_frame = measured;                  // 0 before the first window
//   StagePlan plan = plan_stages(in);                   // plan.window, plan.lanes
//   log_debug(plan.to_string());
//
// The window's frames are analysed one by one in order; then each processor runs over all of
// them (stage-major), `lanes` frames at a time, so the model calls of several frames meet in one
// batch. The rule:
//   - the weights fit (no budget: the CPU, or the engine keeps none; or resident + every stage's
//     weights ≤ budget, and the device evicted none in the last window): window = batch_frames
//     (1: the per-frame path);
//   - they do not: the analysis and the stages take turns on the GPU (take_turns: each side's
//     models run a whole window at a time, pipeline/gpu_turns.h), so every model's weights are
//     copied in once per window: resident + Σ stage weights, or the bytes measured in the last
//     window, ÷ copy_bytes_per_s, plus the graphs recaptured in the last window. The window is
//     the smallest whose reloading costs at most max_reload_fraction of its compute (window ×
//     compute_s_per_frame), never below batch_frames; before any compute is measured,
//     batch_frames (the first window measures it);
//   - in every case the frames the face work holds, up to kWindowsHeld windows (one being
//     analysed, one analysed and waiting, one in the processor stages, one on its way to the
//     encoder), stay within host_frames_cap_bytes (the window is at least one frame), so 4K
//     frames are bounded.
// lanes = min(batch_frames, window). A pure function: no I/O, no clock.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fswap {

struct StagePlanInput {
  int batch_frames = 8;                             // --batch-frames (≥ 1): lanes, and the window when weights fit
  std::vector<std::uint64_t> stage_weight_bytes;    // each processor stage's models, bytes
  // Models every frame runs (analysis), bytes: reloaded once per window too when the weights do
  // not fit (the analysis takes turns with the stages).
  std::uint64_t resident_weight_bytes = 0;
  std::optional<std::uint64_t> budget_bytes;        // device-memory budget; nullopt: none (CPU)
  // The device evicted weights during the last window although they seemed to fit (activations
  // and kernel workspace take room too): plan as if they did not.
  bool evicting = false;
  // Host→device rate of weight reloads: chunk streaming measured 18–21 GB/s on the H200 (the link
  // itself does 54 GB/s from pinned memory, GPU.md).
  double copy_bytes_per_s = 20.0e9;
  // Bytes copied host→device during the last window when measured (the engine's statistics, less
  // the weight ring's copies: those come with every run, however long the window), else 0: then
  // the analysis's and each stage's weights once per window.
  std::uint64_t measured_reload_bytes = 0;
  // Host seconds the last window spent capturing CUDA graphs again (a turn gives the activation
  // buffers back, so the next one finds them elsewhere): a cost per window like the reloads.
  double measured_recapture_s = 0;
  double compute_s_per_frame = 0;                   // processor stages' wall time per frame; 0: not measured yet
  double max_reload_fraction = 0.05;                // weight reloading at most this share of a window's compute
  std::uint64_t frame_bytes = 0;                    // one decoded frame (RGB), bytes; 0: no cap
  std::uint64_t host_frames_cap_bytes = 2ull << 30; // the held windows' frames at most this many bytes (a job: host_frames_cap)
};

// The windows of frames a video's face work holds at once (pipeline/swap_job.cc): the one the
// analysis fills, one analysed and waiting for the stages, the one in the stages, and up to one
// window's frames queued for the encoder (so the stages never wait for the encoder to drain a
// window before starting the next).
inline constexpr int kWindowsHeld = 4;

enum class WindowReason {
  kPerFrame,        // batch_frames 1 and the weights fit
  kWeightsFit,      // window = batch_frames
  kNotMeasured,     // weights do not fit, compute not measured yet: window = batch_frames
  kReloadBound,     // the smallest window with reloading ≤ max_reload_fraction of compute
  kHostMemoryCap,   // cut so that kWindowsHeld windows fit host_frames_cap_bytes
};

struct StagePlan {
  int window = 1;               // frames taken at once (≥ 1)
  int lanes = 1;                // frames each stage works on concurrently (1 ≤ lanes ≤ window)
  WindowReason reason = WindowReason::kPerFrame;
  bool weights_fit = true;
  // The analysis and the processor stages take turns on the GPU, a window each (GpuTurns),
  // instead of overlapping: exactly when the weights do not fit.
  bool take_turns = false;
  double reload_s = 0;          // weight copies and graph recaptures per window, seconds (0 when the weights fit)
  double reload_fraction = 0;   // reload_s ÷ the window's compute (0 when unknown or fitting)
  // "window 8 frames, 8 lanes (weights fit)" and the numbers behind it; "; analysis and stages
  // take turns on the GPU" at the end when they do.
  std::string to_string() const;
};

StagePlan plan_stages(const StagePlanInput& in);

// A job's cap on the frames its windows hold, for a machine with `physical_bytes` of memory (0:
// unknown): an eighth of it, at least 1 GiB. 4K windows: 10 frames at 1 GiB, 172 on a 128 GiB
// machine.
std::uint64_t host_frames_cap(std::uint64_t physical_bytes);
// This machine's physical memory in bytes (sysconf), 0 when unknown.
std::uint64_t physical_memory_bytes();

}  // namespace fswap
