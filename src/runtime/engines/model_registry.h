// The model registry: which model files fswap knows (models/facefusion_models.json), whether
// each is missing, present, verified or mismatched in a models folder, and downloading
// FaceFusion's public assets with hash checks.
//
//   FSWAP_ASSIGN_OR_RETURN(ModelRegistry reg, load_model_registry("models/facefusion_models.json"));
//   const ModelEntry* arcface = reg.find("arcface_w600k_r50");
//   ModelCheck c = check_model(*arcface, models_dir);           // c.state, c.detail
//   FetchOptions fo{.models_dir = models_dir};                   // url_base: "" = the entry's URL
//   FSWAP_ASSIGN_OR_RETURN(FetchReport r, fetch_model(*arcface, fo));
//
// Contracts:
// - verified = the file's sha256 equals the pinned sha256 (or, with none pinned, the
//   `<file>.sha256` sidecar written by fetch_model) AND its inputs/outputs match the contract;
// - present = the file exists, the contract matches, but there is no hash to compare with;
// - mismatched = the hash differs, or an input/output differs (detail names which);
// - fetch_model streams to `<models_dir>/.<file>.part-<pid>`, checks FaceFusion's CRC32 `.hash`
//   (when the server has one), the pinned sha256 and the contract, then renames into place.
//   On any failure the partial file is removed and the Status (kNotFound: download failed;
//   kInvalidInput: hash or contract mismatch) names the URL and the reason.
// Thread-safety: free functions without shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace fswap {

// One tensor of a model's contract. Empty name: any name. No shape: not checked; -1 dims: any size.
struct TensorContract {
  std::string name;
  std::optional<std::vector<std::int64_t>> shape;
};

// Inputs are matched by name; outputs by position (FaceFusion reads run(None, ...)[i]).
struct ModelContract {
  std::vector<TensorContract> inputs;
  std::vector<TensorContract> outputs;
};

struct ModelEntry {
  std::string name;     // e.g. "arcface_w600k_r50"
  std::string file;     // file name in the models folder, e.g. "arcface_w600k_r50.onnx"
  std::string role;
  std::string licence;
  std::string source;   // where it comes from, for people
  std::string url;      // download URL; empty when fetched by scripts/setup.sh instead
  bool url_verified = false;  // false: the documented pattern, not checked from this machine
  std::string sha256;   // pinned lower-case hex; empty when unknown
  bool supported = false;     // fswap runs it today
  std::string used_by;        // the option (or "default") that needs the file, for people
  std::optional<ModelContract> contract;
};

struct ModelRegistry {
  std::string url_base;  // FaceFusion's release URL base (default for --url-base)
  std::vector<ModelEntry> models;
  const ModelEntry* find(const std::string& name) const;
};

// kNotFound when the file is missing, kInvalidInput naming the field when the JSON is wrong.
Result<ModelRegistry> load_model_registry(const std::string& path);
// The same from the JSON text itself (a copy compiled into the binary); `origin` names it in errors.
Result<ModelRegistry> parse_model_registry(const std::string& text, const std::string& origin);

enum class ModelState { kMissing, kPresent, kVerified, kMismatched };
const char* model_state_name(ModelState s);  // "missing", "present", "verified", "mismatched"

struct ModelCheck {
  ModelState state = ModelState::kMissing;
  std::string detail;  // why (which hash, which input/output), empty when verified
};

// Hashes the file and loads it with load_onnx to compare with the contract.
ModelCheck check_model(const ModelEntry& entry, const std::string& models_dir);

// Ok when `path`'s inputs/outputs match entry.contract (or it has none); otherwise
// kInvalidInput "<label or path> does not match the <name> contract: input 'x' has shape [..],
// the contract says [..]; ...".
Status check_model_contract(const ModelEntry& entry, const std::string& path, const std::string& label = "");

struct FetchOptions {
  std::string models_dir;
  std::string url_base;  // overrides the folder of entry.url: URL = url_base + "/" + entry.file
  int timeout_s = 60;    // connect and read timeouts
};

struct FetchReport {
  std::string path;    // the installed file
  std::string url;
  std::string sha256;  // computed
  std::vector<std::string> notes;  // what could not be checked (no pinned sha256, no .hash)
};

Result<FetchReport> fetch_model(const ModelEntry& entry, const FetchOptions& options);

// Lower-case hex sha256 of a file's bytes; kNotFound / kInternal on read errors.
Result<std::string> sha256_file(const std::string& path);
// zlib's CRC-32 (what FaceFusion's .hash files hold, as 8 lower-case hex digits).
std::uint32_t crc32_update(std::uint32_t crc, const void* data, std::size_t n);

}  // namespace fswap
