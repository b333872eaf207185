#include "server/job_store.h"

#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>

namespace fswap::server {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS jobs (
  seq           INTEGER PRIMARY KEY AUTOINCREMENT,
  id            TEXT NOT NULL UNIQUE,
  state         TEXT NOT NULL,
  options       TEXT NOT NULL,
  sources       TEXT NOT NULL,
  target        TEXT NOT NULL,
  result        TEXT NOT NULL,
  frames_done   INTEGER NOT NULL DEFAULT 0,
  frames_total  INTEGER NOT NULL DEFAULT 0,
  fps           REAL NOT NULL DEFAULT 0,
  eta_s         REAL NOT NULL DEFAULT 0,
  error_code    TEXT NOT NULL DEFAULT '',
  error_message TEXT NOT NULL DEFAULT '',
  created_ms    INTEGER NOT NULL,
  updated_ms    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, seq);
)sql";

constexpr const char* kColumns =
    "id, state, options, sources, target, result, frames_done, frames_total, fps, eta_s, error_code, "
    "error_message, created_ms, updated_ms, owner, frames_resumed, memory";

// One prepared statement, finalized on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const std::string& sql) { sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr); }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  bool ok() const { return stmt_ != nullptr; }
  Statement& bind(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& bind(int i, std::int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  Statement& bind(int i, double v) {
    sqlite3_bind_double(stmt_, i, v);
    return *this;
  }
  int step() { return stmt_ ? sqlite3_step(stmt_) : SQLITE_ERROR; }
  std::string text(int col) const {
    const auto* p = sqlite3_column_text(stmt_, col);
    return p ? reinterpret_cast<const char*>(p) : "";
  }
  std::int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }
  double real(int col) const { return sqlite3_column_double(stmt_, col); }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

// JobProgress::memory as the `memory` column's JSON object ("" = none).
std::string encode_memory(const std::optional<EngineMemoryStats>& m) {
  if (!m) return "";
  return nlohmann::json{{"budget_bytes", m->budget_bytes}, {"used_bytes", m->used_bytes},
                        {"peak_bytes", m->peak_bytes},     {"reserved_bytes", m->reserved_bytes},
                        {"h2d_bytes", m->h2d_bytes},       {"d2h_bytes", m->d2h_bytes},
                        {"evictions", m->evictions},       {"evicted_bytes", m->evicted_bytes}}
      .dump();
}

std::optional<EngineMemoryStats> decode_memory(const std::string& text) {
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  EngineMemoryStats m;
  const auto field = [&](const char* name) { return j.value(name, std::uint64_t{0}); };
  m.budget_bytes = field("budget_bytes");
  m.used_bytes = field("used_bytes");
  m.peak_bytes = field("peak_bytes");
  m.reserved_bytes = field("reserved_bytes");
  m.h2d_bytes = field("h2d_bytes");
  m.d2h_bytes = field("d2h_bytes");
  m.evictions = field("evictions");
  m.evicted_bytes = field("evicted_bytes");
  return m;
}

JobRecord read_row(const Statement& s) {
  JobRecord r;
  r.id = s.text(0);
  r.state = parse_job_state(s.text(1)).value_or(JobState::kFailed);
  r.options_json = s.text(2);
  r.sources_json = s.text(3);
  r.target = s.text(4);
  r.result = s.text(5);
  r.progress.frames_done = s.int64(6);
  r.progress.frames_total = s.int64(7);
  r.progress.fps = s.real(8);
  r.progress.eta_s = s.real(9);
  r.error_code = s.text(10);
  r.error_message = s.text(11);
  r.created_ms = s.int64(12);
  r.updated_ms = s.int64(13);
  r.owner = s.text(14);
  r.progress.frames_resumed = s.int64(15);
  r.progress.memory = decode_memory(s.text(16));
  return r;
}

}  // namespace

std::int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

const char* job_state_name(JobState s) {
  switch (s) {
    case JobState::kQueued: return "queued";
    case JobState::kRunning: return "running";
    case JobState::kDone: return "done";
    case JobState::kFailed: return "failed";
    case JobState::kCancelled: return "cancelled";
  }
  return "failed";
}

std::optional<JobState> parse_job_state(const std::string& name) {
  for (JobState s : {JobState::kQueued, JobState::kRunning, JobState::kDone, JobState::kFailed, JobState::kCancelled})
    if (name == job_state_name(s)) return s;
  return std::nullopt;
}

Result<std::unique_ptr<JobStore>> JobStore::open(const std::string& data_dir, bool shared_across_hosts) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(data_dir) / "jobs", ec);
  if (ec) return invalid_input("--data-dir " + data_dir + ": cannot create it: " + ec.message());
  const std::string db_path = (std::filesystem::path(data_dir) / "jobs.db").string();
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return invalid_input("job database " + db_path + ": " + msg);
  }
  std::unique_ptr<JobStore> store(new JobStore(data_dir, db));
  sqlite3_busy_timeout(db, 5000);
  FSWAP_RETURN_IF_ERROR(store->exec(shared_across_hosts ? "PRAGMA journal_mode=DELETE; PRAGMA synchronous=FULL;"
                                                         : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"));
  FSWAP_RETURN_IF_ERROR(store->exec(kSchema));
  // Databases made by earlier versions gain the later columns (another process may add them first).
  for (const char* column : {"owner TEXT NOT NULL DEFAULT ''", "frames_resumed INTEGER NOT NULL DEFAULT 0",
                             "memory TEXT NOT NULL DEFAULT ''"})
    if (const Status s = store->exec(std::string("ALTER TABLE jobs ADD COLUMN ") + column);
        !s.is_ok() && s.message().find("duplicate column") == std::string::npos)
      return s;
  return store;
}

JobStore::~JobStore() { sqlite3_close(db_); }

std::string JobStore::job_dir(const std::string& id) const {
  return (std::filesystem::path(data_dir_) / "jobs" / id).string();
}

Status JobStore::exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return internal_error("job database in " + data_dir_ + ": " + msg);
  }
  return Status::ok();
}

Status JobStore::insert(const JobRecord& j) {
  std::lock_guard lock(mu_);
  Statement s(db_, std::string("INSERT INTO jobs (") + kColumns + ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
  s.bind(1, j.id).bind(2, std::string(job_state_name(j.state))).bind(3, j.options_json).bind(4, j.sources_json);
  s.bind(5, j.target).bind(6, j.result).bind(7, j.progress.frames_done).bind(8, j.progress.frames_total);
  s.bind(9, j.progress.fps).bind(10, j.progress.eta_s).bind(11, j.error_code).bind(12, j.error_message);
  s.bind(13, j.created_ms).bind(14, j.updated_ms).bind(15, j.owner);
  s.bind(16, j.progress.frames_resumed).bind(17, encode_memory(j.progress.memory));
  if (s.step() != SQLITE_DONE) return internal_error(std::string("job database: insert failed: ") + sqlite3_errmsg(db_));
  return Status::ok();
}

std::optional<JobRecord> JobStore::get(const std::string& id) {
  std::lock_guard lock(mu_);
  Statement s(db_, std::string("SELECT ") + kColumns + " FROM jobs WHERE id = ?");
  s.bind(1, id);
  if (s.step() != SQLITE_ROW) return std::nullopt;
  return read_row(s);
}

std::vector<JobRecord> JobStore::list(int limit) {
  std::lock_guard lock(mu_);
  Statement s(db_, std::string("SELECT ") + kColumns + " FROM jobs ORDER BY seq DESC LIMIT ?");
  s.bind(1, static_cast<std::int64_t>(limit));
  std::vector<JobRecord> out;
  while (s.step() == SQLITE_ROW) out.push_back(read_row(s));
  return out;
}

std::map<JobState, std::int64_t> JobStore::count_by_state() {
  std::lock_guard lock(mu_);
  std::map<JobState, std::int64_t> out;
  for (JobState st : {JobState::kQueued, JobState::kRunning, JobState::kDone, JobState::kFailed, JobState::kCancelled})
    out[st] = 0;
  Statement s(db_, "SELECT state, COUNT(*) FROM jobs GROUP BY state");
  while (s.step() == SQLITE_ROW)
    if (auto st = parse_job_state(s.text(0))) out[*st] = s.int64(1);
  return out;
}

std::optional<JobRecord> JobStore::claim_next(const std::string& owner) {
  std::lock_guard lock(mu_);
  Statement s(db_, std::string("UPDATE jobs SET state = 'running', owner = ?, updated_ms = ? WHERE seq = "
                               "(SELECT seq FROM jobs WHERE state = 'queued' ORDER BY seq LIMIT 1) RETURNING ") +
                       kColumns);
  s.bind(1, owner).bind(2, now_ms());
  if (s.step() != SQLITE_ROW) return std::nullopt;
  return read_row(s);
}

std::optional<JobRecord> JobStore::claim(const std::string& id, const std::string& owner, std::int64_t stale_before_ms) {
  std::lock_guard lock(mu_);
  Statement s(db_, std::string("UPDATE jobs SET state = 'running', owner = ?, frames_done = 0, frames_resumed = 0, fps = 0, eta_s = 0, "
                               "updated_ms = ? WHERE id = ? AND (state = 'queued' OR (state = 'running' AND "
                               "updated_ms < ?)) RETURNING ") +
                       kColumns);
  s.bind(1, owner).bind(2, now_ms()).bind(3, id).bind(4, stale_before_ms);
  if (s.step() != SQLITE_ROW) return std::nullopt;
  return read_row(s);
}

std::vector<JobRecord> JobStore::claimable(std::int64_t changed_before_ms, int limit) {
  std::lock_guard lock(mu_);
  Statement s(db_, std::string("SELECT ") + kColumns +
                       " FROM jobs WHERE state IN ('queued', 'running') AND updated_ms < ? ORDER BY seq LIMIT ?");
  s.bind(1, changed_before_ms).bind(2, static_cast<std::int64_t>(limit));
  std::vector<JobRecord> out;
  while (s.step() == SQLITE_ROW) out.push_back(read_row(s));
  return out;
}

bool JobStore::heartbeat(const std::string& id, const std::string& owner) {
  std::lock_guard lock(mu_);
  Statement s(db_, "UPDATE jobs SET updated_ms = ? WHERE id = ? AND state = 'running' AND owner = ?");
  s.bind(1, now_ms()).bind(2, id).bind(3, owner);
  s.step();
  return sqlite3_changes(db_) > 0;
}

bool JobStore::finish(const std::string& id, const std::string& owner, JobState to, const std::string& error_code,
                      const std::string& error_message) {
  std::lock_guard lock(mu_);
  Statement s(db_, "UPDATE jobs SET state = ?, error_code = ?, error_message = ?, updated_ms = ? "
                   "WHERE id = ? AND state = 'running' AND owner = ?");
  s.bind(1, std::string(job_state_name(to))).bind(2, error_code).bind(3, error_message).bind(4, now_ms());
  s.bind(5, id).bind(6, owner);
  s.step();
  return sqlite3_changes(db_) > 0;
}

std::int64_t JobStore::requeue_interrupted() {
  std::lock_guard lock(mu_);
  Statement s(db_, "UPDATE jobs SET state = 'queued', frames_done = 0, frames_resumed = 0, fps = 0, eta_s = 0, updated_ms = ? "
                   "WHERE state = 'running'");
  s.bind(1, now_ms());
  s.step();
  return sqlite3_changes(db_);
}

bool JobStore::transition(const std::string& id, std::initializer_list<JobState> from, JobState to,
                          const std::string& error_code, const std::string& error_message) {
  std::lock_guard lock(mu_);
  std::string in;
  for (JobState f : from) in += std::string(in.empty() ? "'" : ",'") + job_state_name(f) + "'";
  Statement s(db_, "UPDATE jobs SET state = ?, error_code = ?, error_message = ?, updated_ms = ? WHERE id = ? AND state IN (" +
                       in + ")");
  s.bind(1, std::string(job_state_name(to))).bind(2, error_code).bind(3, error_message).bind(4, now_ms()).bind(5, id);
  s.step();
  return sqlite3_changes(db_) > 0;
}

void JobStore::set_progress(const std::string& id, const JobProgress& p) {
  std::lock_guard lock(mu_);
  Statement s(db_,
              "UPDATE jobs SET frames_done = ?, frames_total = ?, fps = ?, eta_s = ?, frames_resumed = ?, memory = ?, "
              "updated_ms = ? WHERE id = ?");
  s.bind(1, p.frames_done).bind(2, p.frames_total).bind(3, p.fps).bind(4, p.eta_s).bind(5, p.frames_resumed);
  s.bind(6, encode_memory(p.memory)).bind(7, now_ms()).bind(8, id);
  s.step();
}

}  // namespace fswap::server
