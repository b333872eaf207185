// `fswap serve`: the HTTP API (src/server). Blocks until SIGINT or SIGTERM, then stops
// cleanly: the running job is cancelled and queued again (for the next start, or another
// worker). With --queue redis://..., --worker-only processes on other hosts run the jobs.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "cli/session_flags.h"
#include "core/status.h"

namespace fswap {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;               // 0: any free port (printed on start)
  std::string data_dir;
  std::string token;             // else env FSWAP_TOKEN
  std::uint64_t max_upload_mb = 512;
  std::int64_t max_queued = 64;
  std::string queue;             // "": the built-in SQLite queue; redis://HOST:PORT[/STREAM]
  double claim_timeout_s = 30;   // Redis: a silent worker's job is taken over after this
  bool worker_only = false;      // no HTTP listener: take jobs from --queue
  bool no_worker = false;        // HTTP front end only: jobs run on worker-only processes
  int max_running_jobs = 2;      // jobs run at once, sharing one set of models (1: one at a time)
  std::int64_t segment_frames = 250;  // videos made in segments of this many frames (resume); 0 = off
  std::string models_dir = FSWAP_DEFAULT_MODELS_DIR;
  std::string device = "cpu";
  int threads = 0;
  SessionFlags session;          // --precision, --vram-budget, --memory-mode for every job
  std::string log_level = "info";
};

// Adds `serve` to app; `run` serves when it was chosen.
struct ServeCommand {
  CLI::App* serve = nullptr;
  ServeOptions options;

  void add_to(CLI::App& app);
  Status run() const;
};

}  // namespace fswap
