// Resize/Upsample (nearest, N-D linear and N-D cubic), DepthToSpace/SpaceToDepth and Pad.
//
// Resize and Upsample share one engine: per-axis tables map each output index to 1 (nearest),
// 2 (linear) or 4 (cubic) weighted input indices ("taps"); the output is produced row by row
// (a row = the last axis), each row a weighted sum of at most taps^(rank-1) input rows, each
// gathered along the last axis with that axis's taps.
#include <cmath>
#include <cstring>

#include "backends/cpu/nn_kernels.h"
#include "core/parallel.h"

namespace fswap {
namespace {

struct ResizeSpec {
  ResizeMode mode;
  std::vector<float> scales;  // one per axis
};

int taps_of(InterpMode mode) { return mode == InterpMode::kCubic ? 4 : mode == InterpMode::kLinear ? 2 : 1; }

// One axis: output index o reads input idx[o * taps + k] with weight w[o * taps + k].
struct AxisMap {
  int taps = 1;
  std::vector<std::int64_t> idx;
  std::vector<float> w;
  bool identity = true;  // every output index reads the same input index with weight 1
};

float original_coordinate(CoordMode mode, std::int64_t x, float scale, std::int64_t in, std::int64_t out) {
  const float xf = static_cast<float>(x);
  switch (mode) {
    case CoordMode::kHalfPixel:
      return (xf + 0.5f) / scale - 0.5f;
    case CoordMode::kHalfPixelSymmetric: {
      const float adjustment = static_cast<float>(out) / (scale * static_cast<float>(in));
      const float center = static_cast<float>(in) / 2;
      return center * (1 - adjustment) + (xf + 0.5f) / scale - 0.5f;
    }
    case CoordMode::kPytorchHalfPixel:
      return out > 1 ? (xf + 0.5f) / scale - 0.5f : 0.0f;
    case CoordMode::kAlignCorners:
      return out == 1 ? 0.0f : xf * static_cast<float>(in - 1) / static_cast<float>(out - 1);
    case CoordMode::kAsymmetric:
      return xf / scale;
    case CoordMode::kTfHalfPixelForNearest:
      return (xf + 0.5f) / scale;
  }
  return 0;
}

// Keys' cubic convolution weights of inputs floor(c)-1 .. floor(c)+2, t = c - floor(c) in [0, 1).
void cubic_weights(float t, float a, float* w) {
  auto near = [a](float d) { return ((a + 2) * d - (a + 3)) * d * d + 1; };      // |d| <= 1
  auto far = [a](float d) { return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a; };  // 1 < |d| < 2
  w[0] = far(t + 1);
  w[1] = near(t);
  w[2] = near(1 - t);
  w[3] = far(2 - t);
}

AxisMap axis_map(const ResizeSpec& spec, float scale, std::int64_t in, std::int64_t out) {
  AxisMap m;
  m.taps = taps_of(spec.mode.interp);
  m.idx.assign(out * m.taps, 0);
  m.w.assign(out * m.taps, 0.0f);
  for (std::int64_t x = 0; x < out; ++x) {
    const float c = original_coordinate(spec.mode.coord, x, scale, in, out);
    std::int64_t* idx = m.idx.data() + x * m.taps;
    float* w = m.w.data() + x * m.taps;
    if (spec.mode.interp == InterpMode::kLinear) {
      const float cc = std::min(std::max(c, 0.0f), static_cast<float>(in - 1));
      const auto f = static_cast<std::int64_t>(std::floor(cc));
      idx[0] = f;
      idx[1] = std::min(f + 1, in - 1);
      w[1] = idx[1] == f ? 0.0f : cc - static_cast<float>(f);
      w[0] = 1.0f - w[1];
    } else if (spec.mode.interp == InterpMode::kCubic) {
      // Out-of-range taps read the edge value (the ONNX reference pads with "edge"), unless
      // exclude_outside drops them.
      const float f = std::floor(c);
      cubic_weights(c - f, spec.mode.cubic_a, w);
      float sum = 0;
      for (int k = 0; k < 4; ++k) {
        const std::int64_t i = static_cast<std::int64_t>(f) - 1 + k;
        if (spec.mode.exclude_outside && (i < 0 || i >= in)) w[k] = 0.0f;
        idx[k] = std::min(std::max<std::int64_t>(i, 0), in - 1);
        sum += w[k];
      }
      if (spec.mode.exclude_outside && sum != 0.0f)
        for (int k = 0; k < 4; ++k) w[k] /= sum;
    } else {
      float r = 0;
      switch (spec.mode.nearest) {
        case NearestMode::kRoundPreferFloor:
          r = c == std::floor(c) + 0.5f ? std::floor(c) : std::round(c);
          break;
        case NearestMode::kRoundPreferCeil:
          r = c == std::floor(c) + 0.5f ? std::ceil(c) : std::round(c);
          break;
        case NearestMode::kFloor:
          r = std::floor(c);
          break;
        case NearestMode::kCeil:
          r = std::ceil(c);
          break;
      }
      idx[0] = std::min(std::max<std::int64_t>(static_cast<std::int64_t>(r), 0), in - 1);
      w[0] = 1.0f;
    }
    for (int k = 0; k < m.taps; ++k)
      if (w[k] != 0.0f && (idx[k] != x || w[k] != 1.0f)) m.identity = false;
  }
  if (in != out) m.identity = false;
  return m;
}

Status resize_run(const KernelArgs& args, const char* op, const ResizeSpec& spec) {
  const TensorView& x = args.inputs[0];
  const TensorView& y = args.outputs[0];
  const std::size_t rank = x.shape.size();
  if (rank == 0 || y.shape.size() != rank || spec.scales.size() != rank)
    return nn_shape_error(op, "X " + shape_to_string(x.shape) + ", Y " + shape_to_string(y.shape) + " and " +
                                  std::to_string(spec.scales.size()) + " scales do not agree");
  std::vector<AxisMap> maps(rank);
  for (std::size_t a = 0; a < rank; ++a) {
    if (x.shape[a] <= 0 && y.shape[a] > 0) return nn_shape_error(op, "cannot resize an empty axis");
    if (spec.scales[a] <= 0) return nn_shape_error(op, "scales must be > 0");
    maps[a] = axis_map(spec, spec.scales[a], x.shape[a], y.shape[a]);
  }
  if (y.elements() == 0) return Status::ok();
  // Non-identity outer axes: each contributes `taps` input rows per output row.
  std::vector<std::size_t> moving;
  for (std::size_t a = 0; a + 1 < rank; ++a)
    if (!maps[a].identity) moving.push_back(a);
  const int taps = taps_of(spec.mode.interp);
  int corners = 1;
  for (std::size_t j = 0; j < moving.size(); ++j) corners *= taps;
  const std::int64_t out_w = y.shape[rank - 1];
  const std::int64_t rows = y.elements() / out_w;
  std::vector<std::int64_t> in_stride(rank, 1);
  for (std::size_t a = rank - 1; a-- > 0;) in_stride[a] = in_stride[a + 1] * x.shape[a + 1];
  const float* xd = x.as<const float>();
  float* yd = y.as<float>();
  const AxisMap& last = maps[rank - 1];
  parallel_for(
      static_cast<int>(rows),
      [&](int r0, int r1) {
        std::vector<std::int64_t> coord(rank, 0);
        for (std::int64_t r = r0; r < r1; ++r) {
          std::int64_t rest = r;
          for (std::size_t a = rank - 1; a-- > 0;) {
            coord[a] = rest % y.shape[a];
            rest /= y.shape[a];
          }
          std::int64_t base = 0;  // input offset of the row from the identity (static) axes
          for (std::size_t a = 0; a + 1 < rank; ++a)
            if (maps[a].identity) base += coord[a] * in_stride[a];
          float* dst = yd + r * out_w;
          bool written = false;
          for (int corner = 0; corner < corners; ++corner) {
            float weight = 1.0f;
            std::int64_t offset = base;
            for (std::size_t j = 0, digits = corner; j < moving.size(); ++j, digits /= taps) {
              const AxisMap& m = maps[moving[j]];
              const std::int64_t t = coord[moving[j]] * taps + static_cast<std::int64_t>(digits % taps);
              weight *= m.w[t];
              offset += m.idx[t] * in_stride[moving[j]];
            }
            if (weight == 0.0f) continue;
            const float* src = xd + offset;
            if (last.identity) {
              if (!written && weight == 1.0f) {
                std::memcpy(dst, src, sizeof(float) * out_w);
              } else {
                for (std::int64_t w = 0; w < out_w; ++w) dst[w] = (written ? dst[w] : 0.0f) + weight * src[w];
              }
            } else {
              for (std::int64_t w = 0; w < out_w; ++w) {
                const std::int64_t* li = last.idx.data() + w * taps;
                const float* lw = last.w.data() + w * taps;
                float v = 0;
                for (int k = 0; k < taps; ++k) v += lw[k] * src[li[k]];
                dst[w] = written ? dst[w] + weight * v : weight * v;
              }
            }
            written = true;
          }
          if (!written) std::memset(dst, 0, sizeof(float) * out_w);
        }
      },
      static_cast<int>(std::max<std::int64_t>(1, 4096 / std::max<std::int64_t>(1, out_w * corners * taps))));
  return Status::ok();
}

// Scales per axis: from the scales tensor when it has values, else output / input.
std::vector<float> scales_from(const TensorView* scales, const TensorView& x, const TensorView& y) {
  std::vector<float> s(x.shape.size(), 1.0f);
  if (scales != nullptr && scales->data != nullptr && scales->elements() == static_cast<std::int64_t>(s.size())) {
    std::copy(scales->as<const float>(), scales->as<const float>() + s.size(), s.begin());
    return s;
  }
  return resize_scales(x.shape, y.shape);
}

}  // namespace

Status resize_kernel(const KernelArgs& args) {
  constexpr const char* kOp = "Resize";
  const TensorView& x = args.inputs[0];
  const TensorView& y = args.outputs[0];
  if (x.dtype != DType::kFloat32 || y.dtype != DType::kFloat32)
    return unsupported(std::string(kOp) + ": dtype " + dtype_name(x.dtype) + " (float32 only)");
  const OpAttributes& a = args.attrs;
  ResizeSpec spec;
  // Opset 10 has inputs (X, scales) and asymmetric coordinates with floor rounding.
  const bool opset10 = args.inputs.size() == 2;
  FSWAP_ASSIGN_OR_RETURN(spec.mode, resize_mode(kOp, a, opset10));

  const TensorView* scales = opset10 ? &args.inputs[1] : args.inputs.size() > 2 ? &args.inputs[2] : nullptr;
  const TensorView* sizes = !opset10 && args.inputs.size() > 3 && args.inputs[3].data != nullptr ? &args.inputs[3] : nullptr;
  if (scales != nullptr && (scales->data == nullptr || scales->elements() == 0)) scales = nullptr;
  if (scales != nullptr && scales->dtype != DType::kFloat32)
    return unsupported(std::string(kOp) + ": scales dtype " + dtype_name(scales->dtype));
  const std::size_t rank = x.shape.size();
  // Opset 18 `axes`: scales/sizes name only these axes, the others keep scale 1.
  std::vector<std::int64_t> axes;
  for (std::int64_t i = 0; i < static_cast<std::int64_t>(rank); ++i) axes.push_back(i);
  if (a.has("axes")) {
    axes = a.ints("axes", {});
    for (auto& ax : axes) {
      const int n = normalize_axis(ax, rank);
      if (n < 0) return nn_shape_error(kOp, "axes out of range");
      ax = n;
    }
  }
  spec.scales = resize_scales(x.shape, y.shape);
  if (scales != nullptr) {
    if (scales->elements() != static_cast<std::int64_t>(axes.size()))
      return nn_shape_error(kOp, "scales has " + std::to_string(scales->elements()) + " values for " +
                                     std::to_string(axes.size()) + " axes");
    for (std::size_t i = 0; i < axes.size(); ++i) spec.scales[axes[i]] = scales->as<const float>()[i];
  } else if (sizes != nullptr) {
    const std::string policy = a.s("keep_aspect_ratio_policy", "stretch");
    if (policy != "stretch") {
      // not_larger / not_smaller: one scale for every named axis.
      if (sizes->dtype != DType::kInt64) return unsupported(std::string(kOp) + ": sizes dtype");
      float s = policy == "not_larger" ? INFINITY : 0.0f;
      for (std::size_t i = 0; i < axes.size(); ++i) {
        const float r = static_cast<float>(sizes->as<const std::int64_t>()[i]) / static_cast<float>(x.shape[axes[i]]);
        s = policy == "not_larger" ? std::min(s, r) : std::max(s, r);
      }
      for (std::int64_t ax : axes) spec.scales[ax] = s;
    }
  }
  return resize_run(args, kOp, spec);
}

Status resize_input(const TensorView& x, const TensorView& y, const ResizeMode& mode) {
  static const OpAttributes kNoAttributes;
  return resize_run({OpType::kResize, kNoAttributes, {x}, {y}}, "Resize", ResizeSpec{mode, resize_scales(x.shape, y.shape)});
}

Status upsample_kernel(const KernelArgs& args) {
  constexpr const char* kOp = "Upsample";
  const TensorView& x = args.inputs[0];
  if (x.dtype != DType::kFloat32 || args.outputs[0].dtype != DType::kFloat32)
    return unsupported(std::string(kOp) + ": dtype " + dtype_name(x.dtype) + " (float32 only)");
  ResizeSpec spec;
  FSWAP_ASSIGN_OR_RETURN(spec.mode, upsample_mode(kOp, args.attrs));
  const TensorView* scales = args.inputs.size() > 1 ? &args.inputs[1] : nullptr;
  if (scales != nullptr && scales->data != nullptr && scales->dtype != DType::kFloat32)
    return unsupported(std::string(kOp) + ": scales dtype " + dtype_name(scales->dtype));
  spec.scales = scales_from(scales, x, args.outputs[0]);
  if (scales == nullptr && args.attrs.has("scales")) spec.scales = args.attrs.floats("scales", {});  // opset 7
  return resize_run(args, kOp, spec);
}

namespace {

// Moves elements of any dtype; element_size bytes each.
void copy_element(const std::byte* src, std::byte* dst, std::size_t element_size) {
  std::memcpy(dst, src, element_size);
}

Status space_depth(const KernelArgs& args, const char* op, bool to_space) {
  const TensorView& x = args.inputs[0];
  const TensorView& y = args.outputs[0];
  if (x.shape.size() != 4 || y.shape.size() != 4) return nn_shape_error(op, "X must be 4-D NCHW");
  const std::int64_t b = args.attrs.i("blocksize", 0);
  if (b < 1) return nn_shape_error(op, "blocksize must be >= 1");
  const std::string mode = args.attrs.s("mode", "DCR");
  if (to_space && mode != "DCR" && mode != "CRD") return unsupported(std::string(op) + ": mode " + mode);
  const bool crd = to_space && mode == "CRD";
  // Name the shapes from the space side: small = [N, C*b*b, H, W], large = [N, C, H*b, W*b].
  const Shape& small = to_space ? x.shape : y.shape;
  const Shape& large = to_space ? y.shape : x.shape;
  const std::int64_t n = small[0], c = large[1], h = small[2], w = small[3];
  if (small[1] != c * b * b || large[2] != h * b || large[3] != w * b)
    return nn_shape_error(op, "shapes " + shape_to_string(x.shape) + " -> " + shape_to_string(y.shape) +
                                  " do not fit blocksize " + std::to_string(b));
  const std::size_t es = dtype_size(x.dtype);
  const auto* xd = static_cast<const std::byte*>(x.data);
  auto* yd = static_cast<std::byte*>(y.data);
  parallel_for(static_cast<int>(n * c * h), [&](int r0, int r1) {
    for (std::int64_t r = r0; r < r1; ++r) {
      const std::int64_t hi = r % h, ci = (r / h) % c, ni = r / (h * c);
      for (std::int64_t i = 0; i < b; ++i) {
        for (std::int64_t j = 0; j < b; ++j) {
          const std::int64_t sc = crd ? ci * b * b + i * b + j : (i * b + j) * c + ci;
          const std::int64_t small_row = ((ni * c * b * b + sc) * h + hi) * w;
          const std::int64_t large_row = ((ni * c + ci) * h * b + hi * b + i) * w * b + j;
          for (std::int64_t wi = 0; wi < w; ++wi) {
            const std::int64_t s = small_row + wi, l = large_row + wi * b;
            if (to_space) copy_element(xd + s * es, yd + l * es, es);
            else copy_element(xd + l * es, yd + s * es, es);
          }
        }
      }
    }
  });
  return Status::ok();
}

}  // namespace

Status depth_to_space_kernel(const KernelArgs& args) { return space_depth(args, "DepthToSpace", true); }
Status space_to_depth_kernel(const KernelArgs& args) { return space_depth(args, "SpaceToDepth", false); }

Status pad_kernel(const KernelArgs& args) {
  constexpr const char* kOp = "Pad";
  const TensorView& x = args.inputs[0];
  const TensorView& y = args.outputs[0];
  const std::size_t rank = x.shape.size();
  if (y.shape.size() != rank || y.dtype != x.dtype) return nn_shape_error(kOp, "output does not match X");
  const std::string mode = args.attrs.s("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge" && mode != "wrap")
    return unsupported(std::string(kOp) + ": mode " + mode);
  // pads: input 1 (opset >= 11) or attribute (older); optional axes input 3 (opset 18).
  std::vector<std::int64_t> pads;
  const TensorView* pv = args.inputs.size() > 1 && args.inputs[1].data != nullptr ? &args.inputs[1] : nullptr;
  if (pv != nullptr) {
    if (pv->dtype == DType::kInt64) pads.assign(pv->as<const std::int64_t>(), pv->as<const std::int64_t>() + pv->elements());
    else if (pv->dtype == DType::kInt32) pads.assign(pv->as<const std::int32_t>(), pv->as<const std::int32_t>() + pv->elements());
    else return unsupported(std::string(kOp) + ": pads dtype " + dtype_name(pv->dtype));
  } else {
    pads = args.attrs.ints("pads", {});
  }
  std::vector<std::int64_t> axes;
  const TensorView* av = args.inputs.size() > 3 && args.inputs[3].data != nullptr ? &args.inputs[3] : nullptr;
  if (av != nullptr) {
    for (std::int64_t i = 0; i < av->elements(); ++i) {
      const std::int64_t v = av->dtype == DType::kInt32 ? av->as<const std::int32_t>()[i] : av->as<const std::int64_t>()[i];
      const int n = normalize_axis(v, rank);
      if (n < 0) return nn_shape_error(kOp, "axes out of range");
      axes.push_back(n);
    }
  } else {
    for (std::size_t i = 0; i < rank; ++i) axes.push_back(static_cast<std::int64_t>(i));
  }
  if (pads.size() != 2 * axes.size())
    return nn_shape_error(kOp, std::to_string(pads.size()) + " pads for " + std::to_string(axes.size()) + " axes");
  std::vector<std::int64_t> begin(rank, 0);
  for (std::size_t i = 0; i < axes.size(); ++i) begin[axes[i]] = pads[i];
  for (std::size_t i = 0; i < rank; ++i)
    if (y.shape[i] < 0) return nn_shape_error(kOp, "negative output dim");
  // The constant, as bytes of X's dtype.
  const std::size_t es = dtype_size(x.dtype);
  std::byte value[8] = {};
  const TensorView* cv = args.inputs.size() > 2 && args.inputs[2].data != nullptr ? &args.inputs[2] : nullptr;
  if (cv != nullptr && cv->elements() > 0) {
    if (cv->dtype != x.dtype) return nn_shape_error(kOp, "constant_value dtype differs from X");
    std::memcpy(value, cv->data, es);
  } else if (pv == nullptr && args.attrs.has("value")) {
    const float f = args.attrs.f("value", 0.0f);
    if (x.dtype != DType::kFloat32) return unsupported(std::string(kOp) + ": value attribute on non-float X");
    std::memcpy(value, &f, sizeof f);
  }
  if (y.elements() == 0) return Status::ok();
  // Per axis: output index -> input index, -1 where the constant goes.
  std::vector<std::vector<std::int64_t>> map(rank);
  for (std::size_t a = 0; a < rank; ++a) {
    const std::int64_t n = x.shape[a];
    map[a].resize(y.shape[a]);
    for (std::int64_t o = 0; o < y.shape[a]; ++o) {
      std::int64_t i = o - begin[a];
      if (i < 0 || i >= n) {
        if (mode == "constant" || n == 0) {
          i = -1;
        } else if (mode == "edge") {
          i = std::min(std::max<std::int64_t>(i, 0), n - 1);
        } else if (mode == "wrap") {
          i = ((i % n) + n) % n;
        } else if (n == 1) {  // reflect
          i = 0;
        } else {
          const std::int64_t period = 2 * (n - 1);
          i = ((i % period) + period) % period;
          if (i >= n) i = period - i;
        }
      }
      map[a][o] = i;
    }
  }
  std::vector<std::int64_t> in_stride(rank, 1);
  for (std::size_t a = rank; a-- > 1;) in_stride[a - 1] = in_stride[a] * x.shape[a];
  const std::int64_t out_w = rank == 0 ? 1 : y.shape[rank - 1];
  const std::int64_t rows = y.elements() / out_w;
  const auto* xd = static_cast<const std::byte*>(x.data);
  auto* yd = static_cast<std::byte*>(y.data);
  parallel_for(
      static_cast<int>(rows),
      [&](int r0, int r1) {
        std::vector<std::int64_t> coord(rank, 0);
        for (std::int64_t r = r0; r < r1; ++r) {
          std::int64_t rest = r, offset = 0;
          bool constant_row = false;
          for (std::size_t a = rank; a-- > 1;) {
            const std::int64_t c = rest % y.shape[a - 1];
            rest /= y.shape[a - 1];
            const std::int64_t i = map[a - 1][c];
            if (i < 0) constant_row = true;
            offset += i * in_stride[a - 1];
          }
          std::byte* dst = yd + r * out_w * es;
          if (rank == 0) {
            std::memcpy(dst, xd, es);
            continue;
          }
          const std::vector<std::int64_t>& last = map[rank - 1];
          // The interior [lo, hi) of the row is one contiguous run of X.
          const std::int64_t lo = constant_row ? out_w : std::min(out_w, std::max<std::int64_t>(0, begin[rank - 1]));
          const std::int64_t hi = constant_row ? out_w : std::max(lo, std::min(out_w, begin[rank - 1] + x.shape[rank - 1]));
          if (hi > lo) std::memcpy(dst + lo * es, xd + (offset + last[lo]) * es, (hi - lo) * es);
          for (std::int64_t w = 0; w < out_w; ++w) {
            if (w == lo) w = hi;
            if (w >= out_w) break;
            const std::int64_t i = constant_row ? -1 : last[w];
            std::memcpy(dst + w * es, i < 0 ? value : xd + (offset + i) * es, es);
          }
        }
      },
      static_cast<int>(std::max<std::int64_t>(1, 4096 / std::max<std::int64_t>(1, out_w))));
  return Status::ok();
}

}  // namespace fswap
