// run_swap: the whole `fswap swap` job — sources analysed once, then the target image or
// video streamed through detect → landmarks → (embed) → select → swap → blend → encode.
//
//   SwapJob job;  job.sources = {"me.jpg"}; job.target = "clip.mp4"; job.output = "out.mp4";
//   FSWAP_ASSIGN_OR_RETURN(SwapSummary s, run_swap(job, [](const SwapProgress& p) { ... }));
//
// Video runs as three threads joined by bounded queues (decode → face work → encode), so
// memory stays flat on long videos. The output is written to a temporary file and renamed at
// the end: on any error or cancellation nothing is left at the output path, and an output
// path equal to an input is refused before anything runs. With segment_frames or several
// devices the video is made in segments joined at the end (resumable; see SwapJob::segment_dir).
//
//   job.segment_dir = "jobs/42/segments";  job.segment_frames = 250;   // resumable
//   job.devices = {{DeviceKind::kCuda, 0}, {DeviceKind::kCuda, 1}};      // split over two GPUs
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
#include "runtime/engine.h"
#include "video/media.h"

namespace fswap {

class FaceBatcher;

struct SwapJob {
  std::vector<std::string> sources;  // one or more images; the best face among them is used
  std::string target;                // image or video
  std::string output;                // same kind as the target
  // Reference mode: the face to look for. Without it, FaceFusion's reference frame: frame
  // reference_frame_number of the target (--reference-frame-number; -1: the first frame, from the
  // trim start, with a face), its face at selector.reference_position in selector.order.
  std::string reference_face_path;
  std::int64_t reference_frame_number = -1;
  std::string engine = "ort";        // --engine
  AnalyserOptions analyser;          // models, detector, score, device, threads
  // --face-selector-mode/-order and the gender/race/age filters; with any filter set every
  // detected face is classified by FaceFusion's fairface.onnx (in analyser.models_dir) and those
  // that fail are dropped before selection (in every mode; a frame left without a face is
  // written unchanged, as one where none is found).
  SelectorOptions selector;
  // --face-swapper-model: "classical" (default, no weights) or one of face_swapper_model_names()
  // (FaceFusion's <name>.onnx, its converter if any, and arcface_w600k_r50.onnx in
  // analyser.models_dir).
  std::string face_swapper_model = "classical";
  std::string face_swapper_pixel_boost;  // --face-swapper-pixel-boost "NxN"; "" = the model's size
  float face_swapper_weight = 0.5f;      // --face-swapper-weight 0..1 (0.5 leaves the source identity as it is)
  // --face-mask-types/-areas/-regions/-padding, --face-occluder-model, --face-parser-model for
  // FaceFusion's swappers (their blur is taken from swap.mask_blur).
  FaceMaskOptions face_mask;
  SwapOptions swap;                  // classical swapper options (mask_blur also feeds the box masks)
  // --processors: what runs on each frame, in this order: "face_swapper" (needs sources) and/or
  // "face_enhancer" (FaceFusion's face_enhancer; alone it enhances without swapping) on each
  // chosen face, "frame_enhancer" (FaceFusion's frame_enhancer) on the whole frame. Faces are
  // found on the frame as decoded; a job with frame_enhancer alone finds none (no face models).
  std::vector<std::string> processors = {"face_swapper"};
  // --face-enhancer-model: one of face_enhancer_model_names(), FaceFusion's <name>.onnx in
  // analyser.models_dir.
  std::string face_enhancer_model = "gfpgan_1.4";
  FaceEnhancerOptions face_enhancer;  // blend, weight (its face_mask_blur is taken from swap.mask_blur)
  // --frame-enhancer-model: one of frame_enhancer_model_names() (FaceFusion's <name>.onnx in
  // analyser.models_dir); --frame-enhancer-blend 0..100.
  std::string frame_enhancer_model = "span_kendata_x4";
  float frame_enhancer_blend = 80;
  // Video encoding: codec, crf, preset; --output-video-scale (encode.scale: the swap runs at the
  // target's size, the writer resizes) and --output-video-fps (encode.frame_rate: the writer drops
  // or repeats frames, and the face work skips those it drops; segmented runs give the same frames).
  EncodeOptions encode;
  // --output-audio-volume 0..100 (0: no audio; below 100: re-encoded at that gain) and
  // --output-audio-quality 0..100 (-1: the default 96 kb/s a channel), for the target's audio
  // (AudioSource::volume, ::quality).
  int audio_volume = 100;
  int audio_quality = -1;
  // --decoder: how the target video is decoded. kCpu: FFmpeg's frame-threaded CPU decoders;
  // kCuda: NVDEC on analyser.session.device when that is a CUDA device (else device 0), falling
  // back to the CPU where it is missing (VideoReader, DecodeOptions). The CPU is the default: on
  // the 16-core GPU machine it decodes 1080p at 170 fps and 4K at 45 where NVDEC, one frame at a
  // time, gives 91 and 30 (docs/BENCHMARKS.md); NVDEC leaves those cores to the encoder.
  enum class Decoder { kCpu, kCuda };
  Decoder decoder = Decoder::kCpu;
  // --frames-on-gpu auto|off: auto keeps a frame on the GPU from upload to download while the
  // face processors can work on it there (the native engine on CUDA: face/device_face.h, with the
  // occlusion, area and region masks of face/device_masks.h); off does all face work on host frames
  // (the comparison baseline, a fallback).
  enum class FramesOnGpu { kAuto, kOff };
  FramesOnGpu frames_on_gpu = FramesOnGpu::kAuto;
  // --gpu-lanes 1|2: with 2 the face analysis (detector, landmarker, recognizer) runs on a compute
  // lane of its own (SessionOptions::lane 1), its kernels beside the processors' instead of queued
  // behind them. Native engine on CUDA; elsewhere it changes nothing. 2 by default: on the H100 the
  // FaceFusion pipeline's 1080p steady rate rose 1.25× (docs/BENCHMARKS.md, "Compute lanes").
  int gpu_lanes = 2;
  int image_quality = 90;            // JPEG/WebP output
  // --output-image-scale 0.25..8: an image output is the processed target resized to
  // round(width × scale) × round(height × scale), each at least 1 (area-averaged where it
  // shrinks, bilinear where it enlarges: imaging's Interp::kArea).
  double image_scale = 1.0;
  std::int64_t trim_frame_start = 0; // first frame processed (0-based)
  std::int64_t trim_frame_end = -1;  // one past the last frame; -1 = to the end
  int queue_depth = 4;               // frames buffered between stages
  bool swap_faces = true;            // false: decode + encode only (fswap bench's ceiling)
  // Video only: smooth tracked faces' landmarks over frames against jitter (LandmarkSmoother).
  // Still images are never smoothed.
  // Video only: run the detector on one frame in N and follow the faces found in between from
  // their landmarks (FaceAnalyser::follow); 1 = every frame (FaceFusion). Faces that appear in
  // between are found at the next detection; with no face found, every frame is detected.
  int face_detector_interval = 1;
  bool smooth_landmarks = true;
  // Video only: --batch-frames N (≥ 1), frames whose face work runs together. Each frame is
  // analysed in order as today (detect, landmarks, selection, tracking, smoothing); then each
  // processor runs over a window of frames (stage-major), N frames at a time in lanes, so their
  // model calls meet in one batch on the native engine (through face_batcher, else a FaceBatcher
  // of the job's own with batches of up to N); frames leave the window in order. The window is N
  // while the face processors' weights fit the device budget (always on the CPU), else longer,
  // so reloading each stage's weights once per window costs at most 5% of its compute; the
  // frames held stay within 2 GiB (pipeline/stage_plan.h; SwapSummary::face_work says which).
  // Output equals the per-frame run's within float rounding (native batches: 1e-4 before
  // rounding to 8 bits; ort: identical). 1 (the default): the per-frame path while the weights fit,
  // one lane over a longer window when they do not. Not the default yet: on the H200 the
  // FaceFusion replica pipeline ran at 14.9 fps with 8 and 16.3 with 1 (1080p), its enhancer's
  // graph fixing batch 1, and the 2-core CPU showed no gain (docs/BENCHMARKS.md).
  int batch_frames = 1;

  // Segmented video: resume after a restart (issue 7) and several devices (issue 6). Video only.
  // The video is segmented when segment_frames > 0 or devices holds two or more entries:
  //   - frames [trim_frame_start, end) are encoded as segments of segment_frames frames (the last
  //     may be shorter), segment k holding frames trim_frame_start + k × segment_frames onward;
  //   - each segment is its own file in segment_dir ("segment-00000.mp4": MP4 whatever the
  //     output's container, video only, the job's encoder settings, a closed GOP starting with a
  //     key frame), so joining needs no re-encode;
  //   - with --output-video-fps (encode.frame_rate) a segment's file holds the output's ticks from
  //     its first frame's to the next segment's first frame's (maybe none), counted from the
  //     output's first frame, so the joined output has the unsegmented run's frames and timestamps;
  //   - segment_dir/manifest.json lists the finished segments (frame range, file, size, SHA-256,
  //     where its timestamps go in the output) and the job's fingerprint; it is rewritten
  //     atomically after each finished segment;
  //   - at the end the segments' packets are copied into the output with the target's audio over
  //     the whole trimmed range (one continuous stream: no seam, no audio gap), written to a
  //     temporary file and renamed onto `output` as without segments.
  // Face work restarts its tracking at each segment's first frame (landmark smoothing and
  // reference tracks; the reference identity stays the job's: the reference face, else the
  // reference frame's face, found before any part starts), so a segment's frames do not depend on which
  // run or device made the others. Frames near a boundary may differ slightly from an
  // unsegmented run, whose smoothing carries over.
  //
  // segment_dir: a directory for this job alone (created when missing; never two runs at once).
  //   A later run_swap of the same job with the same segment_dir keeps every finished segment
  //   whose file still matches the manifest (size and SHA-256) and processes only the rest
  //   (SwapProgress/SwapSummary::frames_resumed); a manifest written for other options (the
  //   fingerprint covers the inputs' paths, sizes and modification times, the models, face and
  //   encoder options, the trim range and segment_frames; an option added to SwapJob that changes
  //   the frames belongs in segment_fingerprint, swap_job.cc) is discarded with its segments, and a
  //   missing, truncated or altered segment file is redone. On success the segment files and
  //   the manifest are removed (and the directory, when that leaves it empty); on failure or
  //   cancellation they stay for the next run. Empty: a temporary directory beside the output,
  //   removed at the end either way (no resume).
  std::string segment_dir;
  // Frames per segment; 0 = unsegmented (one encoder), or with several devices one segment per
  // device. A resume needs the same value (it is part of the fingerprint).
  std::int64_t segment_frames = 0;
  // --device cuda:0,1 (parse_device_list, cli/session_flags.h). Empty or one entry: everything
  // runs on analyser.session.device. Two or more (a video): the segments are split into as many
  // contiguous parts, each run on its own thread with its own engine and sessions
  // (analyser.session with that device), then joined as above; the output equals the
  // one-device segmented run's. An image target runs on analyser.session.device alone.
  std::vector<Device> devices;

  // Shared face models (the server's concurrent jobs; pipeline/face_batcher.h): when set, the
  // job's models are loaded through it and their calls batched with other jobs'; null: the job
  // loads its own. The batcher outlives the run.
  FaceBatcher* face_batcher = nullptr;
  const std::atomic<bool>* cancel = nullptr;  // set to true to stop; run_swap returns kCancelled
  // For tests only (failure injection): called at the start of each stage's per-frame work,
  // stage "decode" (frame: index of the frame about to be read), "detect" and "landmark" (a video
  // frame's detection and landmarks ahead of its analysis, when every frame is detected), "face"
  // (the frame's analysis),
  // each processor's name on video ("face_swapper", ...: its work on the frame) and "encode"
  // (frame: the frame's index in the target). A non-ok Status fails the run as that stage's error.
  // Called from the stage's own thread; must be thread-safe. Empty: no call.
  std::function<Status(const char* stage, std::int64_t frame)> fault_injection;
};

// Frame counts cover the work of this run: a resumed run's frames_total leaves out the frames
// taken from finished segments of an earlier run (frames_resumed).
struct SwapProgress {
  std::int64_t frames_done = 0;
  std::int64_t frames_total = 0;  // estimate for video (container metadata)
  double elapsed_s = 0;
  std::int64_t frames_resumed = 0;  // segmented video: frames reused from an earlier run's segments
  // One video's stage times so far (summed over threads), read during the callback only; null
  // for images and segmented video (several ledgers).
  const TimeLedger* stages = nullptr;
  double fps() const { return elapsed_s > 0 ? frames_done / elapsed_s : 0; }
  double eta_s() const;
};

struct SwapSummary {
  std::int64_t frames = 0;           // frames in the output, resumed ones included
  std::int64_t frames_resumed = 0;   // of those, taken from an earlier run's finished segments
  std::int64_t segments = 0;         // segmented video: segments joined into the output, else 0
  std::int64_t faces_swapped = 0;    // in this run
  double seconds = 0;
  double fps() const { return seconds > 0 ? (frames - frames_resumed) / seconds : 0; }
  std::vector<TimeLedger::Entry> stages;  // decode, detect, landmarks, embed, swap, enhance, blend, encode
  // The engine's device-memory statistics at the end of the run (Engine::memory_summary: one
  // or more lines, each ending in '\n'); empty when the engine keeps none (the CPU, ort).
  std::string memory;
  std::optional<EngineMemoryStats> memory_stats;  // the same as numbers (Engine::memory_stats); not set for segmented runs
  // Video: the window of face work at the end (StagePlan::to_string, SwapJob::batch_frames);
  // empty for an image.
  std::string face_work;
};

// Called after each frame; with several devices, from their threads, one call at a time.
using ProgressCallback = std::function<void(const SwapProgress&)>;

Result<SwapSummary> run_swap(const SwapJob& job, const ProgressCallback& on_progress = {});

// The checks run_swap makes before any work: the processors are known, inputs exist and are
// media (sources only when face_swapper runs), the output's directory exists, its extension
// suits the target, and it is not one of the inputs.
Status validate_job(const SwapJob& job);

}  // namespace fswap
