// Axis normalisation shared by the CPU kernel families (internal to src/backends/cpu).
#pragma once

#include <cstddef>
#include <cstdint>

namespace fswap {

// Axis in [-rank, rank) to [0, rank); -1 when out of range.
inline int normalize_axis(std::int64_t axis, std::size_t rank) {
  const auto r = static_cast<std::int64_t>(rank);
  if (axis < -r || axis >= r) return -1;
  return static_cast<int>(axis < 0 ? axis + r : axis);
}

}  // namespace fswap
