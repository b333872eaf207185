// JobWorker: the one thread that runs jobs, as its JobQueue hands them out, through run_swap.
// HTTP threads never run a job; they insert it in the store, publish it and call wake().
//
//   JobWorker worker(store, queue, base_job);   // base_job: models dir, device, threads
//   worker.start();
//   worker.wake();                        // a job was queued
//   worker.cancel(id);                    // running job: its cancel flag is raised
//   worker.stop();                        // running job stops and goes back to queued
//
// Progress is written to the store at most every 250 ms. While a job runs, a second thread
// calls queue.heartbeat() when the queue asks for it; a job that is no longer ours
// (cancelled from another process, taken over) is stopped and left alone. A job interrupted
// by stop() (or a crash) runs again from the start (next start-up, or another worker): resume
// from the last finished chunk is not built yet.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "pipeline/swap_job.h"
#include "server/job_queue.h"
#include "server/job_store.h"

namespace fswap::server {

class JobWorker {
 public:
  // store and queue outlive the worker. base_job carries the server-wide settings (models,
  // device, threads); each job's options and files are laid on a copy of it.
  JobWorker(JobStore& store, JobQueue& queue, SwapJob base_job)
      : store_(store), queue_(queue), base_job_(std::move(base_job)) {}
  ~JobWorker() { stop(); }

  void start();
  void wake();
  // Raises the cancel flag of job id when it is the running one; returns whether it was.
  bool cancel(const std::string& id);
  // Cancels the running job (back to queued) and joins the thread. Idempotent.
  void stop();

  std::int64_t frames_processed() const { return frames_processed_.load(); }

 private:
  void loop();
  void beat();  // the heartbeat thread
  void run_one(const JobRecord& job);

  JobStore& store_;
  JobQueue& queue_;
  SwapJob base_job_;
  std::thread thread_;
  std::thread heartbeat_thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable heartbeat_cv_;
  bool stopping_ = false;
  bool woken_ = false;
  std::string running_id_;                 // guarded by mu_
  std::atomic<bool> cancel_flag_{false};   // the running job's SwapJob::cancel
  std::atomic<bool> user_cancelled_{false};
  std::atomic<bool> lost_{false};          // the running job is no longer ours
  std::atomic<std::int64_t> frames_processed_{0};
};

}  // namespace fswap::server
