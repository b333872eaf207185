// fswap's public C++ entry point: run a face swap job from a program.
//
//   #include <fswap/fswap.h>
//   fswap::SwapJob job;
//   job.sources = {"face.jpg"};
//   job.target = "clip.mp4";
//   job.output = "out.mp4";
//   job.analyser.models_dir = "/path/to/models";
//   fswap::Result<fswap::SwapSummary> summary = fswap::run_swap(job);
//   if (!summary) std::cerr << summary.status().to_string();
//
// Link the CMake target fswap::pipeline. Errors come back as Status values, never exceptions.
#pragma once

#include "pipeline/swap_job.h"

namespace fswap {

// "MAJOR.MINOR.PATCH" of this build.
const char* version();

}  // namespace fswap
