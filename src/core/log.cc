#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace fswap {
namespace {
std::atomic<LogLevel> g_level{LogLevel::kWarn};
std::mutex g_mutex;
const char* prefix(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warning";
    case LogLevel::kError: return "error";
    case LogLevel::kSilent: break;
  }
  return "";
}
}  // namespace

void set_log_level(LogLevel level) { g_level = level; }
LogLevel log_level() { return g_level; }

void log_message(LogLevel level, const std::string& message) {
  if (level < g_level.load() || level == LogLevel::kSilent) return;
  std::lock_guard lock(g_mutex);
  std::fprintf(stderr, "fswap: %s: %s\n", prefix(level), message.c_str());
}

}  // namespace fswap
