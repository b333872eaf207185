#include "pipeline/swap_job.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "core/bounded_queue.h"
#include "core/log.h"
#include "core/thread_name.h"
#include "face/device_face.h"
#include "face/face_region.h"
#include "face/face_tracker.h"
#include "face/landmark_smoother.h"
#include "face/reference_tracker.h"
#include "fswap/fswap.h"
#include "imaging/transform.h"
#include "pipeline/face_batcher.h"
#include "pipeline/gpu_turns.h"
#include "pipeline/processors.h"
#include "pipeline/stage_plan.h"
#include "video/segments.h"

namespace fswap {
namespace fs = std::filesystem;

double SwapProgress::eta_s() const {
  const double rate = fps();
  if (rate <= 0 || frames_total <= frames_done) return 0;
  return (frames_total - frames_done) / rate;
}

namespace {

using Clock = std::chrono::steady_clock;

std::string lower_extension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

bool is_image_extension(const std::string& ext) {
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".webp";
}
bool is_video_extension(const std::string& ext) { return ext == ".mp4" || ext == ".mkv" || ext == ".mov"; }

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  if (fs::exists(a, ec) && fs::exists(b, ec)) return fs::equivalent(a, b, ec);
  return fs::weakly_canonical(a, ec) == fs::weakly_canonical(b, ec);
}

Status check_input(const std::string& role, const std::string& path) {
  if (path.empty()) return invalid_input("no " + role + " given");
  std::error_code ec;
  if (!fs::exists(path, ec)) return not_found(role + " " + path + ": no such file");
  if (fs::is_directory(path, ec)) return invalid_input(role + " " + path + ": is a directory, not a media file");
  return Status::ok();
}

// The threads of a job's lanes, kept for the whole video: lane 0 is the caller, lanes 1..n-1
// are helpers waiting for the next task. (A fresh thread per stage would get a fresh malloc
// arena each time, and resident memory crept up over a long video.)
class LaneCrew {
 public:
  explicit LaneCrew(int lanes) {
    for (int k = 1; k < lanes; ++k) threads_.emplace_back([this, k] {
      name_this_thread("fswap-lane");
      helper(k);
    });
  }
  ~LaneCrew() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    start_cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  LaneCrew(const LaneCrew&) = delete;
  LaneCrew& operator=(const LaneCrew&) = delete;

  // task(k) for every lane k < n (n ≤ the crew's lanes), k = 0 on the calling thread; returns
  // when all are done. One run at a time.
  void run(int n, const std::function<void(int)>& task) {
    {
      std::lock_guard lock(mu_);
      task_ = &task;
      lanes_ = n;
      pending_ = n - 1;
      ++generation_;
    }
    start_cv_.notify_all();
    task(0);
    std::unique_lock lock(mu_);
    done_cv_.wait(lock, [&] { return pending_ == 0; });
  }

 private:
  void helper(int k) {
    std::uint64_t seen = 0;
    std::unique_lock lock(mu_);
    while (true) {
      start_cv_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      if (k >= lanes_) continue;
      const auto* task = task_;
      lock.unlock();
      (*task)(k);
      lock.lock();
      if (--pending_ == 0) done_cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  const std::function<void(int)>* task_ = nullptr;  // the run's task; guarded by mu_
  int lanes_ = 0;                // lanes of the run
  int pending_ = 0;              // helpers of the run not done yet
  std::uint64_t generation_ = 0; // runs started
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// One set of the job's processors. Each processor is used from one thread at a time, so a job
// whose frames run in lanes keeps one set per lane (their models are shared through the batcher).
struct Processors {
  std::unique_ptr<FaceSwapper> swapper;    // when the processors include face_swapper
  std::unique_ptr<FaceEnhancer> enhancer;  // when they include face_enhancer
  std::unique_ptr<FrameEnhancer> frame_enhancer;  // when they include frame_enhancer
  // The budget could not hold a frame on the GPU beside a processor's work there (a 4K frame and
  // gfpgan's activations at a tight --vram-budget): from then on this lane's face processors send
  // each face's region of the frame to the GPU (face/face_region.h), not the whole frame.
  bool region_frames = false;
  // Faces whose region did not fit either (done on the host); the first is logged.
  int region_misses = 0;

  // The face processors' device buffers kept between faces go back; the next face makes them again.
  void release_device_buffers() {
    if (swapper) swapper->release_device_buffers();
    if (enhancer) enhancer->release_device_buffers();
  }
};

// The shared state of one job: models, the chosen source and the reference identity.
struct JobContext {
  explicit JobContext(const SwapJob& j) : job(j), tracker(j.selector) {}
  const SwapJob& job;
  std::unique_ptr<FaceBatcher> own_batcher;  // lanes without SwapJob::face_batcher; outlives the engine
  FaceBatcher* batcher = nullptr;            // job.face_batcher or own_batcher; null: a plain engine
  std::unique_ptr<Engine> engine;
  std::unique_ptr<FaceAnalyser> analyser;
  FaceFilter filter;                // job.selector.filter, auto resolved from the source (load_models)
  std::vector<SourceFace> sources;  // face_swapper: the source faces, sources[best_source] the best
  std::size_t best_source = 0;
  std::vector<Processors> lanes;    // lanes[0] for images and the per-frame path
  std::unique_ptr<LaneCrew> crew;   // the lanes' threads when there are two or more
  StagePlanInput plan_input;        // weights, budget, frame size, measured compute
  StagePlan plan;                   // video: the window of face work (StagePlan)
  double stage_seconds = 0;         // video: wall time of the windows' processor stages
  std::uint64_t evictions = 0;      // video: the engine's eviction count after the last window
  std::uint64_t h2d_bytes = 0;      // and its reload bytes (reload_bytes)
  double capture_s = 0;             // and its host time capturing CUDA graphs
  std::int64_t stage_frames = 0;    // and their frames
  // video: wall seconds of each processor's stage over the windows, and of giving the GPU memory
  // back between them (the debug summary, beside the ledger's per-step times)
  std::map<std::string, double> processor_seconds;
  double release_seconds = 0;
  FaceTracker face_tracker;  // video: each frame's faces' track ids, for the smoother and tracker
  ReferenceTracker tracker;  // reference mode
  LandmarkSmoother smoother;  // video with smooth_landmarks
  std::vector<Face> followed;  // video with face_detector_interval > 1: the last frame's faces
  int frames_followed = 0;     // frames since the last detection
  TimeLedger ledger;
  std::int64_t faces_swapped = 0;
};

Result<Face> best_face_of(JobContext& ctx, const std::string& path, Image* image_out) {
  FSWAP_ASSIGN_OR_RETURN(Image image, read_image(path));
  FSWAP_ASSIGN_OR_RETURN(auto faces, ctx.analyser->analyse(image, /*embed=*/false));
  const int best = best_source_face(faces);
  if (best < 0) return no_face(path + ": no face found (try a lower --face-detector-score)");
  if (image_out) *image_out = std::move(image);
  return faces[best];
}

Status prepare_source(JobContext& ctx) {
  // Several sources: the classical swapper takes the largest, most frontal face among them all;
  // FaceFusion's swappers average them all.
  float best_score = -1;
  std::size_t best = 0;
  std::vector<SourceFace> faces;
  for (const auto& path : ctx.job.sources) {
    Image image;
    auto face = best_face_of(ctx, path, &image);
    if (!face) {
      if (ctx.job.sources.size() == 1 || face.status().code() != StatusCode::kNoFace) return face.status();
      log_warn(face.status().message() + "; skipping this source");
      continue;
    }
    const float score = face->box.area() * frontality(*face);
    if (score > best_score) best_score = score, best = faces.size();
    faces.push_back({std::move(image), *face});
  }
  if (faces.empty()) return no_face("no face found in any source image");
  if (ctx.filter.wants_source()) {  // --face-selector-gender/-race auto: the largest source face's
    std::vector<Face> found;
    for (const SourceFace& s : faces) found.push_back(s.face);
    const SourceFace& largest = faces[largest_face(found)];
    FSWAP_ASSIGN_OR_RETURN(FaceClasses classes, ctx.analyser->classify(largest.image, largest.face, &ctx.ledger));
    FSWAP_ASSIGN_OR_RETURN(ctx.filter, resolve_auto_filter(ctx.filter, classes));
  }
  ctx.sources = std::move(faces);
  ctx.best_source = best;
  return Status::ok();
}

Result<std::vector<float>> target_reference(JobContext& ctx, std::int64_t first, std::int64_t end);

// The reference identity when it is known before the first frame: --reference-face-path's best
// face, or the face of --reference-frame-number. Otherwise ReferenceTracker takes the first frame
// with a face as the reference frame.
Status prepare_reference(JobContext& ctx) {
  const SwapJob& job = ctx.job;
  if (job.selector.mode != SelectorMode::kReference) return Status::ok();
  if (!job.reference_face_path.empty()) {
    Image image;
    FSWAP_ASSIGN_OR_RETURN(Face face, best_face_of(ctx, job.reference_face_path, &image));
    FSWAP_RETURN_IF_ERROR(ctx.analyser->embed(image, face));
    ctx.tracker.set_reference(face.embedding);
    return Status::ok();
  }
  const std::int64_t n = job.reference_frame_number;
  if (n < 0) return Status::ok();
  FSWAP_ASSIGN_OR_RETURN(std::vector<float> reference, target_reference(ctx, n, n + 1));
  if (reference.empty())
    return no_face(job.target + ": no face on frame " + std::to_string(n) +
                   " (--reference-frame-number), or the target has fewer frames");
  ctx.tracker.set_reference(std::move(reference));
  return Status::ok();
}

// The faces the detector found on a frame before its analysis, with landmarks where the
// landmark thread found them too (run_face_work's threads ahead); none: the analysis detects them.
using Detected = std::optional<std::vector<Face>>;

// A frame's faces that pass the selector's gender/race/age filters (all of them when none is
// set: no classifier runs), in the detector's order.
Result<std::vector<Face>> wanted_faces(JobContext& ctx, const Image& frame, bool is_video, Detected detected = {}) {
  const int interval = is_video ? ctx.job.face_detector_interval : 1;
  std::vector<Face> faces;
  if (interval > 1 && !ctx.followed.empty() && ctx.frames_followed + 1 < interval) {
    FSWAP_ASSIGN_OR_RETURN(faces, ctx.analyser->follow(frame, ctx.followed, &ctx.ledger));
    ++ctx.frames_followed;
  } else if (detected) {
    faces = std::move(*detected);
    FSWAP_RETURN_IF_ERROR(ctx.analyser->add_landmarks(frame, faces, &ctx.ledger));
    ctx.frames_followed = 0;
  } else {
    FSWAP_ASSIGN_OR_RETURN(faces, ctx.analyser->analyse(frame, /*embed=*/false, &ctx.ledger));
    ctx.frames_followed = 0;
  }
  if (is_video) ctx.face_tracker.assign(faces);
  if (interval > 1) ctx.followed = faces;
  const FaceFilter& filter = ctx.filter;
  if (!filter.active()) return faces;
  std::vector<FaceClasses> classes;
  for (const Face& f : faces) {
    FSWAP_ASSIGN_OR_RETURN(FaceClasses c, ctx.analyser->classify(frame, f, &ctx.ledger));
    classes.push_back(std::move(c));
  }
  return filter_faces(std::move(faces), classes, filter);
}

// The faces the face processors work on, found on the frame as decoded.
// is_video: the frame is one of a sequence (landmarks may be smoothed across frames).
Result<std::vector<Face>> chosen_faces(JobContext& ctx, const Image& frame, bool is_video, Detected detected) {
  FSWAP_ASSIGN_OR_RETURN(auto faces, wanted_faces(ctx, frame, is_video, std::move(detected)));
  if (is_video && ctx.job.smooth_landmarks) ctx.smoother.smooth(faces);
  std::vector<Face> chosen;
  if (ctx.job.selector.mode == SelectorMode::kReference) {
    FSWAP_ASSIGN_OR_RETURN(chosen, ctx.tracker.match(std::move(faces), [&](Face& f) {
      return ctx.analyser->embed(frame, f, &ctx.ledger);
    }));
  } else {
    chosen = select_faces(std::move(faces), ctx.job.selector);
  }
  return chosen;
}

// The faces the face processors work on, none without a face processor (then no face models
// are loaded). Counted in faces_swapped.
Result<std::vector<Face>> analyse_frame(JobContext& ctx, const Image& frame, bool is_video, Detected detected = {}) {
  std::vector<Face> chosen;
  if (ctx.analyser) {
    FSWAP_ASSIGN_OR_RETURN(chosen, chosen_faces(ctx, frame, is_video, std::move(detected)));
  }
  ctx.faces_swapped += static_cast<std::int64_t>(chosen.size());
  return chosen;
}

// The GPU on which a processor can work on a frame kept there (face/device_face.h), null when it
// works on the host.
DeviceWork* processor_gpu(const SwapJob& job, const std::string& processor, Processors& p) {
  if (job.frames_on_gpu == SwapJob::FramesOnGpu::kOff) return nullptr;
  if (processor == "face_swapper") return p.swapper->device_work();
  if (processor == "face_enhancer") return p.enhancer->device_work();
  return nullptr;
}

// A face processor's ("face_swapper", "face_enhancer") step on one face of a host frame, on one of
// a device frame, and the part of the frame its device step touches.
Status host_face_step(const std::string& processor, Processors& p, Image& frame, const Face& face, TimeLedger* ledger) {
  return processor == "face_swapper" ? p.swapper->swap(frame, face, ledger) : p.enhancer->enhance(frame, face, ledger);
}
Status device_face_step(const std::string& processor, Processors& p, const DeviceFrame& frame, const Face& face,
                        TimeLedger* ledger) {
  return processor == "face_swapper" ? p.swapper->swap_on_device(frame, face, ledger)
                                     : p.enhancer->enhance_on_device(frame, face, ledger);
}
Rect device_region(const std::string& processor, const Processors& p, const Face& face, const Image& frame) {
  return processor == "face_swapper" ? p.swapper->device_region(face, frame.width, frame.height)
                                     : p.enhancer->device_region(face, frame.width, frame.height);
}

// Where a processor's GPU work finds the frame.
enum class FrameTrip {
  kStays,         // the frame may stay on the GPU for the next processor (images, one-frame windows)
  kPerProcessor,  // it comes back after each processor (longer windows, run_stages)
};

// Whether the faces' regions of a frame that makes a trip per processor hold fewer bytes than
// the frame. Each region goes up and comes down once per face, the whole frame once for all its
// faces; besides the bytes a region costs one more upload call and one more wait for the stream
// (tens of µs). Most frames have one or two faces: at 4K their regions move a few MB each way
// instead of 25 MB, while a group of large faces in a small frame would move more than the frame.
bool regions_pay(const std::string& processor, const Processors& p, const Image& frame, const std::vector<Face>& faces) {
  std::uint64_t bytes = 0;
  for (const Face& f : faces) {
    const Rect r = device_region(processor, p, f, frame);
    bytes += static_cast<std::uint64_t>(r.width) * static_cast<std::uint64_t>(r.height) * 3;
  }
  return bytes < frame.pixels.size();
}

// The part of the frame that goes up for the job's face processors on `gpu`, which keep it from
// one to the next: the part holding their regions of these faces (a few MB at 4K, where the
// frame is 25 MB).
Rect gpu_part(const SwapJob& job, Processors& p, const DeviceWork& gpu, const Image& frame,
              const std::vector<Face>& faces) {
  std::vector<Rect> regions;
  for (const std::string& processor : job.processors)
    if (processor_gpu(job, processor, p) == &gpu)
      for (const Face& f : faces) regions.push_back(device_region(processor, p, f, frame));
  return part_holding(regions, frame.width, frame.height);
}

// One processor's work on one frame, in place, with one lane's processors. As FaceFusion: the
// face processors over all chosen faces (found on the target as decoded), in order;
// frame_enhancer over the whole frame. A face processor that works on the GPU uploads the part
// of the frame the GPU's processors touch (on_gpu, gpu_part) unless the previous one left it
// there, and leaves it there; one on the host first brings it back (frame_to_host). It sends
// each face's region instead (face/face_region.h) once the lane's frames no longer fit
// (Processors::region_frames), or when the frame makes a trip per processor and regions_pay.
Status run_processor(const SwapJob& job, const std::string& processor, Processors& p, Image& frame,
                     std::optional<DeviceFrame>& on_gpu, const std::vector<Face>& faces, TimeLedger* ledger,
                     FrameTrip trip) {
  DeviceWork* gpu = faces.empty() ? nullptr : processor_gpu(job, processor, p);
  bool regions = gpu != nullptr && (p.region_frames || (trip == FrameTrip::kPerProcessor &&
                                                        regions_pay(processor, p, frame, faces)));
  std::size_t done = 0;  // faces finished on the whole frame on the GPU
  if (gpu != nullptr && !regions && (!on_gpu || &on_gpu->gpu() == gpu)) {
    Status s = [&] {
      auto held = gpu->hold();
      if (!on_gpu) {
        ScopedTimer t(ledger, "upload");
        FSWAP_ASSIGN_OR_RETURN(on_gpu, DeviceFrame::upload(*gpu, frame, gpu_part(job, p, *gpu, frame, faces)));
      }
      const Rect& at = on_gpu->part();
      for (; done < faces.size(); ++done) {
        const Face face = translated(faces[done], static_cast<float>(-at.x), static_cast<float>(-at.y));
        FSWAP_RETURN_IF_ERROR(device_face_step(processor, p, *on_gpu, face, ledger));
      }
      return Status::ok();
    }();
    if (s.code() != StatusCode::kOutOfMemory) return s;
    // A device step fails on allocation, before it writes the frame: the faces from `done` on go
    // to the GPU a region at a time, from the frame as the GPU left it.
    log_warn("frames go to the GPU a face's region at a time from here on: " + s.message());
    p.region_frames = regions = true;
  }
  FSWAP_RETURN_IF_ERROR(frame_to_host(frame, on_gpu, ledger));
  if (processor == "frame_enhancer") return p.frame_enhancer->enhance(frame, ledger);
  for (std::size_t i = done; i < faces.size(); ++i) {
    const Face& face = faces[i];
    if (regions) {
      auto region_step = [&] {
        return run_on_gpu_in_region(
            *gpu, frame, device_region(processor, p, face, frame), face,
            [&](const DeviceFrame& part, const Face& f) { return device_face_step(processor, p, part, f, ledger); },
            ledger);
      };
      Status s = region_step();
      if (s.code() == StatusCode::kOutOfMemory) {
        // The region left the frame untouched. The processors' kept buffers and the runs' (the
        // lanes' activations, weight rings and workspaces, sized for the largest runs so far, the
        // other side's included) go back, and the region tries once more: they come back at the
        // next runs, where the region's buffers may have left whole ranges.
        p.release_device_buffers();
        {
          auto held = gpu->hold();
          FSWAP_RETURN_IF_ERROR(gpu->release_scratch());
        }
        s = region_step();
      }
      if (s.code() != StatusCode::kOutOfMemory) {
        FSWAP_RETURN_IF_ERROR(s);
        continue;
      }
      // This face goes to the host, the next ones try again. The processors' kept buffers would
      // hold a piece of device memory that the host step's model activations need.
      if (p.region_misses++ == 0) log_warn("a face's region did not fit on the GPU; such faces are done on the host: " + s.message());
      p.release_device_buffers();
    }
    FSWAP_RETURN_IF_ERROR(host_face_step(processor, p, frame, face, ledger));
  }
  return Status::ok();
}

// A still image's face work, in place. Returns the number of faces swapped.
Result<int> process_image(JobContext& ctx, Image& frame) {
  FSWAP_ASSIGN_OR_RETURN(auto chosen, analyse_frame(ctx, frame, /*is_video=*/false));
  std::optional<DeviceFrame> on_gpu;
  for (const auto& processor : ctx.job.processors)
    FSWAP_RETURN_IF_ERROR(
        run_processor(ctx.job, processor, ctx.lanes[0], frame, on_gpu, chosen, &ctx.ledger, FrameTrip::kStays));
  FSWAP_RETURN_IF_ERROR(frame_to_host(frame, on_gpu, &ctx.ledger));
  return static_cast<int>(chosen.size());
}

bool uses_processor(const SwapJob& job, const std::string& name) {
  return std::find(job.processors.begin(), job.processors.end(), name) != job.processors.end();
}

bool uses_face_processor(const SwapJob& job) {
  return uses_processor(job, "face_swapper") || uses_processor(job, "face_enhancer");
}

// Weight bytes of the models the job has loaded so far (0 without a batcher: the per-frame path
// plans nothing).
std::uint64_t loaded_weight_bytes(const JobContext& ctx) {
  return ctx.batcher ? ctx.batcher->job_weight_bytes(*ctx.engine) : 0;
}

// One more set of the job's processors (ctx.lanes), in the order of job.processors; the first
// set's loads give each stage's weight bytes (ctx.plan_input; later sets share its models).
Status add_lane(JobContext& ctx) {
  const SwapJob& job = ctx.job;
  const bool first = ctx.lanes.empty();
  Processors p;
  for (const auto& processor : job.processors) {
    const std::uint64_t before = loaded_weight_bytes(ctx);
    if (processor == "face_swapper") {
      FSWAP_ASSIGN_OR_RETURN(p.swapper, make_face_swapper(*ctx.engine, job, ctx.sources, ctx.best_source));
    } else if (processor == "face_enhancer") {
      FSWAP_ASSIGN_OR_RETURN(p.enhancer, make_face_enhancer(*ctx.engine, job));
    } else if (processor == "frame_enhancer") {
      FSWAP_ASSIGN_OR_RETURN(p.frame_enhancer, make_frame_enhancer(*ctx.engine, job));
    }
    if (first) ctx.plan_input.stage_weight_bytes.push_back(loaded_weight_bytes(ctx) - before);
  }
  ctx.lanes.push_back(std::move(p));
  return Status::ok();
}

// The engine, the analyser and `lanes` sets of processors on ctx.job.analyser.session's device,
// the chosen source face and the reference. lanes > 1 loads through a FaceBatcher (the job's,
// else one of its own, batches of up to `lanes`), so the lanes' model calls meet in batches.
// Nothing when the job does no face work.
Status load_models(JobContext& ctx, int lanes) {
  const SwapJob& job = ctx.job;
  if (!job.swap_faces) return Status::ok();
  if (!job.face_batcher && lanes > 1) {
    FaceBatcherOptions options;
    options.max_batch = lanes;
    // Its only callers are this job's lanes, and the wait ends once every working lane has its
    // call in (add_callers); the window only bounds a lane's gap between calls (crop, masks,
    // paste-back: milliseconds). 2 ms split the lanes' calls on a loaded 2-core machine.
    options.gather_window = std::chrono::milliseconds(50);
    ctx.own_batcher = std::make_unique<FaceBatcher>(options);
  }
  ctx.batcher = job.face_batcher ? job.face_batcher : ctx.own_batcher.get();
  FSWAP_ASSIGN_OR_RETURN(ctx.engine, ctx.batcher ? ctx.batcher->job_engine(job.engine) : make_engine(job.engine));
  if (uses_face_processor(job)) {  // frame_enhancer alone: no face models
    AnalyserOptions analysis = job.analyser;
    analysis.classify = job.selector.filter.active();  // fairface only for the selector's filters
    if (job.gpu_lanes > 1) analysis.session.lane = 1;
    FSWAP_ASSIGN_OR_RETURN(ctx.analyser, FaceAnalyser::load(*ctx.engine, analysis));
    ctx.filter = job.selector.filter;
    if (uses_processor(job, "face_swapper")) FSWAP_RETURN_IF_ERROR(prepare_source(ctx));
    FSWAP_ASSIGN_OR_RETURN(ctx.filter, resolve_auto_filter(ctx.filter, std::nullopt));  // auto without a source: error
    FSWAP_RETURN_IF_ERROR(prepare_reference(ctx));
  }
  ctx.plan_input.resident_weight_bytes = loaded_weight_bytes(ctx);
  for (int k = 0; k < lanes; ++k) FSWAP_RETURN_IF_ERROR(add_lane(ctx));
  if (lanes > 1) ctx.crew = std::make_unique<LaneCrew>(lanes);
  ctx.plan_input.batch_frames = lanes;
  return Status::ok();
}

bool stop_requested(const SwapJob& job) { return job.cancel && job.cancel->load(); }

Status inject_fault(const SwapJob& job, const char* stage, std::int64_t frame) {
  return job.fault_injection ? job.fault_injection(stage, frame) : Status::ok();
}

// --output-image-scale along one side: size × scale rounded, at least 1.
int scaled_image_size(int size, double scale) {
  return std::max(1, static_cast<int>(std::lround(static_cast<double>(size) * scale)));
}

Result<SwapSummary> run_image(JobContext& ctx, const ProgressCallback& on_progress, Clock::time_point start) {
  Image frame;
  FSWAP_RETURN_IF_ERROR(inject_fault(ctx.job, "decode", 0));
  {
    ScopedTimer t(&ctx.ledger, "decode");
    FSWAP_ASSIGN_OR_RETURN(frame, read_image(ctx.job.target));
  }
  FSWAP_RETURN_IF_ERROR(inject_fault(ctx.job, "face", 0));
  if (ctx.job.swap_faces) {
    FSWAP_ASSIGN_OR_RETURN(int swapped, process_image(ctx, frame));
    if (swapped == 0 && ctx.analyser)
      log_warn(ctx.job.target + ": no matching face found; the output is the unchanged target");
  }
  if (stop_requested(ctx.job)) return cancelled("stopped on request");
  FSWAP_RETURN_IF_ERROR(inject_fault(ctx.job, "encode", 0));
  {
    ScopedTimer t(&ctx.ledger, "encode");
    if (ctx.job.image_scale != 1.0)
      frame = resize(frame, scaled_image_size(frame.width, ctx.job.image_scale),
                     scaled_image_size(frame.height, ctx.job.image_scale), Interp::kArea);
    FSWAP_RETURN_IF_ERROR(write_image(ctx.job.output, frame, ctx.job.image_quality));
  }
  SwapSummary s;
  s.frames = 1;
  s.faces_swapped = ctx.faces_swapped;
  s.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (on_progress) on_progress({1, 1, s.seconds});
  return s;
}

// First error wins; every stage stops when one is recorded.
class ErrorSlot {
 public:
  void set(const Status& s) {
    std::lock_guard lock(mutex_);
    if (status_.is_ok()) status_ = s;
  }
  Status get() const {
    std::lock_guard lock(mutex_);
    return status_;
  }

 private:
  mutable std::mutex mutex_;
  Status status_;
};

// The job's frames [first, end) of the target; end is the container's estimate (or the trim end).
struct FrameRange {
  std::int64_t first = 0;
  std::int64_t end = 0;
};

Result<FrameRange> frame_range(const SwapJob& job, const VideoInfo& info) {
  const std::int64_t first = std::max<std::int64_t>(0, job.trim_frame_start);
  const std::int64_t end = job.trim_frame_end < 0 ? info.frame_count : std::min(job.trim_frame_end, info.frame_count);
  if (job.trim_frame_end >= 0 && job.trim_frame_end <= first)
    return invalid_input("--trim-frame-end must be greater than --trim-frame-start");
  if (first >= info.frame_count && info.frame_count > 0)
    return invalid_input(job.target + ": --trim-frame-start " + std::to_string(first) + " is past the last frame (" +
                         std::to_string(info.frame_count) + " frames)");
  return FrameRange{first, end};
}

// The target's audio under frames [first, end): to the end of the input unless the job trims it.
AudioSource audio_for(const SwapJob& job, const VideoInfo& info, std::int64_t first, std::int64_t end) {
  if (!info.has_audio) return {};
  const double rate = info.frame_rate.value() > 0 ? info.frame_rate.value() : 25.0;
  return {job.target, first / rate, job.trim_frame_end < 0 ? -1.0 : end / rate, job.audio_volume, job.audio_quality};
}

// A reader positioned at frame `start` of the target (VideoReader::seek), with the pts of frame
// `first` (the output's time 0) when start is past it; where the stream cannot be seeked by
// frame, a reader at frame 0 that the caller skips forward.
struct DecodeStart {
  std::unique_ptr<VideoReader> reader;
  std::int64_t index = 0;       // of the frame the next read returns
  std::int64_t pts_origin = 0;  // valid when index > first
};

// The decoder for the job's frames (SwapJob::decoder); probes that decode nothing use the CPU's.
DecodeOptions decode_options(const SwapJob& job) {
  const Device& device = job.analyser.session.device;
  const bool on_cuda = device.kind == DeviceKind::kCuda;
  DecodeOptions options;
  if (job.decoder == SwapJob::Decoder::kCuda) {
    options.hw = DecodeOptions::Hw::kCuda;
    options.cuda_device = on_cuda ? device.index : 0;
  }
  return options;
}

Result<DecodeStart> open_decode(const SwapJob& job, std::int64_t first, std::int64_t start) {
  const std::string& target = job.target;
  FSWAP_ASSIGN_OR_RETURN(auto reader, VideoReader::open(target, decode_options(job)));
  if (start == 0) return DecodeStart{std::move(reader), 0, 0};
  DecodeStart at{std::move(reader), start, 0};
  Status s = at.reader->seek(start);
  if (s.is_ok() && start > first) {
    s = [&]() -> Status {
      FSWAP_ASSIGN_OR_RETURN(auto origin, VideoReader::open(target));
      FSWAP_RETURN_IF_ERROR(origin->seek(first));
      VideoFrame frame;
      FSWAP_ASSIGN_OR_RETURN(bool got, origin->skip(frame));
      if (!got) return invalid_input(target + ": no frame " + std::to_string(first));
      at.pts_origin = frame.pts;
      return Status::ok();
    }();
  }
  if (s.is_ok()) return at;
  log_debug(s.message() + "; decoding from the first frame instead");
  FSWAP_ASSIGN_OR_RETURN(reader, VideoReader::open(target, decode_options(job)));
  return DecodeStart{std::move(reader), 0, 0};
}

// ---- Windows of video frames (SwapJob::batch_frames, pipeline/stage_plan.h) ----

// A frame of the window and the faces its analysis chose.
struct WindowFrame {
  VideoFrame frame;
  Detected detected;  // the detector's faces when found ahead of the analysis (run_face_work)
  std::vector<Face> faces;
  std::optional<DeviceFrame> on_gpu;  // between processors that work on the GPU (run_processor)
  FrameDownload download;             // on its way back after the stages (run_stages)
};

// The host→device bytes that reloaded weights: all but the weight ring's, which every run of a
// streaming model copies again however long the window.
std::uint64_t reload_bytes(const EngineMemoryStats& stats) { return stats.h2d_bytes - stats.ring_h2d_bytes; }

// The engine's counters at the end of a window, from which the next one's reloads are measured.
void note_window_counters(JobContext& ctx, const EngineMemoryStats& stats) {
  ctx.evictions = stats.evictions;
  ctx.h2d_bytes = reload_bytes(stats);
  ctx.capture_s = stats.capture_seconds;
}

// The window plan of a video of `info`'s frame size (ctx.plan), logged at debug level.
void plan_windows(JobContext& ctx, const VideoInfo& info) {
  StagePlanInput& in = ctx.plan_input;
  in.batch_frames = std::max<int>(1, static_cast<int>(ctx.lanes.size()));
  in.frame_bytes = static_cast<std::uint64_t>(info.width) * static_cast<std::uint64_t>(info.height) * 3;
  in.host_frames_cap_bytes = host_frames_cap(physical_memory_bytes());
  const auto stats = ctx.engine ? ctx.engine->memory_stats() : std::nullopt;
  if (stats && stats->budget_bytes > 0) in.budget_bytes = stats->budget_bytes;
  if (stats) note_window_counters(ctx, *stats);  // loading's are not the windows'
  ctx.plan = plan_stages(in);
  log_debug("face work: " + ctx.plan.to_string());
}

// The encoder's queue: a window's frames leave together, so it holds a window (at least
// queue_depth frames): the stages go on to the next window while the encoder works through this
// one, where they would otherwise wait for it frame by frame and leave it idle during the next
// window's stages. The plan counts these frames among the windows held (kWindowsHeld).
std::size_t encode_queue_depth(const JobContext& ctx) {
  return std::max<std::size_t>(static_cast<std::size_t>(ctx.job.queue_depth), static_cast<std::size_t>(ctx.plan.window));
}

// After a window whose processor stages took `seconds` over `frames` frames: the compute per
// frame measured so far, and the plan again where the weights do not fit (it depends on it).
void replan_windows(JobContext& ctx, double seconds, std::size_t frames) {
  ctx.stage_seconds += seconds;
  ctx.stage_frames += static_cast<std::int64_t>(frames);
  // Weights evicted during the window: what the models need beside their weights does not fit
  // either, so the stages go stage-major over longer windows from now on.
  const auto stats = ctx.engine ? ctx.engine->memory_stats() : std::nullopt;
  if (stats && stats->evictions > ctx.evictions) {
    ctx.plan_input.evicting = true;
    const std::uint64_t reloads = reload_bytes(*stats);
    ctx.plan_input.measured_reload_bytes = reloads - std::min(reloads, ctx.h2d_bytes);
    ctx.plan_input.measured_recapture_s = std::max(0.0, stats->capture_seconds - ctx.capture_s);
  }
  if (stats) note_window_counters(ctx, *stats);
  if (ctx.plan.weights_fit && !ctx.plan_input.evicting) return;
  ctx.plan_input.compute_s_per_frame = ctx.stage_seconds / static_cast<double>(ctx.stage_frames);
  const StagePlan next = plan_stages(ctx.plan_input);
  if (next.window != ctx.plan.window || next.take_turns != ctx.plan.take_turns)
    log_debug("face work: " + next.to_string());
  ctx.plan = next;
}

// What one side of the face work keeps on the GPU between its runs goes back: at the end of its
// GPU turn (pipeline/gpu_turns.h) and, on the stage side, after each processor of a window, while
// the weights do not fit. Its weights become the first to make room (Engine::end_stage), and the
// lanes' activation buffers, weight rings and workspaces are freed (`stages`: the processors' kept
// buffers too; only the stage thread uses them), so what runs next finds whole segments: the
// other side's weights, or the next processor's buffers and face regions (at 4K under a quarter
// of the working set, the enhancer's 80 MiB activations and its 13 MiB face regions had no room
// beside the weight ring and workspace the swapper had grown).
Status release_gpu_side(JobContext& ctx, bool stages) {
  if (stages)
    for (Processors& p : ctx.lanes) p.release_device_buffers();
  ctx.engine->end_stage();  // this side's weights may make room for the other's
  return ctx.engine->release_scratch();
}

// Each processor in turn over every frame of the window (stage-major), ctx.plan.lanes frames at
// a time: lane k, with ctx.lanes[k], takes the next frame not yet taken and does its faces in
// order (paste-back of one frame stays in one lane). Lane 0 is the calling thread, the others
// ctx.crew's; with one lane nothing else runs. The first error or a stop request stops every
// lane at its next frame.
// Fault injection: stage = the processor's name, at each frame.
// Under GPU turns each processor's stage gives the GPU memory back when it ends (release_gpu_side).
// Frames still on the GPU at the end start on their way back (WindowFrame::download), unwaited.
Status run_stages(JobContext& ctx, std::vector<WindowFrame>& window) {
  const SwapJob& job = ctx.job;
  const int lanes = std::min<int>(ctx.plan.lanes, static_cast<int>(window.size()));
  const FrameTrip trip = window.size() > 1 ? FrameTrip::kPerProcessor : FrameTrip::kStays;
  for (const std::string& processor : job.processors) {
    const auto processor_start = Clock::now();
    std::atomic<std::size_t> next{0};
    std::atomic<bool> failed{false};
    ErrorSlot error;
    auto lane = [&](Processors& p) {
      for (std::size_t i = next++; !failed && i < window.size(); i = next++) {
        WindowFrame& w = window[i];
        if (w.frame.dropped) continue;  // the writer will not show it
        Status s = stop_requested(job) ? cancelled("stopped on request")
                                       : inject_fault(job, processor.c_str(), w.frame.index);
        // A frame stays on the GPU from one processor to the next only in one-frame windows: a
        // longer window would keep all its frames there at once. Its frames come back after each
        // processor, so their faces' regions go up instead where that moves fewer bytes.
        if (s.is_ok()) s = run_processor(job, processor, p, w.frame.image, w.on_gpu, w.faces, &ctx.ledger, trip);
        if (s.is_ok() && trip == FrameTrip::kPerProcessor) s = frame_to_host(w.frame.image, w.on_gpu, &ctx.ledger);
        if (!s.is_ok()) {
          error.set(s);
          failed = true;
        }
      }
      if (lanes > 1) ctx.batcher->add_callers(*ctx.engine, -1);  // this lane calls no more
    };
    if (lanes > 1) {
      ctx.batcher->add_callers(*ctx.engine, lanes - 1);
      ctx.crew->run(lanes, [&](int k) { lane(ctx.lanes[static_cast<std::size_t>(k)]); });
    } else {
      lane(ctx.lanes[0]);
    }
    FSWAP_RETURN_IF_ERROR(error.get());
    ctx.processor_seconds[processor] += seconds_since(processor_start);
    // Where the weights do not all fit, this processor's make room for the next one's.
    if (ctx.plan.take_turns) {
      const ScopedSeconds timed(ctx.release_seconds);
      FSWAP_RETURN_IF_ERROR(release_gpu_side(ctx, /*stages=*/true));
    }
  }
  for (WindowFrame& w : window) {
    FSWAP_ASSIGN_OR_RETURN(w.download, FrameDownload::begin(w.frame.image, w.on_gpu));
  }
  return Status::ok();
}

// A video frame on its way to the analysis, with what the threads ahead of it found.
struct AheadFrame {
  VideoFrame frame;
  Detected detected;  // its faces, once the detector thread found them (and their landmarks)
  Status error;       // the first error of a step ahead, which ends the run at this frame
};

// The frames whose faces' landmarks the landmark thread finds in one run of the landmarker.
constexpr std::size_t kLandmarkFrames = 2;

// A step ahead that ran out of device memory is no error: the analysis does it (Status ok).
Status left_to_analysis(const Status& s) { return s.code() == StatusCode::kOutOfMemory ? Status::ok() : s; }

// The landmark thread's step: the landmarks of the detected faces of `run`'s frames, in one call
// (fault injection: stage "landmark" at each frame). Nothing while the GPU is taken in turns.
void landmark_ahead(JobContext& ctx, std::vector<AheadFrame>& run, bool take_turns) {
  std::vector<FrameFaces> frames;
  AheadFrame* first = nullptr;
  for (AheadFrame& a : run) {
    if (a.error.is_ok()) a.error = inject_fault(ctx.job, "landmark", a.frame.index);
    if (!a.error.is_ok() || take_turns || !a.detected) continue;
    frames.push_back({&a.frame.image, &*a.detected});
    if (first == nullptr) first = &a;
  }
  if (first != nullptr) first->error = left_to_analysis(ctx.analyser->add_landmarks(frames, &ctx.ledger));
}

// The landmark thread: frames from `detected`, kLandmarkFrames at a time (a frame with an error
// ends a run early), their landmarks in one call (landmark_ahead), on to `ahead` in order. It
// stops after a frame with an error or when `ahead` is aborted, and closes `ahead`.
void landmark_frames(JobContext& ctx, BoundedQueue<AheadFrame>& detected, BoundedQueue<AheadFrame>& ahead,
                     const std::atomic<bool>& take_turns) {
  name_this_thread("fswap-landmark");
  while (true) {
    std::vector<AheadFrame> run;
    bool done = false;
    while (run.size() < kLandmarkFrames && (run.empty() || run.back().error.is_ok())) {
      std::optional<AheadFrame> a = detected.pop();
      if (!a) {
        done = true;
        break;
      }
      run.push_back(std::move(*a));
    }
    landmark_ahead(ctx, run, take_turns);
    for (AheadFrame& a : run) {
      const bool failed = !a.error.is_ok();
      if (!ahead.push(std::move(a)) || failed) {
        done = true;
        break;
      }
    }
    if (done) break;
  }
  ahead.close();
}

// A video's face work: frames from `in`, window by window (ctx.plan), to `out` in order, on
// threads so the host work of one overlaps the others' model runs:
//   - where every frame is detected (no --face-detector-interval), a detector thread finds each
//     frame's faces ahead of the analysis and a landmark thread their landmarks, two frames in one
//     landmarker run (fewer, larger GPU launches);
//   - the calling thread analyses each frame in order, after before_analysis(frame) (fault
//     injection, segment resets: all order-dependent state lives here: tracking, smoothing,
//     reference matching);
//   - a stage thread runs run_stages over each analysed window while the next one is analysed,
//     and replans the window length;
//   - a download thread waits for each window's frames to come back from the GPU and hands them
//     to `out`, so the stage thread issues the next window's work while the GPU finishes this one's.
// While the plan says take_turns (the weights do not fit), the analysis and the stages take turns
// on the GPU (GpuTurns) a window at a time instead of evicting each other's weights call by call;
// a changed plan applies from the next window. `out` takes a whole window (its capacity follows
// the plan: encode_queue_depth), so the stages start the next window while the encoder works
// through the last one. The first error goes to fail() and ends them all; `out` is closed when
// `in` is drained.
void run_face_work(JobContext& ctx, BoundedQueue<VideoFrame>& in, BoundedQueue<VideoFrame>& out,
                   const std::function<Status(const VideoFrame&)>& before_analysis,
                   const std::function<void(const Status&)>& fail) {
  name_this_thread("fswap-analyse");
  BoundedQueue<std::vector<WindowFrame>> analysed(1);  // one window ahead of the stages
  BoundedQueue<std::vector<WindowFrame>> downloading(1);  // one window coming back behind them
  GpuTurns turns;
  // ctx.plan is the stage thread's; the analysis thread reads these at each window.
  std::atomic<int> window_frames{0};
  std::atomic<bool> take_turns{false};
  bool turns_started = false;
  // Seconds each thread spent blocked on a queue (the turns' waits are GpuTurns::Stats), for the
  // debug summary: which side paced the other.
  struct QueueWaits {
    double frames = 0, handover = 0;  // analysis: popping decoded frames, pushing analysed windows
    double windows = 0, downloads = 0;  // stages: popping analysed windows, pushing them to the download thread
    double encoder = 0;                 // download thread: pushing frames to the encoder
  } waits;
  auto timed = [](double& seconds, auto&& op) {
    const ScopedSeconds timer(seconds);
    return op();
  };
  auto publish_plan = [&] {
    out.set_capacity(encode_queue_depth(ctx));
    window_frames = ctx.plan.window;
    take_turns = ctx.plan.take_turns;
    if (ctx.plan.take_turns && !turns_started) {
      log_debug("face work: analysis and stages take turns on the GPU (weights over budget)");
      turns_started = true;
    }
  };
  publish_plan();
  // Threads ahead of the analysis: the detector finds each frame's faces, the landmarker their
  // landmarks, kLandmarkFrames frames at a time (one batched landmarker run for all their faces).
  // Taking turns on the GPU, they leave their step to the analysis' turn; a step that finds no
  // device memory is left to the analysis too (which can give the stages' memory back). Their
  // other errors reach the analysis with their frame, in order (a landmark run's error with the
  // first frame of its run).
  BoundedQueue<AheadFrame> detected(kLandmarkFrames + 1), ahead(kLandmarkFrames);
  const bool detect_ahead = ctx.job.swap_faces && ctx.analyser && ctx.job.face_detector_interval == 1;
  std::thread detector, landmarker;
  if (detect_ahead) {
    detector = std::thread([&] {
      name_this_thread("fswap-detect");
      while (auto frame = in.pop()) {
        AheadFrame a{std::move(*frame), {}, {}};
        a.error = inject_fault(ctx.job, "detect", a.frame.index);
        if (a.error.is_ok() && !take_turns && !a.frame.dropped) {
          Result<std::vector<Face>> faces = ctx.analyser->detect(a.frame.image, &ctx.ledger);
          if (faces) a.detected = std::move(*faces);
          else a.error = left_to_analysis(faces.status());
        }
        const bool failed = !a.error.is_ok();
        if (!detected.push(std::move(a)) || failed) break;
      }
      detected.close();
    });
    landmarker = std::thread([&] { landmark_frames(ctx, detected, ahead, take_turns); });
  }
  auto next_frame = [&]() -> std::optional<AheadFrame> {
    if (detect_ahead) return ahead.pop();
    auto frame = in.pop();
    if (!frame) return std::nullopt;
    return AheadFrame{std::move(*frame), {}, {}};
  };
  // A side waiting for the queue or for a turn wakes and stops.
  auto abort_both = [&] {
    detected.abort();
    ahead.abort();
    analysed.abort();
    downloading.abort();
    turns.abort();
  };
  auto fail_both = [&](const Status& s) {
    fail(s);
    abort_both();
  };
  std::thread stages([&] {
    name_this_thread("fswap-stages");
    while (auto window = timed(waits.windows, [&] { return analysed.pop(); })) {
      if (ctx.job.swap_faces && !window->empty()) {
        // One turn for all the window's processor stages, not one per stage: the next window's
        // analysis is of no use before this window's stages end, so a turn between two stages
        // would only hold this window's frames back; each stage's models load once per window
        // either way.
        GpuTurns::Turn turn;
        if (ctx.plan.take_turns) {
          auto taken = turns.take(GpuTurns::Side::kStages);
          if (!taken) return fail_both(taken.status());
          turn = std::move(*taken);
        }
        const auto stages_start = Clock::now();
        // run_stages gave the GPU memory back after each processor (turn.held(): take_turns).
        Status s = run_stages(ctx, *window);
        const double seconds = std::chrono::duration<double>(Clock::now() - stages_start).count();
        turn.release();
        if (!s.is_ok()) return fail_both(s);
        replan_windows(ctx, seconds, window->size());
        publish_plan();
      }
      if (!timed(waits.downloads, [&] { return downloading.push(std::move(*window)); })) return abort_both();
    }
    downloading.close();
  });
  std::thread downloads([&] {
    name_this_thread("fswap-download");
    while (auto window = downloading.pop()) {
      for (WindowFrame& w : *window) {
        if (Status s = w.download.finish(w.frame.image, &ctx.ledger); !s.is_ok()) return fail_both(s);
        if (!timed(waits.encoder, [&] { return out.push(std::move(w.frame)); })) return abort_both();
      }
    }
    out.close();
  });
  auto analyse = [&](WindowFrame& w) -> Status {
    if (stop_requested(ctx.job)) return cancelled("stopped on request");  // a window in hand is not finished
    FSWAP_RETURN_IF_ERROR(before_analysis(w.frame));
    if (!ctx.job.swap_faces || w.frame.dropped) return Status::ok();
    FSWAP_ASSIGN_OR_RETURN(w.faces, analyse_frame(ctx, w.frame.image, /*is_video=*/true, std::move(w.detected)));
    return Status::ok();
  };
  // Taking turns, a window's frames are all decoded before its turn, so the GPU is not held
  // while the decoder is awaited.
  auto analyse_in_turn = [&](std::vector<WindowFrame>& window) -> Status {
    FSWAP_ASSIGN_OR_RETURN(GpuTurns::Turn turn, turns.take(GpuTurns::Side::kAnalysis));
    for (WindowFrame& w : window) FSWAP_RETURN_IF_ERROR(analyse(w));
    return release_gpu_side(ctx, /*stages=*/false);
  };
  while (true) {
    const bool in_turn = take_turns;
    std::vector<WindowFrame> window;
    Status s;
    bool more = true;
    while (s.is_ok() && window.size() < static_cast<std::size_t>(window_frames.load())) {
      auto frame = timed(waits.frames, next_frame);
      if (!frame) {
        more = false;
        break;
      }
      if (!frame->error.is_ok()) {
        s = frame->error;
        break;
      }
      window.push_back({std::move(frame->frame), std::move(frame->detected), {}, {}});
      if (!in_turn) s = analyse(window.back());  // as it arrives
    }
    if (s.is_ok() && in_turn && !window.empty()) s = analyse_in_turn(window);
    if (!s.is_ok()) {
      fail_both(s);
      break;
    }
    if (window.empty() || !timed(waits.handover, [&] { return analysed.push(std::move(window)); }) || !more) break;
  }
  analysed.close();
  detected.abort();  // wakes the threads ahead when the analysis ended early
  ahead.abort();
  if (detector.joinable()) detector.join();
  if (landmarker.joinable()) landmarker.join();
  stages.join();
  downloads.join();
  const GpuTurns::SideStats a = turns.stats()[GpuTurns::Side::kAnalysis];
  const GpuTurns::SideStats b = turns.stats()[GpuTurns::Side::kStages];
  char line[400];
  std::snprintf(line, sizeof line,
                "face work waits: analysis on frames %.2f s, on the stages %.2f s, on %llu turns %.2f s; "
                "stages on windows %.2f s, on the downloads %.2f s, on %llu turns %.2f s; downloads on the encoder %.2f s",
                waits.frames, waits.handover, static_cast<unsigned long long>(a.turns), a.waited_s, waits.windows,
                waits.downloads, static_cast<unsigned long long>(b.turns), b.waited_s, waits.encoder);
  std::string text = std::string(line) + "\nface work stages (wall):";
  for (const auto& [processor, seconds] : ctx.processor_seconds) {
    std::snprintf(line, sizeof line, " %s %.2f s,", processor.c_str(), seconds);
    text += line;
  }
  int region_misses = 0;
  for (const Processors& p : ctx.lanes) region_misses += p.region_misses;
  std::snprintf(line, sizeof line, " giving GPU memory back between them %.2f s; faces done on the host for want of room: %d",
                ctx.release_seconds, region_misses);
  log_debug(text + line);
}

// --output-video-fps's ticks for the target's frames; none without an output rate.
std::optional<OutputTicks> output_ticks(const SwapJob& job, const VideoInfo& info) {
  if (job.encode.frame_rate.num <= 0) return std::nullopt;
  return OutputTicks(info, job.encode.frame_rate);
}

// --output-video-fps: marks whether the writer shows `frame`, from the next frame's pts (nullopt:
// the video ends with `frame`). Both pts count from the output's first frame.
void mark_dropped(VideoFrame& frame, const OutputTicks& ticks, std::optional<std::int64_t> next_pts) {
  frame.dropped = !(next_pts ? ticks.shown(frame.pts, *next_pts) : ticks.last_shown(frame.pts));
}

Result<SwapSummary> run_video(JobContext& ctx, const ProgressCallback& on_progress, Clock::time_point start) {
  const SwapJob& job = ctx.job;
  FSWAP_ASSIGN_OR_RETURN(auto probe, VideoReader::open(job.target));
  const VideoInfo info = probe->info();
  probe.reset();
  FSWAP_ASSIGN_OR_RETURN(FrameRange range, frame_range(job, info));
  const std::int64_t first = range.first, end = range.end;
  FSWAP_ASSIGN_OR_RETURN(auto writer,
                         VideoWriter::open(job.output, info, job.encode, audio_for(job, info, first, end)));
  FSWAP_ASSIGN_OR_RETURN(DecodeStart decode, open_decode(job, first, first));
  VideoReader& reader = *decode.reader;
  plan_windows(ctx, info);

  BoundedQueue<VideoFrame> decoded(job.queue_depth), swapped(encode_queue_depth(ctx));
  ErrorSlot error;
  auto fail = [&](const Status& s) {
    error.set(s);
    decoded.abort();
    swapped.abort();
  };

  std::thread decoder([&] {
    name_this_thread("fswap-decode");
    std::int64_t pts_origin = -1;
    // --output-video-fps: each frame waits for the next, whose time says whether the writer shows it.
    const std::optional<OutputTicks> ticks = output_ticks(job, info);
    std::optional<VideoFrame> held;
    for (std::int64_t read = decode.index;; ++read) {
      if (stop_requested(job)) return fail(cancelled("stopped on request"));
      if (Status s = inject_fault(job, "decode", read); !s.is_ok()) return fail(s);
      VideoFrame frame;
      Result<bool> got = [&] {
        ScopedTimer t(&ctx.ledger, "decode");
        return read < first ? reader.skip(frame) : reader.read(frame);
      }();
      if (!got) return fail(got.status());
      if (!*got || (job.trim_frame_end >= 0 && frame.index >= job.trim_frame_end)) break;
      if (frame.index < first) continue;
      if (pts_origin < 0) pts_origin = frame.pts;
      frame.pts -= pts_origin;  // the output starts at 0, like its trimmed audio
      if (ticks) {
        if (held) {
          mark_dropped(*held, *ticks, frame.pts);
          if (!decoded.push(std::move(*held))) return;
        }
        held = std::move(frame);
        continue;
      }
      if (!decoded.push(std::move(frame))) return;
    }
    if (held) {
      mark_dropped(*held, *ticks, std::nullopt);
      if (!decoded.push(std::move(*held))) return;
    }
    decoded.close();
  });

  std::thread worker([&] {
    run_face_work(
        ctx, decoded, swapped, [&](const VideoFrame& frame) { return inject_fault(job, "face", frame.index); }, fail);
  });

  SwapProgress progress{0, std::max<std::int64_t>(1, end - first), 0};
  progress.stages = &ctx.ledger;
  while (auto frame = swapped.pop()) {
    Status s = inject_fault(job, "encode", frame->index);
    if (s.is_ok()) s = [&] {
      ScopedTimer t(&ctx.ledger, "encode");
      return writer->write(*frame);
    }();
    if (!s.is_ok()) {
      fail(s);
      break;
    }
    ++progress.frames_done;
    progress.frames_total = std::max(progress.frames_total, progress.frames_done);
    progress.elapsed_s = std::chrono::duration<double>(Clock::now() - start).count();
    if (on_progress) on_progress(progress);
  }
  decoder.join();
  worker.join();
  FSWAP_RETURN_IF_ERROR(error.get());
  if (progress.frames_done == 0) return invalid_input(job.target + ": no video frames could be decoded");
  {
    ScopedTimer t(&ctx.ledger, "encode");
    FSWAP_RETURN_IF_ERROR(writer->finish());
  }
  SwapSummary s;
  s.frames = progress.frames_done;
  s.faces_swapped = ctx.faces_swapped;
  s.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  s.face_work = ctx.plan.to_string();
  return s;
}


// ---- Segmented video (SwapJob::segment_frames, SwapJob::devices) ----

bool is_segmented(const SwapJob& job) { return job.segment_frames > 0 || job.devices.size() >= 2; }

// Segment k holds the target's frames [first + k × length, first + (k + 1) × length).
struct SegmentGrid {
  std::int64_t first = 0;
  std::int64_t length = 1;
  std::int64_t segment_of(std::int64_t frame) const { return (frame - first) / length; }
  std::int64_t begin_of(std::int64_t segment) const { return first + segment * length; }
};

// Segments [first_segment, end_segment) of one device; end_segment −1: to the end of the video.
struct PartRange {
  std::int64_t first_segment = 0;
  std::int64_t end_segment = -1;
};

// --output-video-fps: where each segment of a part ends, the pts of the frame after its last
// (−1: the video ends with it). Segment k's output is the ticks from its first frame's to that
// frame's, as in the unsegmented output. The decoder records a segment's end before it hands on
// the segment's last frame; the encoder reads it when it finishes the segment.
class SegmentEnds {
 public:
  void set(std::int64_t segment, std::int64_t end_pts) {
    std::lock_guard lock(mutex_);
    ends_[segment] = end_pts;
  }
  std::int64_t of(std::int64_t segment) const {
    std::lock_guard lock(mutex_);
    const auto it = ends_.find(segment);
    return it == ends_.end() ? -1 : it->second;
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::int64_t, std::int64_t> ends_;
};

// What the parts of one segmented run share. Thread-safe where parts meet: the store, the
// error slot, the stop flag and the progress.
struct SegmentRun {
  SegmentRun(const SwapJob& j, const VideoInfo& i, SegmentGrid g, SegmentStore& s, const ProgressCallback& p,
             Clock::time_point t)
      : job(j), info(i), grid(g), trim_end(j.trim_frame_end), store(s), on_progress(p), start(t) {}
  const SwapJob& job;
  const VideoInfo& info;
  SegmentGrid grid;
  std::int64_t trim_end;  // −1: to the end of the input
  SegmentStore& store;
  const ProgressCallback& on_progress;
  Clock::time_point start;
  ErrorSlot error;
  std::atomic<bool> stop{false};
  std::mutex progress_mutex;
  SwapProgress progress;

  void fail(const Status& s) {
    error.set(s);
    stop = true;
  }
  Status stop_status() const {
    if (stop_requested(job)) return cancelled("stopped on request");
    return stop ? cancelled("stopped: another part of the video failed") : Status::ok();
  }
  void frame_done() {
    std::lock_guard lock(progress_mutex);
    ++progress.frames_done;
    progress.frames_total = std::max(progress.frames_total, progress.frames_done);
    progress.elapsed_s = std::chrono::duration<double>(Clock::now() - start).count();
    if (on_progress) on_progress(progress);
  }
};

// The job's fingerprint for SegmentStore: everything that changes the frames of a segment.
std::string segment_fingerprint(const SwapJob& job, std::int64_t segment_frames) {
  std::string text = std::string("fswap ") + version() + "\n";
  auto file = [&](const std::string& role, const std::string& path) {
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    const auto time = fs::last_write_time(path, ec).time_since_epoch().count();
    text += role + " " + path + " " + std::to_string(size) + " " + std::to_string(time) + "\n";
  };
  for (const auto& s : job.sources) file("source", s);
  file("target", job.target);
  if (!job.reference_face_path.empty()) file("reference", job.reference_face_path);
  const auto& a = job.analyser;
  text += "engine " + job.engine + " models " + a.models_dir + " detector " + a.detector + " " +
          std::to_string(a.detect.score_threshold) + " " + std::to_string(a.detect.nms_iou) + " " +
          std::to_string(a.detect.detector_size) + " landmarker " + a.landmarker + " " +
          std::to_string(a.landmarker_score) + " precision " +
          std::to_string(static_cast<int>(a.session.precision)) + "\n";
  text += "detector interval " + std::to_string(job.face_detector_interval) + " margin";
  for (int m : a.detect.margin) text.append(" ").append(std::to_string(m));
  text += " angles";
  for (int angle : a.detect.angles) text.append(" ").append(std::to_string(angle));
  text += "\n";
  const FaceFilter& filter = job.selector.filter;
  text += "selector " + std::to_string(static_cast<int>(job.selector.mode)) + " " +
          std::to_string(job.selector.reference_distance) + " " + std::to_string(job.selector.reference_position) + " " +
          std::to_string(job.reference_frame_number) + " " + std::to_string(static_cast<int>(job.selector.order)) +
          " " + filter.gender.value_or("-") + " " + filter.race.value_or("-") + " " +
          (filter.age_start ? std::to_string(*filter.age_start) : "-") + " " +
          (filter.age_end ? std::to_string(*filter.age_end) : "-") + "\n";
  text += "swapper " + job.face_swapper_model + " " + job.face_swapper_pixel_boost + " " +
          std::to_string(job.face_swapper_weight) + " " + std::to_string(job.swap.mask_blur) + " " +
          std::to_string(job.swap.colour_transfer) + " " + std::to_string(job.swap.keep_mouth) + " " +
          std::to_string(job.swap.blend_levels) + "\n";
  const FaceMaskOptions& m = job.face_mask;
  text += "mask " + std::to_string(m.blur) + " " + m.occluder_model + " " + m.parser_model;
  for (const auto* list : {&m.types, &m.areas, &m.regions}) {
    text += " |";
    for (const auto& name : *list) text.append(" ").append(name);
  }
  for (float p : m.padding) text.append(" ").append(std::to_string(p));
  text += "\n";
  text += "processors";
  for (const auto& p : job.processors) text += " " + p;
  text += "\nenhancer " + job.face_enhancer_model + " " + std::to_string(job.face_enhancer.blend) + " " +
          std::to_string(job.face_enhancer.weight) + "\n";
  text += "frame enhancer " + job.frame_enhancer_model + " " + std::to_string(job.frame_enhancer_blend) + "\n";
  text += "encode " + job.encode.codec + " " + std::to_string(job.encode.crf) + " " + job.encode.preset + " scale " +
          std::to_string(job.encode.scale);
  // Named only when set, so stores of runs at the target's rate made before it stay valid.
  if (job.encode.frame_rate.num > 0)
    text += " fps " + std::to_string(job.encode.frame_rate.num) + "/" + std::to_string(job.encode.frame_rate.den);
  text += "\n";
  text += "frames " + std::to_string(job.trim_frame_start) + " " + std::to_string(job.trim_frame_end) + " " +
          std::to_string(segment_frames) + " swap " + std::to_string(job.swap_faces) + " smooth " +
          std::to_string(job.smooth_landmarks) + "\n";
  return text;
}

// FaceFusion's reference frame: the first frame of the target in [first, end) (end -1: to its
// end) with a face passing the selector's filters; its reference_face (face/selector.h),
// embedded. What ReferenceTracker::match takes when it has no reference (the smoother leaves that
// frame's faces alone: it has no tracks yet); found up front for --reference-frame-number and so
// that every segment, whichever run or device makes it, compares with the same face. Empty: no
// such frame. A still image is its frame 0.
Result<std::vector<float>> target_reference(JobContext& ctx, std::int64_t first, std::int64_t end) {
  FSWAP_ASSIGN_OR_RETURN(MediaKind kind, probe_media(ctx.job.target));
  auto reference_of = [&](Image& image) -> Result<std::vector<float>> {
    FSWAP_ASSIGN_OR_RETURN(auto faces, wanted_faces(ctx, image, /*is_video=*/false));  // always detected
    if (faces.empty()) return std::vector<float>{};
    Face& face = faces[static_cast<std::size_t>(reference_face(faces, ctx.job.selector))];
    FSWAP_RETURN_IF_ERROR(ctx.analyser->embed(image, face, &ctx.ledger));
    return face.embedding;
  };
  if (kind == MediaKind::kImage) {
    if (first > 0) return std::vector<float>{};
    FSWAP_ASSIGN_OR_RETURN(Image image, read_image(ctx.job.target));
    return reference_of(image);
  }
  FSWAP_ASSIGN_OR_RETURN(DecodeStart decode, open_decode(ctx.job, first, first));
  VideoFrame frame;
  for (std::int64_t i = decode.index; end < 0 || i < end; ++i) {
    if (stop_requested(ctx.job)) return cancelled("stopped on request");
    FSWAP_ASSIGN_OR_RETURN(bool got, i < first ? decode.reader->skip(frame) : decode.reader->read(frame));
    if (!got) break;
    if (i < first) continue;
    FSWAP_ASSIGN_OR_RETURN(std::vector<float> reference, reference_of(frame.image));
    if (!reference.empty()) return reference;
  }
  return std::vector<float>{};
}

// One part: decode from the part's first unfinished frame (seeked to; finished segments after
// it are passed over with skip) → face work (tracking restarted at each segment) → one
// VideoWriter per segment, recorded in the store as each one finishes. Errors go to run.error
// and stop the other parts.
void run_part(SegmentRun& run, JobContext& ctx, const ReferenceTracker& fresh_tracker, PartRange part) {
  const SwapJob& job = run.job;
  const SegmentGrid& grid = run.grid;
  const std::int64_t part_begin = grid.begin_of(part.first_segment);
  const std::int64_t part_end = part.end_segment < 0 ? -1 : grid.begin_of(part.end_segment);
  std::int64_t start = part_begin;  // the part's first frame in an unfinished segment
  while (run.store.finished(grid.segment_of(start))) start += grid.length;
  auto decode = open_decode(job, grid.first, start);
  if (!decode) return run.fail(decode.status());
  VideoReader& reader = *decode->reader;
  plan_windows(ctx, run.info);
  BoundedQueue<VideoFrame> decoded(job.queue_depth), swapped(encode_queue_depth(ctx));
  auto fail = [&](const Status& s) {
    run.fail(s);
    decoded.abort();
    swapped.abort();
  };

  const std::optional<OutputTicks> ticks = output_ticks(job, run.info);
  SegmentEnds ends;
  std::thread decoder([&] {
    name_this_thread("fswap-decode");
    std::int64_t pts_origin = decode->pts_origin;
    // --output-video-fps: the last wanted frame waits for the next frame, wanted or not (the one
    // after the part too), whose pts says whether the writer shows it and, after a segment's last
    // frame, where the segment ends. Hands it on; false when the queue was aborted.
    std::optional<VideoFrame> held;
    auto hand_on_held = [&](std::optional<std::int64_t> next_pts) {
      if (!held) return true;
      mark_dropped(*held, *ticks, next_pts);
      const std::int64_t segment = grid.segment_of(held->index);
      if (!next_pts || grid.segment_of(held->index + 1) != segment) ends.set(segment, next_pts.value_or(-1));
      const bool pushed = decoded.push(std::move(*held));
      held.reset();
      return pushed;
    };
    // The part's frames, and with --output-video-fps the one after them.
    const std::int64_t read_end = part_end >= 0 && ticks ? part_end + 1 : part_end;
    for (std::int64_t read = decode->index; read_end < 0 || read < read_end; ++read) {
      if (run.trim_end >= 0 && read >= run.trim_end) {
        if (Status s = run.store.set_end(run.trim_end); !s.is_ok()) return fail(s);
        break;
      }
      if (Status s = run.stop_status(); !s.is_ok()) return fail(s);
      if (Status s = inject_fault(job, "decode", read); !s.is_ok()) return fail(s);
      const bool wanted = read >= part_begin && (part_end < 0 || read < part_end) &&
                          !run.store.finished(grid.segment_of(read));
      VideoFrame frame;
      Result<bool> got = [&] {
        ScopedTimer t(&ctx.ledger, "decode");
        return wanted ? reader.read(frame) : reader.skip(frame);
      }();
      if (!got) return fail(got.status());
      if (!*got) {
        if (read <= grid.first) return fail(invalid_input(job.target + ": no video frames could be decoded"));
        if (Status s = run.store.set_end(read); !s.is_ok()) return fail(s);
        break;
      }
      if (read == grid.first) pts_origin = frame.pts;
      if (read < grid.first) continue;
      frame.pts -= pts_origin;  // the output starts at 0, like its trimmed audio
      if (ticks) {
        if (!hand_on_held(frame.pts)) return;
        if (wanted) held = std::move(frame);
        continue;
      }
      if (!wanted) continue;
      if (!decoded.push(std::move(frame))) return;
    }
    if (ticks && !hand_on_held(std::nullopt)) return;  // the video's end (a part's end has handed it on)
    decoded.close();
  });

  std::thread worker([&] {
    std::int64_t segment = -1;
    auto before_analysis = [&](const VideoFrame& frame) {
      if (grid.segment_of(frame.index) != segment) {  // each segment tracks faces afresh
        segment = grid.segment_of(frame.index);
        ctx.face_tracker = FaceTracker();
        ctx.tracker = fresh_tracker;
        ctx.smoother = LandmarkSmoother();
        ctx.followed.clear();
      }
      return inject_fault(job, "face", frame.index);
    };
    run_face_work(ctx, decoded, swapped, before_analysis, fail);
  });

  // A segment is finished at its last frame; only the video's last one ends short, at the end.
  // Its file's timestamps start at 0; its first frame's output pts goes into the manifest.
  // --output-video-fps: the segment's writer counts ticks from the output's first frame and ends
  // where the next segment begins, so the file holds the segment's ticks (maybe none).
  std::unique_ptr<VideoWriter> writer;
  std::int64_t segment = -1, segment_frames = 0, segment_pts = 0, last_pts = 0;
  auto finish_segment = [&]() -> Status {
    const std::int64_t end_pts = ends.of(segment);
    {
      ScopedTimer t(&ctx.ledger, "encode");
      FSWAP_RETURN_IF_ERROR(end_pts < 0 ? writer->finish() : writer->finish_at(end_pts - segment_pts));
    }
    writer.reset();
    if (!ticks) return run.store.add(segment, segment_frames, segment_frames, segment_pts);
    const std::int64_t first_tick = ticks->tick(segment_pts);
    const std::int64_t end_tick = end_pts < 0 ? ticks->end_tick(last_pts) : ticks->tick(end_pts);
    return run.store.add(segment, segment_frames, end_tick - first_tick, first_tick);
  };
  while (auto frame = swapped.pop()) {
    Status s = inject_fault(job, "encode", frame->index);
    if (s.is_ok() && !writer) {
      segment = grid.segment_of(frame->index);
      segment_frames = 0;
      segment_pts = frame->pts;
      EncodeOptions encode = job.encode;
      encode.tick_origin = -segment_pts;
      auto opened = VideoWriter::open(run.store.path_for(segment), run.info, encode, {});
      if (opened) writer = std::move(*opened);
      s = opened.status();
    }
    if (s.is_ok()) {
      ScopedTimer t(&ctx.ledger, "encode");
      last_pts = frame->pts;
      frame->pts -= segment_pts;
      s = writer->write(*frame);
    }
    if (s.is_ok() && ++segment_frames == grid.length) s = finish_segment();
    if (!s.is_ok()) {
      fail(s);
      break;
    }
    run.frame_done();
  }
  decoder.join();
  worker.join();
  if (writer && run.error.get().is_ok()) {
    if (Status s = finish_segment(); !s.is_ok()) run.fail(s);
  }
}

// Removes a directory and everything in it when the run ends (a segment_dir of our own making).
class TemporaryDirectory {
 public:
  explicit TemporaryDirectory(std::string path) : path_(std::move(path)) {}
  ~TemporaryDirectory() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  TemporaryDirectory(const TemporaryDirectory&) = delete;
  TemporaryDirectory& operator=(const TemporaryDirectory&) = delete;

 private:
  std::string path_;
};

// "<dir>/.<stem>.segments-<pid>": segments of a run without SwapJob::segment_dir.
std::string temporary_segment_dir(const std::string& output) {
  const fs::path out(output);
  std::string name(".");
  name.append(out.stem().string()).append(".segments-").append(std::to_string(::getpid()));
  return (out.parent_path() / name).string();
}

Result<SwapSummary> run_segmented_video(const SwapJob& job, const ProgressCallback& on_progress,
                                        Clock::time_point start) {
  FSWAP_ASSIGN_OR_RETURN(auto probe, VideoReader::open(job.target));
  const VideoInfo info = probe->info();
  probe.reset();
  FSWAP_ASSIGN_OR_RETURN(FrameRange range, frame_range(job, info));
  const std::int64_t parts = std::max<std::int64_t>(1, static_cast<std::int64_t>(job.devices.size()));
  const std::int64_t estimate = std::max<std::int64_t>(1, range.end - range.first);
  const SegmentGrid grid{range.first, job.segment_frames > 0 ? job.segment_frames : (estimate + parts - 1) / parts};

  const std::string dir = job.segment_dir.empty() ? temporary_segment_dir(job.output) : job.segment_dir;
  TemporaryDirectory temporary(job.segment_dir.empty() ? dir : std::string());
  // --output-video-fps: the segments' offsets are ticks of the output rate.
  const Rational rate = job.encode.frame_rate;
  const Rational offset_unit = rate.num > 0 ? Rational{rate.den, rate.num} : info.time_base;
  const SegmentLayout layout{segment_fingerprint(job, grid.length), grid.first, grid.length, offset_unit};
  FSWAP_ASSIGN_OR_RETURN(auto store, SegmentStore::open(dir, layout));

  SegmentRun run(job, info, grid, *store, on_progress, start);
  const std::int64_t resumed = store->finished_frames();
  run.progress.frames_resumed = resumed;
  run.progress.frames_total = std::max<std::int64_t>(1, estimate - resumed);
  std::vector<std::unique_ptr<SwapJob>> part_jobs;
  std::vector<std::unique_ptr<JobContext>> contexts;
  if (!store->complete_files().is_ok()) {
    // Every part loads its own models on its own device.
    for (std::int64_t p = 0; p < parts; ++p) {
      part_jobs.push_back(std::make_unique<SwapJob>(job));
      if (job.devices.size() >= 2) part_jobs.back()->analyser.session.device = job.devices[static_cast<std::size_t>(p)];
      contexts.push_back(std::make_unique<JobContext>(*part_jobs.back()));
      FSWAP_RETURN_IF_ERROR(load_models(*contexts.back(), job.batch_frames));
    }
    std::vector<float> reference;
    const bool first_face = job.swap_faces && uses_face_processor(job) && job.selector.mode == SelectorMode::kReference &&
                            job.reference_face_path.empty() && job.reference_frame_number < 0;
    if (first_face) {
      FSWAP_ASSIGN_OR_RETURN(reference, target_reference(*contexts.front(), grid.first, job.trim_frame_end));
    }
    std::vector<ReferenceTracker> fresh_trackers;
    for (const auto& ctx : contexts) {
      fresh_trackers.push_back(ctx->tracker);
      if (!reference.empty()) fresh_trackers.back().set_reference(reference);
    }
    // Contiguous parts of the estimated segments; the last one runs to the end of the video.
    const std::int64_t segments = grid.segment_of(range.first + estimate - 1) + 1;
    std::vector<std::thread> threads;
    for (std::int64_t p = 0; p < parts; ++p) {
      const PartRange part{p * segments / parts, p + 1 == parts ? -1 : (p + 1) * segments / parts};
      bool done = part.end_segment >= 0;  // the last part runs at least to find the video's end
      for (std::int64_t k = part.first_segment; done && k < part.end_segment; ++k) done = store->finished(k);
      if (done) continue;
      threads.emplace_back([&, p, part] {
        run_part(run, *contexts[static_cast<std::size_t>(p)], fresh_trackers[static_cast<std::size_t>(p)], part);
      });
    }
    for (auto& t : threads) t.join();
    FSWAP_RETURN_IF_ERROR(run.error.get());
  }

  FSWAP_ASSIGN_OR_RETURN(std::vector<SegmentFile> files, store->complete_files());
  const std::int64_t frames = store->end_frame() - grid.first;
  const auto join_start = Clock::now();
  FSWAP_RETURN_IF_ERROR(
      join_segments(files, offset_unit, job.output, audio_for(job, info, grid.first, store->end_frame())));
  const double join_s = std::chrono::duration<double>(Clock::now() - join_start).count();
  FSWAP_RETURN_IF_ERROR(store->remove_all());

  SwapSummary s;
  s.frames = frames;
  s.frames_resumed = resumed;
  s.segments = static_cast<std::int64_t>(files.size());
  if (!contexts.empty()) s.face_work = contexts.front()->plan.to_string();
  TimeLedger ledger;
  for (const auto& ctx : contexts) {
    s.faces_swapped += ctx->faces_swapped;
    for (const auto& e : ctx->ledger.entries()) ledger.add(e.stage, e.seconds);
    if (ctx->engine) s.memory += ctx->engine->memory_summary();
  }
  ledger.add("join", join_s);
  s.stages = ledger.entries();
  s.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return s;
}

}  // namespace

// The output options' ranges (FaceFusion's), named as the CLI flags.
Status validate_output_options(const SwapJob& job) {
  auto outside = [](double v, double lo, double hi) { return !(v >= lo && v <= hi); };
  if (outside(job.encode.scale, 0.25, 8.0)) return invalid_input("--output-video-scale must be within 0.25..8");
  if (outside(job.image_scale, 0.25, 8.0)) return invalid_input("--output-image-scale must be within 0.25..8");
  if (job.encode.frame_rate.num != 0 && !(job.encode.frame_rate.value() > 0))
    return invalid_input("--output-video-fps must be greater than 0");
  if (outside(job.audio_volume, 0, 100)) return invalid_input("--output-audio-volume must be within 0..100");
  if (job.audio_quality != -1 && outside(job.audio_quality, 0, 100))
    return invalid_input("--output-audio-quality must be within 0..100");
  return Status::ok();
}

Status validate_job(const SwapJob& job) {
  if (job.processors.empty())
    return invalid_input("no processor given (--processors face_swapper face_enhancer frame_enhancer)");
  for (const auto& p : job.processors)
    if (p != "face_swapper" && p != "face_enhancer" && p != "frame_enhancer")
      return invalid_input("unknown processor '" + p + "' (face_swapper, face_enhancer, frame_enhancer)");
  if (job.face_detector_interval < 1) return invalid_input("--face-detector-interval must be at least 1");
  if (job.batch_frames < 1) return invalid_input("--batch-frames must be at least 1");
  if (uses_processor(job, "face_enhancer")) FSWAP_RETURN_IF_ERROR(face_enhancer_model_info(job.face_enhancer_model).status());
  if (job.face_enhancer.blend < 0 || job.face_enhancer.blend > 100)
    return invalid_input("--face-enhancer-blend must be within 0..100");
  if (job.face_enhancer.weight < 0 || job.face_enhancer.weight > 1)
    return invalid_input("--face-enhancer-weight must be within 0..1");
  if (uses_processor(job, "frame_enhancer"))
    FSWAP_RETURN_IF_ERROR(frame_enhancer_model_info(job.frame_enhancer_model).status());
  if (job.frame_enhancer_blend < 0 || job.frame_enhancer_blend > 100)
    return invalid_input("--frame-enhancer-blend must be within 0..100");
  if (job.sources.empty() && uses_processor(job, "face_swapper")) return invalid_input("no source image given (-s SOURCE)");
  for (const auto& s : job.sources) FSWAP_RETURN_IF_ERROR(check_input("source", s));
  FSWAP_RETURN_IF_ERROR(check_input("target", job.target));
  if (!job.reference_face_path.empty()) FSWAP_RETURN_IF_ERROR(check_input("reference face", job.reference_face_path));
  if (job.output.empty()) return invalid_input("no output path given (-o OUTPUT)");

  const fs::path dir = fs::path(job.output).parent_path();
  std::error_code ec;
  if (!dir.empty() && !fs::is_directory(dir, ec))
    return invalid_input("output " + job.output + ": directory " + dir.string() + " does not exist");
  for (const auto& input : job.sources)
    if (same_file(input, job.output)) return invalid_input("output " + job.output + " is the source " + input + "; refusing to overwrite an input");
  if (same_file(job.target, job.output)) return invalid_input("output " + job.output + " is the target; refusing to overwrite an input");

  for (const auto& s : job.sources) {
    FSWAP_ASSIGN_OR_RETURN(MediaKind kind, probe_media(s));
    if (kind != MediaKind::kImage) return invalid_input("source " + s + ": not an image");
  }
  FSWAP_ASSIGN_OR_RETURN(MediaKind target_kind, probe_media(job.target));
  const std::string ext = lower_extension(job.output);
  if (target_kind == MediaKind::kImage && !is_image_extension(ext))
    return invalid_input("output " + job.output + ": the target is an image, so the output must be .png, .jpg or .webp");
  if (target_kind == MediaKind::kVideo && !is_video_extension(ext))
    return invalid_input("output " + job.output + ": the target is a video, so the output must be .mp4, .mkv or .mov");
  if (job.trim_frame_start < 0) return invalid_input("--trim-frame-start must be ≥ 0");
  if (job.segment_frames < 0) return invalid_input("--segment-frames must be ≥ 0");
  if (!job.segment_dir.empty() && !is_segmented(job))
    return invalid_input("--segment-dir " + job.segment_dir + " needs --segment-frames N (or several devices)");
  FSWAP_RETURN_IF_ERROR(validate_output_options(job));
  return Status::ok();
}

Result<SwapSummary> run_swap(const SwapJob& job, const ProgressCallback& on_progress) {
  const auto start = Clock::now();
  FSWAP_RETURN_IF_ERROR(validate_job(job));
  FSWAP_ASSIGN_OR_RETURN(MediaKind kind, probe_media(job.target));
  if (kind == MediaKind::kVideo && is_segmented(job)) return run_segmented_video(job, on_progress, start);
  JobContext ctx(job);
  {
    ScopedTimer t(&ctx.ledger, "load");  // the models' files; executors come with their first runs
    FSWAP_RETURN_IF_ERROR(load_models(ctx, kind == MediaKind::kVideo ? job.batch_frames : 1));
  }
  Result<SwapSummary> summary =
      kind == MediaKind::kImage ? run_image(ctx, on_progress, start) : run_video(ctx, on_progress, start);
  if (summary) {
    summary->stages = ctx.ledger.entries();
    if (ctx.engine) summary->memory = ctx.engine->memory_summary();  // while the sessions still live
    if (ctx.engine) summary->memory_stats = ctx.engine->memory_stats();
  }
  return summary;
}

}  // namespace fswap
