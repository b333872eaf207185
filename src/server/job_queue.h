// JobQueue: how a worker learns which job to run next, and tells when it stopped running it.
// The store (SQLite) stays the source of truth for state, progress and results; a queue only
// hands out job ids, each claimed in the store before it runs.
//
//   LocalJobQueue: the store itself, oldest queued first (one host; today's default).
//   RedisJobQueue (redis_queue.h): a Redis stream read by one consumer group (several hosts).
//
//   LocalJobQueue queue(store, worker_name());
//   FSWAP_RETURN_IF_ERROR(queue.publish(id));           // front end, after store.insert()
//   std::optional<JobRecord> job = queue.claim();       // worker: running and owned, or nullopt
//   while running: queue.heartbeat(job->id) every heartbeat_interval(); false → stop it
//   queue.release(job->id, state_now);                  // worker, once it stopped running it
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "core/status.h"
#include "server/job_store.h"

namespace fswap::server {

class JobQueue {
 public:
  virtual ~JobQueue() = default;
  // The worker name that claims jobs (JobRecord::owner in the store).
  virtual const std::string& owner() const = 0;
  // Job id was just inserted as queued in the store: make it reachable to workers.
  virtual Status publish(const std::string& id) = 0;
  // The next job to run, already running and owned by owner() in the store; nullopt when
  // there is none now. Never blocks for long (one round trip).
  virtual std::optional<JobRecord> claim() = 0;
  // How long an idle worker waits before calling claim() again (unless woken).
  virtual std::chrono::milliseconds poll_interval() const = 0;
  // How often a running job's heartbeat() is due; zero: never.
  virtual std::chrono::milliseconds heartbeat_interval() const { return std::chrono::milliseconds(0); }
  // Proof of life for a running job; false when it is no longer ours (cancelled from another
  // process, or taken over): the worker stops it.
  virtual bool heartbeat(const std::string& /*id*/) { return true; }
  // The worker stopped running id, which is now in `state` in the store: done, failed or
  // cancelled (over), queued (a shutdown: to run again), running (another worker owns it).
  virtual void release(const std::string& /*id*/, JobState /*state*/) {}
};

// "<hostname>:<pid>": names this process's worker in the store and the queue.
std::string worker_name();

// The store is the queue: claim() takes the oldest queued job. Processes sharing the data
// dir on one host share the queue (a job queued by one is seen by the others' polls).
class LocalJobQueue : public JobQueue {
 public:
  LocalJobQueue(JobStore& store, std::string owner) : store_(store), owner_(std::move(owner)) {}
  const std::string& owner() const override { return owner_; }
  Status publish(const std::string&) override { return Status::ok(); }
  std::optional<JobRecord> claim() override { return store_.claim_next(owner_); }
  std::chrono::milliseconds poll_interval() const override { return std::chrono::seconds(2); }

 private:
  JobStore& store_;
  std::string owner_;
};

}  // namespace fswap::server
