#include "server/job_worker.h"

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include "core/log.h"
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

void JobWorker::start() {
  thread_ = std::thread([this] { loop(); });
  if (queue_.heartbeat_interval().count() > 0) heartbeat_thread_ = std::thread([this] { beat(); });
}

void JobWorker::wake() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  cv_.notify_one();
}

bool JobWorker::cancel(const std::string& id) {
  std::lock_guard lock(mu_);
  if (running_id_ != id) return false;
  user_cancelled_ = true;
  cancel_flag_ = true;
  return true;
}

void JobWorker::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    cancel_flag_ = true;
  }
  cv_.notify_one();
  heartbeat_cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  if (heartbeat_thread_.joinable()) heartbeat_thread_.join();
}

void JobWorker::beat() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    heartbeat_cv_.wait_for(lock, queue_.heartbeat_interval(), [this] { return stopping_; });
    const std::string id = running_id_;
    if (stopping_ || id.empty()) continue;
    lock.unlock();
    const bool ours = queue_.heartbeat(id);
    lock.lock();
    if (!ours && running_id_ == id) {
      log_warn("serve: job " + id + " is no longer this worker's (cancelled or taken over); stopping it");
      lost_ = true;
      cancel_flag_ = true;
    }
  }
}

void JobWorker::loop() {
  while (true) {
    {
      std::unique_lock lock(mu_);
      if (stopping_) return;
    }
    std::optional<JobRecord> job = queue_.claim();
    if (!job) {
      std::unique_lock lock(mu_);
      // Also poll now and then: a job queued by another process (or host).
      cv_.wait_for(lock, queue_.poll_interval(), [this] { return stopping_ || woken_; });
      woken_ = false;
      continue;
    }
    {
      std::lock_guard lock(mu_);
      if (stopping_) {  // claimed just as we stop: give it back
        const bool ours = store_.finish(job->id, queue_.owner(), JobState::kQueued);
        queue_.release(job->id, ours ? JobState::kQueued : JobState::kRunning);
        return;
      }
      running_id_ = job->id;
      cancel_flag_ = false;
      user_cancelled_ = false;
      lost_ = false;
    }
    run_one(*job);
  }
}

void JobWorker::run_one(const JobRecord& record) {
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
  job.cancel = &cancel_flag_;

  auto last_write = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  std::int64_t last_frames = 0;
  Result<SwapSummary> summary = status;
  if (status.is_ok()) {
    log_info("serve: job " + record.id + " started");
    summary = run_swap(job, [&](const SwapProgress& p) {
      frames_processed_ += p.frames_done - last_frames;
      last_frames = p.frames_done;
      const auto now = std::chrono::steady_clock::now();
      if (now - last_write < std::chrono::milliseconds(250) && p.frames_done < p.frames_total) return;
      last_write = now;
      store_.set_progress(record.id, {p.frames_done, p.frames_total, p.fps(), p.eta_s()});
    });
  }
  {
    // No heartbeat from here on: the job is about to leave the running state.
    std::lock_guard lock(mu_);
    running_id_.clear();
  }
  // The state the job ends in; nothing when it is no longer ours.
  JobState to = JobState::kDone;
  std::string code, message;
  if (!summary) {
    const Status& err = summary.status();
    if (err.code() == StatusCode::kCancelled || cancel_flag_) {
      // A user's DELETE ends the job; a shutdown puts it back in the queue.
      to = user_cancelled_ ? JobState::kCancelled : JobState::kQueued;
    } else {
      to = JobState::kFailed;
      code = error_code_for(err);
      message = err.message();
    }
  } else if (!lost_) {
    store_.set_progress(record.id, {summary->frames, summary->frames, summary->fps(), 0});
  }
  if (!lost_ && store_.finish(record.id, queue_.owner(), to, code, message)) {
    if (to == JobState::kDone) log_info("serve: job " + record.id + " done");
    if (to == JobState::kFailed) log_warn("serve: job " + record.id + " failed: " + message);
  } else {
    const auto now = store_.get(record.id);  // cancelled elsewhere, or another worker's now
    to = now ? now->state : JobState::kCancelled;
  }
  queue_.release(record.id, to);
}

}  // namespace fswap::server
