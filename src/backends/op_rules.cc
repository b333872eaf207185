#include "backends/op_rules.h"

#include <algorithm>

namespace fswap {
namespace {

Status rule_error(std::string_view who, const std::string& what) {
  return invalid_input(std::string(who) + ": " + what);
}

Status rule_unsupported(std::string_view who, const std::string& what) {
  return unsupported(std::string(who) + ": " + what);
}

}  // namespace

Result<int> checked_axis(std::string_view who, std::int64_t axis, std::size_t rank) {
  const int normalized = normalize_axis(axis, rank);
  if (normalized < 0)
    return rule_error(who, "axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  return normalized;
}

std::vector<std::int64_t> contiguous_strides(const Shape& shape) {
  std::vector<std::int64_t> s(shape.size());
  std::int64_t step = 1;
  for (std::size_t d = shape.size(); d-- > 0;) {
    s[d] = step;
    step *= shape[d];
  }
  return s;
}

Result<std::vector<bool>> reduced_axes(std::string_view who, const std::vector<std::int64_t>& axes, std::size_t rank) {
  std::vector<bool> reduced(rank, axes.empty());
  for (std::int64_t a : axes) {
    FSWAP_ASSIGN_OR_RETURN(const int axis, checked_axis(who, a, rank));
    reduced[static_cast<std::size_t>(axis)] = true;
  }
  return reduced;
}

Result<StridedRead> transpose_read(std::string_view who, const OpAttributes& attrs, const Shape& x, const Shape& y) {
  const std::size_t rank = x.size();
  std::vector<std::int64_t> perm(rank);
  for (std::size_t d = 0; d < rank; ++d) perm[d] = static_cast<std::int64_t>(rank - 1 - d);
  perm = attrs.ints("perm", perm);
  if (perm.size() != rank || y.size() != rank) return rule_error(who, "perm does not match the input's rank");
  const std::vector<std::int64_t> in_strides = contiguous_strides(x);
  StridedRead r{y, std::vector<std::int64_t>(rank), 0};
  std::vector<bool> seen(rank, false);
  for (std::size_t d = 0; d < rank; ++d) {
    const std::int64_t p = perm[d] < 0 ? perm[d] + static_cast<std::int64_t>(rank) : perm[d];
    if (p < 0 || p >= static_cast<std::int64_t>(rank) || seen[static_cast<std::size_t>(p)])
      return rule_error(who, "perm is not a permutation of the input's axes");
    seen[static_cast<std::size_t>(p)] = true;
    if (y[d] != x[static_cast<std::size_t>(p)]) return rule_error(who, "output shape does not match perm");
    r.strides[d] = in_strides[static_cast<std::size_t>(p)];
  }
  return r;
}

Result<StridedRead> slice_read(std::string_view who, const Shape& x, const Shape& y, const std::vector<std::int64_t>& starts,
                               const std::vector<std::int64_t>& ends, std::vector<std::int64_t> axes,
                               std::vector<std::int64_t> steps) {
  const std::size_t rank = x.size();
  if (axes.empty())
    for (std::size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<std::int64_t>(i));
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
    return rule_error(who, "starts, ends, axes and steps differ in length");
  if (y.size() != rank) return rule_error(who, "output rank differs from the input's");

  const std::vector<std::int64_t> in_strides = contiguous_strides(x);
  StridedRead r{x, in_strides, 0};  // shape: the counts
  std::vector<bool> seen(rank, false);
  for (std::size_t i = 0; i < starts.size(); ++i) {
    FSWAP_ASSIGN_OR_RETURN(const int axis, checked_axis(who, axes[i], rank));
    const auto d = static_cast<std::size_t>(axis);
    if (seen[d]) return rule_error(who, "axis " + std::to_string(axes[i]) + " appears twice");
    seen[d] = true;
    const std::int64_t dim = x[d], step = steps[i];
    if (step == 0) return rule_error(who, "step 0 on axis " + std::to_string(axis));
    std::int64_t start = starts[i], end = ends[i];
    if (start < 0) start = start < -dim ? -1 : start + dim;  // clamped below, avoids overflow
    if (end < 0) end = end < -dim ? -1 : end + dim;
    std::int64_t count;
    if (dim == 0) {
      count = 0;
    } else if (step > 0) {
      start = std::clamp<std::int64_t>(start, 0, dim);
      end = std::clamp<std::int64_t>(end, 0, dim);
      count = end > start ? (end - start + step - 1) / step : 0;
    } else {
      start = std::clamp<std::int64_t>(start, 0, dim - 1);
      end = std::clamp<std::int64_t>(end, -1, dim - 1);
      count = start > end ? (start - end + (-step) - 1) / (-step) : 0;
    }
    r.shape[d] = count;
    if (count > 0) r.offset += start * in_strides[d];
    r.strides[d] = step * in_strides[d];
  }
  if (r.shape != y)
    return rule_error(who, "output shape " + shape_to_string(y) + " differs from the slice's " + shape_to_string(r.shape));
  return r;
}

Result<StridedRead> tile_read(std::string_view who, const Shape& x, const Shape& y, const std::vector<std::int64_t>& repeats) {
  const std::size_t rank = x.size();
  if (repeats.size() != rank || y.size() != rank) return rule_error(who, "repeats must have one value per axis");
  const std::vector<std::int64_t> in_strides = contiguous_strides(x);
  StridedRead r;
  for (std::size_t d = 0; d < rank; ++d) {
    if (repeats[d] < 0 || y[d] != x[d] * repeats[d])
      return rule_error(who, "output shape " + shape_to_string(y) + " does not match repeats");
    r.shape.insert(r.shape.end(), {repeats[d], x[d]});
    r.strides.insert(r.strides.end(), {0, in_strides[d]});
  }
  return r;
}

Status check_gather_elements(std::string_view who, const Shape& data, const Shape& indices, const Shape& y,
                             std::size_t axis) {
  const std::size_t rank = data.size();
  if (indices.size() != rank || y != indices)
    return rule_error(who, "indices " + shape_to_string(indices) + " must have the data's rank and the output's shape");
  for (std::size_t d = 0; d < rank; ++d)
    if (d != axis && indices[d] > data[d])
      return rule_error(who, "indices " + shape_to_string(indices) + " exceed the data " + shape_to_string(data));
  return Status::ok();
}

WindowAttributes window_attributes(const OpAttributes& attrs, std::size_t rank) {
  const std::vector<std::int64_t> ones(rank, 1);
  WindowAttributes w;
  w.strides = attrs.ints("strides", ones);
  w.dilations = attrs.ints("dilations", ones);
  w.pads = attrs.ints("pads", std::vector<std::int64_t>(2 * rank, 0));
  w.output_padding = attrs.ints("output_padding", std::vector<std::int64_t>(rank, 0));
  w.auto_pad = attrs.s("auto_pad", "NOTSET");
  return w;
}

bool known_auto_pad(const std::string& auto_pad) {
  return auto_pad == "NOTSET" || auto_pad == "VALID" || auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER";
}

Result<WindowGeometry> window_geometry(std::string_view who, const OpAttributes& attrs, const Shape& x, const Shape& y,
                                       const std::vector<std::int64_t>& kernel) {
  const std::size_t rank = x.size() < 2 ? 0 : x.size() - 2;
  if (rank < 1 || rank > 3 || y.size() != x.size() || kernel.size() != rank)
    return rule_unsupported(who, "input rank " + std::to_string(x.size()) +
                                     " (1-D, 2-D and 3-D spatial inputs are supported)");
  const WindowAttributes a = window_attributes(attrs, rank);
  if (a.strides.size() != rank || a.dilations.size() != rank || a.pads.size() != 2 * rank)
    return rule_error(who, "strides/dilations/pads do not match the spatial rank " + std::to_string(rank));
  if (!known_auto_pad(a.auto_pad)) return rule_unsupported(who, "auto_pad " + a.auto_pad);
  WindowGeometry g;
  const std::size_t off = 3 - rank;
  for (std::size_t i = 0; i < rank; ++i) {
    const std::size_t d = off + i;
    g.in[d] = x[2 + i];
    g.out[d] = y[2 + i];
    g.kernel[d] = kernel[i];
    g.stride[d] = a.strides[i];
    g.dilation[d] = a.dilations[i];
    if (g.stride[d] < 1 || g.dilation[d] < 1 || g.kernel[d] < 1)
      return rule_error(who, "strides, dilations and kernel sizes must be >= 1");
    if (a.auto_pad == "NOTSET") {
      g.pad_begin[d] = a.pads[i];
      g.pad_end[d] = a.pads[rank + i];
    } else if (a.auto_pad != "VALID") {
      const std::int64_t span = (g.kernel[d] - 1) * g.dilation[d] + 1;
      const std::int64_t total = std::max<std::int64_t>(0, (g.out[d] - 1) * g.stride[d] + span - g.in[d]);
      g.pad_begin[d] = a.auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      g.pad_end[d] = total - g.pad_begin[d];
    }
  }
  return g;
}

Result<WindowGeometry> pool_geometry(std::string_view who, const OpAttributes& attrs, const Shape& x, const Shape& y) {
  const auto kernel = attrs.ints("kernel_shape", {});
  if (kernel.empty() || kernel.size() + 2 != x.size())
    return rule_error(who, "kernel_shape must have one entry per spatial dim of " + shape_to_string(x));
  return window_geometry(who, attrs, x, y, kernel);
}

Result<std::int64_t> conv_group(std::string_view who, const OpAttributes& attrs, const Shape& x, const Shape& w,
                                const Shape& y) {
  const std::int64_t channels = x[1], out_channels = w[0];
  const std::int64_t group = attrs.i("group", 1);
  if (group < 1 || channels % group != 0 || out_channels % group != 0 || w[1] != channels / group ||
      y[1] != out_channels)
    return rule_error(who, "group " + std::to_string(group) + " does not fit X " + shape_to_string(x) + " and W " +
                               shape_to_string(w));
  return group;
}

Result<std::int64_t> conv_transpose_group(std::string_view who, const OpAttributes& attrs, const Shape& x,
                                          const Shape& w, const Shape& y) {
  const std::int64_t channels = x[1], group = attrs.i("group", 1);
  if (group < 1 || channels % group != 0 || w[0] != channels || y[1] != w[1] * group)
    return rule_error(who, "group " + std::to_string(group) + " does not fit X " + shape_to_string(x) + " and W " +
                               shape_to_string(w));
  return group;
}

Result<StyleRows> style_rows(std::string_view who, const OpAttributes& attrs, const Shape& style, std::int64_t batch,
                             std::int64_t channels) {
  const StyleRows rows{style.size() == 2 ? style[1] : 0, style.empty() ? 0 : style[0], attrs.i("style_scale", 0),
                       attrs.i("style_shift", 0)};
  const auto fits = [&](std::int64_t at) { return at >= 0 && at + channels <= rows.row_length; };
  if (style.size() != 2 || (rows.row_count != 1 && rows.row_count != batch) || !fits(rows.scale_at) ||
      !fits(rows.shift_at))
    return rule_error(who, "style " + shape_to_string(style) + " must be [N or 1, K] holding C = " +
                               std::to_string(channels) + " scales from " + std::to_string(rows.scale_at) +
                               " and shifts from " + std::to_string(rows.shift_at));
  return rows;
}

Result<bool> channels_last(std::string_view who, const OpAttributes& attrs, const Shape& x) {
  const std::int64_t value = attrs.i("channels_last", 0);
  if (value != 0 && value != 1) return rule_error(who, "channels_last is " + std::to_string(value) + " (0 or 1)");
  if (value == 1 && x.size() != 4) return rule_error(who, "channels_last needs a 4-D input, got " + shape_to_string(x));
  return value == 1;
}

Shape nchw_from_nhwc(const Shape& nhwc) { return {nhwc[0], nhwc[3], nhwc[1], nhwc[2]}; }
Shape nhwc_from_nchw(const Shape& nchw) { return {nchw[0], nchw[2], nchw[3], nchw[1]}; }

Result<GemmGeometry> gemm_geometry(std::string_view who, const OpAttributes& attrs, const Shape& a, const Shape& b,
                                   const Shape& y, const Shape* c) {
  if (a.size() != 2 || b.size() != 2 || y.size() != 2)
    return rule_error(who, "A, B and Y must be 2-D, got A " + shape_to_string(a) + " B " + shape_to_string(b));
  GemmGeometry g;
  g.trans_a = attrs.i("transA", 0) != 0;
  g.trans_b = attrs.i("transB", 0) != 0;
  g.alpha = attrs.f("alpha", 1.0f);
  g.beta = attrs.f("beta", 1.0f);
  g.m = g.trans_a ? a[1] : a[0];
  g.k = g.trans_a ? a[0] : a[1];
  g.n = g.trans_b ? b[0] : b[1];
  if ((g.trans_b ? b[1] : b[0]) != g.k || y[0] != g.m || y[1] != g.n)
    return rule_error(who, "A " + shape_to_string(a) + " and B " + shape_to_string(b) + " do not multiply");
  if (c != nullptr && g.beta != 0.0f) {
    const std::size_t rank = c->size();
    if (rank > 2) return rule_error(who, "C must have rank <= 2, got " + shape_to_string(*c));
    g.c_rows = rank == 2 ? (*c)[0] : 1;
    g.c_cols = rank >= 1 ? (*c)[rank - 1] : 1;
    if ((g.c_rows != 1 && g.c_rows != g.m) || (g.c_cols != 1 && g.c_cols != g.n))
      return rule_error(who, "C " + shape_to_string(*c) + " does not broadcast to [M, N]");
    g.has_c = true;
  }
  return g;
}

Result<MatMulGeometry> mat_mul_geometry(std::string_view who, const Shape& a, const Shape& b, const Shape& y,
                                        const Shape* bias) {
  if (a.empty() || b.empty()) return rule_error(who, "scalar operands are not allowed");
  MatMulGeometry g;
  // numpy: a 1-D A is [1, K] and a 1-D B is [K, 1], the added axis removed from Y.
  g.m = a.size() == 1 ? 1 : a[a.size() - 2];
  g.k = a.back();
  const std::int64_t kb = b.size() == 1 ? b[0] : b[b.size() - 2];
  g.n = b.size() == 1 ? 1 : b.back();
  if (g.k != kb) return rule_error(who, "A " + shape_to_string(a) + " and B " + shape_to_string(b) + " do not multiply");
  const Shape batch_a(a.begin(), a.end() - std::min<std::size_t>(a.size(), 2));
  const Shape batch_b(b.begin(), b.end() - std::min<std::size_t>(b.size(), 2));
  const std::size_t batch_rank = std::max(batch_a.size(), batch_b.size());
  g.batch.assign(batch_rank, 0);
  g.stride_a.assign(batch_rank, 0);
  g.stride_b.assign(batch_rank, 0);
  for (std::size_t i = batch_rank; i-- > 0;) {
    const std::size_t from_right = batch_rank - i;  // 1-based
    const std::int64_t da = from_right <= batch_a.size() ? batch_a[batch_a.size() - from_right] : 1;
    const std::int64_t db = from_right <= batch_b.size() ? batch_b[batch_b.size() - from_right] : 1;
    if (da != db && da != 1 && db != 1)
      return rule_error(who, "batch dims of A " + shape_to_string(a) + " and B " + shape_to_string(b) +
                                 " do not broadcast");
    g.batch[i] = std::max(da, db);
    g.stride_a[i] = da == 1 ? 0 : g.count_a;
    g.stride_b[i] = db == 1 ? 0 : g.count_b;
    g.count_a *= da;
    g.count_b *= db;
  }
  for (const std::int64_t d : g.batch) g.batches *= d;
  if (g.batches * g.m * g.n != shape_elements(y))
    return rule_error(who, "output " + shape_to_string(y) + " does not match A " + shape_to_string(a) + " x B " +
                               shape_to_string(b));
  if (bias != nullptr && shape_elements(*bias) != g.n && shape_elements(*bias) != 1)
    return rule_error(who, "bias " + shape_to_string(*bias) + " does not broadcast over the last axis " +
                               std::to_string(g.n));
  return g;
}

std::vector<MatrixPair> batch_matrices(const MatMulGeometry& g) {
  const std::size_t batch_rank = g.batch.size();
  std::vector<MatrixPair> pairs(static_cast<std::size_t>(g.batches));
  std::vector<std::int64_t> index(batch_rank, 0);
  for (MatrixPair& p : pairs) {
    for (std::size_t i = 0; i < batch_rank; ++i) {
      p.a += index[i] * g.stride_a[i];
      p.b += index[i] * g.stride_b[i];
    }
    for (std::size_t i = batch_rank; i-- > 0;) {
      if (++index[i] < g.batch[i]) break;
      index[i] = 0;
    }
  }
  return pairs;
}

Result<ResizeMode> resize_mode(std::string_view who, const OpAttributes& attrs, bool opset10) {
  ResizeMode m;
  const std::string mode = attrs.s("mode", "nearest");
  if (mode == "linear") {
    m.interp = InterpMode::kLinear;
  } else if (mode == "cubic") {
    m.interp = InterpMode::kCubic;
    m.cubic_a = attrs.f("cubic_coeff_a", -0.75f);
    m.exclude_outside = attrs.i("exclude_outside", 0) != 0;
  } else if (mode != "nearest") {
    return rule_unsupported(who, "mode " + mode + " (nearest, linear and cubic are supported)");
  }
  const std::string coord = attrs.s("coordinate_transformation_mode", opset10 ? "asymmetric" : "half_pixel");
  if (coord == "half_pixel") m.coord = CoordMode::kHalfPixel;
  else if (coord == "half_pixel_symmetric") m.coord = CoordMode::kHalfPixelSymmetric;
  else if (coord == "pytorch_half_pixel") m.coord = CoordMode::kPytorchHalfPixel;
  else if (coord == "align_corners") m.coord = CoordMode::kAlignCorners;
  else if (coord == "asymmetric") m.coord = CoordMode::kAsymmetric;
  else if (coord == "tf_half_pixel_for_nearest") m.coord = CoordMode::kTfHalfPixelForNearest;
  else return rule_unsupported(who, "coordinate_transformation_mode " + coord);
  const std::string nearest = attrs.s("nearest_mode", opset10 ? "floor" : "round_prefer_floor");
  if (nearest == "round_prefer_floor") m.nearest = NearestMode::kRoundPreferFloor;
  else if (nearest == "round_prefer_ceil") m.nearest = NearestMode::kRoundPreferCeil;
  else if (nearest == "floor") m.nearest = NearestMode::kFloor;
  else if (nearest == "ceil") m.nearest = NearestMode::kCeil;
  else return rule_unsupported(who, "nearest_mode " + nearest);
  if (m.interp != InterpMode::kNearest && attrs.i("antialias", 0) != 0) return rule_unsupported(who, "antialias 1");
  return m;
}

Result<ResizeMode> upsample_mode(std::string_view who, const OpAttributes& attrs) {
  ResizeMode m;
  const std::string mode = attrs.s("mode", "nearest");
  if (mode == "linear" || mode == "bilinear") m.interp = InterpMode::kLinear;
  else if (mode != "nearest") return rule_unsupported(who, "mode " + mode);
  m.coord = CoordMode::kAsymmetric;
  m.nearest = NearestMode::kFloor;
  return m;
}

std::vector<float> resize_scales(const Shape& x, const Shape& resized) {
  std::vector<float> s(x.size(), 1.0f);
  for (std::size_t a = 0; a < s.size() && a < resized.size(); ++a)
    if (x[a] > 0) s[a] = static_cast<float>(resized[a]) / static_cast<float>(x[a]);
  return s;
}

}  // namespace fswap
