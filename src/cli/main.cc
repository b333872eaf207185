// fswap: the command-line interface. Statuses become exit codes here: 0 success,
// 2 bad input or usage, 1 internal failure.
#include <malloc.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "cli/model_commands.h"
#include "cli/models_command.h"
#include "cli/progress.h"
#include "cli/serve_command.h"
#include "cli/session_flags.h"
#include "core/log.h"
#include "core/parallel.h"
#include "face/frame_enhancer.h"
#include "fswap/fswap.h"
#include "runtime/engine.h"
#include "runtime/engines/model_tools.h"

namespace fswap {
namespace {

constexpr int kExitOk = 0, kExitInternal = 1, kExitUsage = 2;

int exit_code(const Status& s) {
  if (s.is_ok()) return kExitOk;
  return s.is_user_error() ? kExitUsage : kExitInternal;
}

int report(const Status& s) {
  std::fprintf(stderr, "fswap: error: %s\n", s.message().c_str());
  return exit_code(s);
}

// Options shared by swap and bench.
struct CommonOptions {
  std::string engine = "auto";
  std::string device = "cpu";
  std::vector<std::string> execution_providers;  // FaceFusion's spelling of --device
  SessionFlags session;                          // --precision, --vram-budget, --memory-mode
  int threads = 0;
  std::string models_dir = FSWAP_DEFAULT_MODELS_DIR;
  std::string detector = "fr_detect";
  std::string swapper_model = "classical";
  std::string swapper_pixel_boost;
  float swapper_weight = 0.5f;
  FaceMaskOptions face_mask;
  std::vector<float> mask_padding = {0, 0, 0, 0};
  std::vector<std::string> processors = {"face_swapper"};
  std::string enhancer_model = "gfpgan_1.4";
  float enhancer_blend = 80;
  std::string frame_enhancer_model = "span_kendata_x4";
  float frame_enhancer_blend = 80;
  float enhancer_weight = 0.5f;
  float detector_score = 0.5f;
  std::string detector_size = "640x640";
  std::vector<int> detector_margin = {0, 0, 0, 0};
  std::vector<int> detector_angles = {0};
  int detector_interval = 1;
  int batch_frames = 1;
  std::string landmarker = "fr_landmark";
  float landmarker_score = 0.5f;
  std::string selector_mode = "reference";
  std::string selector_order = "large-small";
  FaceFilter selector_filter;
  float reference_distance = 0.3f;
  int reference_position = 0;
  std::int64_t reference_frame = -1;
  std::string reference_face_path;
  float mask_blur = 0.3f;
  int video_quality = 80;
  std::string video_preset = "veryfast";
  std::string decoder = "cpu";
  int gpu_lanes = 2;
  std::string frames_on_gpu = "auto";
  int image_quality = 80;
  double video_scale = 1.0;
  double video_fps = 0;  // 0: the target's
  double image_scale = 1.0;
  int audio_volume = 100;
  int audio_quality = -1;  // -1: not given (96 kb/s a channel)
  std::int64_t trim_start = 0, trim_end = -1;
  std::string segment_dir;
  std::int64_t segment_frames = 0;
  std::string log_level = "warning";

  void add_to(CLI::App& app) {
    app.add_option("--engine", engine, "Inference engine: auto, ort, native")->capture_default_str();
    app.add_option("--device", device,
                   "cpu, cuda or cuda:N; a list (cuda:0,1 or cpu,cpu) splits a video into one part per device, "
                   "joined without a seam")
        ->capture_default_str();
    app.add_option("--execution-providers", execution_providers,
                   "FaceFusion compatibility: cuda, tensorrt or cpu (first one wins; maps to --device)");
    session.add_to(app);
    app.add_option("--threads", threads, "CPU threads for inference and imaging (0 = all cores)")->capture_default_str();
    app.add_option("--models-dir", models_dir, "Folder holding the model files")->capture_default_str();
    app.add_option("--face-detector-model", detector, "fr_detect, blazeface, or FaceFusion's yoloface / scrfd / retinaface / yunet / many (their files in --models-dir; many = yoloface, scrfd and retinaface merged)")->capture_default_str();
    std::vector<std::string> swapper_models = {"classical"};
    for (const auto& name : face_swapper_model_names()) swapper_models.push_back(name);
    app.add_option("--face-swapper-model", swapper_model,
                   "classical (default, no weights) or FaceFusion's inswapper_128(_fp16), hyperswap_1a/1b/1c_256, "
                   "simswap_256, simswap_unofficial_512, ghost_1/2/3_256, hififace_unofficial_256, blendswap_256, "
                   "uniface_256 (<name>.onnx, its crossface converter and arcface_w600k_r50 in --models-dir)")
        ->check(CLI::IsMember(swapper_models))->capture_default_str();
    app.add_option("--face-swapper-pixel-boost", swapper_pixel_boost,
                   "Crop size NxN for FaceFusion's swappers, a multiple of the model's size (e.g. 512x512); "
                   "default the model's size");
    app.add_option("--face-swapper-weight", swapper_weight,
                   "FaceFusion swappers: 0..1, the source identity mixed with each target's (0.5 = the source's alone)")
        ->check(CLI::Range(0.0, 1.0))->capture_default_str();
    app.add_option("--face-mask-types", face_mask.types, "FaceFusion swappers' masks, combined by minimum: box, occlusion, area, region")
        ->check(CLI::IsMember({"box", "occlusion", "area", "region"}))->capture_default_str();
    app.add_option("--face-mask-areas", face_mask.areas, "Areas for the area mask: upper-face, lower-face, mouth")
        ->check(CLI::IsMember({"upper-face", "lower-face", "mouth"}))->capture_default_str();
    app.add_option("--face-mask-regions", face_mask.regions,
                   "Regions for the region mask: skin, left-eyebrow, right-eyebrow, left-eye, right-eye, glasses, "
                   "nose, mouth, upper-lip, lower-lip")
        ->check(CLI::IsMember({"skin", "left-eyebrow", "right-eyebrow", "left-eye", "right-eye", "glasses", "nose",
                               "mouth", "upper-lip", "lower-lip"}))
        ->capture_default_str();
    app.add_option("--face-mask-padding", mask_padding, "Box mask padding in % (top right bottom left; 1 to 4 values as in CSS)")
        ->expected(1, 4)->check(CLI::Range(0.0, 100.0))->capture_default_str();
    app.add_option("--face-occluder-model", face_mask.occluder_model, "Occlusion mask model: xseg_1, xseg_2, xseg_3, many")
        ->check(CLI::IsMember({"xseg_1", "xseg_2", "xseg_3", "many"}))->capture_default_str();
    app.add_option("--face-parser-model", face_mask.parser_model, "Region mask model: bisenet_resnet_18, bisenet_resnet_34")
        ->check(CLI::IsMember({"bisenet_resnet_18", "bisenet_resnet_34"}))->capture_default_str();
    app.add_option("--processors", processors,
                   "face_swapper, face_enhancer (on each face) and/or frame_enhancer (the whole frame), run in this "
                   "order")
        ->check(CLI::IsMember({"face_swapper", "face_enhancer", "frame_enhancer"}))->capture_default_str();
    app.add_option("--face-enhancer-model", enhancer_model,
                   "FaceFusion's face enhancer (its <name>.onnx in --models-dir), for --processors face_enhancer")
        ->check(CLI::IsMember(face_enhancer_model_names()))->capture_default_str();
    app.add_option("--face-enhancer-blend", enhancer_blend, "Share of the enhanced face in the result 0..100")
        ->check(CLI::Range(0.0, 100.0))->capture_default_str();
    app.add_option("--face-enhancer-weight", enhancer_weight,
                   "Fidelity weight 0..1, fed only to models with a weight input (codeformer)")
        ->check(CLI::Range(0.0, 1.0))->capture_default_str();
    app.add_option("--frame-enhancer-model", frame_enhancer_model,
                   "FaceFusion's frame enhancer (its <name>.onnx in --models-dir), for --processors frame_enhancer")
        ->check(CLI::IsMember(frame_enhancer_model_names()))->capture_default_str();
    app.add_option("--frame-enhancer-blend", frame_enhancer_blend, "Share of the enhanced frame in the result 0..100")
        ->check(CLI::Range(0.0, 100.0))->capture_default_str();
    app.add_option("--face-landmarker-model", landmarker,
                   "fr_landmark, or FaceFusion's 2dfan4 / peppa_wutz (their files in --models-dir; with fan_68_5.onnx "
                   "there, faces below --face-landmarker-score use the detector's five points and fan_68_5)")
        ->check(CLI::IsMember({"fr_landmark", "2dfan4", "peppa_wutz"}))->capture_default_str();
    app.add_option("--face-landmarker-score", landmarker_score, "Minimum score 0..1 of FaceFusion's landmarkers")
        ->check(CLI::Range(0.0, 1.0))->capture_default_str();
    app.add_option("--face-detector-score", detector_score, "Minimum detection score 0..1")
        ->check(CLI::Range(0.0, 1.0))->capture_default_str();
    app.add_option("--face-detector-size", detector_size,
                   "FaceFusion's detectors: input size NxN (yoloface, yunet and many: 640x640; scrfd, retinaface: 160x160 to "
                   "640x640 in steps of 32)")
        ->capture_default_str();
    app.add_option("--face-detector-margin", detector_margin,
                   "FaceFusion's detectors: zero border added before detecting, top right bottom left, 0..100 "
                   "(100 = half the frame's height or width)")
        ->expected(4)->check(CLI::Range(0, 100))->capture_default_str();
    app.add_option("--face-detector-angles", detector_angles,
                   "FaceFusion's detectors: detect in the frame turned counter-clockwise by each of these angles (0 = upright)")
        ->check(CLI::IsMember({0, 90, 180, 270}))->capture_default_str();
    app.add_option("--face-detector-interval", detector_interval,
                   "Video: detect on one frame in N and follow the faces from their landmarks in between "
                   "(1 = every frame, as FaceFusion)")
        ->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--batch-frames", batch_frames,
                   "Video: frames whose face work runs together, each processor over all of them in one batch "
                   "(1 = frame by frame)")
        ->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--face-selector-mode", selector_mode, "one (largest), many, reference")
        ->check(CLI::IsMember({"one", "many", "reference"}))->capture_default_str();
    app.add_option("--face-selector-order", selector_order, "Order of the faces (one: the first is swapped)")
        ->check(CLI::IsMember({"left-right", "right-left", "top-bottom", "bottom-top", "small-large", "large-small",
                               "best-worst", "worst-best"}))
        ->capture_default_str();
    app.add_option("--face-selector-gender", selector_filter.gender,
                   "Only faces fairface calls female or male, or auto: the largest source face's (fairface.onnx in "
                   "--models-dir)")
        ->check(CLI::IsMember({"female", "male", "auto"}));
    app.add_option("--face-selector-race", selector_filter.race,
                   "Only faces fairface calls white, black, latino, asian, indian or arabic, or auto: the largest "
                   "source face's (fairface.onnx)")
        ->check(CLI::IsMember({"white", "black", "latino", "asian", "indian", "arabic", "auto"}));
    app.add_option("--face-selector-age-start", selector_filter.age_start,
                   "Only faces whose fairface age bucket reaches this age or above, 0..100 (fairface.onnx)")
        ->check(CLI::Range(0, 100));
    app.add_option("--face-selector-age-end", selector_filter.age_end,
                   "Only faces whose fairface age bucket starts below this age, 0..100 (fairface.onnx)")
        ->check(CLI::Range(0, 100));
    app.add_option("--reference-face-path", reference_face_path, "Image of the face to replace (reference mode)");
    app.add_option("--reference-face-distance", reference_distance,
                   "Reference match threshold 0..1 (lower is stricter)")->check(CLI::Range(0.0, 1.0))->capture_default_str();
    app.add_option("--reference-face-position", reference_position,
                   "Reference mode: which face of the reference frame, counted in --face-selector-order")
        ->check(CLI::NonNegativeNumber)->capture_default_str();
    app.add_option("--reference-frame-number", reference_frame,
                   "Reference mode: the target frame the reference face is taken from (default: the first with a face)")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--face-mask-blur", mask_blur, "Feather of the face mask 0..1")
        ->check(CLI::Range(0.0, 1.0))->capture_default_str();
    app.add_option("--output-video-quality", video_quality, "0..100 (mapped to x264 CRF 51..0)")
        ->check(CLI::Range(0, 100))->capture_default_str();
    app.add_option("--output-video-scale", video_scale,
                   "0.25..8: the output video's size is the target's × this (each side rounded to the nearest even "
                   "number)")
        ->check(CLI::Range(0.25, 8.0))->capture_default_str();
    app.add_option("--output-video-fps", video_fps,
                   "Output frame rate (default the target's): frames dropped or repeated by timestamp, as FFmpeg's "
                   "fps filter; the audio keeps its timing")
        ->check(CLI::Validator(
            [](std::string& text) {
              double fps = 0;
              return CLI::detail::lexical_cast(text, fps) && fps > 0 ? std::string()
                                                                     : "Value " + text + " must be greater than 0";
            },
            "> 0"));
    app.add_option("--output-audio-volume", audio_volume,
                   "0..100: 0 writes no audio; below 100 the target's audio is scaled (linear gain) and re-encoded "
                   "to AAC instead of copied")
        ->check(CLI::Range(0, 100))->capture_default_str();
    app.add_option("--output-audio-quality", audio_quality,
                   "0..100 when the audio is re-encoded: AAC VBR quality q:a 0.1..2.0 (FaceFusion's mapping); "
                   "default a constant 96 kb/s a channel")
        ->check(CLI::Range(0, 100));
    app.add_option("--output-video-preset", video_preset, "x264 preset")
        ->check(CLI::IsMember({"ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"}))
        ->capture_default_str();
    app.add_option("--decoder", decoder,
                   "Video decoding: cpu, or cuda (NVDEC on the --device GPU; the CPU where it is missing)")
        ->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
    app.add_option("--frames-on-gpu", frames_on_gpu,
                   "auto: keep each frame on the GPU while the face processors can work on it there (native "
                   "engine on CUDA); off: face work on host frames")
        ->check(CLI::IsMember({"auto", "off"}))->capture_default_str();
    app.add_option("--gpu-lanes", gpu_lanes,
                   "2: the face analysis on a compute stream of its own beside the processors' (native "
                   "engine on CUDA); 1: one stream")
        ->check(CLI::Range(1, 2))->capture_default_str();
    app.add_option("--output-image-quality", image_quality, "0..100 for JPEG/WebP output")
        ->check(CLI::Range(0, 100))->capture_default_str();
    app.add_option("--output-image-scale", image_scale, "0.25..8: the output image's size is the target's × this")
        ->check(CLI::Range(0.25, 8.0))->capture_default_str();
    app.add_option("--trim-frame-start", trim_start, "First frame to process")->check(CLI::NonNegativeNumber);
    app.add_option("--trim-frame-end", trim_end, "Frame after the last one to process")->check(CLI::NonNegativeNumber);
    app.add_option("--segment-dir", segment_dir,
                   "Video: keep finished segments here, so running the same command again resumes after the last "
                   "finished segment (needs --segment-frames)");
    app.add_option("--segment-frames", segment_frames,
                   "Video: encode in segments of this many frames (0 = one piece), joined at the end without "
                   "re-encoding")
        ->check(CLI::NonNegativeNumber)->capture_default_str();
    app.add_option("--log-level", log_level, "debug, info, warning, error")
        ->check(CLI::IsMember({"debug", "info", "warning", "error"}))->capture_default_str();
  }

  Result<SwapJob> to_job() const {
    set_log_level(log_level == "debug" ? LogLevel::kDebug
                  : log_level == "info" ? LogLevel::kInfo
                  : log_level == "error" ? LogLevel::kError
                                         : LogLevel::kWarn);
    SwapJob job;
    job.engine = engine;
    std::string device_text = device;
    if (!execution_providers.empty()) {
      const std::string& ep = execution_providers.front();
      if (ep == "cuda" || ep == "tensorrt") device_text = "cuda";
      else if (ep == "cpu") device_text = "cpu";
      else return invalid_input("unknown execution provider '" + ep + "' (cuda, tensorrt, cpu)");
    }
    FSWAP_ASSIGN_OR_RETURN(job.devices, parse_device_list(device_text));
    job.analyser.session.device = job.devices.front();
    job.analyser.session.threads = threads;
    // Every session the job loads (detector, landmarks, recognizer, inswapper + arcface, face
    // enhancer) takes job.analyser.session, so the flags reach them all.
    FSWAP_RETURN_IF_ERROR(session.apply(job.analyser.session));
    for (const Device& d : job.devices) {  // each part of a device list checked like the first
      SessionOptions part = job.analyser.session;
      part.device = d;
      FSWAP_RETURN_IF_ERROR(session.apply(part));
    }
    job.analyser.models_dir = models_dir;
    job.analyser.detector = detector;
    job.analyser.detect.score_threshold = detector_score;
    FSWAP_ASSIGN_OR_RETURN(job.analyser.detect.detector_size, parse_detector_size(detector_size));
    std::copy(detector_margin.begin(), detector_margin.end(), job.analyser.detect.margin.begin());
    job.analyser.detect.angles = detector_angles;
    job.face_detector_interval = detector_interval;
    job.batch_frames = batch_frames;
    job.analyser.landmarker = landmarker;
    job.analyser.landmarker_score = landmarker_score;
    FSWAP_ASSIGN_OR_RETURN(job.selector.mode, parse_selector_mode(selector_mode));
    FSWAP_ASSIGN_OR_RETURN(job.selector.order, parse_face_order(selector_order));
    FSWAP_RETURN_IF_ERROR(validate_face_filter(selector_filter));
    job.selector.filter = selector_filter;
    job.selector.reference_distance = reference_distance;
    job.selector.reference_position = reference_position;
    job.reference_frame_number = reference_frame;
    job.reference_face_path = reference_face_path;
    job.swap.mask_blur = mask_blur;
    job.face_swapper_model = swapper_model;
    job.face_swapper_pixel_boost = swapper_pixel_boost;
    job.face_swapper_weight = swapper_weight;
    job.face_mask = face_mask;
    // FaceFusion's normalize_padding: 1 value for all sides, 2 for (top/bottom, right/left), 3
    // for (top, right/left, bottom), 4 as given.
    const std::vector<float>& p = mask_padding;
    if (p.size() == 1) job.face_mask.padding = {p[0], p[0], p[0], p[0]};
    else if (p.size() == 2) job.face_mask.padding = {p[0], p[1], p[0], p[1]};
    else if (p.size() == 3) job.face_mask.padding = {p[0], p[1], p[2], p[1]};
    else if (p.size() == 4) job.face_mask.padding = {p[0], p[1], p[2], p[3]};
    job.processors = processors;
    job.face_enhancer_model = enhancer_model;
    job.face_enhancer.blend = enhancer_blend;
    job.frame_enhancer_model = frame_enhancer_model;
    job.frame_enhancer_blend = frame_enhancer_blend;
    job.face_enhancer.weight = enhancer_weight;
    // FaceFusion's mapping: quality 0..100 → CRF 51..0.
    job.encode.crf = static_cast<int>(std::lround(51.0 - video_quality * 0.51));
    job.encode.preset = video_preset;
    job.encode.scale = video_scale;
    job.encode.frame_rate = frame_rate_from_fps(video_fps);
    job.audio_volume = audio_volume;
    job.audio_quality = audio_quality;
    job.decoder = decoder == "cuda" ? SwapJob::Decoder::kCuda : SwapJob::Decoder::kCpu;
    job.gpu_lanes = gpu_lanes;
    job.frames_on_gpu = frames_on_gpu == "off" ? SwapJob::FramesOnGpu::kOff : SwapJob::FramesOnGpu::kAuto;
    job.image_quality = image_quality;
    job.image_scale = image_scale;
    job.trim_frame_start = trim_start;
    job.trim_frame_end = trim_end;
    if (!segment_dir.empty() && segment_frames == 0)
      return invalid_input("--segment-dir needs --segment-frames N (the segment length in frames)");
    job.segment_dir = segment_dir;
    job.segment_frames = segment_frames;
    return job;
  }
};

// The engine's device-memory statistics (SwapSummary::memory), each line after prefix.
void print_memory(std::FILE* out, const std::string& memory, const char* prefix) {
  std::size_t begin = 0;
  while (begin < memory.size()) {
    std::size_t end = memory.find('\n', begin);
    if (end == std::string::npos) end = memory.size();
    std::fprintf(out, "%s%.*s\n", prefix, static_cast<int>(end - begin), memory.data() + begin);
    begin = end + 1;
  }
}

// The GPU's busy share of the run (the engine's gpu_busy_seconds over the run's wall time; summed
// over devices), when the engine keeps device statistics.
void print_gpu_busy(std::FILE* out, const SwapSummary& s, const char* prefix) {
  if (s.memory_stats && s.seconds > 0)
    std::fprintf(out, "%sGPU busy %.0f%% of the run\n", prefix, 100 * s.memory_stats->gpu_busy_seconds / s.seconds);
}

void print_summary(const SwapSummary& s, const std::string& output) {
  std::fprintf(stderr, "fswap: wrote %s: %lld frames, %lld faces swapped, %.2f s, %.1f fps\n", output.c_str(),
               static_cast<long long>(s.frames), static_cast<long long>(s.faces_swapped), s.seconds, s.fps());
  if (s.segments > 0)
    std::fprintf(stderr, "fswap: joined %lld segments; %lld frames resumed from an earlier run\n",
                 static_cast<long long>(s.segments), static_cast<long long>(s.frames_resumed));
  std::string stages;
  for (const auto& e : s.stages) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "%s%s %.1f ms/frame", stages.empty() ? "" : ", ", e.stage.c_str(),
                  s.frames ? e.seconds * 1000 / s.frames : 0.0);
    stages += buf;
  }
  if (!stages.empty()) std::fprintf(stderr, "fswap: stage time (summed over threads): %s\n", stages.c_str());
  if (!s.face_work.empty()) std::fprintf(stderr, "fswap: face work: %s\n", s.face_work.c_str());
  print_memory(stderr, s.memory, "fswap: ");
  print_gpu_busy(stderr, s, "fswap: ");
}

int run_swap_command(const CommonOptions& common, const std::vector<std::string>& sources, const std::string& target,
                     const std::string& output) {
  auto job = common.to_job();
  if (!job) return report(job.status());
  job->sources = sources;
  job->target = target;
  job->output = output;
  set_worker_threads(common.threads);
  ProgressPrinter printer(isatty(STDERR_FILENO));
  auto summary = run_swap(*job, [&](const SwapProgress& p) { printer.update(p); });
  printer.finish();
  if (!summary) return report(summary.status());
  print_summary(*summary, output);
  return kExitOk;
}

// What a bench row runs: decode + encode of the target (the ceiling), the full swap, and decode +
// encode of the swap's own output: the ceiling for what the swap makes, since swapped faces can
// cost the encoder more per frame than the target's (the FaceFusion replicas' random weights paint
// noise-like faces: docs/BENCHMARKS.md, session 18).
enum class BenchMode { kCeiling, kSwap, kReencode };

const char* bench_mode_name(BenchMode mode) {
  switch (mode) {
    case BenchMode::kCeiling: return "dec+enc";
    case BenchMode::kSwap: return "swap";
    case BenchMode::kReencode: return "re-encode";
  }
  return "?";
}

// "steady": the fps from frame kSteadyFrom on, past the models' loading and first runs (cuDNN's
// algorithm search, CUDA graph capture), which weigh on short clips; "first": seconds from the
// start to the first frame written, which they make up. The stage times are the steady ones too
// where the clip has frames past kSteadyFrom (all frames' otherwise).
constexpr std::int64_t kSteadyFrom = 30;

// Runs the job once and prints its row (and memory lines) under `target`'s name: its steady fps,
// 0 when the clip is too short for one, or the error.
Result<double> run_bench_row(const SwapJob& job, const std::string& target, BenchMode mode) {
  SwapProgress first, from, last;
  std::map<std::string, double> stages_before;  // seconds by stage at frame kSteadyFrom
  auto s = run_swap(job, [&](const SwapProgress& p) {
    if (p.frames_done == 1) first = p;
    if (p.frames_done == kSteadyFrom) {
      from = p;
      if (p.stages != nullptr)
        for (const auto& e : p.stages->entries()) stages_before[e.stage] = e.seconds;
    }
    last = p;
  });
  if (!s) return s.status();
  const bool steady = from.frames_done > 0 && last.frames_done > from.frames_done && last.elapsed_s > from.elapsed_s;
  const std::int64_t stage_frames = steady && !stages_before.empty() ? s->frames - kSteadyFrom : s->frames;
  std::string stages;
  for (const auto& e : s->stages) {
    const double seconds = e.seconds - (stage_frames < s->frames ? stages_before[e.stage] : 0.0);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s=%.2f ", e.stage.c_str(), seconds * 1000 / std::max<std::int64_t>(1, stage_frames));
    stages += buf;
  }
  const double steady_fps =
      steady ? static_cast<double>(last.frames_done - from.frames_done) / (last.elapsed_s - from.elapsed_s) : 0.0;
  char steady_text[16] = "-";
  if (steady) std::snprintf(steady_text, sizeof steady_text, "%.1f", steady_fps);
  std::printf("%-28s %-10s %7lld %8.1f %8s %8.2f  %s\n", std::filesystem::path(target).filename().c_str(),
              bench_mode_name(mode), static_cast<long long>(s->frames), s->fps(), steady_text, first.elapsed_s,
              stages.c_str());
  print_memory(stdout, s->memory, "  ");
  print_gpu_busy(stdout, *s, "  ");
  std::fflush(stdout);
  return steady_fps;
}

// Runs each target three times (BenchMode) in each of `rounds` rounds, printing every row and
// each round's swap as a share of both ceilings; with several rounds, the medians of those
// shares last (each round's ceilings run beside its swap, so a machine whose speed drifts
// between rounds still compares like with like).
int run_bench_command(const CommonOptions& common, const std::vector<std::string>& sources,
                      const std::vector<std::string>& targets, int rounds) {
  auto job = common.to_job();
  if (!job) return report(job.status());
  set_worker_threads(common.threads);
  job->sources = sources;
  const auto dir = std::filesystem::temp_directory_path() / ("fswap-bench-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::printf("%-28s %-10s %7s %8s %8s %8s  %s\n", "target", "mode", "frames", "fps", "steady", "first s",
              "ms/frame per stage (steady)");
  int rc = kExitOk;
  for (const auto& target : targets) {
    const std::string name = std::filesystem::path(target).filename().string();
    const std::string extension = std::filesystem::path(target).extension().string();
    const std::string swapped = (dir / ("swap" + extension)).string();
    std::vector<double> of_ceiling, of_reencode;  // the swap's share of each, a round each
    for (int round = 0; round < rounds; ++round) {
      std::map<BenchMode, double> steady_of;
      for (BenchMode mode : {BenchMode::kCeiling, BenchMode::kSwap, BenchMode::kReencode}) {
        if (mode == BenchMode::kReencode && !steady_of.contains(BenchMode::kSwap)) continue;  // no output to read
        job->target = mode == BenchMode::kReencode ? swapped : target;
        job->output = mode == BenchMode::kSwap ? swapped : (dir / ("copy" + extension)).string();
        job->swap_faces = mode == BenchMode::kSwap;
        const Result<double> steady = run_bench_row(*job, target, mode);
        if (!steady) {
          rc = report(steady.status());
          continue;
        }
        steady_of[mode] = *steady;
      }
      const double swap = steady_of[BenchMode::kSwap], ceiling = steady_of[BenchMode::kCeiling],
                   reencode = steady_of[BenchMode::kReencode];
      if (swap <= 0 || ceiling <= 0 || reencode <= 0) continue;
      of_ceiling.push_back(swap / ceiling);
      of_reencode.push_back(swap / reencode);
      std::printf("%-28s steady swap: %.0f%% of dec+enc, %.0f%% of re-encode\n", name.c_str(), 100 * of_ceiling.back(),
                  100 * of_reencode.back());
    }
    if (of_ceiling.size() > 1)
      std::printf("%-28s median of %zu rounds: %.0f%% of dec+enc, %.0f%% of re-encode\n", name.c_str(),
                  of_ceiling.size(), 100 * percentile(of_ceiling, 50), 100 * percentile(of_reencode, 50));
  }
  std::filesystem::remove_all(dir);
  return rc;
}

int run_info_command(const std::string& models_dir) {
  std::printf("fswap %s (C++20; CUDA targets %s)\n", version(), FSWAP_CUDA_BUILD ? "built" : "not built");
  std::printf("cpu threads: %d\n", worker_threads());
  for (const char* name : {"ort", "native"}) {
    auto engine = make_engine(name);
    if (!engine) {
      std::printf("engine %-6s unavailable: %s\n", name, engine.status().message().c_str());
      continue;
    }
    std::string devices;
    for (const auto& d : (*engine)->available_devices()) devices += (devices.empty() ? "" : ", ") + d;
    std::printf("engine %-6s devices: %s\n", name, devices.c_str());
  }
  std::printf("models dir: %s\n", models_dir.c_str());
  for (const char* file : {"fr_detect.onnx", "fr_landmark.onnx", "fr_feature.onnx", "blazeface_back_256.onnx"}) {
    const auto path = std::filesystem::path(models_dir) / file;
    std::error_code ec;
    const bool present = std::filesystem::is_regular_file(path, ec);
    std::printf("  %-26s %s\n", file, present ? "present" : "missing (run scripts/setup.sh)");
  }
  return kExitOk;
}

}  // namespace
}  // namespace fswap

int main(int argc, char** argv) {
  using namespace fswap;
  // Frames and their working images are megabytes each and come and go every frame: keep them
  // in the heap instead of mmap/munmap per allocation, which re-zeroes pages each time
  // (-8% CPU on 1080p swaps: 63k → 51k page faults per 60 frames).
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  CLI::App app{"fswap: face swap for images and video, within any GPU memory budget"};
  app.set_version_flag("--version", std::string("fswap ") + version());
  app.require_subcommand(1);

  CommonOptions common;
  std::vector<std::string> sources;
  std::string target, output;
  auto* swap = app.add_subcommand("swap", "Put the face from the source image(s) into the target image or video");
  swap->add_option("-s,--source-paths", sources, "Source image(s) with the face to use (needed by face_swapper)");
  swap->add_option("-t,--target-path", target, "Target image or video")->required();
  swap->add_option("-o,--output-path", output, "Output image or video (.png/.jpg/.webp or .mp4/.mkv/.mov)")->required();
  common.add_to(*swap);

  CommonOptions bench_common;
  std::vector<std::string> bench_sources, bench_targets;
  int bench_rounds = 1;
  auto* bench = app.add_subcommand("bench", "Measure fps and per-stage time: decode+encode only, then the full swap");
  bench->add_option("-s,--source-paths", bench_sources, "Source image(s)")->required();
  bench->add_option("-t,--target-paths", bench_targets, "Target videos or images")->required();
  bench->add_option("--rounds", bench_rounds,
                    "Run dec+enc, swap and re-encode this many times in turn; prints the median shares last")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  bench_common.add_to(*bench);

  std::string info_models_dir = FSWAP_DEFAULT_MODELS_DIR;
  auto* info = app.add_subcommand("info", "Show the version, engines, devices and models");
  info->add_option("--models-dir", info_models_dir, "Folder holding the model files")->capture_default_str();

  ModelCommands model_commands;
  model_commands.add_to(app);
  ModelsCommand models_command;
  models_command.add_to(app);
  ServeCommand serve_command;
  serve_command.add_to(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  try {
    if (*swap) return run_swap_command(common, sources, target, output);
    if (*bench) return run_bench_command(bench_common, bench_sources, bench_targets, bench_rounds);
    if (*info) return run_info_command(info_models_dir);
    if (*serve_command.serve) {
      const Status s = serve_command.run();
      return s.is_ok() ? kExitOk : report(s);
    }
    if (*model_commands.model) {
      const Status s = model_commands.run_selected();
      return s.is_ok() ? kExitOk : report(s);
    }
    if (*models_command.models) {
      const Status s = models_command.run_selected();
      return s.is_ok() ? kExitOk : report(s);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fswap: internal error: %s\n", e.what());
    return kExitInternal;
  }
  return kExitUsage;
}
