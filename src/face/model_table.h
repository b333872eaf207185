// FaceFusion's model files: name lookups over a family's model table (swappers, face enhancers,
// frame enhancers: a vector of entries that each have a `name`), and the one check that a model
// file is there.
//
//   static const std::vector<std::string> names = model_table_names(model_table());
//   FSWAP_ASSIGN_OR_RETURN(auto info, find_in_model_table(model_table(), name, "face enhancer"));
//   FSWAP_RETURN_IF_ERROR(require_model_file(dir + "/gfpgan_1.4.onnx", "--face-enhancer-model gfpgan_1.4"));
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/status.h"

namespace fswap {

// The entries' names, in table order.
template <class Entry>
std::vector<std::string> model_table_names(const std::vector<Entry>& table) {
  std::vector<std::string> names;
  for (const Entry& e : table) names.push_back(e.name);
  return names;
}

// The entry called `name`; kInvalidInput naming the family and listing the known names otherwise.
template <class Entry>
Result<Entry> find_in_model_table(const std::vector<Entry>& table, const std::string& name, const std::string& family) {
  std::string known;
  for (const Entry& e : table) {
    if (e.name == name) return e;
    known += (known.empty() ? "" : ", ") + e.name;
  }
  return invalid_input("unknown " + family + " model '" + name + "' (" + known + ")");
}

// kNotFound when `path` does not exist: "<path>: no such file; <needed_by> needs FaceFusion's
// <file name> in --models-dir" (needed_by: the option, or what the file is for).
inline Status require_model_file(const std::string& path, const std::string& needed_by) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) return Status::ok();
  return not_found(path + ": no such file; " + needed_by + " needs FaceFusion's " +
                   std::filesystem::path(path).filename().string() + " in --models-dir");
}

}  // namespace fswap
