#include "cli/serve_command.h"

#include <pthread.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>

#include "core/log.h"
#include "core/parallel.h"
#include "runtime/engine.h"
#include "server/server.h"

namespace fswap {

void ServeCommand::add_to(CLI::App& app) {
  serve = app.add_subcommand("serve", "Run the HTTP API: submit swap jobs, poll them, download results");
  serve->add_option("--host", options.host, "Address to listen on")->capture_default_str();
  serve->add_option("--port", options.port, "Port (0 = any free port)")->check(CLI::Range(0, 65535))->capture_default_str();
  serve->add_option("--data-dir", options.data_dir, "Folder for the job database, uploads and results")->required();
  serve->add_option("--token", options.token, "Bearer token required on every request (else env FSWAP_TOKEN)");
  serve->add_option("--max-upload-mb", options.max_upload_mb, "Largest request body in MiB")
      ->check(CLI::PositiveNumber)->capture_default_str();
  serve->add_option("--max-queued", options.max_queued, "Queued jobs at most (429 beyond)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  serve->add_option("--queue", options.queue,
                    "Job queue shared by several workers: redis://HOST:PORT[/STREAM] (default: the built-in "
                    "SQLite queue, one host); --data-dir must then be storage all of them share");
  serve->add_option("--claim-timeout", options.claim_timeout_s,
                    "Seconds a worker may be silent before another takes its job over (with --queue)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  auto* worker_only = serve->add_flag("--worker-only", options.worker_only, "Run jobs from --queue; no HTTP listener");
  serve->add_flag("--no-worker", options.no_worker, "HTTP only: jobs run on --worker-only processes (needs --queue)")
      ->excludes(worker_only);
  serve->add_option("--max-running-jobs", options.max_running_jobs,
                    "Jobs run at once; their face models are loaded once and their calls batched across jobs "
                    "(1: one job at a time, each with its own models)")
      ->check(CLI::Range(1, 64))->capture_default_str();
  serve->add_option("--segment-frames", options.segment_frames,
                    "Videos are made in segments of this many frames, kept in the job folder, so an interrupted "
                    "job resumes from its last finished segment (0 = one piece, restarted from the beginning)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  serve->add_option("--models-dir", options.models_dir, "Folder holding the model files")->capture_default_str();
  serve->add_option("--device", options.device, "cpu, cuda or cuda:N")->capture_default_str();
  serve->add_option("--threads", options.threads, "CPU threads for inference and imaging (0 = all cores)")->capture_default_str();
  options.session.add_to(*serve);
  serve->add_option("--log-level", options.log_level, "debug, info, warning, error")
      ->check(CLI::IsMember({"debug", "info", "warning", "error"}))->capture_default_str();
}

Status ServeCommand::run() const {
  set_log_level(options.log_level == "debug"  ? LogLevel::kDebug
                : options.log_level == "info" ? LogLevel::kInfo
                : options.log_level == "error" ? LogLevel::kError
                                               : LogLevel::kWarn);
  server::ServerConfig config;
  config.host = options.host;
  config.port = options.port;
  config.data_dir = options.data_dir;
  config.token = options.token;
  if (config.token.empty())
    if (const char* env = std::getenv("FSWAP_TOKEN")) config.token = env;
  config.max_upload_mb = options.max_upload_mb;
  config.max_queued = options.max_queued;
  config.queue_url = options.queue;
  config.claim_timeout = std::chrono::milliseconds(static_cast<std::int64_t>(options.claim_timeout_s * 1000));
  config.http = !options.worker_only;
  config.worker = !options.no_worker;
  config.max_running_jobs = options.max_running_jobs;
  if (options.worker_only && options.queue.empty())
    return invalid_input("--worker-only needs --queue redis://HOST:PORT (a worker alone takes jobs from a shared queue)");
  config.base_job.analyser.models_dir = options.models_dir;
  config.base_job.segment_frames = options.segment_frames;
  config.base_job.analyser.session.threads = options.threads;
  FSWAP_ASSIGN_OR_RETURN(config.base_job.analyser.session.device, parse_device(options.device));
  FSWAP_RETURN_IF_ERROR(options.session.apply(config.base_job.analyser.session));
  set_worker_threads(options.threads);

  // Signals go to this thread only (sigwait below): every thread started after this
  // inherits the blocked mask, so no handler runs inside the HTTP or worker threads.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  server::Server server(config);
  FSWAP_ASSIGN_OR_RETURN(int port, server.start());
  if (config.http)
    std::printf("fswap: serving on http://%s:%d (data dir %s%s%s%s)\n", options.host.c_str(), port,
                options.data_dir.c_str(), config.token.empty() ? "" : ", bearer token required",
                options.queue.empty() ? "" : ", queue ", options.queue.c_str());
  else
    std::printf("fswap: worker taking jobs from %s (data dir %s)\n", options.queue.c_str(), options.data_dir.c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  std::fprintf(stderr, "fswap: %s received, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
  server.stop();
  return Status::ok();
}

}  // namespace fswap
