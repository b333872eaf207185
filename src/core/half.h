// IEEE 754 binary16 conversions on the host: fp16 weights are converted once when uploaded, and
// tests read fp16 results. Round to nearest even; overflow gives ±inf; NaN stays NaN.
//
//   std::uint16_t h = float_to_half(0.1f);   // 0x2E66
//   float f = half_to_float(h);              // 0.0999755859375
#pragma once

#include <cstdint>
#include <span>

namespace fswap {

std::uint16_t float_to_half(float value);
float half_to_float(std::uint16_t bits);
// Element-wise over equal-length spans (large ones over the worker threads, core/parallel.h).
void floats_to_halves(std::span<const float> in, std::span<std::uint16_t> out);

}  // namespace fswap
