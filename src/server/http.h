// HttpServer: the HTTP adapter. Routes, requests and responses are plain fswap types; the
// HTTP library (cpp-httplib) stays behind this interface, in http.cc only.
//
//   HttpServer http({.host = "127.0.0.1", .port = 0, .max_body_bytes = 512 << 20});
//   http.get("/healthz", [](const HttpRequest&) { return HttpResponse::json(200, R"({"status":"ok"})"); });
//   http.get("/v1/jobs/{id}", [](const HttpRequest& r) { ... r.param("id") ... });
//   FSWAP_ASSIGN_OR_RETURN(int port, http.bind());  // port 0 picks a free one
//   http.serve();                                   // blocks until stop()
//
// Contract for handlers: they never throw. The adapter still catches anything that escapes
// and answers 500 with a JSON error body, so one bad request cannot take the server down.
// Errors the adapter answers itself (no route, body over max_body_bytes, bad token) use the
// same JSON shape: {"error": {"code": "stable_code", "message": "..."}}.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace fswap::server {

struct HttpUpload {
  std::string field;         // form field name ("source", "target", "options")
  std::string filename;      // as sent by the client; never used as a path
  std::string content_type;  // as sent by the client; not trusted
  std::string content;       // the bytes (held in memory; bounded by max_body_bytes)
};

struct HttpRequest {
  std::string method;
  std::string path;                             // decoded path, without the query
  std::map<std::string, std::string> params;    // {name} segments of the route
  std::multimap<std::string, std::string> headers;
  std::string body;                             // empty for multipart requests
  std::vector<HttpUpload> uploads;              // multipart/form-data parts, in order

  const std::string& param(const std::string& name) const;
  std::string header(const std::string& name) const;  // "" when absent
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  // When set, the response is this file, streamed (body is ignored); Range requests are
  // answered 206 with the requested bytes.
  std::string file_path;
  std::vector<std::pair<std::string, std::string>> headers;

  static HttpResponse json(int status, std::string body);
  static HttpResponse text(int status, std::string body, std::string content_type = "text/plain; version=0.0.4");
  // {"error": {"code": code, "message": message}}
  static HttpResponse error(int status, const std::string& code, const std::string& message);
  static HttpResponse file(std::string path, std::string content_type);
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                          // 0: any free port (bind() returns it)
  std::uint64_t max_body_bytes = 512ull << 20;  // larger requests are answered 413
  std::string bearer_token;                 // non-empty: every route but the open ones needs it
  std::vector<std::string> open_paths = {"/healthz", "/readyz"};  // reachable without the token
  int worker_threads = 8;                   // HTTP threads (handlers run on these)
};

class HttpServer {
 public:
  explicit HttpServer(HttpServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Routes: literal segments and {name} segments (one path segment each, no '/').
  // Register every route before bind().
  void get(const std::string& pattern, HttpHandler handler);
  void post(const std::string& pattern, HttpHandler handler);
  void del(const std::string& pattern, HttpHandler handler);

  // Binds the listening socket; returns the port (useful with port 0).
  Result<int> bind();
  // Serves until stop(); call after bind(). Thread-safe to stop() from another thread.
  Status serve();
  void stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// Constant-time comparison (for tokens): time depends only on the lengths.
bool constant_time_equal(const std::string& a, const std::string& b);

}  // namespace fswap::server
