// RedisJobQueue: jobs handed out through a Redis stream read by one consumer group, so that
// workers on several hosts (sharing --data-dir) take jobs from one queue.
//
//   FSWAP_ASSIGN_OR_RETURN(auto queue, RedisJobQueue::connect("redis://10.0.0.5:6379/fswap:jobs",
//                                                              store, worker_name(), 30s));
//   queue->publish(id);   // front end: XADD <stream> * job <id>
//   auto job = queue->claim();
//
// Protocol (the store arbitrates; Redis only delivers):
//   - publish: XADD. claim: XREADGROUP in group "fswap-workers" as consumer owner(); every
//     claim_timeout/4 it also XAUTOCLAIMs entries pending longer than claim_timeout (their
//     worker died). Either way the job runs only if JobStore::claim() wins: queued, or
//     running with no heartbeat for claim_timeout. Otherwise the entry is acknowledged when
//     the job is over (a duplicate) and left pending when it runs under a live worker.
//   - heartbeat: JobStore::heartbeat() (the store's proof of life), then XCLAIM ... JUSTID
//     (resets the entry's idle time so it is not handed out again).
//   - release: XACK when the job is over; on shutdown the job is queued again: XADD anew, XACK.
//   - Redis losing its data: a worker whose XREADGROUP finds no group recreates it; the front
//     end calls republish_lost() at start-up and periodically, so queued jobs are not stranded.
// A worker that dies mid-job leaves its entry pending: another worker takes it after
// claim_timeout and runs the job again, a video from its last finished segment (outputs are
// written to a temporary file and renamed, so no half-written result is ever visible).
// Clocks: heartbeats are wall-clock times in the store; hosts must agree within claim_timeout.
//
// Thread-safety: one connection guarded by a mutex; every method may be called from any thread.
// A lost connection is reopened on the next call.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "server/job_queue.h"

struct redisContext;
struct redisReply;

namespace fswap::server {

// redis://HOST:PORT[/STREAM], parsed.
struct RedisQueueUrl {
  std::string host;
  int port = 6379;
  std::string stream = "fswap:jobs";
};
// invalid_input naming the URL when it is not redis://HOST:PORT[/STREAM].
Result<RedisQueueUrl> parse_redis_queue_url(const std::string& url);

class RedisJobQueue : public JobQueue {
 public:
  // Connects (invalid_input naming the URL when Redis cannot be reached) and creates the
  // stream and the consumer group when missing. store outlives the queue.
  static Result<std::unique_ptr<RedisJobQueue>> connect(const std::string& url, JobStore& store, std::string owner,
                                                        std::chrono::milliseconds claim_timeout);
  ~RedisJobQueue() override;
  RedisJobQueue(const RedisJobQueue&) = delete;
  RedisJobQueue& operator=(const RedisJobQueue&) = delete;

  const std::string& owner() const override { return owner_; }
  Status publish(const std::string& id) override;
  std::optional<JobRecord> claim() override;
  std::chrono::milliseconds poll_interval() const override { return std::chrono::milliseconds(250); }
  // A third of claim_timeout, at most 1 s (also how fast a cancel from another process lands).
  std::chrono::milliseconds heartbeat_interval() const override;
  bool heartbeat(const std::string& id) override;
  void release(const std::string& id, JobState state) override;

  // After Redis lost its data (FLUSHALL, a restart without persistence): recreates the stream
  // and the group when missing, then publishes again every job the store has as claimable
  // (queued, or running under a silent owner) for longer than the claim timeout whose id the
  // stream no longer holds. Returns how many were published. A job published twice is harmless
  // (JobStore::claim lets one worker run it; the other entry is acknowledged).
  Result<int> republish_lost();

 private:
  struct ContextDeleter {
    void operator()(redisContext* c) const;
  };
  using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;
  struct ReplyDeleter {
    void operator()(redisReply* r) const;
  };
  using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;
  struct Entry {
    std::string entry_id;  // the stream entry ("1700000000000-0")
    std::string job_id;     // "" when the entry has no job field (acknowledged and skipped)
    bool reclaimed = false; // from XAUTOCLAIM: its worker fell silent
  };

  RedisJobQueue(std::string url, RedisQueueUrl where, JobStore& store, std::string owner,
                std::chrono::milliseconds claim_timeout)
      : url_(std::move(url)), where_(std::move(where)), store_(store), owner_(std::move(owner)),
        claim_timeout_(claim_timeout) {}
  Status reconnect();  // caller holds mu_
  // XGROUP CREATE ... MKSTREAM from id 0 (entries added before the group are delivered too);
  // a group that exists is fine. Caller holds mu_.
  Status ensure_group();
  // One command (reconnecting first when the connection is lost); nullptr when Redis could
  // not be reached, else the reply, an error reply included (logged unless !log_errors).
  ReplyPtr command(const std::vector<std::string>& args, bool log_errors = true);  // caller holds mu_
  std::optional<Entry> next_entry();  // caller holds mu_
  void ack(const std::string& entry_id);  // caller holds mu_

  const std::string url_;
  const RedisQueueUrl where_;
  JobStore& store_;
  const std::string owner_;
  const std::chrono::milliseconds claim_timeout_;
  std::mutex mu_;
  ContextPtr ctx_;                                      // guarded by mu_
  std::map<std::string, std::string> held_;             // job id → entry id; guarded by mu_
  std::string autoclaim_cursor_ = "0-0";                // guarded by mu_
  std::chrono::steady_clock::time_point next_autoclaim_{};  // guarded by mu_
};

}  // namespace fswap::server
