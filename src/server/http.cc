#include "server/http.h"

#include <httplib.h>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

namespace fswap::server {

const std::string& HttpRequest::param(const std::string& name) const {
  static const std::string kEmpty;
  const auto it = params.find(name);
  return it == params.end() ? kEmpty : it->second;
}

std::string HttpRequest::header(const std::string& name) const {
  for (const auto& [key, value] : headers)
    if (key.size() == name.size() &&
        std::equal(key.begin(), key.end(), name.begin(), [](char a, char b) { return std::tolower(a) == std::tolower(b); }))
      return value;
  return {};
}

HttpResponse HttpResponse::json(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpResponse HttpResponse::text(int status, std::string body, std::string content_type) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.content_type = std::move(content_type);
  return r;
}

HttpResponse HttpResponse::error(int status, const std::string& code, const std::string& message) {
  const nlohmann::json j = {{"error", {{"code", code}, {"message", message}}}};
  return json(status, j.dump());
}

HttpResponse HttpResponse::file(std::string path, std::string content_type) {
  HttpResponse r;
  r.file_path = std::move(path);
  r.content_type = std::move(content_type);
  return r;
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const std::string& longer = a.size() >= b.size() ? a : b;
  for (std::size_t i = 0; i < longer.size(); ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= x ^ y;
  }
  return diff == 0;
}

namespace {

// The stable code for an error the HTTP layer answers itself (no handler ran).
std::pair<std::string, std::string> adapter_error(int status) {
  switch (status) {
    case 400: return {"bad_request", "the request could not be parsed"};
    case 401: return {"unauthorized", "missing or wrong bearer token (Authorization: Bearer TOKEN)"};
    case 404: return {"not_found", "no such endpoint"};
    case 405: return {"method_not_allowed", "this endpoint does not take that method"};
    case 413: return {"payload_too_large", "the request body is over the upload limit (--max-upload-mb)"};
    case 414: return {"uri_too_long", "the request URI is too long"};
    case 416: return {"range_not_satisfiable", "the requested byte range is outside the file"};
    default: return {status >= 500 ? "internal" : "bad_request", "HTTP error " + std::to_string(status)};
  }
}

// "/v1/jobs/{id}/result" → regex "/v1/jobs/([^/]+)/result" and names {"id"}.
std::pair<std::string, std::vector<std::string>> compile_pattern(const std::string& pattern) {
  static const std::string kSpecial = R"(\^$.|?*+()[]{})";
  std::string re;
  std::vector<std::string> names;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '{') {
      const auto end = pattern.find('}', i);
      names.push_back(pattern.substr(i + 1, end - i - 1));
      re += "([^/]+)";
      i = end;
    } else {
      if (kSpecial.find(pattern[i]) != std::string::npos) re += '\\';
      re += pattern[i];
    }
  }
  return {re, names};
}

void write_response(const HttpResponse& from, httplib::Response& to) {
  to.status = from.status;
  for (const auto& [k, v] : from.headers) to.set_header(k, v);
  if (from.file_path.empty()) {
    to.set_content(from.body, from.content_type);
    return;
  }
  std::error_code ec;
  const auto size = std::filesystem::file_size(from.file_path, ec);
  auto in = std::make_shared<std::ifstream>(from.file_path, std::ios::binary);
  if (ec || !*in) {
    const auto e = HttpResponse::error(500, "internal", "cannot read the result file");
    to.status = e.status;
    to.set_content(e.body, e.content_type);
    return;
  }
  to.set_header("Accept-Ranges", "bytes");
  // httplib answers 206 for a Range request only when the handler left the status unset.
  if (from.status == 200) to.status = -1;
  to.set_content_provider(static_cast<std::size_t>(size), from.content_type,
                          [in](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
                            std::vector<char> buf(std::min<std::size_t>(length, 1 << 16));
                            in->clear();
                            in->seekg(static_cast<std::streamoff>(offset));
                            in->read(buf.data(), static_cast<std::streamsize>(buf.size()));
                            const auto got = static_cast<std::size_t>(in->gcount());
                            if (got == 0) return false;
                            return sink.write(buf.data(), got);
                          });
}

}  // namespace

class HttpServer::Impl {
 public:
  explicit Impl(HttpServerOptions options) : options_(std::move(options)) {
    const int threads = options_.worker_threads;
    server_.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
    server_.set_payload_max_length(options_.max_body_bytes);
    server_.set_read_timeout(30);
    server_.set_write_timeout(60);
    // Headers and body go out in separate writes: with Nagle on, a kept-alive client's delayed
    // ACK held every response ~40 ms (docs/BENCHMARKS.md, "Status requests under load").
    server_.set_tcp_nodelay(true);
    server_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (authorized(req)) return httplib::Server::HandlerResponse::Unhandled;
      res.status = 401;
      res.set_header("WWW-Authenticate", "Bearer");
      const auto [code, message] = adapter_error(401);
      res.set_content(HttpResponse::error(401, code, message).body, "application/json");
      return httplib::Server::HandlerResponse::Handled;
    });
    // Errors httplib answers itself (404 route, 413 payload, 416 range): same JSON shape.
    server_.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
      if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
      const auto [code, message] = adapter_error(res.status);
      res.set_content(HttpResponse::error(res.status, code, message).body, "application/json");
      return httplib::Server::HandlerResponse::Handled;
    }));
    server_.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
      res.status = 500;
      res.set_content(HttpResponse::error(500, "internal", "unexpected failure in the request handler").body,
                      "application/json");
    });
  }

  void add(const std::string& method, const std::string& pattern, HttpHandler handler) {
    auto [re, names] = compile_pattern(pattern);
    auto h = [handler = std::move(handler), names = std::move(names), method](const httplib::Request& req,
                                                                              httplib::Response& res) {
      HttpResponse out;
      try {
        HttpRequest in;
        in.method = method;
        in.path = req.path;
        for (std::size_t i = 0; i < names.size() && i + 1 < req.matches.size(); ++i)
          in.params[names[i]] = req.matches[i + 1].str();
        for (const auto& [k, v] : req.headers) in.headers.emplace(k, v);
        if (req.is_multipart_form_data()) {
          for (const auto& [field, part] : req.files)
            in.uploads.push_back({part.name, part.filename, part.content_type, part.content});
        } else {
          in.body = req.body;
        }
        out = handler(in);
      } catch (const std::exception& e) {
        out = HttpResponse::error(500, "internal", std::string("unexpected failure: ") + e.what());
      } catch (...) {
        out = HttpResponse::error(500, "internal", "unexpected failure in the request handler");
      }
      write_response(out, res);
    };
    if (method == "GET") server_.Get(re, h);
    else if (method == "POST") server_.Post(re, h);
    else server_.Delete(re, h);
  }

  Result<int> bind() {
    if (options_.port == 0) {
      const int port = server_.bind_to_any_port(options_.host);
      if (port <= 0) return invalid_input("cannot listen on " + options_.host + " (any port)");
      return port;
    }
    if (!server_.bind_to_port(options_.host, options_.port))
      return invalid_input("cannot listen on " + options_.host + ":" + std::to_string(options_.port) +
                           " (in use, or not an address of this machine)");
    return options_.port;
  }

  Status serve() {
    if (!server_.listen_after_bind()) return internal_error("the HTTP server stopped with an error");
    return Status::ok();
  }

  void stop() { server_.stop(); }

 private:
  bool authorized(const httplib::Request& req) const {
    if (options_.bearer_token.empty()) return true;
    for (const auto& p : options_.open_paths)
      if (req.path == p) return true;
    const std::string h = req.get_header_value("Authorization");
    constexpr std::string_view kBearer = "Bearer ";
    if (h.size() < kBearer.size() || h.compare(0, kBearer.size(), kBearer) != 0) return false;
    return constant_time_equal(h.substr(kBearer.size()), options_.bearer_token);
  }

  HttpServerOptions options_;
  httplib::Server server_;
};

HttpServer::HttpServer(HttpServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
HttpServer::~HttpServer() = default;
void HttpServer::get(const std::string& pattern, HttpHandler handler) { impl_->add("GET", pattern, std::move(handler)); }
void HttpServer::post(const std::string& pattern, HttpHandler handler) { impl_->add("POST", pattern, std::move(handler)); }
void HttpServer::del(const std::string& pattern, HttpHandler handler) { impl_->add("DELETE", pattern, std::move(handler)); }
Result<int> HttpServer::bind() { return impl_->bind(); }
Status HttpServer::serve() { return impl_->serve(); }
void HttpServer::stop() { impl_->stop(); }

}  // namespace fswap::server
