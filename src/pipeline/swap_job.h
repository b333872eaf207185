// run_swap: the whole `fswap swap` job — sources analysed once, then the target image or
// video streamed through detect → landmarks → (embed) → select → swap → blend → encode.
//
//   SwapJob job;  job.sources = {"me.jpg"}; job.target = "clip.mp4"; job.output = "out.mp4";
//   FSWAP_ASSIGN_OR_RETURN(SwapSummary s, run_swap(job, [](const SwapProgress& p) { ... }));
//
// Video runs as three threads joined by bounded queues (decode → face work → encode), so
// memory stays flat on long videos. The output is written to a temporary file and renamed at
// the end: on any error or cancellation nothing is left at the output path, and an output
// path equal to an input is refused before anything runs.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/time_ledger.h"
#include "face/analyser.h"
#include "face/enhancer.h"
#include "face/selector.h"
#include "face/swapper.h"
#include "video/media.h"

namespace fswap {

struct SwapJob {
  std::vector<std::string> sources;  // one or more images; the best face among them is used
  std::string target;                // image or video
  std::string output;                // same kind as the target
  std::string reference_face_path;   // reference mode: the face to look for (else frame 0's largest)
  std::string engine = "ort";        // --engine
  AnalyserOptions analyser;          // models, detector, score, device, threads
  SelectorOptions selector;
  // --face-swapper-model: "classical" (default, no weights) or "inswapper_128" (FaceFusion's
  // inswapper_128.onnx + arcface_w600k_r50.onnx in analyser.models_dir).
  std::string face_swapper_model = "classical";
  SwapOptions swap;                  // classical swapper options (mask_blur also feeds the box masks)
  // --processors: what runs on each chosen face, in this order: "face_swapper" (needs sources)
  // and/or "face_enhancer" (FaceFusion's face_enhancer; alone it enhances without swapping).
  std::vector<std::string> processors = {"face_swapper"};
  // --face-enhancer-model: one of face_enhancer_model_names(), FaceFusion's <name>.onnx in
  // analyser.models_dir.
  std::string face_enhancer_model = "gfpgan_1.4";
  FaceEnhancerOptions face_enhancer;  // blend, weight (its face_mask_blur is taken from swap.mask_blur)
  EncodeOptions encode;
  int image_quality = 90;            // JPEG/WebP output
  std::int64_t trim_frame_start = 0; // first frame processed (0-based)
  std::int64_t trim_frame_end = -1;  // one past the last frame; -1 = to the end
  int queue_depth = 4;               // frames buffered between stages
  bool swap_faces = true;            // false: decode + encode only (fswap bench's ceiling)
  // Video only: smooth tracked faces' landmarks over frames against jitter (LandmarkSmoother).
  // Still images are never smoothed.
  bool smooth_landmarks = true;
  const std::atomic<bool>* cancel = nullptr;  // set to true to stop; run_swap returns kCancelled
  // For tests only (failure injection): called at the start of each stage's per-frame work,
  // stage "decode" (frame: index of the frame about to be read), "face" and "encode" (frame:
  // the frame's index in the target). A non-ok Status fails the run as that stage's error.
  // Called from the stage's own thread; must be thread-safe. Empty: no call.
  std::function<Status(const char* stage, std::int64_t frame)> fault_injection;
};

struct SwapProgress {
  std::int64_t frames_done = 0;
  std::int64_t frames_total = 0;  // estimate for video (container metadata)
  double elapsed_s = 0;
  double fps() const { return elapsed_s > 0 ? frames_done / elapsed_s : 0; }
  double eta_s() const;
};

struct SwapSummary {
  std::int64_t frames = 0;
  std::int64_t faces_swapped = 0;
  double seconds = 0;
  double fps() const { return seconds > 0 ? frames / seconds : 0; }
  std::vector<TimeLedger::Entry> stages;  // decode, detect, landmarks, embed, swap, enhance, blend, encode
  // The engine's device-memory statistics at the end of the run (Engine::memory_summary: one
  // or more lines, each ending in '\n'); empty when the engine keeps none (the CPU, ort).
  std::string memory;
};

using ProgressCallback = std::function<void(const SwapProgress&)>;

Result<SwapSummary> run_swap(const SwapJob& job, const ProgressCallback& on_progress = {});

// The checks run_swap makes before any work: the processors are known, inputs exist and are
// media (sources only when face_swapper runs), the output's directory exists, its extension
// suits the target, and it is not one of the inputs.
Status validate_job(const SwapJob& job);

}  // namespace fswap
