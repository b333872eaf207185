// The engine-session flags that swap, bench and `fswap model run|compare|bench` share:
// --precision, --vram-budget, --memory-mode, --layout, parsed into SessionOptions (runtime/engine.h).
//
//   SessionFlags flags;
//   flags.add_to(*sub);                                   // before parsing
//   SessionOptions so;  so.device = device;
//   FSWAP_RETURN_IF_ERROR(flags.apply(so));               // after parsing
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "core/status.h"
#include "runtime/engine.h"

namespace fswap {

struct SessionFlags {
  std::string precision = "auto";        // auto (the engine's default: native fp16 on CUDA, else fp32), fp32, fp16
  std::string vram_budget;               // memory/budget.h syntax; "" = free memory minus a margin
  std::string memory_mode = "explicit";  // explicit or unified
  std::string layout = "auto";           // auto, nchw or nhwc

  // Adds --precision, --vram-budget, --memory-mode and --layout to app.
  void add_to(CLI::App& app);
  // Parses the flags into options, whose device is already set. Errors (kInvalidInput, each
  // naming its flag): unknown values, a malformed budget (checked on any device, so a typo is
  // caught before a GPU run), fp16 or unified memory on the CPU. The budget and the memory mode
  // only act on CUDA devices.
  Status apply(SessionOptions& options) const;
};

// --device: one device (runtime/engine.h's parse_device: cpu, cuda, cuda:N) or a comma-separated
// list to split a video over (SwapJob::devices). An entry that is a bare index N continues the
// previous entry's kind: "cuda:0,1" = cuda:0 and cuda:1; "cpu,cpu" = the CPU twice (two parts,
// each its own sessions). Errors (kInvalidInput) name the entry; a list is never empty.
Result<std::vector<Device>> parse_device_list(const std::string& text);

// "fp16", "fp32", or for kDefault what it means on that engine and device ("auto = fp16").
std::string describe_precision(Precision precision, const std::string& engine, const Device& device);

}  // namespace fswap
