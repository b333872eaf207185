// Progress reporting for the CLI: a redrawn bar on a terminal, plain lines otherwise.
//
//   ProgressPrinter printer(isatty(2));
//   run_swap(job, [&](const SwapProgress& p) { printer.update(p); });
//   printer.finish();
#pragma once

#include <chrono>

#include "pipeline/swap_job.h"

namespace fswap {

class ProgressPrinter {
 public:
  explicit ProgressPrinter(bool terminal) : terminal_(terminal) {}
  void update(const SwapProgress& progress);
  void finish();

 private:
  bool terminal_;
  bool drawn_ = false;
  double last_print_s_ = -1;
};

// "1:05" style durations.
std::string format_duration(double seconds);

}  // namespace fswap
