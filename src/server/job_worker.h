// JobWorker: runs up to max_running_jobs jobs at once, as its JobQueue hands them out, through
// run_swap. HTTP threads never run a job; they insert it in the store, publish it and call wake().
//
//   JobWorker worker(store, queue, base_job, /*max_running_jobs=*/2);   // base_job: models, device, threads
//   worker.start();
//   worker.wake();                        // a job was queued
//   worker.cancel(id);                    // running job: its cancel flag is raised
//   worker.stop();                        // running jobs stop and go back to queued
//
// One thread per slot claims and runs jobs. With two or more slots the running jobs share one
// set of face models through a FaceBatcher (pipeline/face_batcher.h, max batch = slots): their
// model calls are taken round-robin by job and batched across jobs; with one slot each job loads
// its own models (as `fswap swap` does).
// Progress is written to the store at most every 250 ms per job. While jobs run, a heartbeat
// thread calls queue.heartbeat() for each when the queue asks for it; a job that is no longer
// ours (cancelled from another process, taken over) is stopped and left alone. A job
// interrupted by stop() (or a crash) runs again (next start-up, or another worker): a video
// (made in segments of base_job.segment_frames frames in <job dir>/segments) resumes from its
// last finished segment; the folder is removed when the job is over (done, failed, cancelled).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <memory>
#include <thread>
#include <vector>

#include "pipeline/face_batcher.h"
#include "pipeline/swap_job.h"
#include "server/job_queue.h"
#include "server/job_store.h"

namespace fswap::server {

class JobWorker {
 public:
  // store and queue outlive the worker. base_job carries the server-wide settings (models,
  // device, threads); each job's options and files are laid on a copy of it.
  // max_running_jobs ≥ 1.
  JobWorker(JobStore& store, JobQueue& queue, SwapJob base_job, int max_running_jobs = 1);
  ~JobWorker();

  void start();
  void wake();
  // Raises the cancel flag of job id when it is running here; returns whether it was.
  bool cancel(const std::string& id);
  // Cancels the running jobs (back to queued) and joins the threads. Idempotent.
  void stop();

  std::int64_t frames_processed() const { return frames_processed_.load(); }
  int max_running_jobs() const { return static_cast<int>(slots_.size()); }
  int running_jobs() const;
  // Frames per second of the running jobs together (each job's own rate, summed).
  double frames_per_second() const;
  // The shared models' batcher (null with one slot).
  const FaceBatcher* face_batcher() const { return batcher_.get(); }

 private:
  // One job at a time: its thread and the running job's flags.
  struct Slot {
    std::thread thread;
    std::string running_id;                 // guarded by mu_
    double fps = 0;                         // guarded by mu_
    std::atomic<bool> cancel_flag{false};   // the running job's SwapJob::cancel
    std::atomic<bool> user_cancelled{false};
    std::atomic<bool> lost{false};          // the running job is no longer ours
  };

  void loop(Slot& slot);
  void beat();  // the heartbeat thread
  void run_one(Slot& slot, const JobRecord& job);

  JobStore& store_;
  JobQueue& queue_;
  std::unique_ptr<FaceBatcher> batcher_;  // before base_job_, which points at it
  SwapJob base_job_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::thread heartbeat_thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable heartbeat_cv_;
  bool stopping_ = false;
  std::uint64_t wakes_ = 0;  // wake() count: idle slots claim again when it moves
  std::atomic<std::int64_t> frames_processed_{0};
};

}  // namespace fswap::server
