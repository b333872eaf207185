// CUDA-vs-CPU comparison for the GPU tests: float outputs within a relative tolerance with a
// floor at the reference's mean magnitude (so near-zero elements of a large tensor are judged
// against the tensor's scale); integer and bool outputs exactly, or nearly (fp16 may flip ties).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "core/tensor.h"

namespace fswap::test {

struct Comparison {
  std::int64_t elements = 0, bad = 0;
  double worst_relative = 0;  // max |got − want| / (|want| + floor)
  std::string describe() const {
    return std::to_string(bad) + " of " + std::to_string(elements) + " elements off, worst relative error " +
           std::to_string(worst_relative);
  }
};

inline double element(const Tensor& t, std::int64_t i) {
  switch (t.dtype()) {
    case DType::kFloat32: return t.data<float>()[i];
    case DType::kFloat64: return t.data<double>()[i];
    case DType::kInt64: return static_cast<double>(t.data<std::int64_t>()[i]);
    case DType::kInt32: return t.data<std::int32_t>()[i];
    case DType::kInt8: return t.data<std::int8_t>()[i];
    case DType::kUInt8: case DType::kBool: return static_cast<const std::uint8_t*>(t.raw())[i];
    case DType::kFloat16: return 0;
  }
  return 0;
}

inline Comparison compare(const Tensor& want, const Tensor& got, double rtol) {
  Comparison c;
  c.elements = want.elements();
  const bool is_float = want.dtype() == DType::kFloat32 || want.dtype() == DType::kFloat64;
  double floor = 0;
  if (is_float) {
    for (std::int64_t i = 0; i < c.elements; ++i)
      if (std::isfinite(element(want, i))) floor += std::abs(element(want, i));
    floor = std::max(floor / std::max<std::int64_t>(c.elements, 1), 1e-6);
  }
  for (std::int64_t i = 0; i < c.elements; ++i) {
    const double w = element(want, i), g = element(got, i);
    if (!is_float) {
      c.bad += w != g;
      continue;
    }
    if (std::isnan(w) || std::isnan(g) || std::isinf(w) || std::isinf(g)) {
      c.bad += !(w == g || (std::isnan(w) && std::isnan(g)));
      continue;
    }
    const double rel = std::abs(g - w) / (std::abs(w) + floor);
    c.worst_relative = std::max(c.worst_relative, rel);
    c.bad += rel > rtol;
  }
  return c;
}

}  // namespace fswap::test
