// Name lookups over a family's model table (FaceFusion's swappers, face enhancers, frame
// enhancers): a vector of entries that each have a `name`.
//
//   static const std::vector<std::string> names = model_table_names(model_table());
//   FSWAP_ASSIGN_OR_RETURN(auto info, find_in_model_table(model_table(), name, "face enhancer"));
#pragma once

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

}  // namespace fswap
