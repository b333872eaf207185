#include "pipeline/face_batcher.h"

#include <deque>
#include <filesystem>
#include <future>
#include <numeric>
#include <set>

#include "core/log.h"

namespace fswap {

// One queued model call: its inputs, its job, and where its result goes.
struct FaceBatcher::Call {
  int job = 0;
  std::uint64_t sequence = 0;  // arrival order over every model
  const std::vector<Tensor>* inputs = nullptr;
  std::promise<Result<std::vector<Tensor>>> result;
};

// A shared model: its one session and its calls, a FIFO per job.
struct FaceBatcher::Model {
  std::string name;   // the file's stem
  std::unique_ptr<InferenceSession> session;
  int capacity = 1;   // calls per run: max_batch when every input's dim 0 is dynamic, else 1
  std::map<int, std::deque<Call*>> queues;  // job → its calls, oldest first; guarded by mu_
  int last_job = 0;   // the job served last (round-robin starts after it); guarded by mu_
};

namespace {

bool batchable_shape(const Shape& s) { return !s.empty() && s[0] == 1; }

bool same_shapes(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].shape() != b[i].shape() || a[i].dtype() != b[i].dtype()) return false;
  return true;
}

// A call may join a batch when it feeds every input of the model, each with dim 0 == 1.
bool batchable(const std::vector<Tensor>& inputs, std::size_t model_inputs) {
  if (inputs.empty() || inputs.size() != model_inputs) return false;
  for (const Tensor& t : inputs)
    if (!batchable_shape(t.shape())) return false;
  return true;
}

std::string model_key(const std::string& engine, const std::string& path, const SessionOptions& o) {
  std::error_code ec;
  const std::string canonical = std::filesystem::weakly_canonical(path, ec).string();
  return engine + "|" + (ec ? path : canonical) + "|" + o.device.to_string() + "|" +
         std::to_string(static_cast<int>(o.precision)) + "|" + std::to_string(o.threads) + "|" + o.vram_budget + "|" +
         std::to_string(static_cast<int>(o.memory_mode));
}

}  // namespace

// A job's handle on a shared model: run() queues the call and waits for the runner.
class FaceBatcher::JobSession final : public InferenceSession {
 public:
  JobSession(FaceBatcher& batcher, Model& model, int job) : batcher_(batcher), model_(model), job_(job) {}
  const std::vector<TensorInfo>& inputs() const override { return model_.session->inputs(); }
  const std::vector<TensorInfo>& outputs() const override { return model_.session->outputs(); }
  std::uint64_t weight_bytes() const override { return model_.session->weight_bytes(); }
  Result<std::vector<Tensor>> run(const std::vector<Tensor>& inputs) override {
    return batcher_.submit(model_, job_, inputs);
  }

 private:
  FaceBatcher& batcher_;
  Model& model_;
  const int job_;
};

// One job's Engine: loads through the batcher, tags its sessions with the job.
class FaceBatcher::JobEngine final : public Engine {
 public:
  JobEngine(FaceBatcher& batcher, Engine& shared, std::string engine_name, int job)
      : batcher_(batcher), shared_(shared), engine_name_(std::move(engine_name)), job_(job) {
    batcher_.add_job(job_);
  }
  ~JobEngine() override { batcher_.remove_job(job_); }

  std::string name() const override { return shared_.name(); }
  Result<std::unique_ptr<InferenceSession>> load(const std::string& model_path, const SessionOptions& options) override {
    FSWAP_ASSIGN_OR_RETURN(Model * model, batcher_.model_for(engine_name_, model_path, options));
    {
      std::lock_guard lock(loaded_mu_);
      loaded_.insert(model);
    }
    return std::unique_ptr<InferenceSession>(std::make_unique<JobSession>(batcher_, *model, job_));
  }
  std::vector<std::string> available_devices() const override { return shared_.available_devices(); }
  std::string memory_summary() const override { return shared_.memory_summary(); }
  std::optional<EngineMemoryStats> memory_stats() const override { return shared_.memory_stats(); }
  Status release_scratch() override { return shared_.release_scratch(); }
  void end_stage() override { shared_.end_stage(); }

  int job() const { return job_; }
  std::uint64_t weight_bytes() const {
    std::lock_guard lock(loaded_mu_);
    return std::accumulate(loaded_.begin(), loaded_.end(), std::uint64_t{0},
                           [](std::uint64_t sum, const Model* m) { return sum + m->session->weight_bytes(); });
  }

 private:
  FaceBatcher& batcher_;
  Engine& shared_;
  const std::string engine_name_;
  const int job_;
  mutable std::mutex loaded_mu_;
  std::set<const Model*> loaded_;  // the models this job's load() returned
};

const FaceBatcher::JobEngine& FaceBatcher::as_job_engine(const Engine& engine) {
  const auto* job = dynamic_cast<const JobEngine*>(&engine);
  FSWAP_CHECK(job != nullptr, "FaceBatcher: the engine is not one of its job engines");
  return *job;
}

FaceBatcher::FaceBatcher(FaceBatcherOptions options) : options_(std::move(options)) {
  FSWAP_CHECK(options_.max_batch >= 1, "FaceBatcher: max_batch must be at least 1");
  runner_ = std::thread([this] { run_loop(); });
}

FaceBatcher::~FaceBatcher() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  runner_.join();
}

Result<std::unique_ptr<Engine>> FaceBatcher::job_engine(const std::string& engine_name) {
  Engine* shared = nullptr;
  {
    std::lock_guard lock(load_mu_);
    FSWAP_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, make_engine(engine_name));
    auto& slot = engines_[engine->name()];
    if (!slot) slot = std::move(engine);
    shared = slot.get();
  }
  int job = 0;
  {
    std::lock_guard lock(mu_);
    job = next_job_++;
  }
  return std::unique_ptr<Engine>(std::make_unique<JobEngine>(*this, *shared, shared->name(), job));
}

Result<FaceBatcher::Model*> FaceBatcher::model_for(const std::string& engine_name, const std::string& path,
                                                   const SessionOptions& options) {
  std::lock_guard lock(load_mu_);
  const std::string key = model_key(engine_name, path, options);
  if (auto it = models_.find(key); it != models_.end()) return it->second.get();
  Engine& engine = *engines_.at(engine_name);
  auto model = std::make_unique<Model>();
  model->name = std::filesystem::path(path).stem().string();
  SessionOptions batched = options;
  batched.batch = options_.max_batch;
  auto session = options_.max_batch > 1 ? engine.load(path, batched) : engine.load(path, options);
  if (!session && session.status().code() == StatusCode::kUnsupported && options_.max_batch > 1) {
    log_info("face batcher: " + session.status().message() + "; its calls run one by one");
    session = engine.load(path, options);
  }
  if (!session) return session.status();
  model->session = std::move(*session);
  bool dynamic_batch = !model->session->inputs().empty();
  for (const TensorInfo& in : model->session->inputs()) dynamic_batch = dynamic_batch && !in.shape.empty() && in.shape[0] < 0;
  model->capacity = dynamic_batch ? options_.max_batch : 1;
  Model* out = model.get();
  std::lock_guard queues_lock(mu_);  // the runner walks models_ under mu_
  models_.emplace(key, std::move(model));
  return out;
}

void FaceBatcher::add_job(int job) {
  std::lock_guard lock(mu_);
  jobs_[job] = 1;
}

void FaceBatcher::remove_job(int job) {
  std::lock_guard lock(mu_);
  jobs_.erase(job);
  for (auto& [key, model] : models_)
    if (auto it = model->queues.find(job); it != model->queues.end() && it->second.empty()) model->queues.erase(it);
}

void FaceBatcher::add_callers(const Engine& job_engine, int delta) {
  const int job = as_job_engine(job_engine).job();
  {
    std::lock_guard lock(mu_);
    auto it = jobs_.find(job);
    FSWAP_CHECK(it != jobs_.end(), "FaceBatcher::add_callers: the job has ended");
    it->second = std::max(1, it->second + delta);
  }
  work_cv_.notify_all();  // a gathering runner may have all the calls it waits for now
}

std::uint64_t FaceBatcher::job_weight_bytes(const Engine& job_engine) const {
  return as_job_engine(job_engine).weight_bytes();
}

int FaceBatcher::active_jobs() const {
  std::lock_guard lock(mu_);
  return static_cast<int>(jobs_.size());
}

std::size_t FaceBatcher::queued_calls() const {
  std::lock_guard lock(mu_);
  std::size_t n = 0;
  for (const auto& [key, model] : models_)
    for (const auto& [job, q] : model->queues) n += q.size();
  return n;
}

FaceBatcherStats FaceBatcher::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

std::string FaceBatcher::memory_summary() const {
  std::lock_guard lock(load_mu_);
  std::string out;
  for (const auto& [name, engine] : engines_) out += engine->memory_summary();
  return out;
}

std::optional<EngineMemoryStats> FaceBatcher::memory_stats() const {
  std::lock_guard lock(load_mu_);
  for (const auto& [name, engine] : engines_)
    if (auto s = engine->memory_stats()) return s;  // only the native engine keeps any
  return std::nullopt;
}

Result<std::vector<Tensor>> FaceBatcher::submit(Model& model, int job, const std::vector<Tensor>& inputs) {
  Call call;
  call.job = job;
  call.inputs = &inputs;
  auto result = call.result.get_future();
  {
    std::lock_guard lock(mu_);
    if (stopping_) return cancelled("face batcher: stopping");
    call.sequence = next_sequence_++;
    model.queues[job].push_back(&call);
  }
  work_cv_.notify_all();
  return result.get();
}

std::vector<FaceBatcher::Call*> FaceBatcher::take_batch(std::unique_lock<std::mutex>& lock, Model*& chosen) {
  // The model whose oldest call is oldest.
  auto oldest = [&] {
    chosen = nullptr;
    std::uint64_t best = 0;
    for (auto& [key, model] : models_)
      for (auto& [job, q] : model->queues)
        if (!q.empty() && (!chosen || q.front()->sequence < best)) chosen = model.get(), best = q.front()->sequence;
  };
  oldest();
  if (!chosen) return {};
  // Calls waiting, each job counting for at most its callers.
  auto calls_waiting = [&] {
    int n = 0;
    for (auto& [job, q] : chosen->queues) {
      auto callers = jobs_.find(job);
      n += std::min<int>(static_cast<int>(q.size()), callers == jobs_.end() ? 1 : callers->second);
    }
    return n;
  };
  auto could_share = [&] {
    int callers = 0;
    for (const auto& [job, n] : jobs_) callers += n;
    return std::min(chosen->capacity, callers);
  };
  // Let the other callers' calls catch up when they could share this batch.
  if (chosen->capacity > 1 && calls_waiting() < could_share() && options_.gather_window.count() > 0)
    work_cv_.wait_for(lock, options_.gather_window,
                      [&] { return stopping_ || calls_waiting() >= could_share(); });

  // Round-robin by job from the one after last_job, one call per job per round.
  Model& m = *chosen;
  const std::size_t model_inputs = m.session->inputs().size();
  std::vector<Call*> batch;
  const std::vector<Tensor>* shape_of = nullptr;
  bool took = true;
  while (took && static_cast<int>(batch.size()) < m.capacity) {
    took = false;
    std::vector<int> order;
    for (auto it = m.queues.upper_bound(m.last_job); it != m.queues.end(); ++it) order.push_back(it->first);
    for (auto it = m.queues.begin(); it != m.queues.end() && it->first <= m.last_job; ++it) order.push_back(it->first);
    for (int job : order) {
      if (static_cast<int>(batch.size()) >= m.capacity) break;
      auto& q = m.queues[job];
      if (q.empty()) continue;
      Call* call = q.front();
      if (shape_of && !(batchable(*call->inputs, model_inputs) && same_shapes(*call->inputs, *shape_of))) continue;
      q.pop_front();
      batch.push_back(call);
      m.last_job = job;
      took = true;
      if (!shape_of) {
        shape_of = call->inputs;
        if (!batchable(*shape_of, model_inputs)) return batch;  // runs alone
      }
    }
  }
  return batch;
}

void FaceBatcher::run_batch(Model& model, const std::vector<Call*>& calls) {
  const bool as_batch = calls.size() > 1 && model.capacity > 1;
  if (options_.on_batch) {
    FaceBatch trace{model.name, {}, as_batch};
    for (const Call* c : calls) trace.jobs.push_back(c->job);
    options_.on_batch(trace);
  }
  if (!as_batch) {
    for (Call* c : calls) c->result.set_value(model.session->run(*c->inputs));
    return;
  }
  // Input i of every call ([1, ...] each), stacked along dim 0.
  std::vector<Tensor> stacked;
  for (std::size_t i = 0; i < model.session->inputs().size(); ++i) {
    std::vector<const Tensor*> parts;
    for (const Call* c : calls) parts.push_back(&(*c->inputs)[i]);
    stacked.push_back(batch_concat(parts));
  }
  auto outputs = model.session->run(stacked);
  for (std::size_t k = 0; k < calls.size(); ++k) {
    if (!outputs) {
      calls[k]->result.set_value(outputs.status());
      continue;
    }
    std::vector<Tensor> mine;
    for (const Tensor& t : *outputs) {
      if (t.shape().empty() || t.shape()[0] != static_cast<std::int64_t>(calls.size())) break;
      mine.push_back(batch_slice(t, static_cast<std::int64_t>(k), 1));
    }
    if (mine.size() == outputs->size()) calls[k]->result.set_value(std::move(mine));
    else calls[k]->result.set_value(internal_error(model.name + ": a batch of " + std::to_string(calls.size()) +
                                                   " gave an output without that batch in dim 0"));
  }
}

void FaceBatcher::run_loop() {
  std::unique_lock lock(mu_);
  while (true) {
    Model* model = nullptr;
    std::vector<Call*> batch = take_batch(lock, model);
    if (batch.empty()) {
      if (stopping_) return;
      work_cv_.wait(lock);
      continue;
    }
    ++stats_.batches;
    stats_.calls += batch.size();
    if (batch.size() > 1 && model->capacity > 1) stats_.batched_calls += batch.size();
    lock.unlock();
    run_batch(*model, batch);
    lock.lock();
  }
}

}  // namespace fswap
