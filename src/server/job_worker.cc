#include "server/job_worker.h"

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>

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

void JobWorker::start() { thread_ = std::thread([this] { loop(); }); }

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
  if (thread_.joinable()) thread_.join();
}

void JobWorker::loop() {
  while (true) {
    {
      std::unique_lock lock(mu_);
      if (stopping_) return;
    }
    std::optional<JobRecord> job = store_.claim_next();
    if (!job) {
      std::unique_lock lock(mu_);
      // Also poll now and then: a job queued by another process sharing the data dir.
      cv_.wait_for(lock, std::chrono::seconds(2), [this] { return stopping_ || woken_; });
      woken_ = false;
      continue;
    }
    {
      std::lock_guard lock(mu_);
      if (stopping_) {  // claimed just as we stop: give it back
        store_.transition(job->id, {JobState::kRunning}, JobState::kQueued);
        return;
      }
      running_id_ = job->id;
      cancel_flag_ = false;
      user_cancelled_ = false;
    }
    run_one(*job);
    std::lock_guard lock(mu_);
    running_id_.clear();
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
  if (summary) {
    store_.set_progress(record.id, {summary->frames, summary->frames, summary->fps(), 0});
    store_.transition(record.id, {JobState::kRunning}, JobState::kDone);
    log_info("serve: job " + record.id + " done");
    return;
  }
  const Status& err = summary.status();
  if (err.code() == StatusCode::kCancelled || cancel_flag_) {
    // A user's DELETE ends the job; a shutdown puts it back in the queue for the next start.
    store_.transition(record.id, {JobState::kRunning}, user_cancelled_ ? JobState::kCancelled : JobState::kQueued);
    return;
  }
  store_.transition(record.id, {JobState::kRunning}, JobState::kFailed, error_code_for(err), err.message());
  log_warn("serve: job " + record.id + " failed: " + err.message());
}

}  // namespace fswap::server
