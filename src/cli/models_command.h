// `fswap models list|fetch|verify`: the model registry (models/facefusion_models.json) seen
// from a models folder. list prints one row per model: name, state (missing, present, verified,
// mismatched), hash (pinned, or unverified when the registry has no sha256 for it), supported,
// role, licence, source. run_selected returns a Status; main.cc turns it into the exit code
// (2 for an unknown model, a missing or mismatched file, a failed download).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "core/status.h"

namespace fswap {

struct ModelsCommandOptions {
  std::string registry;    // default: FSWAP_MODEL_REGISTRY (the source tree's JSON)
  std::string models_dir;  // default: FSWAP_DEFAULT_MODELS_DIR
  std::string url_base;    // default: env FSWAP_MODELS_URL_BASE, else each entry's URL
  std::vector<std::string> names;
};

struct ModelsCommand {
  CLI::App* models = nullptr;
  CLI::App* list = nullptr;
  CLI::App* fetch = nullptr;
  CLI::App* verify = nullptr;
  ModelsCommandOptions options;

  void add_to(CLI::App& app);
  Status run_selected() const;
};

}  // namespace fswap
