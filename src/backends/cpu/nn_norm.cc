// Normalisations (inference forms) and Softmax/LogSoftmax.
//
// Softmax/LogSoftmax: the node's opset is not in KernelArgs, so both use the opset-13 rule
// (normalise along `axis`, default -1). lower_legacy_softmax (runtime/passes.h) rewrites the
// old flatten-at-axis (default 1) form of opset < 13 models; it agrees with the new one when
// axis is the last axis.
#include <cmath>

#include "backends/cpu/nn_kernels.h"
#include "core/parallel.h"

namespace fswap {
namespace {

int grain(std::int64_t work_per_item) {
  return static_cast<int>(std::max<std::int64_t>(1, 16384 / std::max<std::int64_t>(1, work_per_item)));
}

Status softmax_impl(const KernelArgs& args, const char* op, bool log) {
  FSWAP_RETURN_IF_ERROR(require_float32(args, op));
  const TensorView& x = args.inputs[0];
  const int axis = normalize_axis(args.attrs.i("axis", -1), x.shape.size());
  if (axis < 0) return nn_shape_error(op, "axis out of range for " + shape_to_string(x.shape));
  const auto [outer, len, inner] = axis_lines(x.shape, axis);
  const float* xd = x.as<const float>();
  float* yd = args.outputs[0].as<float>();
  // Work unit: one (outer, inner) line of len elements, strided by inner.
  parallel_for(
      static_cast<int>(outer * inner),
      [&](int l0, int l1) {
        for (std::int64_t l = l0; l < l1; ++l) {
          const std::int64_t base = (l / inner) * len * inner + l % inner;
          const float* xs = xd + base;
          float* ys = yd + base;
          float mx = -INFINITY;
          for (std::int64_t i = 0; i < len; ++i) mx = std::max(mx, xs[i * inner]);
          double sum = 0;
          for (std::int64_t i = 0; i < len; ++i) {
            const float e = std::exp(xs[i * inner] - mx);
            sum += e;
            if (!log) ys[i * inner] = e;
          }
          if (log) {
            const float lse = static_cast<float>(std::log(sum));
            for (std::int64_t i = 0; i < len; ++i) ys[i * inner] = xs[i * inner] - mx - lse;
          } else {
            const float inv = static_cast<float>(1.0 / sum);
            for (std::int64_t i = 0; i < len; ++i) ys[i * inner] *= inv;
          }
        }
      },
      grain(len * 4));
  return Status::ok();
}

// Expands t, unidirectionally broadcastable to `to` (numpy rules, aligned on the right), to
// to's elements in row-major order. False when the shapes do not broadcast that way.
bool expand_to(const TensorView& t, const Shape& to, std::vector<float>& out) {
  const std::size_t rank = to.size();
  if (t.shape.size() > rank) {
    // Leading 1s beyond the target's rank are harmless.
    for (std::size_t i = 0; i < t.shape.size() - rank; ++i)
      if (t.shape[i] != 1) return false;
  }
  std::vector<std::int64_t> stride(rank, 0);
  std::int64_t step = 1;
  for (std::size_t k = 0; k < std::min(rank, t.shape.size()); ++k) {
    const std::size_t d = rank - 1 - k;
    const std::int64_t n = t.shape[t.shape.size() - 1 - k];
    if (n != 1 && n != to[d]) return false;
    stride[d] = n == 1 ? 0 : step;
    step *= n;
  }
  out.resize(shape_elements(to));
  const float* src = t.as<const float>();
  std::vector<std::int64_t> index(rank, 0);
  std::int64_t offset = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = src[offset];
    for (std::size_t d = rank; d-- > 0;) {  // odometer over `to`
      offset += stride[d];
      if (++index[d] < to[d]) break;
      offset -= stride[d] * to[d];
      index[d] = 0;
    }
  }
  return true;
}

}  // namespace

Status softmax_kernel(const KernelArgs& args) { return softmax_impl(args, "Softmax", false); }
Status log_softmax_kernel(const KernelArgs& args) { return softmax_impl(args, "LogSoftmax", true); }

Status batch_normalization_kernel(const KernelArgs& args) {
  constexpr const char* kOp = "BatchNormalization";
  FSWAP_RETURN_IF_ERROR(require_float32(args, kOp));
  if (args.inputs.size() < 5) return nn_shape_error(kOp, "needs X, scale, B, mean and var");
  if (args.attrs.i("training_mode", 0) != 0) return unsupported(std::string(kOp) + ": training_mode 1");
  const TensorView& x = args.inputs[0];
  FSWAP_ASSIGN_OR_RETURN(const ChannelLayout l, channel_layout(kOp, args.attrs, x.shape, 2));
  const std::int64_t channels = l.channels;
  for (int i = 1; i < 5; ++i)
    if (args.inputs[i].elements() != channels)
      return nn_shape_error(kOp, "input " + std::to_string(i) + " must have C = " + std::to_string(channels) +
                                     " elements");
  const float eps = args.attrs.f("epsilon", 1e-5f);
  const float* scale = args.inputs[1].as<const float>();
  const float* shift = args.inputs[2].as<const float>();
  const float* mean = args.inputs[3].as<const float>();
  const float* var = args.inputs[4].as<const float>();
  std::vector<float> a(channels), b(channels);
  for (std::int64_t c = 0; c < channels; ++c) {
    a[c] = scale[c] / std::sqrt(var[c] + eps);
    b[c] = shift[c] - mean[c] * a[c];
  }
  const float* xd = x.as<const float>();
  float* yd = args.outputs[0].as<float>();
  // Element e is in channel (e / channel_stride) % C: runs of channel_stride elements share one
  // channel (a plane in NCHW, a single element in NHWC). Work unit: kChunk elements.
  constexpr std::int64_t kChunk = 4096;
  const std::int64_t n = x.elements(), run = l.channel_stride;
  parallel_for(
      static_cast<int>((n + kChunk - 1) / kChunk),
      [&](int k0, int k1) {
        for (std::int64_t k = k0; k < k1; ++k) {
          const std::int64_t begin = k * kChunk, end = std::min(n, begin + kChunk);
          std::int64_t c = (begin / run) % channels, run_end = std::min(end, (begin / run + 1) * run);
          for (std::int64_t e = begin; e < end; run_end = std::min(end, e + run), c = c + 1 == channels ? 0 : c + 1)
            for (const float ac = a[c], bc = b[c]; e < run_end; ++e) yd[e] = xd[e] * ac + bc;
          apply_activation(args.attrs.activation, yd + begin, end - begin);  // a fused Relu etc. (runtime/passes.h)
        }
      },
      1);
  return Status::ok();
}

// body(n, c, x plane, y plane) for every (n, c) plane of X in l's layout, planes spread over the
// workers; `passes` is how many times body reads a plane (the parallel grain).
template <class Body>
void for_each_plane(const ChannelLayout& l, const float* x, float* y, int passes, Body&& body) {
  parallel_for(
      static_cast<int>(l.batch * l.channels),
      [&](int p0, int p1) {
        for (std::int64_t p = p0; p < p1; ++p)
          body(p / l.channels, p % l.channels, x + l.plane_offset(p), y + l.plane_offset(p));
      },
      grain(l.plane * passes));
}

// An InstanceNormalization's style input (backends/op.h): the scale and shift that follow the
// normalisation of plane (n, c), or 1 and 0 without one.
struct InstanceStyle {
  const float* data = nullptr;
  StyleRows rows;
  float scale(std::int64_t n, std::int64_t c) const { return data ? row(n)[rows.scale_at + c] : 1.0f; }
  float shift(std::int64_t n, std::int64_t c) const { return data ? row(n)[rows.shift_at + c] : 0.0f; }
  const float* row(std::int64_t n) const { return data + (rows.row_count == 1 ? 0 : n) * rows.row_length; }
};

Result<InstanceStyle> instance_style(const KernelArgs& args, const char* op, std::int64_t batch,
                                     std::int64_t channels) {
  if (args.inputs.size() < 4 || args.inputs[3].data == nullptr) return InstanceStyle{};
  FSWAP_ASSIGN_OR_RETURN(const StyleRows rows, style_rows(op, args.attrs, args.inputs[3].shape, batch, channels));
  return InstanceStyle{args.inputs[3].as<const float>(), rows};
}

Status instance_normalization_kernel(const KernelArgs& args) {
  constexpr const char* kOp = "InstanceNormalization";
  FSWAP_RETURN_IF_ERROR(require_float32(args, kOp));
  if (args.inputs.size() < 3) return nn_shape_error(kOp, "needs X, scale and B");
  const TensorView& x = args.inputs[0];
  FSWAP_ASSIGN_OR_RETURN(const ChannelLayout l, channel_layout(kOp, args.attrs, x.shape, 3));
  const std::int64_t channels = l.channels, plane = l.plane, step = l.spatial_stride;
  if (args.inputs[1].elements() != channels || args.inputs[2].elements() != channels)
    return nn_shape_error(kOp, "scale and B must have C = " + std::to_string(channels) + " elements");
  FSWAP_ASSIGN_OR_RETURN(const InstanceStyle style, instance_style(args, kOp, l.batch, channels));
  const float eps = args.attrs.f("epsilon", 1e-5f);
  const float* scale = args.inputs[1].as<const float>();
  const float* shift = args.inputs[2].as<const float>();
  float* yd = args.outputs[0].as<float>();
  for_each_plane(l, x.as<const float>(), yd, 3, [&](std::int64_t n, std::int64_t c, const float* xs, float* ys) {
    double sum = 0, sq = 0;
    for (std::int64_t i = 0; i < plane; ++i) sum += xs[i * step];
    const double mean = plane > 0 ? sum / static_cast<double>(plane) : 0.0;
    for (std::int64_t i = 0; i < plane; ++i) sq += (xs[i * step] - mean) * (xs[i * step] - mean);
    const double var = plane > 0 ? sq / static_cast<double>(plane) : 0.0;
    const float a = static_cast<float>(scale[c] / std::sqrt(var + eps));
    const float b = static_cast<float>(shift[c] - mean * a);
    const float s = style.scale(n, c), t = style.shift(n, c);
    for (std::int64_t i = 0; i < plane; ++i) ys[i * step] = (xs[i * step] * a + b) * s + t;
  });
  if (args.attrs.activation.kind != Activation::kNone) {  // a fused Relu etc. (runtime/passes.h)
    constexpr std::int64_t kChunk = 16384;
    const std::int64_t total = x.elements();
    parallel_for(static_cast<int>((total + kChunk - 1) / kChunk), [&](int k0, int k1) {
      const std::int64_t begin = k0 * kChunk, end = std::min(total, k1 * kChunk);
      apply_activation(args.attrs.activation, yd + begin, end - begin);
    });
  }
  return Status::ok();
}

Status filter_response_norm_kernel(const KernelArgs& args) {
  constexpr const char* kOp = "FilterResponseNorm";
  FSWAP_RETURN_IF_ERROR(require_float32(args, kOp));
  if (args.inputs.size() < 4) return nn_shape_error(kOp, "needs X, gamma, beta and tau");
  const TensorView& x = args.inputs[0];
  FSWAP_ASSIGN_OR_RETURN(const ChannelLayout l, channel_layout(kOp, args.attrs, x.shape, 3));
  const std::int64_t channels = l.channels, plane = l.plane, step = l.spatial_stride;
  for (int i = 1; i < 4; ++i)
    if (args.inputs[i].elements() != channels)
      return nn_shape_error(kOp, "gamma, beta and tau must have C = " + std::to_string(channels) + " elements");
  const float eps = args.attrs.f("epsilon", 1e-6f);
  const float* gamma = args.inputs[1].as<const float>();
  const float* beta = args.inputs[2].as<const float>();
  const float* tau = args.inputs[3].as<const float>();
  for_each_plane(l, x.as<const float>(), args.outputs[0].as<float>(), 2,
                 [&](std::int64_t, std::int64_t c, const float* xs, float* ys) {
    double sq = 0;
    for (std::int64_t i = 0; i < plane; ++i) sq += static_cast<double>(xs[i * step]) * xs[i * step];
    const double nu2 = plane > 0 ? sq / static_cast<double>(plane) : 0.0;
    const float a = static_cast<float>(gamma[c] / std::sqrt(nu2 + eps));
    const float b = beta[c], floor = tau[c];
    for (std::int64_t i = 0; i < plane; ++i) {
      const float v = xs[i * step] * a + b;
      ys[i * step] = v < floor ? floor : v;  // NaN stays NaN, as in the unfused Relu
    }
  });
  return Status::ok();
}

Status layer_normalization_kernel(const KernelArgs& args) {
  constexpr const char* kOp = "LayerNormalization";
  FSWAP_RETURN_IF_ERROR(require_float32(args, kOp));
  if (args.inputs.size() < 2) return nn_shape_error(kOp, "needs X and Scale");
  const TensorView& x = args.inputs[0];
  const int axis = normalize_axis(args.attrs.i("axis", -1), x.shape.size());
  if (axis < 0) return nn_shape_error(kOp, "axis out of range for " + shape_to_string(x.shape));
  if (args.attrs.i("stash_type", 1) != 1) return unsupported(std::string(kOp) + ": stash_type other than 1");
  std::int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= x.shape[i];
  for (std::size_t i = axis; i < x.shape.size(); ++i) inner *= x.shape[i];
  const TensorView& sv = args.inputs[1];
  const TensorView* bv = args.inputs.size() > 2 && args.inputs[2].data != nullptr ? &args.inputs[2] : nullptr;
  // Scale and B broadcast unidirectionally to the normalised shape X.shape[axis:]; expanded
  // once per call so the row loop indexes them directly.
  // A flat tensor of the normalised size is accepted too, as it always was.
  const Shape normalised(x.shape.begin() + axis, x.shape.end());
  auto expand = [&](const TensorView& t, std::vector<float>& out) {
    if (expand_to(t, normalised, out)) return true;
    if (t.elements() != inner) return false;
    out.assign(t.as<const float>(), t.as<const float>() + inner);
    return true;
  };
  std::vector<float> scale_full, shift_full;
  if (!expand(sv, scale_full) || (bv && !expand(*bv, shift_full)))
    return nn_shape_error(kOp, "Scale " + shape_to_string(sv.shape) + " and B " +
                                   (bv ? shape_to_string(bv->shape) : std::string("(absent)")) +
                                   " must broadcast to the normalised shape " + shape_to_string(normalised));
  const float eps = args.attrs.f("epsilon", 1e-5f);
  const float* scale = scale_full.data();
  const float* shift = bv ? shift_full.data() : nullptr;
  const float* xd = x.as<const float>();
  float* yd = args.outputs[0].as<float>();
  parallel_for(
      static_cast<int>(outer),
      [&](int r0, int r1) {
        for (std::int64_t r = r0; r < r1; ++r) {
          const float* xs = xd + r * inner;
          float* ys = yd + r * inner;
          double sum = 0, sq = 0;
          for (std::int64_t i = 0; i < inner; ++i) sum += xs[i];
          const double mean = inner > 0 ? sum / static_cast<double>(inner) : 0.0;
          for (std::int64_t i = 0; i < inner; ++i) sq += (xs[i] - mean) * (xs[i] - mean);
          const float inv = static_cast<float>(1.0 / std::sqrt((inner > 0 ? sq / static_cast<double>(inner) : 0.0) + eps));
          const float m = static_cast<float>(mean);
          for (std::int64_t i = 0; i < inner; ++i) {
            const float v = (xs[i] - m) * inv * scale[i];
            ys[i] = shift ? v + shift[i] : v;
          }
        }
      },
      grain(inner * 3));
  return Status::ok();
}

Status lp_normalization_kernel(const KernelArgs& args) {
  constexpr const char* kOp = "LpNormalization";
  FSWAP_RETURN_IF_ERROR(require_float32(args, kOp));
  const TensorView& x = args.inputs[0];
  const int axis = normalize_axis(args.attrs.i("axis", -1), x.shape.size());
  if (axis < 0) return nn_shape_error(kOp, "axis out of range for " + shape_to_string(x.shape));
  const std::int64_t p = args.attrs.i("p", 2);
  if (p != 1 && p != 2) return unsupported(std::string(kOp) + ": p " + std::to_string(p) + " (1 or 2)");
  const auto [outer, len, inner] = axis_lines(x.shape, axis);
  const float* xd = x.as<const float>();
  float* yd = args.outputs[0].as<float>();
  parallel_for(
      static_cast<int>(outer * inner),
      [&](int l0, int l1) {
        for (std::int64_t l = l0; l < l1; ++l) {
          const std::int64_t base = (l / inner) * len * inner + l % inner;
          double norm = 0;
          for (std::int64_t i = 0; i < len; ++i) {
            const double v = xd[base + i * inner];
            norm += p == 1 ? std::fabs(v) : v * v;
          }
          if (p == 2) norm = std::sqrt(norm);
          // A zero vector stays zero (no 0/0).
          const float inv = norm > 0 ? static_cast<float>(1.0 / norm) : 0.0f;
          for (std::int64_t i = 0; i < len; ++i) yd[base + i * inner] = xd[base + i * inner] * inv;
        }
      },
      grain(len * 2));
  return Status::ok();
}

}  // namespace fswap
