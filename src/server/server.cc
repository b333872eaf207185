#include "server/server.h"

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "core/log.h"
#include "runtime/engines/model_registry.h"
#include "runtime/engines/native_engine.h"
#include "server/http.h"
#include "server/job_options.h"
#include "server/job_queue.h"
#include "server/job_store.h"
#include "server/job_worker.h"
#include "server/redis_queue.h"
#include "video/media.h"

namespace fswap::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::int64_t kMaxImagePixels = 100'000'000;  // absurd dimensions are refused up front

// A random (v4) UUID: lowercase hex and dashes only, so it is safe as a folder name.
std::string new_job_id() {
  static thread_local std::mt19937_64 rng(std::random_device{}() ^
                                          static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
  const std::uint64_t a = rng(), b = rng();
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-%04x-4%03x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xfff),
                static_cast<unsigned>(0x8000 | ((b >> 48) & 0x3fff)),
                static_cast<unsigned long long>(b & 0xffffffffffffull));
  return buf;
}

bool valid_job_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-')) return false;
  return true;
}

// The file type from its first bytes ("" when none we accept). The client's name and
// Content-Type are never trusted.
std::string sniff_extension(const std::string& b) {
  auto at = [&](std::size_t off, std::string_view magic) { return b.size() >= off + magic.size() && b.compare(off, magic.size(), magic) == 0; };
  if (at(0, "\x89PNG\r\n\x1a\n")) return "png";
  if (at(0, "\xff\xd8\xff")) return "jpg";
  if (at(0, "RIFF") && at(8, "WEBP")) return "webp";
  if (at(0, "RIFF") && at(8, "AVI ")) return "avi";
  if (at(0, "BM")) return "bmp";
  if (at(0, "\x1a\x45\xdf\xa3")) return "mkv";
  if (at(4, "ftypqt")) return "mov";
  if (at(4, "ftyp")) return "mp4";
  return "";
}

// Pixels a PNG's IHDR claims, before anything decodes it (0 when not a PNG or too short):
// a forged header must not make the decoder allocate for it.
std::int64_t png_header_pixels(const std::string& b) {
  if (b.size() < 24 || b.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0 || b.compare(12, 4, "IHDR") != 0) return 0;
  auto be32 = [&](std::size_t off) {
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(b[off + i]);
    return static_cast<std::int64_t>(v);
  };
  return be32(16) * be32(20);
}

std::string content_type_for(const std::string& file) {
  const std::string ext = fs::path(file).extension().string();
  if (ext == ".png") return "image/png";
  if (ext == ".jpg") return "image/jpeg";
  if (ext == ".webp") return "image/webp";
  if (ext == ".mp4") return "video/mp4";
  return "application/octet-stream";
}

json job_json(const JobRecord& r) {
  json j = {{"id", r.id},
            {"state", job_state_name(r.state)},
            {"created_at_ms", r.created_ms},
            {"updated_at_ms", r.updated_ms},
            {"options", json::parse(r.options_json, nullptr, false)},
            {"progress",
             {{"frames_done", r.progress.frames_done},
              {"frames_total", r.progress.frames_total},
              {"fps", r.progress.fps},
              {"eta_s", r.progress.eta_s},
              {"frames_resumed", r.progress.frames_resumed}}},
            {"memory", nullptr},
            {"error", nullptr}};
  if (const auto& m = r.progress.memory)
    j["memory"] = {{"vram_budget_bytes", m->budget_bytes}, {"vram_used_bytes", m->used_bytes},
                   {"vram_peak_bytes", m->peak_bytes},     {"host_to_device_bytes", m->h2d_bytes},
                   {"device_to_host_bytes", m->d2h_bytes}, {"evictions", m->evictions}};
  if (r.state == JobState::kFailed) j["error"] = {{"code", r.error_code}, {"message", r.error_message}};
  if (r.state == JobState::kDone) {
    j["result_url"] = "/v1/jobs/" + r.id + "/result";
    j["preview_url"] = "/v1/jobs/" + r.id + "/preview";
    j["result_content_type"] = content_type_for(r.result);
  }
  return j;
}

// Why an upload was refused: HTTP status, stable code, message.
struct Refusal {
  int status;
  std::string code;
  std::string message;
};

// Writes one upload into the job folder under a name of our making, after checking that it
// is media of the expected kind. Returns the file name (inside dir) or the refusal.
std::variant<std::string, Refusal> store_upload(const HttpUpload& up, const fs::path& dir, const std::string& stem,
                                                bool must_be_image) {
  const std::string what = stem + " (" + up.field + " upload)";
  const std::string ext = sniff_extension(up.content);
  if (ext.empty())
    return Refusal{415, "unsupported_media_type",
                   what + ": not an image or video fswap reads (PNG, JPEG, WebP, BMP, MP4, MOV, MKV, AVI)"};
  if (png_header_pixels(up.content) > kMaxImagePixels)
    return Refusal{400, "image_too_large", what + ": its PNG header claims over 100 megapixels"};
  const fs::path tmp = dir / (stem + ".upload");
  {
    std::ofstream out(tmp, std::ios::binary);
    out.write(up.content.data(), static_cast<std::streamsize>(up.content.size()));
    if (!out) return Refusal{500, "storage_error", what + ": cannot write it to the data dir"};
  }
  auto kind = probe_media(tmp.string());
  if (!kind) return Refusal{400, "invalid_media", what + ": " + kind.status().message()};
  if (must_be_image && *kind != MediaKind::kImage)
    return Refusal{400, "source_not_image", what + ": a source must be an image"};
  if (*kind == MediaKind::kImage) {
    auto image = read_image(tmp.string());  // decodes it all: truncated files fail here
    if (!image) return Refusal{400, "invalid_media", what + ": " + image.status().message()};
    if (static_cast<std::int64_t>(image->width) * image->height > kMaxImagePixels)
      return Refusal{400, "image_too_large", what + ": over 100 megapixels"};
  } else {
    auto reader = VideoReader::open(tmp.string());
    if (!reader) return Refusal{400, "invalid_media", what + ": " + reader.status().message()};
  }
  const std::string name = stem + "." + ext;
  std::error_code ec;
  fs::rename(tmp, dir / name, ec);
  if (ec) return Refusal{500, "storage_error", what + ": " + ec.message()};
  return name;
}

}  // namespace

class Server::Impl {
 public:
  explicit Impl(ServerConfig config)
      : config_(std::move(config)),
        http_({.host = config_.host,
               .port = config_.port,
               .max_body_bytes = config_.max_upload_mb << 20,
               .bearer_token = config_.token,
               .open_paths = {"/", "/healthz", "/readyz"}}) {}

  ~Impl() { stop(); }

  Result<int> start() {
    if (config_.data_dir.empty()) return invalid_input("--data-dir is required");
    if (!config_.worker && config_.queue_url.empty())
      return invalid_input("a server without a worker needs a shared queue (--queue redis://HOST:PORT)");
    if (!config_.worker && !config_.http) return invalid_input("neither HTTP nor a worker: nothing to run");
    const bool shared = !config_.queue_url.empty();
    FSWAP_ASSIGN_OR_RETURN(store_, JobStore::open(config_.data_dir, shared));
    if (shared) {
      // Jobs left running belong to workers elsewhere: a dead one's are taken over through
      // the stream, not re-queued here.
      FSWAP_ASSIGN_OR_RETURN(queue_, RedisJobQueue::connect(config_.queue_url, *store_, worker_name(), config_.claim_timeout));
    } else {
      queue_ = std::make_unique<LocalJobQueue>(*store_, worker_name());
      if (const auto n = store_->requeue_interrupted(); n > 0)
        log_warn("serve: " + std::to_string(n) + " interrupted job(s) queued again (videos resume from their last finished segment)");
    }
    int port = 0;
    if (config_.http) {
      add_routes();
      FSWAP_ASSIGN_OR_RETURN(port, http_.bind());
    }
    if (config_.max_running_jobs < 1) return invalid_input("--max-running-jobs must be at least 1");
    if (config_.worker) {
      worker_ = std::make_unique<JobWorker>(*store_, *queue_, config_.base_job, config_.max_running_jobs);
      worker_->start();
    }
    if (shared && config_.http) {
      redis_ = static_cast<RedisJobQueue*>(queue_.get());
      republish_lost();
      republish_thread_ = std::thread([this] { republish_loop(); });
    }
    if (!config_.http) return port;
    http_thread_ = std::thread([this] {
      const Status s = http_.serve();
      if (!s.is_ok()) log_error("serve: " + s.message());
    });
    return port;
  }

  void stop() {
    http_.stop();
    if (http_thread_.joinable()) http_thread_.join();
    {
      std::lock_guard lock(republish_mu_);
      stopping_ = true;
    }
    republish_cv_.notify_all();
    if (republish_thread_.joinable()) republish_thread_.join();
    if (worker_) worker_->stop();
  }

 private:
  void republish_lost() {
    auto n = redis_->republish_lost();
    if (!n) log_warn("serve: " + n.status().message());
    else if (*n > 0) log_warn("serve: " + std::to_string(*n) + " waiting job(s) published again (the Redis stream had lost them)");
  }

  void republish_loop() {
    const auto every = std::max<std::chrono::milliseconds>(config_.claim_timeout, std::chrono::seconds(1));
    std::unique_lock lock(republish_mu_);
    while (!republish_cv_.wait_for(lock, every, [this] { return stopping_; })) {
      lock.unlock();
      republish_lost();
      lock.lock();
    }
  }

  void add_routes() {
    http_.get("/healthz", [](const HttpRequest&) { return HttpResponse::json(200, R"({"status":"ok"})"); });
    http_.get("/readyz", [this](const HttpRequest&) { return readyz(); });
    http_.get("/metrics", [this](const HttpRequest&) { return metrics(); });
    http_.get("/v1/openapi.json", [](const HttpRequest&) { return HttpResponse::json(200, openapi_document()); });
    http_.get("/", [](const HttpRequest&) { return HttpResponse::text(200, web_page_document(), "text/html; charset=utf-8"); });
    http_.get("/v1/models", [this](const HttpRequest&) { return models(); });
    http_.post("/v1/jobs", [this](const HttpRequest& r) { return create_job(r); });
    http_.get("/v1/jobs", [this](const HttpRequest&) { return list_jobs(); });
    http_.get("/v1/jobs/{id}", [this](const HttpRequest& r) {
      return with_job(r, [](const JobRecord& job) { return HttpResponse::json(200, job_json(job).dump()); });
    });
    http_.get("/v1/jobs/{id}/result", [this](const HttpRequest& r) { return with_job(r, [this](const JobRecord& j) { return result(j); }); });
    http_.get("/v1/jobs/{id}/preview", [this](const HttpRequest& r) { return with_job(r, [this](const JobRecord& j) { return preview(j); }); });
    http_.del("/v1/jobs/{id}", [this](const HttpRequest& r) { return with_job(r, [this](const JobRecord& j) { return cancel(j); }); });
  }

  template <class F>
  HttpResponse with_job(const HttpRequest& r, F&& f) {
    const std::string& id = r.param("id");
    if (!valid_job_id(id)) return HttpResponse::error(400, "invalid_job_id", "job ids are lowercase hex and dashes");
    auto job = store_->get(id);
    if (!job) return HttpResponse::error(404, "job_not_found", "no job " + id);
    return f(*job);
  }

  HttpResponse readyz() {
    std::error_code ec;
    if (!fs::is_directory(config_.base_job.analyser.models_dir, ec))
      return HttpResponse::error(503, "not_ready", "models dir " + config_.base_job.analyser.models_dir + " is missing");
    store_->count_by_state();
    return HttpResponse::json(200, R"({"status":"ready"})");
  }

  HttpResponse metrics() {
    std::string out =
        "# HELP fswap_up 1 while the server runs.\n# TYPE fswap_up gauge\nfswap_up 1\n"
        "# HELP fswap_jobs Jobs in the store by state.\n# TYPE fswap_jobs gauge\n";
    for (const auto& [state, n] : store_->count_by_state())
      out += "fswap_jobs{state=\"" + std::string(job_state_name(state)) + "\"} " + std::to_string(n) + "\n";
    auto metric = [&out](const char* name, const char* type, const char* help, auto value) {
      out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
             std::to_string(value) + "\n";
    };
    metric("fswap_frames_processed_total", "counter", "Frames swapped by this process's worker since it started.",
           worker_ ? worker_->frames_processed() : 0);
    metric("fswap_frames_per_second", "gauge", "Frames per second of the jobs running here now, summed.",
           worker_ ? worker_->frames_per_second() : 0.0);
    metric("fswap_running_jobs", "gauge", "Jobs this process's worker runs now.", worker_ ? worker_->running_jobs() : 0);
    metric("fswap_max_running_jobs", "gauge", "Jobs this process's worker runs at once at most (--max-running-jobs).",
           worker_ ? worker_->max_running_jobs() : 0);
    if (const FaceBatcher* batcher = worker_ ? worker_->face_batcher() : nullptr) {
      const FaceBatcherStats b = batcher->stats();
      metric("fswap_face_batches_total", "counter", "Runs of the shared face models (one batch or one call each).", b.batches);
      metric("fswap_face_calls_total", "counter", "Face-model calls from the running jobs.", b.calls);
      metric("fswap_face_batched_calls_total", "counter", "Face-model calls run inside a batch of two or more.",
             b.batched_calls);
    }
    // Device memory of the native engine's CUDA runtimes alive now; 0 on the CPU and with ort
    // (the series are always present, so dashboards need no special case).
    const EngineMemoryStats m = NativeEngine().memory_stats().value_or(EngineMemoryStats{});
    metric("fswap_vram_budget_bytes", "gauge", "Device-memory budget (--vram-budget); 0 without a GPU session.", m.budget_bytes);
    metric("fswap_vram_used_bytes", "gauge", "Device bytes allocated now.", m.used_bytes);
    metric("fswap_vram_peak_bytes", "gauge", "Most device bytes allocated at once.", m.peak_bytes);
    metric("fswap_vram_reserved_bytes", "gauge", "Device bytes the arena holds (allocated and cached).", m.reserved_bytes);
    metric("fswap_host_to_device_bytes_total", "counter", "Bytes copied host to device (weight loads, prefetches).",
           m.h2d_bytes);
    metric("fswap_device_to_host_bytes_total", "counter", "Bytes copied device to host (write-backs).", m.d2h_bytes);
    metric("fswap_evictions_total", "counter", "Weight blocks evicted from the device to make room.", m.evictions);
    metric("fswap_evicted_bytes_total", "counter", "Bytes of the evicted weight blocks.", m.evicted_bytes);
    return HttpResponse::text(200, out);
  }

  // The model registry (`fswap models list`'s catalogue, compiled in, in its order), each file
  // present or missing in the models dir. Files are not hashed here (that is `fswap models verify`).
  HttpResponse models() {
    const std::string& dir = config_.base_job.analyser.models_dir;
    auto registry = parse_model_registry(model_catalogue_document(), "the compiled-in models/facefusion_models.json");
    if (!registry) return HttpResponse::error(500, "model_registry_unreadable", registry.status().message());
    json list = json::array();
    for (const ModelEntry& m : registry->models) {
      std::error_code ec;
      const fs::path path = fs::path(dir) / m.file;
      const bool present = fs::is_regular_file(path, ec);
      json entry = {{"name", m.file},       {"model", m.name},      {"role", m.role},
                    {"used_by", m.used_by}, {"state", present ? "present" : "missing"},
                    {"supported", m.supported}, {"licence", m.licence}, {"source", m.source},
                    {"url", m.url},         {"hash", m.sha256.empty() ? "unverified" : "pinned"}};
      if (present) entry["bytes"] = fs::file_size(path, ec);
      list.push_back(entry);
    }
    return HttpResponse::json(200, json{{"models_dir", dir}, {"models", list}}.dump());
  }

  // The first frame of a finished result as PNG, made on the first request and kept as
  // preview.png in the job folder (written under a unique name, then renamed: concurrent
  // first requests are harmless).
  HttpResponse preview(const JobRecord& job) {
    if (job.state != JobState::kDone)
      return HttpResponse::error(409, "job_not_done", "job " + job.id + " is " + job_state_name(job.state) + ", not done");
    const fs::path dir = store_->job_dir(job.id);
    const fs::path png = dir / "preview.png";
    std::error_code ec;
    if (fs::is_regular_file(png, ec)) return HttpResponse::file(png.string(), "image/png");
    if (!fs::is_regular_file(dir / job.result, ec))
      return HttpResponse::error(410, "result_gone", "the result file of job " + job.id + " is gone");
    auto reader = VideoReader::open((dir / job.result).string());  // a still image opens as one frame
    if (!reader) return HttpResponse::error(500, "preview_failed", "job " + job.id + ": " + reader.status().message());
    VideoFrame frame;
    auto got = (*reader)->read(frame);
    if (!got || !*got)
      return HttpResponse::error(500, "preview_failed", "job " + job.id + ": the result has no frame to preview");
    const fs::path tmp = dir / ("preview-" + new_job_id() + ".png");
    if (const Status s = write_image(tmp.string(), frame.image); !s.is_ok())
      return HttpResponse::error(500, "preview_failed", "job " + job.id + ": " + s.message());
    fs::rename(tmp, png, ec);
    if (ec) {
      fs::remove(tmp, ec);
      return HttpResponse::error(500, "storage_error", "job " + job.id + ": cannot store the preview");
    }
    return HttpResponse::file(png.string(), "image/png");
  }

  HttpResponse list_jobs() {
    json jobs = json::array();
    for (const auto& r : store_->list()) jobs.push_back(job_json(r));
    return HttpResponse::json(200, json{{"jobs", jobs}}.dump());
  }

  HttpResponse create_job(const HttpRequest& r) {
    if (r.uploads.empty())
      return HttpResponse::error(400, "multipart_required",
                                 "POST /v1/jobs takes multipart/form-data: source (one or more), target, options (JSON)");
    if (store_->count_by_state()[JobState::kQueued] >= config_.max_queued)
      return HttpResponse::error(429, "queue_full", "the job queue is full (" + std::to_string(config_.max_queued) +
                                                        " queued); retry later");
    std::vector<const HttpUpload*> sources;
    const HttpUpload* target = nullptr;
    std::string options_text;
    for (const auto& up : r.uploads) {
      if (up.field == "source") sources.push_back(&up);
      else if (up.field == "target" && !target) target = &up;
      else if (up.field == "target") return HttpResponse::error(400, "too_many_targets", "send exactly one target");
      else if (up.field == "options") options_text = up.content;
      else return HttpResponse::error(400, "unknown_field", "unknown form field '" + up.field + "' (source, target, options)");
    }
    if (sources.empty()) return HttpResponse::error(400, "missing_source", "send at least one source image");
    if (!target) return HttpResponse::error(400, "missing_target", "send a target image or video");
    if (sources.size() > 16) return HttpResponse::error(400, "too_many_sources", "at most 16 source images");
    auto options = parse_job_options(options_text);
    if (!options) return HttpResponse::error(400, "invalid_options", options.status().message());

    JobRecord job;
    job.id = new_job_id();
    const fs::path dir = store_->job_dir(job.id);
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return HttpResponse::error(500, "storage_error", "cannot create the job folder: " + ec.message());
    auto refuse = [&](const Refusal& why) {
      fs::remove_all(dir, ec);
      return HttpResponse::error(why.status, why.code, why.message);
    };
    json source_names = json::array();
    for (std::size_t i = 0; i < sources.size(); ++i) {
      auto stored = store_upload(*sources[i], dir, "source_" + std::to_string(i), true);
      if (auto* why = std::get_if<Refusal>(&stored)) return refuse(*why);
      source_names.push_back(std::get<std::string>(stored));
    }
    auto stored = store_upload(*target, dir, "target", false);
    if (auto* why = std::get_if<Refusal>(&stored)) return refuse(*why);
    job.target = std::get<std::string>(stored);
    const std::string ext = fs::path(job.target).extension().string();
    const bool image = ext == ".png" || ext == ".jpg" || ext == ".webp" || ext == ".bmp";
    job.result = image ? (ext == ".bmp" ? "result.png" : "result" + ext) : "result.mp4";
    job.sources_json = source_names.dump();
    job.options_json = options->to_json();
    job.created_ms = job.updated_ms = now_ms();
    if (const Status s = store_->insert(job); !s.is_ok()) return refuse({500, "storage_error", s.message()});
    if (const Status s = queue_->publish(job.id); !s.is_ok()) {
      store_->transition(job.id, {JobState::kQueued}, JobState::kFailed, "queue_unavailable", s.message());
      return HttpResponse::error(503, "queue_unavailable", s.message() + "; retry later");
    }
    if (worker_) worker_->wake();
    auto res = HttpResponse::json(201, job_json(job).dump());
    res.headers.emplace_back("Location", "/v1/jobs/" + job.id);
    return res;
  }

  HttpResponse result(const JobRecord& job) {
    if (job.state != JobState::kDone)
      return HttpResponse::error(409, "job_not_done", "job " + job.id + " is " + job_state_name(job.state) + ", not done");
    const fs::path path = fs::path(store_->job_dir(job.id)) / job.result;
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) return HttpResponse::error(410, "result_gone", "the result file of job " + job.id + " is gone");
    auto res = HttpResponse::file(path.string(), content_type_for(job.result));
    res.headers.emplace_back("Content-Disposition", "attachment; filename=\"fswap-" + job.id + fs::path(job.result).extension().string() + "\"");
    return res;
  }

  HttpResponse cancel(const JobRecord& job) {
    if (store_->transition(job.id, {JobState::kQueued}, JobState::kCancelled))
      return HttpResponse::json(200, job_json(*store_->get(job.id)).dump());
    // Shared queue: the job may run anywhere; its worker sees the state at its next heartbeat.
    if (!config_.queue_url.empty() && store_->transition(job.id, {JobState::kRunning}, JobState::kCancelled))
      return HttpResponse::json(202, job_json(*store_->get(job.id)).dump());
    // Running: raise its flag. The worker may have claimed it a moment ago, so retry briefly.
    for (int i = 0; i < 50 && worker_; ++i) {
      if (worker_->cancel(job.id)) return HttpResponse::json(202, job_json(*store_->get(job.id)).dump());
      auto now = store_->get(job.id);
      if (!now || now->state != JobState::kRunning) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    auto now = store_->get(job.id);
    return HttpResponse::error(409, "job_finished",
                               "job " + job.id + " is " + job_state_name(now ? now->state : job.state) + "; nothing to cancel");
  }

  ServerConfig config_;
  HttpServer http_;
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<JobQueue> queue_;
  std::unique_ptr<JobWorker> worker_;
  std::thread http_thread_;
  RedisJobQueue* redis_ = nullptr;  // queue_ when it is Redis and this process serves HTTP
  std::thread republish_thread_;
  std::mutex republish_mu_;
  std::condition_variable republish_cv_;
  bool stopping_ = false;  // guarded by republish_mu_
};

Server::Server(ServerConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}
Server::~Server() = default;
Result<int> Server::start() { return impl_->start(); }
void Server::stop() { impl_->stop(); }

}  // namespace fswap::server
