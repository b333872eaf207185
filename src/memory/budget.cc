#include "memory/budget.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace fswap::memory {

std::uint64_t default_margin_bytes(std::uint64_t total_bytes) {
  return std::max<std::uint64_t>(512ull << 20, total_bytes / 100 * 3);
}

std::string format_bytes(std::uint64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 5) v /= 1024.0, ++u;
  char buf[32];
  if (v >= 100 || v == std::floor(v)) std::snprintf(buf, sizeof buf, "%.0f %s", v, kUnits[u]);
  else if (v >= 10) std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
  else std::snprintf(buf, sizeof buf, "%.2f %s", v, kUnits[u]);
  return buf;
}

namespace {

std::string lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

Status bad(std::string_view text, const std::string& why) {
  return invalid_input("--vram-budget \"" + std::string(text) + "\": " + why +
                       " (examples: 4GiB, 512MiB, 1.5GB, 80%, default)");
}

}  // namespace

Result<Budget> parse_budget(std::string_view text, const DeviceMemoryInfo& device) {
  const std::string_view t = trim(text);
  const std::string low = lower(t);
  Budget b;
  if (low.empty() || low == "default" || low == "auto") {
    const std::uint64_t margin = default_margin_bytes(device.total_bytes);
    if (device.free_bytes <= margin)
      return out_of_memory("the device has " + format_bytes(device.free_bytes) + " free, not more than the " +
                           format_bytes(margin) + " safety margin; free device memory or set --vram-budget");
    b.bytes = device.free_bytes - margin;
    b.source = "default: " + format_bytes(device.free_bytes) + " free - " + format_bytes(margin) + " margin";
    return b;
  }
  // Number: digits with at most one '.', then the unit.
  std::size_t i = 0;
  bool dot = false, digit = false;
  while (i < low.size() && (std::isdigit(static_cast<unsigned char>(low[i])) || (low[i] == '.' && !dot))) {
    dot |= low[i] == '.';
    digit |= low[i] != '.';
    ++i;
  }
  if (!digit) return bad(text, "expected a number first");
  double value = 0;
  {
    const std::string num = low.substr(0, i);
    char* end = nullptr;
    value = std::strtod(num.c_str(), &end);
    if (end != num.c_str() + num.size() || !std::isfinite(value)) return bad(text, "not a number");
  }
  std::string_view unit = trim(std::string_view(low).substr(i));
  double bytes = 0;
  if (unit == "%") {
    if (!(value > 0 && value <= 100)) return bad(text, "a percentage must be in (0, 100]");
    bytes = std::floor(static_cast<double>(device.total_bytes) * value / 100.0);
  } else {
    struct Unit { std::string_view name; double scale; };
    static constexpr Unit kUnits[] = {
        {"", 1}, {"b", 1},
        {"k", 1024.0}, {"kib", 1024.0}, {"m", 1048576.0}, {"mib", 1048576.0},
        {"g", 1073741824.0}, {"gib", 1073741824.0}, {"t", 1099511627776.0}, {"tib", 1099511627776.0},
        {"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12}};
    const Unit* found = nullptr;
    for (const Unit& u : kUnits)
      if (u.name == unit) found = &u;
    if (found == nullptr) return bad(text, "unknown unit \"" + std::string(unit) + "\"");
    if (found->scale == 1 && dot) return bad(text, "a byte count must be a whole number");
    bytes = std::floor(value * found->scale);
  }
  if (bytes < 1) return bad(text, "the budget must be at least 1 byte");
  if (bytes > 1.8e19) return bad(text, "too large");
  b.bytes = static_cast<std::uint64_t>(bytes);
  if (device.total_bytes > 0 && b.bytes > device.total_bytes)
    return bad(text, format_bytes(b.bytes) + " is more than the device's " + format_bytes(device.total_bytes));
  b.source = std::string(t);
  if (b.bytes > device.free_bytes)
    b.warning = "the budget " + format_bytes(b.bytes) + " exceeds the " + format_bytes(device.free_bytes) +
                " free on the device now; allocations may fail before the budget is reached";
  return b;
}

}  // namespace fswap::memory
