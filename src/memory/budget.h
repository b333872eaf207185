// The device-memory budget: what `--vram-budget` means, parsed once at startup. The budget is the
// hard cap of DeviceArena: every device byte fswap allocates is checked against it.
//
//   FSWAP_ASSIGN_OR_RETURN(Budget b, parse_budget("4GiB", {.total_bytes = dev.total_bytes(),
//                                                          .free_bytes = dev.free_bytes()}));
//   DeviceArena arena(dev, {.cap_bytes = b.bytes});
//
// Accepted forms (units case-insensitive, optional space before the unit):
//   "512MiB", "4GiB", "2TiB", "64KiB"      binary units (×1024ⁿ); "4G", "512M", "64K" mean the same
//   "1.5GB", "800MB", "64KB"                decimal units (×1000ⁿ)
//   "1073741824", "1073741824B"             bytes
//   "80%"                                   of the device's total memory, 0 < p ≤ 100
//   "" or "default" or "auto"               free memory minus default_margin_bytes(total)
// Everything else is kInvalidInput, as is a budget of 0 or one larger than the device's total.
// A budget above the memory free now is accepted with a warning (other processes may leave).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace fswap::memory {

struct DeviceMemoryInfo {
  std::uint64_t total_bytes = 0;
  std::uint64_t free_bytes = 0;
};

struct Budget {
  std::uint64_t bytes = 0;
  std::string source;   // how it was chosen, e.g. "4GiB" or "default: 79.1 GiB free - 2.4 GiB margin"
  std::string warning;  // non-empty when the budget exceeds the memory free now
};

// The safety margin the default leaves for the CUDA context, cuDNN/cuBLAS workspaces and
// libraries whose allocations cannot be routed through our pool (reference/memory.md lesson 13):
// max(512 MiB, 3% of total).
std::uint64_t default_margin_bytes(std::uint64_t total_bytes);

Result<Budget> parse_budget(std::string_view text, const DeviceMemoryInfo& device);

// "1.50 GiB", "512 MiB", "12 KiB", "100 B": binary units, 3 significant digits.
std::string format_bytes(std::uint64_t bytes);

}  // namespace fswap::memory
