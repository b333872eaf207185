#include "server/job_worker.h"

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include "core/log.h"
#include "runtime/engines/native_engine.h"
#include "server/job_options.h"

namespace fswap::server {
namespace {

// A stable, lowercase code for a failed job's error.
std::string error_code_for(const Status& s) {
  switch (s.code()) {
    case StatusCode::kInvalidInput: return "invalid_input";
    case StatusCode::kNotFound: return "not_found";
    case StatusCode::kUnsupported: return "unsupported";
    case StatusCode::kNoFace: return "no_face";
    case StatusCode::kCancelled: return "cancelled";
    case StatusCode::kOutOfMemory: return "out_of_memory";
    default: return "internal";
  }
}

}  // namespace

std::string worker_name() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::snprintf(host, sizeof host, "localhost");
  return std::string(host) + ":" + std::to_string(getpid());
}

JobWorker::JobWorker(JobStore& store, JobQueue& queue, SwapJob base_job, int max_running_jobs)
    : store_(store), queue_(queue), base_job_(std::move(base_job)) {
  FSWAP_CHECK(max_running_jobs >= 1, "JobWorker: max_running_jobs must be at least 1");
  if (max_running_jobs > 1) {
    FaceBatcherOptions options;
    options.max_batch = max_running_jobs;
    batcher_ = std::make_unique<FaceBatcher>(options);
    base_job_.face_batcher = batcher_.get();
  }
  for (int i = 0; i < max_running_jobs; ++i) slots_.push_back(std::make_unique<Slot>());
}

JobWorker::~JobWorker() { stop(); }

void JobWorker::start() {
  for (auto& slot : slots_) slot->thread = std::thread([this, s = slot.get()] { loop(*s); });
  if (queue_.heartbeat_interval().count() > 0) heartbeat_thread_ = std::thread([this] { beat(); });
}

void JobWorker::wake() {
  {
    std::lock_guard lock(mu_);
    ++wakes_;
  }
  cv_.notify_all();
}

bool JobWorker::cancel(const std::string& id) {
  std::lock_guard lock(mu_);
  for (auto& slot : slots_) {
    if (slot->running_id != id) continue;
    slot->user_cancelled = true;
    slot->cancel_flag = true;
    return true;
  }
  return false;
}

void JobWorker::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (auto& slot : slots_) slot->cancel_flag = true;
  }
  cv_.notify_all();
  heartbeat_cv_.notify_one();
  for (auto& slot : slots_)
    if (slot->thread.joinable()) slot->thread.join();
  if (heartbeat_thread_.joinable()) heartbeat_thread_.join();
}

int JobWorker::running_jobs() const {
  std::lock_guard lock(mu_);
  int n = 0;
  for (const auto& slot : slots_) n += slot->running_id.empty() ? 0 : 1;
  return n;
}

double JobWorker::frames_per_second() const {
  std::lock_guard lock(mu_);
  double sum = 0;
  for (const auto& slot : slots_)
    if (!slot->running_id.empty()) sum += slot->fps;
  return sum;
}

void JobWorker::beat() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    heartbeat_cv_.wait_for(lock, queue_.heartbeat_interval(), [this] { return stopping_; });
    if (stopping_) break;
    std::vector<std::string> ids;
    for (const auto& slot : slots_)
      if (!slot->running_id.empty()) ids.push_back(slot->running_id);
    lock.unlock();
    std::vector<std::string> lost;
    for (const auto& id : ids)
      if (!queue_.heartbeat(id)) lost.push_back(id);
    lock.lock();
    for (const auto& id : lost)
      for (auto& slot : slots_) {
        if (slot->running_id != id) continue;
        log_warn("serve: job " + id + " is no longer this worker's (cancelled or taken over); stopping it");
        slot->lost = true;
        slot->cancel_flag = true;
      }
  }
}

void JobWorker::loop(Slot& slot) {
  while (true) {
    std::uint64_t seen = 0;
    {
      std::unique_lock lock(mu_);
      if (stopping_) return;
      seen = wakes_;
    }
    std::optional<JobRecord> job = queue_.claim();
    if (!job) {
      std::unique_lock lock(mu_);
      // Also poll now and then: a job queued by another process (or host).
      cv_.wait_for(lock, queue_.poll_interval(), [&] { return stopping_ || wakes_ != seen; });
      continue;
    }
    {
      std::lock_guard lock(mu_);
      if (stopping_) {  // claimed just as we stop: give it back
        const bool ours = store_.finish(job->id, queue_.owner(), JobState::kQueued);
        queue_.release(job->id, ours ? JobState::kQueued : JobState::kRunning);
        return;
      }
      slot.running_id = job->id;
      slot.fps = 0;
      slot.cancel_flag = false;
      slot.user_cancelled = false;
      slot.lost = false;
    }
    run_one(slot, *job);
  }
}

void JobWorker::run_one(Slot& slot, const JobRecord& record) {
  namespace fs = std::filesystem;
  const fs::path dir = store_.job_dir(record.id);
  SwapJob job = base_job_;
  auto options = parse_job_options(record.options_json);
  Status status = options.status();
  if (options) status = options->apply_to(job);
  for (const auto& s : nlohmann::json::parse(record.sources_json, nullptr, false))
    if (s.is_string()) job.sources.push_back((dir / s.get<std::string>()).string());
  job.target = (dir / record.target).string();
  job.output = (dir / record.result).string();
  job.cancel = &slot.cancel_flag;
  // A video is made in segments kept in the job folder, so a run after a crash or a shutdown
  // resumes from the last finished one (base_job.segment_frames: --segment-frames, 0 = off),
  // output_video_fps included (segments count output ticks from the video's first frame).
  const fs::path segments = dir / "segments";
  const bool video = record.result.size() > 4 && record.result.compare(record.result.size() - 4, 4, ".mp4") == 0;
  if (video && job.segment_frames > 0) job.segment_dir = segments.string();
  else job.segment_frames = 0;

  auto last_write = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  std::int64_t last_frames = 0;
  Result<SwapSummary> summary = status;
  if (status.is_ok()) {
    log_info("serve: job " + record.id + " started");
    summary = run_swap(job, [&](const SwapProgress& p) {
      frames_processed_ += p.frames_done - last_frames;
      last_frames = p.frames_done;
      {
        std::lock_guard lock(mu_);
        slot.fps = p.fps();
      }
      const auto now = std::chrono::steady_clock::now();
      if (now - last_write < std::chrono::milliseconds(250) && p.frames_done < p.frames_total) return;
      last_write = now;
      store_.set_progress(record.id, {p.frames_resumed + p.frames_done, p.frames_resumed + p.frames_total, p.fps(),
                                      p.eta_s(), p.frames_resumed, NativeEngine().memory_stats()});
    });
  }
  if (summary && summary->frames_resumed > 0)
    log_info("serve: job " + record.id + " resumed: " + std::to_string(summary->frames_resumed) +
             " frames reused from finished segments, " + std::to_string(summary->frames - summary->frames_resumed) + " made");
  {
    // No heartbeat from here on: the job is about to leave the running state.
    std::lock_guard lock(mu_);
    slot.running_id.clear();
  }
  // The state the job ends in; nothing when it is no longer ours.
  JobState to = JobState::kDone;
  std::string code, message;
  if (!summary) {
    const Status& err = summary.status();
    if (err.code() == StatusCode::kCancelled || slot.cancel_flag) {
      // A user's DELETE ends the job; a shutdown puts it back in the queue.
      to = slot.user_cancelled ? JobState::kCancelled : JobState::kQueued;
    } else {
      to = JobState::kFailed;
      code = error_code_for(err);
      message = err.message();
    }
  } else if (!slot.lost) {
    store_.set_progress(record.id, {summary->frames, summary->frames, summary->fps(), 0, summary->frames_resumed,
                                    NativeEngine().memory_stats()});
  }
  if (to != JobState::kQueued && !slot.lost) {  // over: nothing left to resume
    std::error_code ec;
    fs::remove_all(segments, ec);
  }
  if (!slot.lost && store_.finish(record.id, queue_.owner(), to, code, message)) {
    if (to == JobState::kDone) log_info("serve: job " + record.id + " done");
    if (to == JobState::kFailed) log_warn("serve: job " + record.id + " failed: " + message);
  } else {
    const auto now = store_.get(record.id);  // cancelled elsewhere, or another worker's now
    to = now ? now->state : JobState::kCancelled;
  }
  queue_.release(record.id, to);
}

}  // namespace fswap::server
