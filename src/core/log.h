// Minimal leveled logging to stderr, shared by every layer.
//
//   log_info("loaded " + path);
//
// The level is process-wide (set_log_level; the CLI maps --log-level). Thread-safe.
#pragma once

#include <string>

namespace fswap {

enum class LogLevel { kDebug, kInfo, kWarn, kError, kSilent };

void set_log_level(LogLevel level);
LogLevel log_level();
void log_message(LogLevel level, const std::string& message);

inline void log_debug(const std::string& m) { log_message(LogLevel::kDebug, m); }
inline void log_info(const std::string& m) { log_message(LogLevel::kInfo, m); }
inline void log_warn(const std::string& m) { log_message(LogLevel::kWarn, m); }
inline void log_error(const std::string& m) { log_message(LogLevel::kError, m); }

}  // namespace fswap
