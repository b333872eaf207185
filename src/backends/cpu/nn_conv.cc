// Conv and ConvTranspose: im2col/col2im around OpenBLAS sgemm, one GEMM per (batch item, group);
// a direct path for depthwise 1-D/2-D convolutions and no im2col for unit-stride 1x1 kernels.
//
// channels_last = 1 (X, W and Y stored [N, H, W, C]-style, backends/op_rules.h): X and W are
// transposed into NCHW scratch, the NCHW kernel runs, Y is transposed back. This path exists as the
// reference the CUDA kernels are tested against; the layout pass makes such nodes on CUDA only.
//
// Input 3, the residual R (Y's layout; Y's shape, or Y's with batch 1 added to every item: the fusion
// passes', backends/op.h): Y = act(conv(X, W) + B + R), added in that order, as the unfused
// Conv → Add → activation does.

#include <algorithm>
#include <cstring>

#include "backends/cpu/blas.h"
#include "backends/cpu/nn_kernels.h"
#include "core/parallel.h"

namespace fswap {
namespace {

// col[(c, kd, kh, kw), (od, oh, ow)] = x[c, od*s - p + kd*d, ...] or 0 outside the input.
void im2col(const float* x, const WindowGeometry& g, std::int64_t channels, float* col) {
  const std::int64_t kernel = g.kernel_size(), out_size = g.out_size(), rows = channels * kernel;
  parallel_for(
      static_cast<int>(rows),
      [&](int r0, int r1) {
        for (std::int64_t row = r0; row < r1; ++row) {
          const std::int64_t c = row / kernel, k = row % kernel;
          const std::int64_t kd = k / (g.kernel[1] * g.kernel[2]), kh = (k / g.kernel[2]) % g.kernel[1],
                             kw = k % g.kernel[2];
          float* dst = col + row * out_size;
          const std::int64_t iw0 = kw * g.dilation[2] - g.pad_begin[2];
          // Output columns [lo, hi) read inside the row when the stride is 1.
          const std::int64_t lo = std::min(g.out[2], std::max<std::int64_t>(0, -iw0));
          const std::int64_t hi = std::max(lo, std::min(g.out[2], g.in[2] - iw0));
          for (std::int64_t od = 0; od < g.out[0]; ++od) {
            const std::int64_t id = od * g.stride[0] - g.pad_begin[0] + kd * g.dilation[0];
            for (std::int64_t oh = 0; oh < g.out[1]; ++oh, dst += g.out[2]) {
              const std::int64_t ih = oh * g.stride[1] - g.pad_begin[1] + kh * g.dilation[1];
              if (id < 0 || id >= g.in[0] || ih < 0 || ih >= g.in[1]) {
                std::memset(dst, 0, sizeof(float) * g.out[2]);
                continue;
              }
              const float* src = x + ((c * g.in[0] + id) * g.in[1] + ih) * g.in[2];
              if (g.stride[2] == 1) {
                std::memset(dst, 0, sizeof(float) * lo);
                std::memcpy(dst + lo, src + iw0 + lo, sizeof(float) * (hi - lo));
                std::memset(dst + hi, 0, sizeof(float) * (g.out[2] - hi));
              } else {
                for (std::int64_t ow = 0; ow < g.out[2]; ++ow) {
                  const std::int64_t iw = iw0 + ow * g.stride[2];
                  dst[ow] = iw >= 0 && iw < g.in[2] ? src[iw] : 0.0f;
                }
              }
            }
          }
        }
      },
      static_cast<int>(std::max<std::int64_t>(1, 8192 / std::max<std::int64_t>(1, out_size))));
}

// Depthwise (one input channel per group), 1-D/2-D only: y[m] = sum_k w[m, k] * x[m / multiplier].
void depthwise_conv(const float* x, const float* w, float* y, const WindowGeometry& g, std::int64_t batch,
                    std::int64_t channels, std::int64_t out_channels) {
  const std::int64_t multiplier = out_channels / channels, in_plane = g.in[1] * g.in[2],
                     out_plane = g.out[1] * g.out[2];
  parallel_for(static_cast<int>(batch * out_channels), [&](int p0, int p1) {
    for (std::int64_t p = p0; p < p1; ++p) {
      const std::int64_t n = p / out_channels, m = p % out_channels;
      const float* xc = x + (n * channels + m / multiplier) * in_plane;
      const float* wm = w + m * g.kernel[1] * g.kernel[2];
      float* yc = y + p * out_plane;
      std::memset(yc, 0, sizeof(float) * out_plane);
      for (std::int64_t kh = 0; kh < g.kernel[1]; ++kh) {
        for (std::int64_t kw = 0; kw < g.kernel[2]; ++kw) {
          const float wv = wm[kh * g.kernel[2] + kw];
          const std::int64_t iw0 = kw * g.dilation[2] - g.pad_begin[2];
          const std::int64_t lo = std::min(g.out[2], std::max<std::int64_t>(0, (-iw0 + g.stride[2] - 1) / g.stride[2]));
          const std::int64_t hi =
              std::max(lo, std::min(g.out[2], (g.in[2] - iw0 + g.stride[2] - 1) / g.stride[2]));
          for (std::int64_t oh = 0; oh < g.out[1]; ++oh) {
            const std::int64_t ih = oh * g.stride[1] - g.pad_begin[1] + kh * g.dilation[1];
            if (ih < 0 || ih >= g.in[1]) continue;
            const float* src = xc + ih * g.in[2] + iw0;
            float* dst = yc + oh * g.out[2];
            if (g.stride[2] == 1) {
              for (std::int64_t ow = lo; ow < hi; ++ow) dst[ow] += wv * src[ow];
            } else {
              for (std::int64_t ow = lo; ow < hi; ++ow) dst[ow] += wv * src[ow * g.stride[2]];
            }
          }
        }
      }
    }
  });
}

std::vector<std::int64_t> spatial_of(const Shape& s) { return {s.begin() + 2, s.end()}; }

// dst[n, c, h, w] = src[n, h, w, c] for src of the 4-D shape nhwc.
void nhwc_to_nchw(const float* src, const Shape& nhwc, float* dst) {
  const std::int64_t plane = nhwc[1] * nhwc[2], channels = nhwc[3];
  parallel_for(static_cast<int>(nhwc[0] * channels), [&](int p0, int p1) {
    for (std::int64_t p = p0; p < p1; ++p) {
      const std::int64_t n = p / channels, c = p % channels;
      const float* s = src + n * plane * channels + c;
      float* d = dst + p * plane;
      for (std::int64_t i = 0; i < plane; ++i) d[i] = s[i * channels];
    }
  });
}

// dst[n, h, w, c] = src[n, c, h, w] for src of the 4-D shape nchw.
void nchw_to_nhwc(const float* src, const Shape& nchw, float* dst) {
  const std::int64_t channels = nchw[1], plane = nchw[2] * nchw[3];
  parallel_for(static_cast<int>(nchw[0] * plane), [&](int p0, int p1) {
    for (std::int64_t p = p0; p < p1; ++p) {
      const std::int64_t n = p / plane, i = p % plane;
      const float* s = src + n * channels * plane + i;
      float* d = dst + p * channels;
      for (std::int64_t c = 0; c < channels; ++c) d[c] = s[c * plane];
    }
  });
}

// Input 3 of a Conv or ConvTranspose, the residual.
struct Residual {
  const float* data = nullptr;  // nullptr when absent
  Shape shape;
  bool broadcast = false;  // one batch item, added to each of Y's
};

// An error unless it has Y's shape, or Y's with batch 1.
Result<Residual> residual_of(const KernelArgs& args, const char* op) {
  if (args.inputs.size() < 4 || args.inputs[3].data == nullptr) return Residual{};
  const TensorView& r = args.inputs[3];
  const Shape& y = args.outputs[0].shape;
  const bool one_item = r.shape.size() == y.size() && !y.empty() && r.shape[0] == 1 &&
                        std::equal(y.begin() + 1, y.end(), r.shape.begin() + 1);
  if (r.shape != y && !one_item)
    return nn_shape_error(op, "the residual " + shape_to_string(r.shape) + " must have the output's shape " +
                                  shape_to_string(y) + " (or that with batch 1)");
  return Residual{r.as<const float>(), r.shape, r.shape != y};
}

// bias_and_activation over y = [batch, channels, plane], a broadcast residual added item by item.
void conv_epilogue(const FusedActivation& act, const float* bias, const Residual& r, float* y, std::int64_t batch,
                   std::int64_t channels, std::int64_t plane, const float* slope = nullptr) {
  if (!r.broadcast) {
    bias_and_activation(act, bias, r.data, y, batch, channels, plane, slope);
    return;
  }
  for (std::int64_t n = 0; n < batch; ++n)
    bias_and_activation(act, bias, r.data, y + n * channels * plane, 1, channels, plane, slope);
}

// A fused PRelu's slope (input 4, backends/op.h): one value per output channel.
Result<const float*> slope_of(const KernelArgs& args, const char* op, std::int64_t out_channels) {
  if (args.attrs.activation.kind != Activation::kPRelu) return static_cast<const float*>(nullptr);
  if (args.inputs.size() < 5 || args.inputs[4].data == nullptr || args.inputs[4].elements() != out_channels)
    return nn_shape_error(op, "a fused PRelu needs input 4 with one slope per output channel (" +
                                  std::to_string(out_channels) + ")");
  return args.inputs[4].as<const float>();
}

// A channels_last Conv or ConvTranspose through its NCHW kernel (see the top of the file): X, W and
// a residual (already [N, H, W, C] like Y) transposed to NCHW, Y back; the bias, the residual, the
// fused activation and a PRelu slope (per channel) are the NCHW kernel's to apply.
// X and W are present (the caller checked).
Status via_nchw(const KernelArgs& args, const char* op, Status (*nchw_kernel)(const KernelArgs&)) {
  const TensorView& x = args.inputs[0];
  const TensorView& w = args.inputs[1];
  const TensorView& y = args.outputs[0];
  if (w.shape.size() != 4 || y.shape.size() != 4)
    return nn_shape_error(op, "channels_last needs a 4-D weight and output, got W " + shape_to_string(w.shape) +
                                  " and Y " + shape_to_string(y.shape));
  FSWAP_ASSIGN_OR_RETURN(const Residual residual, residual_of(args, op));
  std::vector<TensorView> inputs = args.inputs, outputs = args.outputs;
  inputs[0].shape = nchw_from_nhwc(x.shape);
  inputs[1].shape = nchw_from_nhwc(w.shape);
  outputs[0].shape = nchw_from_nhwc(y.shape);
  // Slot 0 is the NCHW kernels' own scratch.
  inputs[0].data = thread_scratch(1, static_cast<std::size_t>(x.elements()));
  inputs[1].data = thread_scratch(2, static_cast<std::size_t>(w.elements()));
  outputs[0].data = thread_scratch(3, static_cast<std::size_t>(y.elements()));
  nhwc_to_nchw(x.as<const float>(), x.shape, inputs[0].as<float>());
  nhwc_to_nchw(w.as<const float>(), w.shape, inputs[1].as<float>());
  if (residual.data != nullptr) {
    inputs[3].shape = nchw_from_nhwc(residual.shape);
    inputs[3].data = thread_scratch(4, static_cast<std::size_t>(shape_elements(residual.shape)));
    nhwc_to_nchw(residual.data, residual.shape, inputs[3].as<float>());
  }
  OpAttributes attrs = args.attrs;
  attrs.values.erase("channels_last");
  FSWAP_RETURN_IF_ERROR(nchw_kernel({args.op, attrs, std::move(inputs), outputs}));
  nchw_to_nhwc(outputs[0].as<const float>(), outputs[0].shape, y.as<float>());
  return Status::ok();
}

// A Conv with a fused input resize (OpAttributes::input_resize): X resized whole, then the Conv.
// The CPU has no budget to keep; the CUDA kernel resizes band by band.
Status via_resized_input(const KernelArgs& args, const char* op) {
  const InputResize& r = *args.attrs.input_resize;
  const TensorView& x = args.inputs[0];
  if (x.shape.size() != r.resized.size())
    return nn_shape_error(op, "X " + shape_to_string(x.shape) + " cannot be resized to " + shape_to_string(r.resized));
  Tensor resized = Tensor::zeros(DType::kFloat32, r.resized);
  FSWAP_RETURN_IF_ERROR(resize_input(x, resized.view(), r.mode));
  std::vector<TensorView> inputs = args.inputs;
  inputs[0] = resized.view();
  OpAttributes attrs = args.attrs;
  attrs.input_resize = nullptr;
  return conv_kernel({args.op, attrs, std::move(inputs), args.outputs});
}

}  // namespace

Status conv_kernel(const KernelArgs& args) {
  FSWAP_ASSIGN_OR_RETURN(SgemmFn blas_gemm, load_sgemm());
  constexpr const char* kOp = "Conv";
  FSWAP_RETURN_IF_ERROR(require_float32(args, kOp));
  if (args.inputs.size() < 2) return nn_shape_error(kOp, "needs X and W");
  if (args.attrs.input_resize) return via_resized_input(args, kOp);
  FSWAP_ASSIGN_OR_RETURN(const bool nhwc, channels_last(kOp, args.attrs, args.inputs[0].shape));
  if (nhwc) return via_nchw(args, kOp, conv_kernel);
  const TensorView& x = args.inputs[0];
  const TensorView& w = args.inputs[1];
  const TensorView& y = args.outputs[0];
  const float* bias = args.inputs.size() > 2 ? args.inputs[2].as<const float>() : nullptr;
  FSWAP_ASSIGN_OR_RETURN(const Residual residual, residual_of(args, kOp));
  if (w.shape.size() != x.shape.size()) return nn_shape_error(kOp, "W rank differs from X rank");
  FSWAP_ASSIGN_OR_RETURN(WindowGeometry g, window_geometry(kOp, args.attrs, x.shape, y.shape, spatial_of(w.shape)));
  const std::int64_t batch = x.shape[0], channels = x.shape[1], out_channels = w.shape[0];
  FSWAP_ASSIGN_OR_RETURN(const float* slope, slope_of(args, kOp, out_channels));
  FSWAP_ASSIGN_OR_RETURN(const std::int64_t group, conv_group(kOp, args.attrs, x.shape, w.shape, y.shape));
  const std::int64_t cg = channels / group, mg = out_channels / group;
  const std::int64_t kernel = cg * g.kernel_size(), in_size = g.in_size(), out_size = g.out_size();
  const float* xd = x.as<const float>();
  const float* wd = w.as<const float>();
  float* yd = y.as<float>();

  if (cg == 1 && group > 1 && g.in[0] == 1 && g.out[0] == 1 && g.kernel[0] == 1 && g.pad_begin[0] == 0) {
    depthwise_conv(xd, wd, yd, g, batch, channels, out_channels);
  } else {
    const bool pointwise = g.kernel_size() == 1 && g.stride[0] == 1 && g.stride[1] == 1 && g.stride[2] == 1 &&
                           g.pad_begin[0] == 0 && g.pad_begin[1] == 0 && g.pad_begin[2] == 0 &&
                           out_size == in_size;
    float* col = pointwise ? nullptr : thread_scratch(0, static_cast<std::size_t>(kernel * out_size));
    for (std::int64_t n = 0; n < batch; ++n) {
      for (std::int64_t gi = 0; gi < group; ++gi) {
        const float* xg = xd + (n * channels + gi * cg) * in_size;
        float* yg = yd + (n * out_channels + gi * mg) * out_size;
        if (!pointwise) im2col(xg, g, cg, col);
        blas_gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(mg), static_cast<int>(out_size),
                    static_cast<int>(kernel), 1.0f, wd + gi * mg * kernel, static_cast<int>(kernel),
                    pointwise ? xg : col, static_cast<int>(out_size), 0.0f, yg, static_cast<int>(out_size));
      }
    }
  }
  conv_epilogue(args.attrs.activation, bias, residual, yd, batch, out_channels, out_size, slope);
  return Status::ok();
}

Status conv_transpose_kernel(const KernelArgs& args) {
  FSWAP_ASSIGN_OR_RETURN(SgemmFn blas_gemm, load_sgemm());
  constexpr const char* kOp = "ConvTranspose";
  FSWAP_RETURN_IF_ERROR(require_float32(args, kOp));
  if (args.inputs.size() < 2) return nn_shape_error(kOp, "needs X and W");
  FSWAP_ASSIGN_OR_RETURN(const bool nhwc, channels_last(kOp, args.attrs, args.inputs[0].shape));
  if (nhwc) return via_nchw(args, kOp, conv_transpose_kernel);
  const TensorView& x = args.inputs[0];
  const TensorView& w = args.inputs[1];
  const TensorView& y = args.outputs[0];
  const float* bias = args.inputs.size() > 2 ? args.inputs[2].as<const float>() : nullptr;
  FSWAP_ASSIGN_OR_RETURN(const Residual residual, residual_of(args, kOp));
  const std::size_t rank = x.shape.size() < 2 ? 0 : x.shape.size() - 2;
  if (rank < 1 || rank > 3 || w.shape.size() != x.shape.size() || y.shape.size() != x.shape.size())
    return unsupported(std::string(kOp) + ": input rank " + std::to_string(x.shape.size()) +
                       " (1-D, 2-D and 3-D spatial inputs are supported)");
  const OpAttributes& a = args.attrs;
  const std::int64_t batch = x.shape[0], channels = x.shape[1];
  FSWAP_ASSIGN_OR_RETURN(const std::int64_t group, conv_transpose_group(kOp, a, x.shape, w.shape, y.shape));
  const std::int64_t cg = channels / group, mg = w.shape[1], out_channels = mg * group;

  // Roles swap with Conv: the geometry maps a Conv over y (in) to x (out).
  const WindowAttributes wa = window_attributes(a, rank);
  if (wa.strides.size() != rank || wa.dilations.size() != rank || wa.pads.size() != 2 * rank ||
      wa.output_padding.size() != rank)
    return nn_shape_error(kOp, "strides/dilations/pads/output_padding do not match the spatial rank");
  if (!known_auto_pad(wa.auto_pad)) return unsupported(std::string(kOp) + ": auto_pad " + wa.auto_pad);
  const bool pads_from_output = a.has("output_shape") || wa.auto_pad == "SAME_UPPER" || wa.auto_pad == "SAME_LOWER";
  WindowGeometry g;  // in = x's spatial size, out = y's
  const std::size_t off = 3 - rank;
  for (std::size_t i = 0; i < rank; ++i) {
    const std::size_t d = off + i;
    g.in[d] = x.shape[2 + i];
    g.out[d] = y.shape[2 + i];
    g.kernel[d] = w.shape[2 + i];
    g.stride[d] = wa.strides[i];
    g.dilation[d] = wa.dilations[i];
    if (g.stride[d] < 1 || g.dilation[d] < 1) return nn_shape_error(kOp, "strides and dilations must be >= 1");
    if (pads_from_output) {
      // ONNX: total_padding = stride*(in-1) + output_padding + (k-1)*d + 1 - output_shape.
      const std::int64_t total = g.stride[d] * (g.in[d] - 1) + wa.output_padding[i] +
                                 (g.kernel[d] - 1) * g.dilation[d] + 1 - g.out[d];
      g.pad_begin[d] = wa.auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
    } else if (wa.auto_pad == "NOTSET") {
      g.pad_begin[d] = wa.pads[i];
    }
  }
  const std::int64_t ksize = g.kernel_size(), in_size = g.in_size(), out_size = g.out_size();
  const std::int64_t rows = mg * ksize;
  const float* xd = x.as<const float>();
  const float* wd = w.as<const float>();
  float* yd = y.as<float>();
  float* col = thread_scratch(0, static_cast<std::size_t>(rows * in_size));
  for (std::int64_t n = 0; n < batch; ++n) {
    for (std::int64_t gi = 0; gi < group; ++gi) {
      // col[(m, k), i] = sum_c w[c, m, k] * x[c, i]
      blas_gemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<int>(rows), static_cast<int>(in_size),
                  static_cast<int>(cg), 1.0f, wd + gi * cg * rows, static_cast<int>(rows),
                  xd + (n * channels + gi * cg) * in_size, static_cast<int>(in_size), 0.0f, col,
                  static_cast<int>(in_size));
      float* yg = yd + (n * out_channels + gi * mg) * out_size;
      parallel_for(static_cast<int>(mg), [&](int m0, int m1) {
        for (std::int64_t m = m0; m < m1; ++m) {
          float* ym = yg + m * out_size;
          std::memset(ym, 0, sizeof(float) * out_size);
          for (std::int64_t k = 0; k < ksize; ++k) {
            const std::int64_t kd = k / (g.kernel[1] * g.kernel[2]), kh = (k / g.kernel[2]) % g.kernel[1],
                               kw = k % g.kernel[2];
            const float* src = col + (m * ksize + k) * in_size;
            for (std::int64_t id = 0; id < g.in[0]; ++id) {
              const std::int64_t od = id * g.stride[0] - g.pad_begin[0] + kd * g.dilation[0];
              for (std::int64_t ih = 0; ih < g.in[1]; ++ih) {
                const float* s = src + (id * g.in[1] + ih) * g.in[2];
                const std::int64_t oh = ih * g.stride[1] - g.pad_begin[1] + kh * g.dilation[1];
                if (od < 0 || od >= g.out[0] || oh < 0 || oh >= g.out[1]) continue;
                float* dst = ym + (od * g.out[1] + oh) * g.out[2];
                const std::int64_t ow0 = kw * g.dilation[2] - g.pad_begin[2];
                for (std::int64_t iw = 0; iw < g.in[2]; ++iw) {
                  const std::int64_t ow = ow0 + iw * g.stride[2];
                  if (ow >= 0 && ow < g.out[2]) dst[ow] += s[iw];
                }
              }
            }
          }
        }
      });
    }
  }
  conv_epilogue(a.activation, bias, residual, yd, batch, out_channels, out_size);
  return Status::ok();
}

}  // namespace fswap
