// `fswap serve`: the HTTP API (src/server). Blocks until SIGINT or SIGTERM, then stops
// cleanly: the running job is cancelled and queued again for the next start.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "core/status.h"

namespace fswap {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;               // 0: any free port (printed on start)
  std::string data_dir;
  std::string token;             // else env FSWAP_TOKEN
  std::uint64_t max_upload_mb = 512;
  std::int64_t max_queued = 64;
  std::string models_dir = FSWAP_DEFAULT_MODELS_DIR;
  std::string device = "cpu";
  int threads = 0;
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
