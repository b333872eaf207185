// `fswap model inspect|run|compare|bench`: the model tools users of ONNX engines expect (like
// trtexec or onnxruntime_perf_test). Each returns a Status; main.cc turns it into the exit code.
//
//   fswap model bench fr_detect.onnx --engine native --device cuda --precision fp16 --vram-budget 512MiB
//   fswap model compare fr_detect.onnx --engines native:cuda,native:cpu --precision fp16
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "cli/session_flags.h"
#include "core/status.h"

namespace fswap {

struct ModelCommandOptions {
  std::string model;
  std::string engine = "native";  // run, bench: native or ort
  std::string device = "cpu";     // run, bench: cpu, cuda, cuda:N
  // compare: two ENGINE[:DEVICE] entries ("native:cuda", "ort:cpu", "native:cuda:1"); a bare
  // engine runs on the CPU.
  std::vector<std::string> engines = {"native", "ort"};
  std::vector<std::string> inputs;        // NAME=FILE.npy
  std::vector<std::string> input_shapes;  // NAME=D0xD1x... for random inputs
  std::string output_dir;
  // run, bench: applied as given (fp16 on the CPU is an error). compare: fp16, the budget and
  // unified memory apply to the sides that can use them (the native engine on CUDA); the other
  // sides run in fp32 with the explicit CPU memory, and the output says so.
  SessionFlags session;
  std::int64_t batch = 1;
  std::uint64_t seed = 1;
  int runs = 10;   // timed runs (compare: per engine)
  int warmup = 3;  // bench: untimed runs first
  int threads = 0;
};

// Adds `model` with its four subcommands to app; `run_selected` then runs the chosen one.
struct ModelCommands {
  CLI::App* model = nullptr;
  CLI::App* inspect = nullptr;
  CLI::App* run = nullptr;
  CLI::App* compare = nullptr;
  CLI::App* bench = nullptr;
  ModelCommandOptions options;

  void add_to(CLI::App& app);
  Status run_selected() const;
};

}  // namespace fswap
