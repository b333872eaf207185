// ConvAlgoCache: the cuDNN algorithm chosen for each convolution problem. The CUDA Conv kernels
// search a problem once with real timing (cudnnFind*AlgorithmEx, and for float16 forward problems
// the graph API's engine configurations: conv_graph.h), then reuse the answer; answers persist in
// a text file per GPU model and cuDNN version, so the next process starts warm.
//
//   ConvAlgoCache cache(std::filesystem::path(getenv("HOME")) / ".cache/fswap");  // loads the file if present
//   if (std::optional<ConvAlgoChoice> c = cache.find(problem)) run(*c);           // a hit
//   else cache.insert(problem, search(problem));                                   // a search; saved at once
//
// File: <directory>/conv_algos-<device name>-cudnn<version>.txt, e.g.
// conv_algos-NVIDIA_H100_80GB_HBM3-cudnn91400.txt (characters other than [A-Za-z0-9._-] become '_').
// Format, version 6: text, one entry a line, first line the header, other '#' lines and blank lines
// ignored; fields separated by single spaces, sizes 'x'-separated over the spatial dims (2 or 3):
//
//   # fswap cudnn conv algorithms v6
//   fwd float32 layout=nchw math=3 n=1 c=3 in=8x8 k=4 kernel=3x3 pad=1x1 stride=1x1 dilation=1x1 ...
//   ... groups=1 epilogue=- algo=1 algo_math=3 workspace=0 engine=- knobs=- fused=0   (one line)
//
//   direction  fwd (cudnnConvolutionForward, Conv) or bwd_data (cudnnConvolutionBackwardData, ConvTranspose)
//   dtype      float32 or float16: the tensors' type (compute is always float32)
//   layout     nchw or nhwc: the tensors' and the filter's memory layout (nhwc: channels_last nodes)
//   math       the cudnnMathType_t requested (0 default, 1 tensor op, 2 tensor op + conversion, 3 FMA)
//   n c in     batch, channels and spatial sizes of the forward convolution's input (bwd_data: of dx,
//              ConvTranspose's output); a 1-D convolution is 2-D with height 1
//   k          output channels of the forward convolution (bwd_data: dy's, ConvTranspose's input)
//   kernel pad stride dilation   per spatial dim; pads are symmetric (cuDNN's)
//   groups     the group count
//   epilogue   '-', or what follows the convolution joined by '+': bias, residual, relu, leaky@<slope>
//   algo       the chosen cudnnConvolutionFwdAlgo_t or cudnnConvolutionBwdDataAlgo_t
//   algo_math  the cudnnMathType_t to run it with
//   workspace  the bytes of workspace it needs (the larger of the algorithm's and the engine's)
//   engine     the graph API engine's global index when an engine configuration was faster than every
//              legacy algorithm, else '-'
//   knobs      that configuration's knob choices as type.value pairs joined by ',' (e.g. 3.1,5.-1),
//              '-' for none
//   fused      1 when the engine's plan computes the epilogue too, else 0
//
// Failures never stop inference: an unreadable or corrupt file, or one of another version (v1 had
// no layout, v2 no engine, v3 no epilogue, v4 chose among fewer engine configurations, v5 ranked
// them by times that included the host's launch cost), is ignored with a warning (and rewritten
// at the next insert); a file that cannot be written leaves the cache in memory, with one
// warning. Saves write a temporary file and rename it over the old one, so a reader never sees
// half a file; two processes sharing the file keep whichever saved last.
// Thread-safety: none; one per device, used by that device's one worker thread (CudaContext).
// This header needs no CUDA headers: cuDNN enums travel as int.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace fswap::cuda {

enum class ConvDirection { kForward, kBackwardData };
// kNhwc: x, y [N, H, W, C] and the filter [K, kH, kW, C/groups] (cuDNN's NHWC; 2-D only).
enum class ConvLayout { kNchw, kNhwc };

// One convolution as cuDNN sees it (see the field list above). Entries past spatial_rank are 0.
// What may follow the convolution inside one cuDNN graph plan, in the CUDA epilogue's order:
// y = act(conv(x, w) + bias[k] + residual), act none, Relu or LeakyRelu (slope).
struct ConvEpilogue {
  bool bias = false;
  bool residual = false;
  enum class Act { kNone, kRelu, kLeakyRelu } act = Act::kNone;
  float slope = 0;  // kLeakyRelu's

  bool empty() const { return !bias && !residual && act == Act::kNone; }
  auto operator<=>(const ConvEpilogue&) const = default;
};

struct ConvProblem {
  ConvDirection direction = ConvDirection::kForward;
  DType dtype = DType::kFloat32;
  ConvLayout layout = ConvLayout::kNchw;
  int math = 0;                   // cudnnMathType_t
  int spatial_rank = 2;           // 2 or 3
  std::int64_t batch = 0, channels = 0, out_channels = 0, groups = 1;
  std::array<std::int64_t, 3> input{}, kernel{}, pad{}, stride{}, dilation{};
  // The node's epilogue when a graph plan may fuse it (float16 forward nodes whose activation the
  // graph API has: conv.cc); empty otherwise.
  ConvEpilogue epilogue;

  auto operator<=>(const ConvProblem&) const = default;
};

// An engine configuration of cuDNN's graph API: the engine's global index and its knob choices
// (cudnnBackendKnobType_t, value).
struct GraphEngine {
  std::int64_t index = -1;  // -1: none
  std::vector<std::pair<int, std::int64_t>> knobs;

  auto operator<=>(const GraphEngine&) const = default;
};

struct ConvAlgoChoice {
  int algo = 0;                       // cudnnConvolutionFwdAlgo_t or cudnnConvolutionBwdDataAlgo_t
  int math = 0;                       // cudnnMathType_t to set on the descriptor
  std::size_t workspace_bytes = 0;    // enough for the algorithm and the engine
  // When set (index ≥ 0) this configuration runs instead of the algorithm, whose choice stays for
  // operands the engine's plan cannot take (conv_graph.h: graph_aligned).
  GraphEngine engine;
  bool fused = false;  // the engine's plan computes the problem's epilogue too (no epilogue pass)

  bool operator==(const ConvAlgoChoice&) const = default;
};

// "fwd float32 layout=nchw math=3 n=1 c=3 in=8x8 k=4 kernel=3x3 pad=1x1 stride=1x1 dilation=1x1 groups=1"
std::string to_string(const ConvProblem& problem);
// One line of the file, without the newline: to_string(problem) + " algo=.. algo_math=.. workspace=..".
std::string format_conv_entry(const ConvProblem& problem, const ConvAlgoChoice& choice);
// The entry on `line`; nullopt unless the line is exactly what format_conv_entry writes (any field
// order), with known names, 2 or 3 spatial dims everywhere (2 for nhwc) and non-negative numbers.
std::optional<std::pair<ConvProblem, ConvAlgoChoice>> parse_conv_entry(std::string_view line);

class ConvAlgoCache {
 public:
  // The file of the current CUDA device's name and the loaded cuDNN's version in `directory`
  // (created at the first save); an empty `directory` keeps the cache in memory only.
  explicit ConvAlgoCache(const std::filesystem::path& directory);
  // Same with the name parts given (no GPU needed).
  ConvAlgoCache(const std::filesystem::path& directory, std::string_view device_name, std::size_t cudnn_version);
  ConvAlgoCache(const ConvAlgoCache&) = delete;
  ConvAlgoCache& operator=(const ConvAlgoCache&) = delete;

  // The stored choice; counts a hit when there is one.
  std::optional<ConvAlgoChoice> find(const ConvProblem& problem);
  // Stores the choice a search made (replacing any), counts the search and saves the file.
  void insert(const ConvProblem& problem, const ConvAlgoChoice& choice);

  std::size_t size() const { return entries_.size(); }
  std::uint64_t searches() const { return searches_; }  // insert() calls since construction
  std::uint64_t hits() const { return hits_; }          // successful find() calls since construction
  const std::filesystem::path& file() const { return file_; }  // empty: in memory only

  // "conv_algos-NVIDIA_H100_80GB_HBM3-cudnn91400.txt"
  static std::string file_name(std::string_view device_name, std::size_t cudnn_version);

 private:
  void load();
  void save();

  std::filesystem::path file_;
  std::map<ConvProblem, ConvAlgoChoice> entries_;
  std::uint64_t searches_ = 0, hits_ = 0;
  bool save_warned_ = false;
};

}  // namespace fswap::cuda
