#include "cli/models_command.h"

#include <cstdio>
#include <cstdlib>

#include "runtime/engines/model_registry.h"

namespace fswap {
namespace {

Result<std::vector<const ModelEntry*>> select(const ModelRegistry& reg, const std::vector<std::string>& names) {
  std::vector<const ModelEntry*> out;
  if (names.empty()) {
    for (const auto& m : reg.models) out.push_back(&m);
    return out;
  }
  for (const auto& n : names) {
    const ModelEntry* e = reg.find(n);
    if (!e) return invalid_input("unknown model '" + n + "' (fswap models list shows the known ones)");
    out.push_back(e);
  }
  return out;
}

// hash: "pinned" when the registry holds the file's sha256, else "unverified" (no published
// hash to check against; a fetched file is then "verified" only against the sha256 fetch recorded).
Status run_list(const ModelRegistry& reg, const ModelsCommandOptions& o) {
  std::printf("models dir: %s\n", o.models_dir.c_str());
  std::printf("%-24s %-10s %-10s %-9s %-64s %-48s %s\n", "name", "state", "hash", "supported", "role", "licence",
              "source");
  for (const auto& m : reg.models) {
    const ModelCheck c = check_model(m, o.models_dir);
    std::string source = m.source;
    if (!m.url.empty()) source += m.url_verified ? "" : " (URL pattern, not verified)";
    std::printf("%-24s %-10s %-10s %-9s %-64s %-48s %s\n", m.name.c_str(), model_state_name(c.state),
                m.sha256.empty() ? "unverified" : "pinned", m.supported ? "yes" : "no", m.role.c_str(),
                m.licence.c_str(), source.c_str());
  }
  return Status::ok();
}

Status run_fetch(const ModelRegistry& reg, const ModelsCommandOptions& o) {
  FSWAP_ASSIGN_OR_RETURN(auto entries, select(reg, o.names));
  FetchOptions fo;
  fo.models_dir = o.models_dir;
  fo.url_base = o.url_base;
  for (const ModelEntry* e : entries) {
    if (check_model(*e, o.models_dir).state == ModelState::kVerified) {
      std::printf("%s: already present and verified\n", e->name.c_str());
      continue;
    }
    FSWAP_ASSIGN_OR_RETURN(FetchReport r, fetch_model(*e, fo));
    for (const auto& note : r.notes) std::fprintf(stderr, "fswap: %s: %s\n", e->name.c_str(), note.c_str());
    std::printf("%s: fetched %s -> %s (sha256 %s)\n", e->name.c_str(), r.url.c_str(), r.path.c_str(), r.sha256.c_str());
  }
  return Status::ok();
}

// Named models must be present and match; without names, every present model is checked.
Status run_verify(const ModelRegistry& reg, const ModelsCommandOptions& o) {
  FSWAP_ASSIGN_OR_RETURN(auto entries, select(reg, o.names));
  std::string failed;
  for (const ModelEntry* e : entries) {
    const ModelCheck c = check_model(*e, o.models_dir);
    if (c.state == ModelState::kMissing && o.names.empty()) continue;
    std::printf("%-20s %-10s %s\n", e->name.c_str(), model_state_name(c.state), c.detail.c_str());
    if (c.state == ModelState::kMissing || c.state == ModelState::kMismatched)
      failed += (failed.empty() ? "" : ", ") + e->name + " " + model_state_name(c.state);
  }
  if (!failed.empty()) return invalid_input("models verify: " + failed + " (in " + o.models_dir + ")");
  return Status::ok();
}

}  // namespace

void ModelsCommand::add_to(CLI::App& app) {
  options.registry = FSWAP_MODEL_REGISTRY;
  options.models_dir = FSWAP_DEFAULT_MODELS_DIR;
  if (const char* base = std::getenv("FSWAP_MODELS_URL_BASE")) options.url_base = base;

  models = app.add_subcommand("models", "The models fswap knows: list, fetch FaceFusion's files, verify");
  models->require_subcommand(1);
  list = models->add_subcommand("list", "Every known model: state in --models-dir, supported, licence, source");
  fetch = models->add_subcommand("fetch", "Download FaceFusion's model files, checking hashes and the contract");
  fetch->add_option("names", options.names, "Model names (fswap models list)")->required();
  fetch->add_option("--url-base", options.url_base,
                    "Folder URL to download from instead of FaceFusion's release (env FSWAP_MODELS_URL_BASE)");
  verify = models->add_subcommand("verify", "Check hashes and inputs/outputs of present (or the named) models");
  verify->add_option("names", options.names, "Model names; all present ones when none");
  for (CLI::App* sub : {list, fetch, verify}) {
    sub->add_option("--models-dir", options.models_dir, "Folder holding the model files")->capture_default_str();
    sub->add_option("--registry", options.registry, "Model registry JSON")->capture_default_str();
  }
}

Status ModelsCommand::run_selected() const {
  FSWAP_ASSIGN_OR_RETURN(ModelRegistry reg, load_model_registry(options.registry));
  if (*list) return run_list(reg, options);
  if (*fetch) return run_fetch(reg, options);
  if (*verify) return run_verify(reg, options);
  return invalid_input("fswap models: choose list, fetch or verify");
}

}  // namespace fswap
