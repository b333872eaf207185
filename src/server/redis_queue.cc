#include "server/redis_queue.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <regex>
#include <set>

#include "core/log.h"

namespace fswap::server {
namespace {

constexpr const char* kGroup = "fswap-workers";

std::string text(const redisReply* r) {
  return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR)
             ? std::string(r->str, r->len)
             : std::string();
}

bool is_array(const redisReply* r, std::size_t at_least) {
  return r && r->type == REDIS_REPLY_ARRAY && r->elements >= at_least;
}

}  // namespace

void RedisJobQueue::ContextDeleter::operator()(redisContext* c) const { redisFree(c); }
void RedisJobQueue::ReplyDeleter::operator()(redisReply* r) const { freeReplyObject(r); }

Result<RedisQueueUrl> parse_redis_queue_url(const std::string& url) {
  static const std::regex re(R"(redis://([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:]+\]):([0-9]{1,5})(/([A-Za-z0-9:_.\-]+))?/?)");
  std::smatch m;
  if (!std::regex_match(url, m, re))
    return invalid_input("--queue " + url + ": expected redis://HOST:PORT[/STREAM] (e.g. redis://127.0.0.1:6379/fswap:jobs)");
  RedisQueueUrl out;
  out.host = m[1].str();
  if (out.host.front() == '[') out.host = out.host.substr(1, out.host.size() - 2);
  out.port = std::stoi(m[2].str());
  if (out.port < 1 || out.port > 65535) return invalid_input("--queue " + url + ": port must be 1 to 65535");
  if (m[4].matched) out.stream = m[4].str();
  return out;
}

Result<std::unique_ptr<RedisJobQueue>> RedisJobQueue::connect(const std::string& url, JobStore& store, std::string owner,
                                                              std::chrono::milliseconds claim_timeout) {
  FSWAP_ASSIGN_OR_RETURN(RedisQueueUrl where, parse_redis_queue_url(url));
  if (claim_timeout.count() <= 0) return invalid_input("--claim-timeout must be positive");
  std::unique_ptr<RedisJobQueue> queue(new RedisJobQueue(url, where, store, std::move(owner), claim_timeout));
  std::lock_guard lock(queue->mu_);
  FSWAP_RETURN_IF_ERROR(queue->reconnect());
  FSWAP_RETURN_IF_ERROR(queue->ensure_group());
  return queue;
}

Status RedisJobQueue::ensure_group() {
  // From id 0: entries a front end added before any worker made the group are delivered too.
  ReplyPtr r = command({"XGROUP", "CREATE", where_.stream, kGroup, "0", "MKSTREAM"}, false);
  if (!r) return invalid_input("--queue " + url_ + ": the connection to Redis failed");
  if (r->type == REDIS_REPLY_ERROR && text(r.get()).rfind("BUSYGROUP", 0) != 0)
    return invalid_input("--queue " + url_ + ": XGROUP CREATE failed: " + text(r.get()));
  return Status::ok();
}

Result<int> RedisJobQueue::republish_lost() {
  const std::vector<JobRecord> waiting = store_.claimable(now_ms() - claim_timeout_.count());
  std::lock_guard lock(mu_);
  FSWAP_RETURN_IF_ERROR(ensure_group());
  if (waiting.empty()) return 0;
  // The job ids the stream holds, in pages.
  std::set<std::string> held;
  constexpr std::size_t kPage = 1000;
  for (std::string from = "-";;) {
    ReplyPtr r = command({"XRANGE", where_.stream, from, "+", "COUNT", std::to_string(kPage)});
    if (!r || r->type != REDIS_REPLY_ARRAY)
      return internal_error("job queue " + url_ + ": XRANGE failed" + (r ? ": " + text(r.get()) : std::string()));
    for (std::size_t i = 0; i < r->elements; ++i) {
      const redisReply* e = r->element[i];
      if (!is_array(e, 2)) continue;
      from = "(" + text(e->element[0]);  // exclusive: the next page starts after it
      const redisReply* fields = e->element[1];
      if (is_array(fields, 2))
        for (std::size_t f = 0; f + 1 < fields->elements; f += 2)
          if (text(fields->element[f]) == "job") held.insert(text(fields->element[f + 1]));
    }
    if (r->elements < kPage) break;
  }
  int published = 0;
  for (const JobRecord& job : waiting) {
    if (held.count(job.id)) continue;
    ReplyPtr r = command({"XADD", where_.stream, "*", "job", job.id});
    if (!r || r->type == REDIS_REPLY_ERROR)
      return internal_error("job queue " + url_ + ": cannot add job " + job.id + (r ? ": " + text(r.get()) : std::string()));
    ++published;
  }
  return published;
}

RedisJobQueue::~RedisJobQueue() = default;

Status RedisJobQueue::reconnect() {
  ctx_.reset();
  const timeval connect_timeout{2, 0};
  ContextPtr c(redisConnectWithTimeout(where_.host.c_str(), where_.port, connect_timeout));
  if (!c) return invalid_input("--queue " + url_ + ": cannot allocate a Redis connection");
  if (c->err)
    return invalid_input("--queue " + url_ + ": cannot connect to Redis: " + c->errstr +
                         " (is redis-server running there and reachable?)");
  const timeval command_timeout{5, 0};
  redisSetTimeout(c.get(), command_timeout);
  ctx_ = std::move(c);
  return Status::ok();
}

RedisJobQueue::ReplyPtr RedisJobQueue::command(const std::vector<std::string>& args, bool log_errors) {
  if (!ctx_ || ctx_->err) {
    if (const Status s = reconnect(); !s.is_ok()) {
      log_warn("serve: " + s.message());
      return nullptr;
    }
  }
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  ReplyPtr r(static_cast<redisReply*>(redisCommandArgv(ctx_.get(), static_cast<int>(args.size()), argv.data(), lens.data())));
  if (!r) {
    log_warn("serve: Redis " + url_ + ": " + args[0] + " failed: " + ctx_->errstr);
    return nullptr;
  }
  if (r->type == REDIS_REPLY_ERROR && log_errors) log_warn("serve: Redis " + url_ + ": " + args[0] + ": " + text(r.get()));
  return r;
}

Status RedisJobQueue::publish(const std::string& id) {
  std::lock_guard lock(mu_);
  ReplyPtr r = command({"XADD", where_.stream, "*", "job", id});
  if (!r || r->type == REDIS_REPLY_ERROR)
    return internal_error("job queue " + url_ + ": cannot add job " + id + (r ? ": " + text(r.get()) : std::string()));
  return Status::ok();
}

std::chrono::milliseconds RedisJobQueue::heartbeat_interval() const {
  return std::min(claim_timeout_ / 3, std::chrono::milliseconds(1000));
}

std::optional<RedisJobQueue::Entry> RedisJobQueue::next_entry() {
  auto parse_entry = [](const redisReply* e, bool reclaimed) -> std::optional<Entry> {
    if (!is_array(e, 2) || e->element[0]->type != REDIS_REPLY_STRING) return std::nullopt;
    Entry out{text(e->element[0]), "", reclaimed};
    const redisReply* fields = e->element[1];  // nil when the entry was deleted
    if (is_array(fields, 2))
      for (std::size_t i = 0; i + 1 < fields->elements; i += 2)
        if (text(fields->element[i]) == "job") out.job_id = text(fields->element[i + 1]);
    return out;
  };
  const auto now = std::chrono::steady_clock::now();
  if (now >= next_autoclaim_) {
    // One entry idle past the claim timeout, scanning the pending list from a cursor.
    ReplyPtr r = command({"XAUTOCLAIM", where_.stream, kGroup, owner_, std::to_string(claim_timeout_.count()),
                          autoclaim_cursor_, "COUNT", "1"});
    if (is_array(r.get(), 2)) {
      autoclaim_cursor_ = text(r->element[0]);
      if (autoclaim_cursor_.empty() || autoclaim_cursor_ == "0-0") {
        autoclaim_cursor_ = "0-0";
        next_autoclaim_ = now + claim_timeout_ / 4;  // the whole list was scanned
      }
      if (is_array(r->element[1], 1))
        if (auto e = parse_entry(r->element[1]->element[0], true)) return e;
    } else {
      next_autoclaim_ = now + claim_timeout_ / 4;
    }
  }
  ReplyPtr r = command({"XREADGROUP", "GROUP", kGroup, owner_, "COUNT", "1", "STREAMS", where_.stream, ">"}, false);
  if (r && r->type == REDIS_REPLY_ERROR) {
    // NOGROUP: Redis lost its data (FLUSHALL, a restart without persistence); the front end
    // publishes the waiting jobs again.
    if (text(r.get()).rfind("NOGROUP", 0) == 0) {
      log_warn("serve: Redis " + url_ + ": the stream's consumer group is gone (data lost?); creating it again");
      if (const Status s = ensure_group(); !s.is_ok()) log_warn("serve: " + s.message());
    } else {
      log_warn("serve: Redis " + url_ + ": XREADGROUP: " + text(r.get()));
    }
    return std::nullopt;
  }
  // [[stream, [[entry id, [field, value, ...]]]]], or nil when nothing is new.
  if (!is_array(r.get(), 1) || !is_array(r->element[0], 2) || !is_array(r->element[0]->element[1], 1)) return std::nullopt;
  return parse_entry(r->element[0]->element[1]->element[0], false);
}

void RedisJobQueue::ack(const std::string& entry_id) { command({"XACK", where_.stream, kGroup, entry_id}); }

std::optional<JobRecord> RedisJobQueue::claim() {
  std::lock_guard lock(mu_);
  for (int tries = 0; tries < 16; ++tries) {
    std::optional<Entry> e = next_entry();
    if (!e) return std::nullopt;
    if (e->job_id.empty()) {
      ack(e->entry_id);
      continue;
    }
    if (auto job = store_.claim(e->job_id, owner_, now_ms() - claim_timeout_.count())) {
      held_[job->id] = e->entry_id;
      if (e->reclaimed)
        log_warn("serve: job " + job->id + " taken over (its worker was silent for " +
                 std::to_string(claim_timeout_.count()) + " ms); a video resumes from its last finished segment");
      return job;
    }
    // Over (or unknown): a duplicate delivery, acknowledged. Running under a live worker:
    // left pending; that worker acknowledges it when the job is over.
    const auto now = store_.get(e->job_id);
    if (!now || (now->state != JobState::kRunning && now->state != JobState::kQueued)) ack(e->entry_id);
  }
  return std::nullopt;
}

bool RedisJobQueue::heartbeat(const std::string& id) {
  if (!store_.heartbeat(id, owner_)) return false;
  std::lock_guard lock(mu_);
  // Min idle 0 and JUSTID: only resets the entry's idle time (and keeps it with us).
  if (auto it = held_.find(id); it != held_.end())
    command({"XCLAIM", where_.stream, kGroup, owner_, "0", it->second, "JUSTID"});
  return true;
}

void RedisJobQueue::release(const std::string& id, JobState state) {
  std::lock_guard lock(mu_);
  const auto it = held_.find(id);
  if (it == held_.end()) return;
  const std::string entry = it->second;
  held_.erase(it);
  if (state == JobState::kRunning) return;  // taken over: the same entry is the new owner's now
  if (state == JobState::kQueued) {
    // Shut down mid-job: hand it on now rather than after the claim timeout.
    ReplyPtr r = command({"XADD", where_.stream, "*", "job", id});
    if (!r || r->type == REDIS_REPLY_ERROR) return;  // left pending: taken over after the timeout
  }
  ack(entry);
}

}  // namespace fswap::server
