// Server: `fswap serve` — the HTTP API (routes in server.cc), the job store, the job queue
// and the worker.
//
//   ServerConfig config;  config.data_dir = "/var/lib/fswap";  config.port = 8080;
//   Server server(config);
//   FSWAP_ASSIGN_OR_RETURN(int port, server.start());   // store opened, worker and HTTP running
//   ... wait for SIGTERM ...
//   server.stop();   // HTTP stops; the running job is cancelled and re-queued for next start
//
// Concurrency: the worker runs up to max_running_jobs jobs at once; their face-model calls go
// through one FaceBatcher (shared models, round-robin by job, batched across jobs).
//
// Scale-out: with queue_url = "redis://HOST:PORT[/STREAM]" the front end (http, worker off)
// stores jobs under the shared data_dir and publishes their ids to a Redis stream; worker-only
// processes (http off) on any host sharing data_dir take them (redis_queue.h). A front end
// publishes again, at start and then every claim timeout (at least 1 s), the waiting jobs the
// stream lost (RedisJobQueue::republish_lost).
//
// Endpoints (JSON unless noted; documented in openapi.json, served at /v1/openapi.json):
//   POST /v1/jobs, GET /v1/jobs, GET /v1/jobs/{id}, GET /v1/jobs/{id}/result,
//   GET /v1/jobs/{id}/preview (PNG of the result's first frame), DELETE /v1/jobs/{id}, GET /v1/models,
//   GET /healthz, /readyz, /metrics (Prometheus text), /v1/openapi.json, / (the web page, HTML;
//   open without the token, which the page sends on its own requests).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"
#include "pipeline/swap_job.h"

namespace fswap::server {

struct ServerConfig {
  std::string host = "127.0.0.1";
  int port = 8080;                      // 0: any free port
  std::string data_dir;                 // required: jobs.db and jobs/<id>/
  std::string token;                    // non-empty: Authorization: Bearer <token> required
  std::uint64_t max_upload_mb = 512;    // whole request body limit (413 above it)
  std::int64_t max_queued = 64;         // queued jobs at most (429 above it)
  std::string queue_url;                // "": the store is the queue; else redis://HOST:PORT[/STREAM]
  std::chrono::milliseconds claim_timeout{30'000};  // Redis: a silent worker's job is taken over after it
  bool http = true;                     // false: no listener (a worker-only process)
  bool worker = true;                   // false: jobs run elsewhere (needs queue_url)
  int max_running_jobs = 2;             // jobs the worker runs at once, sharing one set of models (≥ 1)
  SwapJob base_job;                     // models dir, device, threads for every job
};

class Server {
 public:
  explicit Server(ServerConfig config);
  ~Server();
  // Opens the store (with the local queue: re-queueing jobs a crash left running) and the
  // queue, starts the worker, binds and starts serving on a background thread. Returns the
  // bound port (0 without http). invalid_input when the queue URL is bad or unreachable.
  Result<int> start();
  // Idempotent; safe from any thread but a signal handler.
  void stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// The OpenAPI 3 document of the endpoints above (openapi.json, compiled in).
const std::string& openapi_document();
// The web page served at / (web_page.html, compiled in): one HTML file, inline JS and CSS.
const std::string& web_page_document();
// The model registry GET /v1/models lists (models/facefusion_models.json, compiled in).
const std::string& model_catalogue_document();

}  // namespace fswap::server
