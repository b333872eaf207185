#include "runtime/engines/model_registry.h"

#include <openssl/evp.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>

#include <httplib.h>

#include "onnx/onnx_loader.h"

namespace fswap {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string shape_text(const std::vector<std::int64_t>& s) {
  std::string t = "[";
  for (std::size_t i = 0; i < s.size(); ++i) t += (i ? "," : "") + std::to_string(s[i]);
  return t + "]";
}

// A contract dim of -1 accepts any size; a dynamic file dim (-1) is accepted for any contract dim.
bool shape_matches(const std::vector<std::int64_t>& contract, const std::vector<std::int64_t>& actual) {
  if (contract.size() != actual.size()) return false;
  for (std::size_t i = 0; i < contract.size(); ++i)
    if (contract[i] != -1 && actual[i] != -1 && contract[i] != actual[i]) return false;
  return true;
}

std::string str_or_empty(const json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}

TensorContract parse_tensor(const json& j) {
  TensorContract t;
  if (j.contains("name") && j["name"].is_string()) t.name = j["name"].get<std::string>();
  if (j.contains("shape") && j["shape"].is_array()) t.shape = j["shape"].get<std::vector<std::int64_t>>();
  return t;
}

std::string to_hex(const unsigned char* p, std::size_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    s += kDigits[p[i] >> 4];
    s += kDigits[p[i] & 15];
  }
  return s;
}

std::string trim_lower(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  std::size_t b = 0;
  while (b < s.size() && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  s = s.substr(b);
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

struct EvpDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using EvpCtx = std::unique_ptr<EVP_MD_CTX, EvpDeleter>;

EvpCtx new_sha256() {
  EvpCtx ctx(EVP_MD_CTX_new());
  if (ctx) EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  return ctx;
}

std::string finish_sha256(EVP_MD_CTX* ctx) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx, md, &n);
  return to_hex(md, n);
}

// The first word of a `<file>.sha256` sidecar (sha256sum's format), or "" when there is none.
std::string read_sidecar(const fs::path& path) {
  std::ifstream in(path);
  std::string word;
  in >> word;
  return trim_lower(word);
}

struct Url {
  std::string origin;  // scheme://host[:port]
  std::string path;
};

Result<Url> parse_url(const std::string& url) {
  static const std::regex re(R"(^(https?://[^/]+)(/.*)?$)");
  std::smatch m;
  if (!std::regex_match(url, m, re)) return invalid_input(url + ": not an http:// or https:// URL");
  return Url{m[1].str(), m[2].matched ? m[2].str() : "/"};
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

// Removes the partial download unless released.
class PartFile {
 public:
  explicit PartFile(fs::path p) : path_(std::move(p)) {}
  ~PartFile() {
    if (!path_.empty()) {
      std::error_code ec;
      fs::remove(path_, ec);
    }
  }
  const fs::path& path() const { return path_; }
  void release() { path_.clear(); }

 private:
  fs::path path_;
};

// httplib's error names ("Connection", "Read") with what they mean for a download.
std::string error_text(httplib::Error e) {
  switch (e) {
    case httplib::Error::Connection:
      return "cannot connect (refused or unreachable; check the network or --url-base)";
    case httplib::Error::Read:
      return "connection closed or timed out while reading (truncated body)";
    case httplib::Error::SSLConnection:
    case httplib::Error::SSLServerVerification:
      return "TLS failed (" + httplib::to_string(e) + ")";
    default:
      return httplib::to_string(e);
  }
}

std::unique_ptr<httplib::Client> make_client(const Url& u, int timeout_s) {
  auto cli = std::make_unique<httplib::Client>(u.origin);
  cli->set_follow_location(true);
  cli->set_connection_timeout(timeout_s, 0);
  cli->set_read_timeout(timeout_s, 0);
  return cli;
}

// GET into memory; nullopt with *status 404 when the server has no such file.
Result<std::optional<std::string>> get_small(const std::string& url, int timeout_s) {
  FSWAP_ASSIGN_OR_RETURN(Url u, parse_url(url));
  auto cli = make_client(u, timeout_s);
  auto res = cli->Get(u.path);
  if (!res) return not_found("download of " + url + " failed: " + error_text(res.error()));
  if (res->status == 404) return std::optional<std::string>();
  if (res->status != 200) return not_found("download of " + url + " failed: HTTP " + std::to_string(res->status));
  return std::optional<std::string>(res->body);
}

}  // namespace

const ModelEntry* ModelRegistry::find(const std::string& name) const {
  for (const auto& m : models)
    if (m.name == name) return &m;
  return nullptr;
}

const char* model_state_name(ModelState s) {
  switch (s) {
    case ModelState::kMissing: return "missing";
    case ModelState::kPresent: return "present";
    case ModelState::kVerified: return "verified";
    case ModelState::kMismatched: return "mismatched";
  }
  return "?";
}

Result<ModelRegistry> load_model_registry(const std::string& path) {
  std::ifstream in(path);
  if (!in) return not_found(path + ": model registry not found");
  return parse_model_registry(std::string(std::istreambuf_iterator<char>(in), {}), path);
}

Result<ModelRegistry> parse_model_registry(const std::string& text, const std::string& path) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    return invalid_input(path + ": not valid JSON: " + e.what());
  }
  ModelRegistry reg;
  reg.url_base = str_or_empty(doc, "url_base");
  if (!doc.contains("models") || !doc["models"].is_array()) return invalid_input(path + ": no \"models\" array");
  try {
    for (const auto& m : doc["models"]) {
      ModelEntry e;
      e.name = m.at("name").get<std::string>();
      e.file = m.at("file").get<std::string>();
      e.role = str_or_empty(m, "role");
      e.licence = str_or_empty(m, "licence");
      e.source = str_or_empty(m, "source");
      e.url = str_or_empty(m, "url");
      e.url_verified = m.value("url_verified", false);
      e.sha256 = trim_lower(str_or_empty(m, "sha256"));
      e.supported = m.value("supported", false);
      e.used_by = str_or_empty(m, "used_by");
      if (m.contains("contract") && m["contract"].is_object()) {
        ModelContract c;
        for (const auto& t : m["contract"].value("inputs", json::array())) c.inputs.push_back(parse_tensor(t));
        for (const auto& t : m["contract"].value("outputs", json::array())) c.outputs.push_back(parse_tensor(t));
        e.contract = std::move(c);
      }
      if (e.name.empty() || e.file.empty() || e.file.find('/') != std::string::npos)
        return invalid_input(path + ": model \"" + e.name + "\": needs a name and a plain file name");
      reg.models.push_back(std::move(e));
    }
  } catch (const json::exception& e) {
    return invalid_input(path + ": bad model entry: " + e.what());
  }
  return reg;
}

Status check_model_contract(const ModelEntry& entry, const std::string& path, const std::string& label) {
  if (!entry.contract) return Status::ok();
  auto graph = load_onnx(path);
  if (!graph) return invalid_input(entry.name + ": " + graph.status().message());
  const Graph& g = *graph;
  std::string problems;
  auto add = [&](const std::string& p) { problems += (problems.empty() ? "" : "; ") + p; };
  for (const auto& want : entry.contract->inputs) {
    const Value* found = nullptr;
    for (int id : g.inputs)
      if (g.values[id].name == want.name) found = &g.values[id];
    if (!found) {
      std::string names;
      for (int id : g.inputs) names += (names.empty() ? "" : ", ") + g.values[id].name;
      add("input '" + want.name + "' is missing (the file has: " + names + ")");
    } else if (want.shape && !shape_matches(*want.shape, found->shape)) {
      add("input '" + want.name + "' has shape " + shape_text(found->shape) + ", the contract says " +
          shape_text(*want.shape));
    }
  }
  const auto& outs = entry.contract->outputs;
  if (g.outputs.size() < outs.size())
    add("the file has " + std::to_string(g.outputs.size()) + " outputs, the contract " + std::to_string(outs.size()));
  for (std::size_t i = 0; i < outs.size() && i < g.outputs.size(); ++i) {
    const Value& v = g.values[g.outputs[i]];
    const std::string label = "output " + std::to_string(i) + " '" + v.name + "'";
    if (!outs[i].name.empty() && v.name != outs[i].name) add(label + ": the contract names it '" + outs[i].name + "'");
    // Output shapes are checked only where the file states them (known rank).
    if (outs[i].shape && !v.shape.empty() && !shape_matches(*outs[i].shape, v.shape))
      add(label + " has shape " + shape_text(v.shape) + ", the contract says " + shape_text(*outs[i].shape));
  }
  if (!problems.empty()) return invalid_input((label.empty() ? path : label) + " does not match the " + entry.name + " contract: " + problems);
  return Status::ok();
}

ModelCheck check_model(const ModelEntry& entry, const std::string& models_dir) {
  const fs::path path = fs::path(models_dir) / entry.file;
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return {ModelState::kMissing, path.string() + " not found"};
  auto sha = sha256_file(path.string());
  if (!sha) return {ModelState::kMismatched, sha.status().message()};
  const std::string sidecar = read_sidecar(path.string() + ".sha256");
  const std::string expected = !entry.sha256.empty() ? entry.sha256 : sidecar;
  const char* from = !entry.sha256.empty() ? "the pinned sha256" : "the .sha256 sidecar";
  if (!expected.empty() && expected != *sha)
    return {ModelState::kMismatched, std::string("sha256 ") + *sha + " differs from " + from + " " + expected};
  const Status contract = check_model_contract(entry, path.string());
  if (!contract.is_ok()) return {ModelState::kMismatched, contract.message()};
  if (expected.empty()) return {ModelState::kPresent, "no pinned sha256 and no .sha256 sidecar to verify against"};
  return {ModelState::kVerified, ""};
}

Result<std::string> sha256_file(const std::string& path) {
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) return not_found(path + ": cannot open");
  EvpCtx ctx = new_sha256();
  if (!ctx) return internal_error("OpenSSL: EVP_MD_CTX_new failed");
  std::vector<unsigned char> buf(1 << 20);
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f.get())) > 0) EVP_DigestUpdate(ctx.get(), buf.data(), n);
  if (std::ferror(f.get())) return internal_error(path + ": read error");
  return finish_sha256(ctx.get());
}

std::uint32_t crc32_update(std::uint32_t crc, const void* data, std::size_t n) {
  static const std::array<std::uint32_t, 256> kTable = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (std::size_t i = 0; i < n; ++i) crc = kTable[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

Result<FetchReport> fetch_model(const ModelEntry& entry, const FetchOptions& options) {
  if (entry.url.empty())
    return invalid_input(entry.name + " is not downloaded by fswap models fetch: it comes from " + entry.source);
  FetchReport report;
  if (options.url_base.empty()) {
    report.url = entry.url;
  } else {
    std::string base = options.url_base;
    while (!base.empty() && base.back() == '/') base.pop_back();
    report.url = base + "/" + entry.file;
  }
  FSWAP_ASSIGN_OR_RETURN(Url url, parse_url(report.url));
  std::error_code ec;
  fs::create_directories(options.models_dir, ec);
  if (ec) return invalid_input("--models-dir " + options.models_dir + ": " + ec.message());

  // FaceFusion publishes `<name>.hash` (CRC32 hex) next to each `<name>.onnx`.
  std::string hash_url = report.url;
  if (hash_url.size() > 5 && hash_url.ends_with(".onnx")) hash_url.resize(hash_url.size() - 5);
  hash_url += ".hash";
  FSWAP_ASSIGN_OR_RETURN(auto hash_text, get_small(hash_url, options.timeout_s));
  std::string crc_expected;
  if (hash_text) {
    crc_expected = trim_lower(*hash_text);
    if (crc_expected.size() != 8 || crc_expected.find_first_not_of("0123456789abcdef") != std::string::npos)
      return invalid_input(hash_url + ": not a CRC32 hash file (expected 8 hex digits)");
  } else {
    report.notes.push_back("no .hash file at " + hash_url + ": CRC32 not checked");
  }

  PartFile part(fs::path(options.models_dir) / ("." + entry.file + ".part-" + std::to_string(::getpid())));
  std::unique_ptr<std::FILE, FileCloser> out(std::fopen(part.path().c_str(), "wb"));
  if (!out) return invalid_input(part.path().string() + ": cannot write");
  EvpCtx sha = new_sha256();
  if (!sha) return internal_error("OpenSSL: EVP_MD_CTX_new failed");
  std::uint32_t crc = 0;
  std::uint64_t received = 0;
  int status = 0;
  std::optional<std::uint64_t> content_length;
  bool write_failed = false;
  auto cli = make_client(url, options.timeout_s);
  auto res = cli->Get(
      url.path,
      [&](const httplib::Response& r) {
        status = r.status;
        if (r.has_header("Content-Length")) content_length = std::stoull(r.get_header_value("Content-Length"));
        return status == 200;  // anything else: stop without reading the body
      },
      [&](const char* data, std::size_t n) {
        if (std::fwrite(data, 1, n, out.get()) != n) {
          write_failed = true;
          return false;
        }
        EVP_DigestUpdate(sha.get(), data, n);
        crc = crc32_update(crc, data, n);
        received += n;
        return true;
      });
  const bool closed_ok = std::fclose(out.release()) == 0;
  const std::string what = "download of " + report.url + " failed: ";
  if (write_failed || !closed_ok) return invalid_input(what + "cannot write " + part.path().string());
  if (status != 0 && status != 200) return not_found(what + "HTTP " + std::to_string(status));
  if (!res) return not_found(what + error_text(res.error()));
  if (content_length && *content_length != received)
    return not_found(what + "truncated body: " + std::to_string(received) + " of " + std::to_string(*content_length) +
                     " bytes (Content-Length)");
  if (!crc_expected.empty()) {
    char got[9];
    std::snprintf(got, sizeof got, "%08x", crc);
    if (crc_expected != got)
      return invalid_input(report.url + ": hash mismatch: CRC32 " + got + ", " + hash_url + " says " + crc_expected);
  }
  report.sha256 = finish_sha256(sha.get());
  if (!entry.sha256.empty() && entry.sha256 != report.sha256)
    return invalid_input(report.url + ": hash mismatch: sha256 " + report.sha256 + ", pinned " + entry.sha256);
  if (entry.sha256.empty())
    report.notes.push_back("no pinned sha256 in the registry: could not verify against one; recorded " +
                           report.sha256 + " in " + entry.file + ".sha256");
  if (Status s = check_model_contract(entry, part.path().string(), report.url); !s.is_ok()) return s;

  const fs::path final_path = fs::path(options.models_dir) / entry.file;
  fs::rename(part.path(), final_path, ec);
  if (ec) return invalid_input("cannot move the download to " + final_path.string() + ": " + ec.message());
  part.release();
  {
    std::ofstream side(final_path.string() + ".sha256", std::ios::trunc);
    side << report.sha256 << "  " << entry.file << "\n";
    if (!side) report.notes.push_back("could not write " + final_path.string() + ".sha256");
  }
  report.path = final_path.string();
  return report;
}

}  // namespace fswap
