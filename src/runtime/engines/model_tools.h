// Helpers behind `fswap model run|compare|bench`: seeded random inputs, output comparison, latency.
//
//   auto inputs = random_inputs(session->inputs(), /*batch=*/8, /*seed=*/1);
//   auto diffs = compare_outputs(session->outputs(), ort_outputs, native_outputs);
//   FSWAP_ASSIGN_OR_RETURN(LatencyStats t, measure_latency(*session, inputs, /*runs=*/20, /*warmup=*/3));
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "runtime/engine.h"

namespace fswap {

// One tensor per input: dynamic dim 0 = batch, other dynamic dims = 1 (or the shape given in
// `shapes` for that input's name). Floats uniform in [−1, 1], integers in [0, 10), bools
// random. Same seed → same tensors.
std::vector<Tensor> random_inputs(const std::vector<TensorInfo>& inputs, std::int64_t batch, std::uint64_t seed,
                                  const std::vector<std::pair<std::string, Shape>>& shapes = {});

// Parses NAME=D0xD1x... (e.g. input=1x3x640x640) for --input-shape.
Result<std::pair<std::string, Shape>> parse_input_shape(const std::string& text);

struct OutputDiff {
  std::string name;
  double max_abs = 0;  // max |a − b|
  double max_rel = 0;  // max |a − b| / max(|a|, 1e-6·max|a|) over elements, robust to zeros
  double scale = 0;    // max |a|: judge max_abs against it (max_abs / scale ~ 1e-6 is fp32 noise)
  bool shape_mismatch = false;
};
// Compares two engines' outputs element-wise (float32 outputs; others compared exactly).
std::vector<OutputDiff> compare_outputs(const std::vector<TensorInfo>& infos, const std::vector<Tensor>& a,
                                        const std::vector<Tensor>& b);

// The p-th percentile (0 ≤ p ≤ 100) of values, interpolated linearly between the two nearest
// ranks (numpy's default): p = 50 of {1, 2, 3, 4} is 2.5. 0 when values is empty.
double percentile(std::vector<double> values, double p);

// Wall time of one session->run, in milliseconds, over the timed runs.
struct LatencyStats {
  double median_ms = 0;
  double p10_ms = 0;
  double p90_ms = 0;
  int runs = 0;    // timed runs
  int warmup = 0;  // untimed runs before them (the first builds the plan)
};
// Runs `warmup` times untimed (0 or more), then `runs` times timed (at least 1).
Result<LatencyStats> measure_latency(InferenceSession& session, const std::vector<Tensor>& inputs, int runs, int warmup);

// Median wall time of `runs` runs (after one warm-up), in milliseconds: measure_latency's median.
Result<double> median_latency_ms(InferenceSession& session, const std::vector<Tensor>& inputs, int runs);

}  // namespace fswap
