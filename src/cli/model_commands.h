// `fswap model inspect|run|compare`: the model tools users of ONNX engines expect (like trtexec
// or onnxruntime_perf_test). Each returns a Status; main.cc turns it into the exit code.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"

namespace fswap {

struct ModelCommandOptions {
  std::string model;
  std::string engine = "native";                      // run
  std::vector<std::string> engines = {"native", "ort"};  // compare
  std::vector<std::string> inputs;                    // NAME=FILE.npy
  std::vector<std::string> input_shapes;              // NAME=D0xD1x... for random inputs
  std::string output_dir;
  std::string precision = "fp32";
  std::int64_t batch = 1;
  std::uint64_t seed = 1;
  int runs = 10;
  int threads = 0;
};

// Adds `model` with its three subcommands to app; `run_selected` then runs the chosen one.
struct ModelCommands {
  CLI::App* model = nullptr;
  CLI::App* inspect = nullptr;
  CLI::App* run = nullptr;
  CLI::App* compare = nullptr;
  ModelCommandOptions options;

  void add_to(CLI::App& app);
  Status run_selected() const;
};

}  // namespace fswap
