// Border index rules shared by the imaging filters (internal to src/imaging).
#pragma once

namespace fswap {

// Reflect-101 (… 2 1 | 0 1 2 … n−1 | n−2 …), repeated for offsets longer than the image;
// OpenCV's default border for blurs and pyramids.
inline int reflect101(int i, int n) {
  if (n == 1) return 0;
  const int period = 2 * n - 2;
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

}  // namespace fswap
