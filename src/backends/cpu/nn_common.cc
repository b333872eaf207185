#include <cmath>

#include "backends/cpu/nn_kernels.h"
#include "core/parallel.h"

namespace fswap {

Status require_float32(const KernelArgs& args, const char* op) {
  for (const TensorView& t : args.inputs)
    if (t.data != nullptr && t.dtype != DType::kFloat32)
      return unsupported(std::string(op) + ": dtype " + dtype_name(t.dtype) + " (the CPU kernel is float32 only)");
  for (const TensorView& t : args.outputs)
    if (t.data != nullptr && t.dtype != DType::kFloat32)
      return unsupported(std::string(op) + ": output dtype " + dtype_name(t.dtype) +
                         " (the CPU kernel is float32 only)");
  return Status::ok();
}

void apply_activation(const FusedActivation& act, float* data, std::int64_t n) {
  switch (act.kind) {
    case Activation::kNone:
      return;
    case Activation::kRelu:
      for (std::int64_t i = 0; i < n; ++i) data[i] = data[i] > 0 ? data[i] : 0.0f;
      return;
    case Activation::kLeakyRelu:
      for (std::int64_t i = 0; i < n; ++i) data[i] = data[i] >= 0 ? data[i] : data[i] * act.alpha;
      return;
    case Activation::kSigmoid:
      for (std::int64_t i = 0; i < n; ++i) data[i] = 1.0f / (1.0f + std::exp(-data[i]));
      return;
    case Activation::kTanh:
      for (std::int64_t i = 0; i < n; ++i) data[i] = std::tanh(data[i]);
      return;
    case Activation::kClip:
      for (std::int64_t i = 0; i < n; ++i) data[i] = std::min(std::max(data[i], act.alpha), act.beta);
      return;
    case Activation::kHardSigmoid:
      for (std::int64_t i = 0; i < n; ++i)
        data[i] = std::min(std::max(act.alpha * data[i] + act.beta, 0.0f), 1.0f);
      return;
    case Activation::kSilu:  // as the Sigmoid and Mul kernels compute it unfused
      for (std::int64_t i = 0; i < n; ++i) data[i] = data[i] * (1.0f / (1.0f + std::exp(-data[i])));
      return;
    case Activation::kPRelu:
      FSWAP_CHECK(false, "a fused PRelu needs its per-channel slope (bias_and_activation)");
      return;
  }
}

void bias_and_activation(const FusedActivation& act, const float* bias, const float* residual, float* y,
                         std::int64_t batch, std::int64_t channels, std::int64_t plane, const float* slope) {
  if (bias == nullptr && residual == nullptr && act.kind == Activation::kNone) return;
  const std::int64_t planes = batch * channels;
  parallel_for(
      static_cast<int>(planes),
      [&](int p0, int p1) {
        for (int p = p0; p < p1; ++p) {
          float* row = y + p * plane;
          if (bias != nullptr) {
            const float b = bias[p % channels];
            for (std::int64_t i = 0; i < plane; ++i) row[i] += b;
          }
          if (residual != nullptr) {
            const float* r = residual + p * plane;
            for (std::int64_t i = 0; i < plane; ++i) row[i] += r[i];
          }
          // PRelu's x < 0 ? x · s : x is LeakyRelu's with alpha s, channel by channel.
          const bool prelu = act.kind == Activation::kPRelu;
          apply_activation(prelu ? FusedActivation{Activation::kLeakyRelu, slope[p % channels], 0} : act, row, plane);
        }
      },
      static_cast<int>(std::max<std::int64_t>(1, 16384 / std::max<std::int64_t>(1, plane))));
}

float* thread_scratch(int slot, std::size_t floats) {
  thread_local std::vector<float> buffers[5];
  FSWAP_CHECK(slot >= 0 && slot < 5, "thread_scratch slot out of range");
  std::vector<float>& b = buffers[slot];
  if (b.size() < floats) b.resize(floats);
  return b.data();
}

}  // namespace fswap
