#include "pipeline/swap_job.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <thread>

#include "core/bounded_queue.h"
#include "core/log.h"
#include "face/landmark_smoother.h"
#include "face/reference_tracker.h"
#include "pipeline/face_batcher.h"
#include "pipeline/processors.h"

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

// The shared state of one job: models, the chosen source and the reference identity.
struct JobContext {
  explicit JobContext(const SwapJob& j) : job(j), tracker(j.selector) {}
  const SwapJob& job;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<FaceAnalyser> analyser;
  std::unique_ptr<FaceSwapper> swapper;    // when the processors include face_swapper
  std::unique_ptr<FaceEnhancer> enhancer;  // when they include face_enhancer
  ReferenceTracker tracker;  // reference mode
  LandmarkSmoother smoother;  // video with smooth_landmarks
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
  // Several sources: the largest, most frontal face among them all.
  float best_score = -1;
  Image best_image;
  Face best;
  for (const auto& path : ctx.job.sources) {
    Image image;
    auto face = best_face_of(ctx, path, &image);
    if (!face) {
      if (ctx.job.sources.size() == 1 || face.status().code() != StatusCode::kNoFace) return face.status();
      log_warn(face.status().message() + "; skipping this source");
      continue;
    }
    const float score = face->box.area() * frontality(*face);
    if (score > best_score) best_score = score, best = *face, best_image = std::move(image);
  }
  if (best_score < 0) return no_face("no face found in any source image");
  FSWAP_ASSIGN_OR_RETURN(ctx.swapper, make_face_swapper(*ctx.engine, ctx.job, best_image, best));
  return Status::ok();
}

Status prepare_reference(JobContext& ctx) {
  if (ctx.job.selector.mode != SelectorMode::kReference || ctx.job.reference_face_path.empty()) return Status::ok();
  Image image;
  FSWAP_ASSIGN_OR_RETURN(Face face, best_face_of(ctx, ctx.job.reference_face_path, &image));
  FSWAP_RETURN_IF_ERROR(ctx.analyser->embed(image, face));
  ctx.tracker.set_reference(face.embedding);
  return Status::ok();
}

// Face work on one frame, in place. Returns the number of faces swapped.
// is_video: the frame is one of a sequence (landmarks may be smoothed across frames).
Result<int> process_frame(JobContext& ctx, Image& frame, bool is_video) {
  FSWAP_ASSIGN_OR_RETURN(auto faces, ctx.analyser->analyse(frame, /*embed=*/false, &ctx.ledger));
  if (is_video && ctx.job.smooth_landmarks) ctx.smoother.smooth(faces);
  std::vector<Face> chosen;
  if (ctx.job.selector.mode == SelectorMode::kReference) {
    FSWAP_ASSIGN_OR_RETURN(chosen, ctx.tracker.match(std::move(faces), [&](Face& f) {
      return ctx.analyser->embed(frame, f, &ctx.ledger);
    }));
  } else {
    chosen = select_faces(std::move(faces), ctx.job.selector.mode);
  }
  // As FaceFusion: each processor in turn over all chosen faces, the faces found on the target.
  for (const auto& processor : ctx.job.processors) {
    if (processor == "face_swapper") {
      for (const Face& f : chosen) FSWAP_RETURN_IF_ERROR(ctx.swapper->swap(frame, f, &ctx.ledger));
    } else if (processor == "face_enhancer") {
      for (const Face& f : chosen) FSWAP_RETURN_IF_ERROR(ctx.enhancer->enhance(frame, f, &ctx.ledger));
    }
  }
  ctx.faces_swapped += static_cast<std::int64_t>(chosen.size());
  return static_cast<int>(chosen.size());
}

bool uses_processor(const SwapJob& job, const std::string& name) {
  return std::find(job.processors.begin(), job.processors.end(), name) != job.processors.end();
}

bool stop_requested(const SwapJob& job) { return job.cancel && job.cancel->load(); }

Status inject_fault(const SwapJob& job, const char* stage, std::int64_t frame) {
  return job.fault_injection ? job.fault_injection(stage, frame) : Status::ok();
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
    FSWAP_ASSIGN_OR_RETURN(int swapped, process_frame(ctx, frame, /*is_video=*/false));
    if (swapped == 0) log_warn(ctx.job.target + ": no matching face found; the output is the unchanged target");
  }
  if (stop_requested(ctx.job)) return cancelled("stopped on request");
  FSWAP_RETURN_IF_ERROR(inject_fault(ctx.job, "encode", 0));
  {
    ScopedTimer t(&ctx.ledger, "encode");
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

Result<SwapSummary> run_video(JobContext& ctx, const ProgressCallback& on_progress, Clock::time_point start) {
  const SwapJob& job = ctx.job;
  FSWAP_ASSIGN_OR_RETURN(auto reader, VideoReader::open(job.target));
  const VideoInfo& info = reader->info();
  const std::int64_t first = std::max<std::int64_t>(0, job.trim_frame_start);
  const std::int64_t end = job.trim_frame_end < 0 ? info.frame_count : std::min(job.trim_frame_end, info.frame_count);
  if (job.trim_frame_end >= 0 && job.trim_frame_end <= first)
    return invalid_input("--trim-frame-end must be greater than --trim-frame-start");
  if (first >= info.frame_count && info.frame_count > 0)
    return invalid_input(job.target + ": --trim-frame-start " + std::to_string(first) + " is past the last frame (" +
                         std::to_string(info.frame_count) + " frames)");

  const double rate = info.frame_rate.value() > 0 ? info.frame_rate.value() : 25.0;
  AudioSource audio;
  if (info.has_audio) audio = {job.target, first / rate, job.trim_frame_end < 0 ? -1.0 : end / rate};
  FSWAP_ASSIGN_OR_RETURN(auto writer, VideoWriter::open(job.output, info, job.encode, audio));

  BoundedQueue<VideoFrame> decoded(job.queue_depth), swapped(job.queue_depth);
  ErrorSlot error;
  auto fail = [&](const Status& s) {
    error.set(s);
    decoded.abort();
    swapped.abort();
  };

  std::thread decoder([&] {
    std::int64_t pts_origin = -1;
    for (std::int64_t read = 0;; ++read) {
      if (stop_requested(job)) return fail(cancelled("stopped on request"));
      if (Status s = inject_fault(job, "decode", read); !s.is_ok()) return fail(s);
      VideoFrame frame;
      Result<bool> got = [&] {
        ScopedTimer t(&ctx.ledger, "decode");
        return reader->read(frame);
      }();
      if (!got) return fail(got.status());
      if (!*got || (job.trim_frame_end >= 0 && frame.index >= job.trim_frame_end)) break;
      if (frame.index < first) continue;
      if (pts_origin < 0) pts_origin = frame.pts;
      frame.pts -= pts_origin;  // the output starts at 0, like its trimmed audio
      if (!decoded.push(std::move(frame))) return;
    }
    decoded.close();
  });

  std::thread worker([&] {
    while (auto frame = decoded.pop()) {
      if (Status s = inject_fault(job, "face", frame->index); !s.is_ok()) return fail(s);
      if (job.swap_faces) {
        auto n = process_frame(ctx, frame->image, /*is_video=*/true);
        if (!n) return fail(n.status());
      }
      if (!swapped.push(std::move(*frame))) return;
    }
    swapped.close();
  });

  SwapProgress progress{0, std::max<std::int64_t>(1, end - first), 0};
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
  return s;
}

}  // namespace

Status validate_job(const SwapJob& job) {
  if (job.processors.empty()) return invalid_input("no processor given (--processors face_swapper face_enhancer)");
  for (const auto& p : job.processors)
    if (p != "face_swapper" && p != "face_enhancer")
      return invalid_input("unknown processor '" + p + "' (face_swapper, face_enhancer)");
  if (uses_processor(job, "face_enhancer")) FSWAP_RETURN_IF_ERROR(face_enhancer_model_info(job.face_enhancer_model).status());
  if (job.face_enhancer.blend < 0 || job.face_enhancer.blend > 100)
    return invalid_input("--face-enhancer-blend must be within 0..100");
  if (job.face_enhancer.weight < 0 || job.face_enhancer.weight > 1)
    return invalid_input("--face-enhancer-weight must be within 0..1");
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
  return Status::ok();
}

Result<SwapSummary> run_swap(const SwapJob& job, const ProgressCallback& on_progress) {
  const auto start = Clock::now();
  FSWAP_RETURN_IF_ERROR(validate_job(job));
  JobContext ctx(job);
  if (job.swap_faces) {
    FSWAP_ASSIGN_OR_RETURN(ctx.engine,
                           job.face_batcher ? job.face_batcher->job_engine(job.engine) : make_engine(job.engine));
    FSWAP_ASSIGN_OR_RETURN(ctx.analyser, FaceAnalyser::load(*ctx.engine, job.analyser));
    if (uses_processor(job, "face_swapper")) FSWAP_RETURN_IF_ERROR(prepare_source(ctx));
    if (uses_processor(job, "face_enhancer")) {
      FSWAP_ASSIGN_OR_RETURN(ctx.enhancer, make_face_enhancer(*ctx.engine, job));
    }
    FSWAP_RETURN_IF_ERROR(prepare_reference(ctx));
  }

  FSWAP_ASSIGN_OR_RETURN(MediaKind kind, probe_media(job.target));
  Result<SwapSummary> summary =
      kind == MediaKind::kImage ? run_image(ctx, on_progress, start) : run_video(ctx, on_progress, start);
  if (summary) {
    summary->stages = ctx.ledger.entries();
    if (ctx.engine) summary->memory = ctx.engine->memory_summary();  // while the sessions still live
  }
  return summary;
}

}  // namespace fswap
