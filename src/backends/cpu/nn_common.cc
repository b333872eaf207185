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
  }
}

void bias_and_activation(const FusedActivation& act, const float* bias, float* y, std::int64_t batch,
                         std::int64_t channels, std::int64_t plane) {
  if (bias == nullptr && act.kind == Activation::kNone) return;
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
          apply_activation(act, row, plane);
        }
      },
      static_cast<int>(std::max<std::int64_t>(1, 16384 / std::max<std::int64_t>(1, plane))));
}

Result<WindowGeometry> window_geometry(const KernelArgs& args, const char* op, const Shape& x, const Shape& y,
                                       const std::vector<std::int64_t>& kernel) {
  const std::size_t rank = x.size() < 2 ? 0 : x.size() - 2;
  if (rank < 1 || rank > 3 || y.size() != x.size() || kernel.size() != rank)
    return unsupported(std::string(op) + ": input rank " + std::to_string(x.size()) +
                       " (1-D, 2-D and 3-D spatial inputs are supported)");
  const OpAttributes& a = args.attrs;
  const std::vector<std::int64_t> ones(rank, 1);
  const auto strides = a.ints("strides", ones);
  const auto dilations = a.ints("dilations", ones);
  const auto pads = a.ints("pads", std::vector<std::int64_t>(2 * rank, 0));
  const std::string auto_pad = a.s("auto_pad", "NOTSET");
  if (strides.size() != rank || dilations.size() != rank || pads.size() != 2 * rank)
    return nn_shape_error(op, "strides/dilations/pads do not match the spatial rank " + std::to_string(rank));
  if (auto_pad != "NOTSET" && auto_pad != "VALID" && auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER")
    return unsupported(std::string(op) + ": auto_pad " + auto_pad);
  WindowGeometry g;
  const std::size_t off = 3 - rank;
  for (std::size_t i = 0; i < rank; ++i) {
    const std::size_t d = off + i;
    g.in[d] = x[2 + i];
    g.out[d] = y[2 + i];
    g.kernel[d] = kernel[i];
    g.stride[d] = strides[i];
    g.dilation[d] = dilations[i];
    if (g.stride[d] < 1 || g.dilation[d] < 1 || g.kernel[d] < 1)
      return nn_shape_error(op, "strides, dilations and kernel sizes must be >= 1");
    if (auto_pad == "NOTSET") {
      g.pad_begin[d] = pads[i];
      g.pad_end[d] = pads[rank + i];
    } else if (auto_pad != "VALID") {
      const std::int64_t span = (g.kernel[d] - 1) * g.dilation[d] + 1;
      const std::int64_t total = std::max<std::int64_t>(0, (g.out[d] - 1) * g.stride[d] + span - g.in[d]);
      g.pad_begin[d] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      g.pad_end[d] = total - g.pad_begin[d];
    }
  }
  return g;
}

float* thread_scratch(int slot, std::size_t floats) {
  thread_local std::vector<float> buffers[4];
  FSWAP_CHECK(slot >= 0 && slot < 4, "thread_scratch slot out of range");
  std::vector<float>& b = buffers[slot];
  if (b.size() < floats) b.resize(floats);
  return b.data();
}

}  // namespace fswap
