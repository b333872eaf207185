#include "backends/cuda/conv_algo_cache.h"

#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <fstream>
#include <limits>
#include <system_error>
#include <vector>

#include "core/log.h"

namespace fswap::cuda {
namespace {

constexpr std::string_view kHeader = "# fswap cudnn conv algorithms v6";
constexpr std::string_view kForwardName = "fwd";
constexpr std::string_view kBackwardDataName = "bwd_data";
constexpr std::string_view kNchwName = "nchw";
constexpr std::string_view kNhwcName = "nhwc";

std::string current_device_name() {
  int device = 0;
  cudaDeviceProp prop{};
  if (cudaGetDevice(&device) != cudaSuccess || cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
    (void)cudaGetLastError();
    return "unknown_device";
  }
  return prop.name;
}

std::string dims_text(const std::array<std::int64_t, 3>& dims, int rank) {
  std::string text;
  for (int i = 0; i < rank; ++i) {
    if (i > 0) text += 'x';
    text += std::to_string(dims[static_cast<std::size_t>(i)]);
  }
  return text;
}

std::optional<std::int64_t> parse_count(std::string_view text) {
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < 0) return std::nullopt;
  return value;
}

// "8x8" → {8, 8, 0}, returning the count of dims; 0 when malformed or not 2-3 dims.
int parse_dims(std::string_view text, std::array<std::int64_t, 3>& dims) {
  int rank = 0;
  while (true) {
    const std::size_t cut = text.find('x');
    const std::optional<std::int64_t> value = parse_count(text.substr(0, cut));
    if (!value || rank == 3) return 0;
    dims[static_cast<std::size_t>(rank++)] = *value;
    if (cut == std::string_view::npos) break;
    text.remove_prefix(cut + 1);
  }
  return rank >= 2 ? rank : 0;
}

std::string epilogue_text(const ConvEpilogue& e) {
  std::string text;
  const auto add = [&](const std::string& part) { text += (text.empty() ? "" : "+") + part; };
  if (e.bias) add("bias");
  if (e.residual) add("residual");
  if (e.act == ConvEpilogue::Act::kRelu) add("relu");
  if (e.act == ConvEpilogue::Act::kLeakyRelu) {
    char slope[32];
    std::snprintf(slope, sizeof slope, "leaky@%.9g", e.slope);
    add(slope);
  }
  return text.empty() ? "-" : text;
}

// epilogue_text's inverse; nullopt when malformed.
std::optional<ConvEpilogue> parse_epilogue(std::string_view text) {
  ConvEpilogue e;
  if (text == "-") return e;
  while (true) {
    const std::size_t cut = text.find('+');
    const std::string_view part = text.substr(0, cut);
    if (part == "bias" && !e.bias) {
      e.bias = true;
    } else if (part == "residual" && !e.residual) {
      e.residual = true;
    } else if (part == "relu" && e.act == ConvEpilogue::Act::kNone) {
      e.act = ConvEpilogue::Act::kRelu;
    } else if (part.starts_with("leaky@") && e.act == ConvEpilogue::Act::kNone) {
      const std::string_view v = part.substr(6);
      const auto [end, error] = std::from_chars(v.data(), v.data() + v.size(), e.slope);
      if (error != std::errc() || end != v.data() + v.size()) return std::nullopt;
      e.act = ConvEpilogue::Act::kLeakyRelu;
    } else {
      return std::nullopt;
    }
    if (cut == std::string_view::npos) return e;
    text.remove_prefix(cut + 1);
  }
}

// "3.1,5.-1" → {{3, 1}, {5, -1}}; "-" → none. False when malformed.
bool parse_knobs(std::string_view text, std::vector<std::pair<int, std::int64_t>>& knobs) {
  if (text == "-") return true;
  while (true) {
    const std::size_t cut = text.find(',');
    const std::string_view pair = text.substr(0, cut);
    const std::size_t dot = pair.find('.');
    if (dot == std::string_view::npos) return false;
    const std::optional<std::int64_t> type = parse_count(pair.substr(0, dot));
    std::int64_t value = 0;
    const std::string_view v = pair.substr(dot + 1);
    const auto [end, error] = std::from_chars(v.data(), v.data() + v.size(), value);
    if (!type || *type > std::numeric_limits<int>::max() || error != std::errc() || end != v.data() + v.size())
      return false;
    knobs.emplace_back(static_cast<int>(*type), value);
    if (cut == std::string_view::npos) return true;
    text.remove_prefix(cut + 1);
  }
}

std::vector<std::string_view> split_spaces(std::string_view line) {
  std::vector<std::string_view> tokens;
  while (!line.empty()) {
    const std::size_t cut = line.find(' ');
    if (cut != 0) tokens.push_back(line.substr(0, cut));
    if (cut == std::string_view::npos) break;
    line.remove_prefix(cut + 1);
  }
  return tokens;
}

std::string sanitised(std::string_view name) {
  std::string out(name);
  for (char& c : out) {
    const bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                      c == '_' || c == '-';
    if (!keep) c = '_';
  }
  return out;
}

}  // namespace

std::string to_string(const ConvProblem& p) {
  const int r = p.spatial_rank;
  return std::string(p.direction == ConvDirection::kForward ? kForwardName : kBackwardDataName) + " " +
         dtype_name(p.dtype) + " layout=" + std::string(p.layout == ConvLayout::kNhwc ? kNhwcName : kNchwName) +
         " math=" + std::to_string(p.math) + " n=" + std::to_string(p.batch) +
         " c=" + std::to_string(p.channels) + " in=" + dims_text(p.input, r) +
         " k=" + std::to_string(p.out_channels) + " kernel=" + dims_text(p.kernel, r) +
         " pad=" + dims_text(p.pad, r) + " stride=" + dims_text(p.stride, r) +
         " dilation=" + dims_text(p.dilation, r) + " groups=" + std::to_string(p.groups) +
         " epilogue=" + epilogue_text(p.epilogue);
}

std::string format_conv_entry(const ConvProblem& problem, const ConvAlgoChoice& choice) {
  std::string engine = "-", knobs;
  if (choice.engine.index >= 0) engine = std::to_string(choice.engine.index);
  for (const auto& [type, value] : choice.engine.knobs) {
    if (!knobs.empty()) knobs += ',';
    knobs += std::to_string(type) + '.' + std::to_string(value);
  }
  return to_string(problem) + " algo=" + std::to_string(choice.algo) + " algo_math=" + std::to_string(choice.math) +
         " workspace=" + std::to_string(choice.workspace_bytes) + " engine=" + engine +
         " knobs=" + (knobs.empty() ? "-" : knobs) + " fused=" + (choice.fused ? "1" : "0");
}

std::optional<std::pair<ConvProblem, ConvAlgoChoice>> parse_conv_entry(std::string_view line) {
  const std::vector<std::string_view> tokens = split_spaces(line);
  if (tokens.size() < 2) return std::nullopt;
  ConvProblem p;
  if (tokens[0] != kForwardName && tokens[0] != kBackwardDataName) return std::nullopt;
  p.direction = tokens[0] == kForwardName ? ConvDirection::kForward : ConvDirection::kBackwardData;
  const std::string_view f32 = dtype_name(DType::kFloat32), f16 = dtype_name(DType::kFloat16);
  if (tokens[1] != f32 && tokens[1] != f16) return std::nullopt;
  p.dtype = tokens[1] == f32 ? DType::kFloat32 : DType::kFloat16;

  std::int64_t math = 0, algo = 0, algo_math = 0, workspace = 0;
  struct Scalar {
    std::string_view name;
    std::int64_t* value;
  };
  struct Dims {
    std::string_view name;
    std::array<std::int64_t, 3>* value;
  };
  const Scalar scalars[] = {{"math", &math},       {"n", &p.batch},      {"c", &p.channels},
                            {"k", &p.out_channels}, {"groups", &p.groups}, {"algo", &algo},
                            {"algo_math", &algo_math}, {"workspace", &workspace}};
  const Dims dims[] = {
      {"in", &p.input}, {"kernel", &p.kernel}, {"pad", &p.pad}, {"stride", &p.stride}, {"dilation", &p.dilation}};
  constexpr std::size_t kFields = std::size(scalars) + std::size(dims) + 5;  // + layout, engine, knobs, epilogue, fused
  const std::size_t kLayout = kFields - 5, kEngine = kFields - 4, kKnobs = kFields - 3, kEpilogue = kFields - 2,
                    kFused = kFields - 1;
  GraphEngine engine;
  bool fused = false;
  if (tokens.size() != 2 + kFields) return std::nullopt;
  std::vector<bool> seen(kFields, false);
  int rank = 0;
  for (std::size_t t = 2; t < tokens.size(); ++t) {
    const std::size_t eq = tokens[t].find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    const std::string_view name = tokens[t].substr(0, eq), value = tokens[t].substr(eq + 1);
    if (name == "layout") {
      if (seen[kLayout] || (value != kNchwName && value != kNhwcName)) return std::nullopt;
      p.layout = value == kNhwcName ? ConvLayout::kNhwc : ConvLayout::kNchw;
      seen[kLayout] = true;
      continue;
    }
    if (name == "engine") {
      const std::optional<std::int64_t> index = value == "-" ? std::optional<std::int64_t>(-1) : parse_count(value);
      if (seen[kEngine] || !index) return std::nullopt;
      engine.index = *index;
      seen[kEngine] = true;
      continue;
    }
    if (name == "knobs") {
      if (seen[kKnobs] || !parse_knobs(value, engine.knobs)) return std::nullopt;
      seen[kKnobs] = true;
      continue;
    }
    if (name == "epilogue") {
      const std::optional<ConvEpilogue> e = parse_epilogue(value);
      if (seen[kEpilogue] || !e) return std::nullopt;
      p.epilogue = *e;
      seen[kEpilogue] = true;
      continue;
    }
    if (name == "fused") {
      if (seen[kFused] || (value != "0" && value != "1")) return std::nullopt;
      fused = value == "1";
      seen[kFused] = true;
      continue;
    }
    bool known = false;
    for (std::size_t i = 0; i < std::size(scalars) && !known; ++i) {
      if (scalars[i].name != name) continue;
      const std::optional<std::int64_t> v = parse_count(value);
      if (!v || seen[i]) return std::nullopt;
      *scalars[i].value = *v;
      seen[i] = known = true;
    }
    for (std::size_t i = 0; i < std::size(dims) && !known; ++i) {
      if (dims[i].name != name) continue;
      const std::size_t slot = std::size(scalars) + i;
      const int r = parse_dims(value, *dims[i].value);
      if (r == 0 || (rank != 0 && r != rank) || seen[slot]) return std::nullopt;
      rank = r;
      seen[slot] = known = true;
    }
    if (!known) return std::nullopt;
  }
  constexpr std::int64_t kIntMax = std::numeric_limits<int>::max();
  if (math > kIntMax || algo > kIntMax || algo_math > kIntMax) return std::nullopt;
  if (p.layout == ConvLayout::kNhwc && rank != 2) return std::nullopt;
  p.math = static_cast<int>(math);
  p.spatial_rank = rank;
  if (engine.index < 0 && (!engine.knobs.empty() || fused)) return std::nullopt;
  if (fused && p.epilogue.empty()) return std::nullopt;
  const ConvAlgoChoice choice{static_cast<int>(algo), static_cast<int>(algo_math), static_cast<std::size_t>(workspace),
                              std::move(engine), fused};
  return std::make_pair(p, choice);
}

ConvAlgoCache::ConvAlgoCache(const std::filesystem::path& directory)
    : ConvAlgoCache(directory, directory.empty() ? std::string() : current_device_name(),
                    directory.empty() ? 0 : cudnnGetVersion()) {}

ConvAlgoCache::ConvAlgoCache(const std::filesystem::path& directory, std::string_view device_name,
                             std::size_t cudnn_version) {
  if (directory.empty()) return;
  file_ = directory / file_name(device_name, cudnn_version);
  load();
}

std::string ConvAlgoCache::file_name(std::string_view device_name, std::size_t cudnn_version) {
  return "conv_algos-" + sanitised(device_name) + "-cudnn" + std::to_string(cudnn_version) + ".txt";
}

std::optional<ConvAlgoChoice> ConvAlgoCache::find(const ConvProblem& problem) {
  const auto it = entries_.find(problem);
  if (it == entries_.end()) return std::nullopt;
  ++hits_;
  return it->second;
}

void ConvAlgoCache::insert(const ConvProblem& problem, const ConvAlgoChoice& choice) {
  entries_[problem] = choice;
  ++searches_;
  save();
}

void ConvAlgoCache::load() {
  std::error_code error;
  if (!std::filesystem::exists(file_, error)) return;
  const std::string ignored = "; ignoring it (it is rewritten after the next algorithm search)";
  std::ifstream in(file_);
  std::string line;
  if (!in || !std::getline(in, line)) {
    log_warn("cuDNN algorithm cache " + file_.string() + " cannot be read" + ignored);
    return;
  }
  if (line != kHeader) {
    log_warn("cuDNN algorithm cache " + file_.string() + " does not start with \"" + std::string(kHeader) + "\"" +
             ignored);
    return;
  }
  std::map<ConvProblem, ConvAlgoChoice> loaded;
  for (int number = 2; std::getline(in, line); ++number) {
    if (line.empty() || line.front() == '#') continue;
    const auto entry = parse_conv_entry(line);
    if (!entry) {
      log_warn("cuDNN algorithm cache " + file_.string() + ": line " + std::to_string(number) +
               " is not an entry" + ignored);
      return;
    }
    loaded[entry->first] = entry->second;
  }
  if (in.bad()) {
    log_warn("cuDNN algorithm cache " + file_.string() + " cannot be read" + ignored);
    return;
  }
  entries_ = std::move(loaded);
}

void ConvAlgoCache::save() {
  if (file_.empty()) return;
  std::error_code error;
  std::filesystem::create_directories(file_.parent_path(), error);
  const std::filesystem::path temp = file_.string() + ".tmp." + std::to_string(::getpid());
  bool written = false;
  {
    std::ofstream out(temp, std::ios::trunc);
    out << kHeader << '\n';
    for (const auto& [problem, choice] : entries_) out << format_conv_entry(problem, choice) << '\n';
    out.flush();
    written = out.good();
  }
  if (written) std::filesystem::rename(temp, file_, error);
  if (written && !error) return;
  std::filesystem::remove(temp, error);
  if (save_warned_) return;
  save_warned_ = true;
  log_warn("cuDNN algorithm cache " + file_.string() +
           " cannot be written; algorithm choices are kept in memory for this run only");
}

}  // namespace fswap::cuda
