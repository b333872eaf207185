// FaceBatcher: one set of face models shared by every job a process runs at once (the server's
// concurrent jobs), with the models' calls from all jobs queued, taken round-robin by job and run
// as batches across jobs.
//
//   FaceBatcher batcher(FaceBatcherOptions{});   // max_batch 4
//   SwapJob job = ...;
//   job.face_batcher = &batcher;     // run_swap loads its models through the batcher
//   // what run_swap does with it:
//   FSWAP_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, batcher.job_engine(job.engine));
//   FSWAP_ASSIGN_OR_RETURN(auto session, engine->load(models_dir + "/fr_landmark.onnx", options));
//   FSWAP_ASSIGN_OR_RETURN(auto outputs, session->run(inputs));   // queued, run by the runner
//
// Sharing: a model is loaded once per (engine, path, device, precision, threads, budget, memory
// mode) and kept for the batcher's life; a job's sessions are handles on the shared ones. The
// native engine loads it with SessionOptions::batch = max_batch; where that fails (the graph
// bakes batch 1) or on ort, the model is loaded at its own batch.
//
// Scheduling (one runner thread for every model):
//   - each model keeps a FIFO per job; the runner serves the model whose oldest call is oldest;
//   - it takes one call per job in round-robin order, starting after the job it served last for
//     that model, and goes round again while the batch has room: a job's call waits at most one
//     batch per other job ahead of it, and no job starves;
//   - the calls of one batch have equal input shapes, each with dim 0 == 1; they run as one
//     batch of B when every input of the session has a dynamic dim 0 (B ≤ max_batch), else one
//     after another;
//   - when fewer calls are waiting than could share the batch, the runner waits up to
//     gather_window for the others (their face threads are usually a moment behind). A job
//     counts for as many calls as it has callers: 1, or more while its frames run in lanes
//     (add_callers; swap_job's windows), so the lanes of one job also meet in one batch.
// Results are the same tensors a private session gives (ort: bit for bit; native batches: to
// float rounding, 1e-4).
//
// Thread-safety: every method may be called from any thread; a job's sessions may be run from
// several threads. The batcher outlives every engine and session it handed out.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"
#include "runtime/engine.h"

namespace fswap {

// What the runner is about to run: one entry per call, the job of each, in batch order.
struct FaceBatch {
  std::string model;          // the model file's stem ("fr_landmark")
  std::vector<int> jobs;      // job numbers (JobEngine order of creation, from 1)
  bool batched = false;       // one run of size jobs.size(); false: one run per call
};

struct FaceBatcherOptions {
  int max_batch = 4;  // calls per batch at most (≥ 1)
  std::chrono::microseconds gather_window{2000};
  // Called on the runner thread before each batch runs (tracing, tests). Empty: none.
  std::function<void(const FaceBatch&)> on_batch;
};

struct FaceBatcherStats {
  std::uint64_t batches = 0;       // runner turns
  std::uint64_t calls = 0;         // model calls served
  std::uint64_t batched_calls = 0; // of which ran inside a batch of 2 or more
};

class FaceBatcher {
 public:
  explicit FaceBatcher(FaceBatcherOptions options = {});
  ~FaceBatcher();
  FaceBatcher(const FaceBatcher&) = delete;
  FaceBatcher& operator=(const FaceBatcher&) = delete;

  // An Engine for one job (one per run_swap): its load() returns handles on the shared models,
  // its sessions' calls are tagged with this job. engine_name: "auto", "ort", "native"
  // (make_engine's names; unknown names are its kInvalidInput).
  Result<std::unique_ptr<Engine>> job_engine(const std::string& engine_name);

  FaceBatcherStats stats() const;
  // Jobs with an engine alive now.
  int active_jobs() const;
  // job_engine: one of this batcher's job_engine()s (else a programmer error). Its job's threads
  // that call its sessions at once: 1 when made; delta raises it while lanes run and lowers it
  // as each one ends. Never below 1.
  void add_callers(const Engine& job_engine, int delta);
  // The weight bytes of the distinct models job_engine has loaded (InferenceSession::weight_bytes:
  // 0 on engines that do not say, ort).
  std::uint64_t job_weight_bytes(const Engine& job_engine) const;
  // Calls waiting for the runner now.
  std::size_t queued_calls() const;
  // One or more lines: the shared engines' Engine::memory_summary (empty when they keep none).
  std::string memory_summary() const;
  // The native engine's memory statistics when a shared native session used a device.
  std::optional<EngineMemoryStats> memory_stats() const;

 private:
  class JobEngine;
  class JobSession;
  struct Call;
  struct Model;

  static const JobEngine& as_job_engine(const Engine& engine);
  Result<Model*> model_for(const std::string& engine_name, const std::string& path, const SessionOptions& options);
  Result<std::vector<Tensor>> submit(Model& model, int job, const std::vector<Tensor>& inputs);
  void add_job(int job);
  void remove_job(int job);
  void run_loop();
  // Takes the next batch (caller holds mu_); empty when nothing is queued.
  std::vector<Call*> take_batch(std::unique_lock<std::mutex>& lock, Model*& model);
  void run_batch(Model& model, const std::vector<Call*>& calls);

  const FaceBatcherOptions options_;
  mutable std::mutex load_mu_;  // loads one model at a time; guards engines_ and models_' insertions
  std::map<std::string, std::unique_ptr<Engine>> engines_;  // by Engine::name()
  std::map<std::string, std::unique_ptr<Model>> models_;    // by key
  mutable std::mutex mu_;  // guards the queues, jobs_, next_job_, stats_, stopping_
  std::condition_variable work_cv_;
  std::map<int, int> jobs_;  // job number → its callers (≥ 1) while its engine lives
  int next_job_ = 1;
  std::uint64_t next_sequence_ = 0;
  FaceBatcherStats stats_;
  bool stopping_ = false;
  std::thread runner_;
};

}  // namespace fswap
