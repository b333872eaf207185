#include "cli/progress.h"

#include <cmath>
#include <cstdio>
#include <string>

namespace fswap {

std::string format_duration(double seconds) {
  const long s = std::lround(std::max(0.0, seconds));
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

void ProgressPrinter::update(const SwapProgress& p) {
  const bool last = p.frames_done >= p.frames_total;
  // A terminal redraws at most 10 times a second; a log gets a line every 2 s.
  const double interval = terminal_ ? 0.1 : 2.0;
  if (!last && last_print_s_ >= 0 && p.elapsed_s - last_print_s_ < interval) return;
  last_print_s_ = p.elapsed_s;
  const double fraction = p.frames_total > 0 ? static_cast<double>(p.frames_done) / p.frames_total : 0;
  if (terminal_) {
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(fraction * kWidth);
    std::string bar(filled, '#');
    bar.resize(kWidth, '.');
    std::fprintf(stderr, "\r[%s] %3d%% %lld/%lld frames  %.1f fps  ETA %s ", bar.c_str(),
                 static_cast<int>(fraction * 100), static_cast<long long>(p.frames_done),
                 static_cast<long long>(p.frames_total), p.fps(), format_duration(p.eta_s()).c_str());
    drawn_ = true;
  } else {
    std::fprintf(stderr, "progress: %lld/%lld frames (%d%%), %.1f fps, ETA %s\n", static_cast<long long>(p.frames_done),
                 static_cast<long long>(p.frames_total), static_cast<int>(fraction * 100), p.fps(),
                 format_duration(p.eta_s()).c_str());
  }
}

void ProgressPrinter::finish() {
  if (drawn_) std::fprintf(stderr, "\n");
  drawn_ = false;
}

}  // namespace fswap
