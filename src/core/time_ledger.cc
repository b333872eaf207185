#include "core/time_ledger.h"

#include <cstdio>

namespace fswap {

void TimeLedger::add(const std::string& stage, double seconds) {
  std::lock_guard lock(mutex_);
  for (auto& e : entries_) {
    if (e.stage == stage) {
      e.seconds += seconds;
      ++e.calls;
      return;
    }
  }
  entries_.push_back({stage, seconds, 1});
}

std::vector<TimeLedger::Entry> TimeLedger::entries() const {
  std::lock_guard lock(mutex_);
  return entries_;
}

double TimeLedger::seconds(const std::string& stage) const {
  std::lock_guard lock(mutex_);
  for (const auto& e : entries_)
    if (e.stage == stage) return e.seconds;
  return 0;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string ms_since(std::chrono::steady_clock::time_point start) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f ms", seconds_since(start) * 1e3);
  return text;
}

}  // namespace fswap
