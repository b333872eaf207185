#include "runtime/engines/model_tools.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>

namespace fswap {

Result<std::pair<std::string, Shape>> parse_input_shape(const std::string& text) {
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) return invalid_input("--input-shape " + text + ": expected NAME=D0xD1x...");
  Shape shape;
  std::size_t p = eq + 1;
  while (p < text.size()) {
    std::size_t used = 0;
    long long d = 0;
    try {
      d = std::stoll(text.substr(p), &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || d <= 0) return invalid_input("--input-shape " + text + ": dimensions must be positive integers");
    shape.push_back(d);
    p += used;
    if (p < text.size() && text[p] != 'x') return invalid_input("--input-shape " + text + ": separate dimensions with x");
    ++p;
  }
  return std::pair{text.substr(0, eq), shape};
}

std::vector<Tensor> random_inputs(const std::vector<TensorInfo>& inputs, std::int64_t batch, std::uint64_t seed,
                                  const std::vector<std::pair<std::string, Shape>>& shapes) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> real(-1.f, 1.f);
  std::uniform_int_distribution<int> integer(0, 9);
  std::vector<Tensor> out;
  for (const auto& info : inputs) {
    Shape shape = info.shape;
    for (std::size_t d = 0; d < shape.size(); ++d)
      if (shape[d] < 0) shape[d] = d == 0 ? batch : 1;
    for (const auto& [name, given] : shapes)
      if (name == info.name) shape = given;
    Tensor t = Tensor::zeros(info.dtype, shape);
    const std::int64_t n = t.elements();
    switch (info.dtype) {
      case DType::kFloat32:
        for (std::int64_t i = 0; i < n; ++i) t.data<float>()[i] = real(rng);
        break;
      case DType::kFloat64:
        for (std::int64_t i = 0; i < n; ++i) t.data<double>()[i] = real(rng);
        break;
      case DType::kInt64:
        for (std::int64_t i = 0; i < n; ++i) t.data<std::int64_t>()[i] = integer(rng);
        break;
      case DType::kInt32:
        for (std::int64_t i = 0; i < n; ++i) t.data<std::int32_t>()[i] = integer(rng);
        break;
      default:  // 1- and 2-byte types: random bytes (bools as 0/1)
        for (std::size_t i = 0; i < t.bytes(); ++i)
          static_cast<std::uint8_t*>(t.raw())[i] = static_cast<std::uint8_t>(info.dtype == DType::kBool ? rng() & 1 : rng());
    }
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<OutputDiff> compare_outputs(const std::vector<TensorInfo>& infos, const std::vector<Tensor>& a,
                                        const std::vector<Tensor>& b) {
  std::vector<OutputDiff> diffs;
  for (std::size_t i = 0; i < infos.size() && i < a.size() && i < b.size(); ++i) {
    OutputDiff d;
    d.name = infos[i].name;
    if (a[i].shape() != b[i].shape() || a[i].dtype() != b[i].dtype()) {
      d.shape_mismatch = true;
      diffs.push_back(d);
      continue;
    }
    if (a[i].dtype() == DType::kFloat32) {
      const float* x = a[i].data<float>();
      const float* y = b[i].data<float>();
      double scale = 0;
      for (std::int64_t k = 0; k < a[i].elements(); ++k) scale = std::max(scale, std::abs(double(x[k])));
      const double floor = std::max(1e-12, 1e-6 * scale);
      d.scale = scale;
      for (std::int64_t k = 0; k < a[i].elements(); ++k) {
        // NaN on one side only is an infinite error; NaN on both sides agrees.
        const bool nan_x = std::isnan(x[k]), nan_y = std::isnan(y[k]);
        const double e = nan_x || nan_y ? (nan_x == nan_y ? 0.0 : INFINITY) : std::abs(double(x[k]) - y[k]);
        d.max_abs = std::max(d.max_abs, e);
        d.max_rel = std::max(d.max_rel, e / std::max(std::abs(double(x[k])), floor));
      }
    } else {
      const bool same = std::memcmp(a[i].raw(), b[i].raw(), a[i].bytes()) == 0;
      d.max_abs = d.max_rel = same ? 0 : 1;
    }
    diffs.push_back(d);
  }
  return diffs;
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = std::clamp(p, 0.0, 100.0) / 100.0 * static_cast<double>(values.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(rank));
  const std::size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (values[hi] - values[lo]) * (rank - static_cast<double>(lo));
}

Result<LatencyStats> measure_latency(InferenceSession& session, const std::vector<Tensor>& inputs, int runs, int warmup) {
  LatencyStats stats;
  stats.runs = std::max(1, runs);
  stats.warmup = std::max(0, warmup);
  for (int r = 0; r < stats.warmup; ++r) FSWAP_RETURN_IF_ERROR(session.run(inputs).status());
  std::vector<double> times;
  for (int r = 0; r < stats.runs; ++r) {
    const auto start = std::chrono::steady_clock::now();
    FSWAP_RETURN_IF_ERROR(session.run(inputs).status());
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  stats.median_ms = percentile(times, 50);
  stats.p10_ms = percentile(times, 10);
  stats.p90_ms = percentile(times, 90);
  return stats;
}

Result<double> median_latency_ms(InferenceSession& session, const std::vector<Tensor>& inputs, int runs) {
  FSWAP_ASSIGN_OR_RETURN(LatencyStats stats, measure_latency(session, inputs, runs, /*warmup=*/1));
  return stats.median_ms;
}

}  // namespace fswap
