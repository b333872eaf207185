// TimeLedger: wall time accumulated per named stage (decode, detect, swap, ...), for the end
// summary and `fswap bench`.
//
//   TimeLedger ledger;
//   { ScopedTimer t(&ledger, "detect"); run_detector(); }
//   for (auto& [stage, seconds, calls] : ledger.entries()) ...
//
// Thread-safe. A null ledger makes ScopedTimer a no-op.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

namespace fswap {

class TimeLedger {
 public:
  struct Entry {
    std::string stage;
    double seconds = 0;
    long calls = 0;
  };
  void add(const std::string& stage, double seconds);
  // In first-seen order.
  std::vector<Entry> entries() const;
  double seconds(const std::string& stage) const;

 private:
  mutable std::mutex mutex_;
  std::vector<Entry> entries_;
};

class ScopedTimer {
 public:
  ScopedTimer(TimeLedger* ledger, const char* stage)
      : ledger_(ledger), stage_(stage), start_(std::chrono::steady_clock::now()) {}
  ~ScopedTimer() {
    if (ledger_)
      ledger_->add(stage_, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }
  ScopedTimer(const ScopedTimer&) = delete;
  ScopedTimer& operator=(const ScopedTimer&) = delete;

 private:
  TimeLedger* ledger_;
  const char* stage_;
  std::chrono::steady_clock::time_point start_;
};

// Adds the wall seconds of its scope to a counter (a statistic kept outside a ledger).
class ScopedSeconds {
 public:
  explicit ScopedSeconds(double& seconds) : seconds_(seconds), start_(std::chrono::steady_clock::now()) {}
  ~ScopedSeconds() { seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }
  ScopedSeconds(const ScopedSeconds&) = delete;
  ScopedSeconds& operator=(const ScopedSeconds&) = delete;

 private:
  double& seconds_;
  std::chrono::steady_clock::time_point start_;
};

// Seconds since `start`.
double seconds_since(std::chrono::steady_clock::time_point start);
// "12.3 ms": the time since `start`, for log lines.
std::string ms_since(std::chrono::steady_clock::time_point start);

}  // namespace fswap
