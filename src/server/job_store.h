// JobStore: the server's jobs, persisted in SQLite at <data-dir>/jobs.db; each job's files
// (uploads, result) live in <data-dir>/jobs/<id>/.
//
//   FSWAP_ASSIGN_OR_RETURN(auto store, JobStore::open("/var/lib/fswap"));
//   store->requeue_interrupted();               // jobs a crash left `running` run again
//   FSWAP_RETURN_IF_ERROR(store->insert(record));
//   std::optional<JobRecord> next = store->claim_next(owner);   // oldest queued → running
//
// Thread-safety: every method may be called from any thread (one connection, one mutex).
// State changes are single conditional UPDATEs, so cancel and claim cannot both win.
// Several processes (and hosts, with shared_across_hosts) may share one data dir: a running
// job has an owner (the worker's name); the owner's heartbeat() keeps it, and a job whose
// owner fell silent may be claimed again by another worker (claim()).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "runtime/engine.h"

struct sqlite3;

namespace fswap::server {

enum class JobState { kQueued, kRunning, kDone, kFailed, kCancelled };
const char* job_state_name(JobState s);  // "queued", "running", "done", "failed", "cancelled"
std::optional<JobState> parse_job_state(const std::string& name);

struct JobProgress {
  std::int64_t frames_done = 0;     // frames_resumed included
  std::int64_t frames_total = 0;
  double fps = 0;
  double eta_s = 0;
  std::int64_t frames_resumed = 0;  // frames reused from finished segments of an interrupted run
  // The worker's device memory (the native engine's CUDA runtimes) at the last update: shared
  // by the jobs that ran beside this one. None on the CPU and with ort.
  std::optional<EngineMemoryStats> memory;
};

struct JobRecord {
  std::string id;              // lowercase UUID; only [a-f0-9-]
  JobState state = JobState::kQueued;
  std::string options_json;    // the validated options as sent, as a JSON object
  std::string sources_json;    // JSON array of file names inside the job folder
  std::string target;          // file name inside the job folder
  std::string result;          // file name inside the job folder ("result.png", "result.mp4")
  JobProgress progress;
  std::string error_code;      // stable code when failed ("no_face", "invalid_input", ...)
  std::string error_message;
  std::int64_t created_ms = 0; // Unix time, milliseconds
  std::int64_t updated_ms = 0;  // also the running owner's last heartbeat
  std::string owner;           // the worker running it (or that ran it last); "" when none
};

class JobStore {
 public:
  // Creates data_dir, data_dir/jobs and the database when missing. shared_across_hosts:
  // processes on other hosts open it too (a network file system), so the rollback journal
  // is used instead of WAL, whose shared memory works on one host only.
  static Result<std::unique_ptr<JobStore>> open(const std::string& data_dir, bool shared_across_hosts = false);
  ~JobStore();
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  const std::string& data_dir() const { return data_dir_; }
  std::string job_dir(const std::string& id) const;  // <data-dir>/jobs/<id>

  Status insert(const JobRecord& job);
  std::optional<JobRecord> get(const std::string& id);
  std::vector<JobRecord> list(int limit = 1000);  // newest first
  std::map<JobState, std::int64_t> count_by_state();

  // The oldest queued job, now running and owned by owner; nullopt when none is queued.
  std::optional<JobRecord> claim_next(const std::string& owner = {});
  // Job id, now running and owned by owner, when it was queued, or running with no heartbeat
  // since stale_before_ms (Unix ms: its owner died); its progress restarts. nullopt otherwise
  // (finished, cancelled, unknown, or running under a live owner).
  std::optional<JobRecord> claim(const std::string& id, const std::string& owner, std::int64_t stale_before_ms);
  // Jobs a worker may claim now and last changed before changed_before_ms (Unix ms): queued, or
  // running with no heartbeat since then (their owner died). Oldest first, at most `limit`.
  std::vector<JobRecord> claimable(std::int64_t changed_before_ms, int limit = 10000);
  // Owner's proof of life for its running job; false when the job is no longer running
  // under owner (cancelled, or taken over), so the owner should stop it.
  bool heartbeat(const std::string& id, const std::string& owner);
  // running → queued for every job (start-up after a crash, or shutdown mid-job). Returns how many.
  std::int64_t requeue_interrupted();
  // Moves job id from one of `from` to `to`; false when it was in none of them.
  bool transition(const std::string& id, std::initializer_list<JobState> from, JobState to,
                  const std::string& error_code = {}, const std::string& error_message = {});
  // Like transition() from running, but only while owner still owns the job: a worker whose
  // job was taken over cannot finish it a second time.
  bool finish(const std::string& id, const std::string& owner, JobState to, const std::string& error_code = {},
              const std::string& error_message = {});
  void set_progress(const std::string& id, const JobProgress& p);

 private:
  JobStore(std::string data_dir, sqlite3* db) : data_dir_(std::move(data_dir)), db_(db) {}
  Status exec(const std::string& sql);

  std::string data_dir_;
  sqlite3* db_;
  std::mutex mu_;
};

std::int64_t now_ms();

}  // namespace fswap::server
