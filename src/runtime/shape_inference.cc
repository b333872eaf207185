#include "runtime/shape_inference.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "backends/op_rules.h"

namespace fswap {
namespace {

using Ints = std::vector<std::int64_t>;

// One node's view of the graph while its rule runs.
class Ctx {
 public:
  Ctx(Graph& g, const Node& n) : g_(g), n_(n) {}

  const Node& node() const { return n_; }
  std::int64_t opset() const { return g_.opset; }
  const OpAttributes& attrs() const { return n_.attrs; }
  int inputs() const { return static_cast<int>(n_.inputs.size()); }
  int outputs() const { return static_cast<int>(n_.outputs.size()); }
  bool has(int i) const { return i < inputs() && n_.inputs[i] >= 0; }
  bool has_output(int i) const { return i < outputs() && n_.outputs[i] >= 0; }
  const Value& in(int i) const { return g_.values[n_.inputs[i]]; }
  const Shape& shape(int i) const { return in(i).shape; }
  std::int64_t rank(int i) const { return static_cast<std::int64_t>(shape(i).size()); }
  DType dtype(int i) const { return in(i).dtype; }

  // "<path>: node <name> (<op>)", the prefix of this node's errors.
  std::string who() const { return g_.path + ": node " + n_.name + " (" + op_name(n_.op) + ")"; }
  Status error(const std::string& message) const { return invalid_input(who() + ": " + message); }
  Status need_inputs(int count) const {
    for (int i = 0; i < count; ++i)
      if (!has(i)) return error("input " + std::to_string(i) + " is missing");
    return Status::ok();
  }

  // A constant input as integers (int64, int32, int8, uint8, bool). An empty input is {}.
  Result<Ints> ints(int i, const char* what) const {
    const Tensor* t = g_.constant_data(n_.inputs[i]);
    if (!t)
      return unsupported(g_.path + ": node " + n_.name + " (" + op_name(n_.op) + "): its " + what +
                         " input is computed at run time; the native engine needs it constant (use --engine ort)");
    Ints v(static_cast<std::size_t>(t->elements()));
    for (std::size_t k = 0; k < v.size(); ++k) {
      switch (t->dtype()) {
        case DType::kInt64: v[k] = t->data<std::int64_t>()[k]; break;
        case DType::kInt32: v[k] = t->data<std::int32_t>()[k]; break;
        case DType::kInt8: v[k] = t->data<std::int8_t>()[k]; break;
        case DType::kUInt8:
        case DType::kBool: v[k] = t->data<std::uint8_t>()[k]; break;
        default: return error(std::string("the ") + what + " input must be an integer tensor, not " + dtype_name(t->dtype()));
      }
    }
    return v;
  }
  // A constant input as doubles (float32, float64, or integers).
  Result<std::vector<double>> reals(int i, const char* what) const {
    const Tensor* t = g_.constant_data(n_.inputs[i]);
    if (!t)
      return unsupported(g_.path + ": node " + n_.name + " (" + op_name(n_.op) + "): its " + what +
                         " input is computed at run time; the native engine needs it constant (use --engine ort)");
    if (t->dtype() == DType::kFloat32) {
      const float* p = t->data<float>();
      return std::vector<double>(p, p + t->elements());
    }
    if (t->dtype() == DType::kFloat64) {
      const double* p = t->data<double>();
      return std::vector<double>(p, p + t->elements());
    }
    FSWAP_ASSIGN_OR_RETURN(Ints v, ints(i, what));
    return std::vector<double>(v.begin(), v.end());
  }
  bool is_constant(int i) const { return has(i) && g_.constant_data(n_.inputs[i]) != nullptr; }
  const Tensor* constant(int i) const { return has(i) ? g_.constant_data(n_.inputs[i]) : nullptr; }

  Result<std::int64_t> axis(std::int64_t a, std::int64_t rank) const {
    if (a < -rank || a >= rank) return error("axis " + std::to_string(a) + " is out of range for rank " + std::to_string(rank));
    return a < 0 ? a + rank : a;
  }

  void set(int out, DType dtype, Shape shape) {
    if (out >= outputs() || n_.outputs[out] < 0) return;
    Value& v = g_.values[n_.outputs[out]];
    v.dtype = dtype;
    v.shape = std::move(shape);
    v.known_shape = true;
  }

 private:
  Graph& g_;
  const Node& n_;
};

Result<Shape> broadcast(const Ctx& c, const std::vector<Shape>& shapes) {
  std::size_t rank = 0;
  for (const auto& s : shapes) rank = std::max(rank, s.size());
  Shape out(rank, 1);
  for (const auto& s : shapes) {
    const std::size_t off = rank - s.size();
    for (std::size_t i = 0; i < s.size(); ++i) {
      std::int64_t& o = out[off + i];
      const std::int64_t d = s[i];
      if (d == o || d == 1) continue;
      if (o == 1) {
        o = d;
        continue;
      }
      std::string list;
      for (const auto& t : shapes) list += (list.empty() ? "" : " and ") + shape_to_string(t);
      return c.error("shapes " + list + " do not broadcast");
    }
  }
  return out;
}

Status rule_broadcast(Ctx& c, DType out_dtype, bool use_input_dtype) {
  std::vector<Shape> shapes;
  for (int i = 0; i < c.inputs(); ++i)
    if (c.has(i)) shapes.push_back(c.shape(i));
  if (shapes.empty()) return c.error("needs at least one input");
  FSWAP_ASSIGN_OR_RETURN(Shape s, broadcast(c, shapes));
  c.set(0, use_input_dtype ? c.dtype(0) : out_dtype, std::move(s));
  return Status::ok();
}

// Reads axes from input `index` (newer opsets) or attribute "axes" (older ones).
Result<Ints> axes_of(const Ctx& c, int index, bool* given = nullptr) {
  if (c.has(index)) {
    if (given) *given = true;
    return c.ints(index, "axes");
  }
  if (given) *given = c.attrs().has("axes");
  return c.attrs().ints("axes", {});
}

// Output sizes of Conv and the pools along the spatial axes.
Result<Shape> window_output(const Ctx& c, const Shape& in, const Ints& kernel, bool pool) {
  const std::size_t n = kernel.size();
  if (in.size() != n + 2)
    return c.error("input " + shape_to_string(in) + " does not match a " + std::to_string(n) + "-D kernel");
  const Ints strides = c.attrs().ints("strides", Ints(n, 1));
  const Ints dilations = c.attrs().ints("dilations", Ints(n, 1));
  const Ints pads = c.attrs().ints("pads", Ints(2 * n, 0));
  const std::string auto_pad = c.attrs().s("auto_pad", "NOTSET");
  const bool ceil_mode = pool && c.attrs().i("ceil_mode", 0) != 0;
  if (strides.size() != n || dilations.size() != n || pads.size() != 2 * n)
    return c.error("strides, dilations or pads do not match the " + std::to_string(n) + "-D kernel");
  Shape out;
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t x = in[i + 2], s = strides[i];
    const std::int64_t dk = (kernel[i] - 1) * dilations[i] + 1;
    if (s <= 0 || kernel[i] <= 0) return c.error("strides and kernel sizes must be positive");
    std::int64_t o;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      o = (x + s - 1) / s;
    } else if (auto_pad == "VALID") {
      o = ceil_mode ? (x - dk + s) / s : (x - dk) / s + 1;
    } else if (auto_pad == "NOTSET" || auto_pad.empty()) {
      const std::int64_t span = x + pads[i] + pads[i + n] - dk;
      if (span < 0) return c.error("kernel " + std::to_string(dk) + " is larger than the padded input " + shape_to_string(in));
      if (ceil_mode) {
        o = (span + s - 1) / s + 1;
        // The last window must start inside the input or its begin padding (ONNX ≥ 19, PyTorch).
        if ((o - 1) * s >= x + pads[i]) --o;
      } else {
        o = span / s + 1;
      }
    } else {
      return c.error("auto_pad " + auto_pad + " is not an ONNX value");
    }
    if (o <= 0) return c.error("output size along spatial axis " + std::to_string(i) + " is " + std::to_string(o));
    out.push_back(o);
  }
  return out;
}

// Conv's output shape from x = [N, C, spatial...] and w = [M, C/group, kernel...].
Result<Shape> conv_shape(const Ctx& c, const Shape& x, const Shape& w) {
  if (x.size() < 3 || w.size() != x.size()) return c.error("input " + shape_to_string(x) + " and weight " + shape_to_string(w) + " ranks differ");
  const std::int64_t group = c.attrs().i("group", 1);
  if (group <= 0 || x[1] != w[1] * group)
    return c.error("input channels " + std::to_string(x[1]) + " ≠ weight " + shape_to_string(w) + " × group " + std::to_string(group));
  const Ints kernel = c.attrs().ints("kernel_shape", Ints(w.begin() + 2, w.end()));
  FSWAP_ASSIGN_OR_RETURN(Shape spatial, window_output(c, x, kernel, false));
  Shape out{x[0], w[0]};
  out.insert(out.end(), spatial.begin(), spatial.end());
  return out;
}

// ConvTranspose's output shape from x = [N, C, spatial...] and w = [C, M/group, kernel...].
Result<Shape> conv_transpose_shape(const Ctx& c, const Shape& x, const Shape& w) {
  if (x.size() < 3 || w.size() != x.size()) return c.error("input " + shape_to_string(x) + " and weight " + shape_to_string(w) + " ranks differ");
  const std::size_t n = x.size() - 2;
  const std::int64_t group = c.attrs().i("group", 1);
  if (x[1] != w[0]) return c.error("input channels " + std::to_string(x[1]) + " ≠ weight dim 0 of " + shape_to_string(w));
  const Ints kernel = c.attrs().ints("kernel_shape", Ints(w.begin() + 2, w.end()));
  const Ints strides = c.attrs().ints("strides", Ints(n, 1));
  const Ints dilations = c.attrs().ints("dilations", Ints(n, 1));
  const Ints out_pad = c.attrs().ints("output_padding", Ints(n, 0));
  const Ints output_shape = c.attrs().ints("output_shape", {});
  const std::string auto_pad = c.attrs().s("auto_pad", "NOTSET");
  Ints pads = c.attrs().ints("pads", Ints(2 * n, 0));
  if (kernel.size() != n || strides.size() != n || dilations.size() != n || out_pad.size() != n || pads.size() != 2 * n)
    return c.error("kernel_shape, strides, dilations, output_padding or pads do not match the input rank");
  Shape out{x[0], w[1] * group};
  for (std::size_t i = 0; i < n; ++i) {
    std::int64_t o;
    if (!output_shape.empty()) {
      if (output_shape.size() < n) return c.error("output_shape has fewer entries than spatial axes");
      o = output_shape[output_shape.size() - n + i];
    } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      o = x[i + 2] * strides[i];
    } else {
      if (auto_pad == "VALID") pads[i] = pads[i + n] = 0;
      o = strides[i] * (x[i + 2] - 1) + out_pad[i] + (kernel[i] - 1) * dilations[i] + 1 - pads[i] - pads[i + n];
    }
    if (o <= 0) return c.error("output size along spatial axis " + std::to_string(i) + " is " + std::to_string(o));
    out.push_back(o);
  }
  return out;
}

// MaxPool's and AveragePool's output shape from x = [N, C, spatial...].
Result<Shape> pool_shape(const Ctx& c, const Shape& x) {
  if (!c.attrs().has("kernel_shape")) return c.error("kernel_shape is required");
  const Ints kernel = c.attrs().ints("kernel_shape", {});
  FSWAP_ASSIGN_OR_RETURN(Shape spatial, window_output(c, x, kernel, true));
  Shape out{x[0], x[1]};
  out.insert(out.end(), spatial.begin(), spatial.end());
  return out;
}

// A channels_last node's [N, H, W, C] operand in the NCHW terms of the rules above, and back.
Shape as_nchw(const Shape& s, bool nhwc) { return nhwc ? nchw_from_nhwc(s) : s; }
Shape from_nchw(const Shape& s, bool nhwc) { return nhwc ? nhwc_from_nchw(s) : s; }

// X and W of a Conv or ConvTranspose in NCHW terms (a channels_last node's permuted, both 4-D).
struct ConvOperands {
  Shape x, w;
  bool nhwc = false;
};
Result<ConvOperands> conv_operands(const Ctx& c) {
  FSWAP_RETURN_IF_ERROR(c.need_inputs(2));
  FSWAP_ASSIGN_OR_RETURN(const bool nhwc, channels_last(c.who(), c.attrs(), c.shape(0)));
  if (nhwc && c.rank(1) != 4) return c.error("channels_last needs a 4-D weight, got " + shape_to_string(c.shape(1)));
  return ConvOperands{as_nchw(c.shape(0), nhwc), as_nchw(c.shape(1), nhwc), nhwc};
}

// Sets a Conv's or ConvTranspose's output y (NCHW terms) after checking the residual input 3, when
// present, against it: the same shape in the node's layout, or that with batch 1, and the same dtype
// (backends/op.h).
Status set_conv_output(Ctx& c, const ConvOperands& o, const Shape& y) {
  const Shape out = from_nchw(y, o.nhwc);
  if (c.has(3)) {
    const Shape& r = c.shape(3);
    const bool one_item =
        r.size() == out.size() && !r.empty() && r[0] == 1 && std::equal(r.begin() + 1, r.end(), out.begin() + 1);
    if (r != out && !one_item)
      return c.error("the residual input " + shape_to_string(r) + " must have the output's shape " +
                     shape_to_string(out) + " (or that with batch 1; no other broadcasting)");
    if (c.dtype(3) != c.dtype(0))
      return c.error(std::string("the residual input is ") + dtype_name(c.dtype(3)) + ", the input " + dtype_name(c.dtype(0)));
  }
  c.set(0, c.dtype(0), out);
  return Status::ok();
}

Status rule_conv(Ctx& c) {
  FSWAP_ASSIGN_OR_RETURN(const ConvOperands o, conv_operands(c));
  FSWAP_ASSIGN_OR_RETURN(const Shape y, conv_shape(c, o.x, o.w));
  return set_conv_output(c, o, y);
}

Status rule_conv_transpose(Ctx& c) {
  FSWAP_ASSIGN_OR_RETURN(const ConvOperands o, conv_operands(c));
  FSWAP_ASSIGN_OR_RETURN(const Shape y, conv_transpose_shape(c, o.x, o.w));
  return set_conv_output(c, o, y);
}

Status rule_pool(Ctx& c) {
  FSWAP_RETURN_IF_ERROR(c.need_inputs(1));
  FSWAP_ASSIGN_OR_RETURN(const bool nhwc, channels_last(c.who(), c.attrs(), c.shape(0)));
  if (nhwc && c.has_output(1))
    return unsupported(c.who() + ": channels_last with the Indices output (Y only)");
  FSWAP_ASSIGN_OR_RETURN(const Shape y, pool_shape(c, as_nchw(c.shape(0), nhwc)));
  c.set(0, c.dtype(0), from_nchw(y, nhwc));
  c.set(1, DType::kInt64, y);  // MaxPool's Indices (NCHW only)
  return Status::ok();
}

Status rule_matmul(Ctx& c) {
  FSWAP_RETURN_IF_ERROR(c.need_inputs(2));
  Shape a = c.shape(0), b = c.shape(1);
  if (a.empty() || b.empty()) return c.error("MatMul needs inputs of rank ≥ 1");
  const bool a_vec = a.size() == 1, b_vec = b.size() == 1;
  if (a_vec) a.insert(a.begin(), 1);
  if (b_vec) b.push_back(1);
  if (a.back() != b[b.size() - 2])
    return c.error("inner dimensions of " + shape_to_string(c.shape(0)) + " and " + shape_to_string(c.shape(1)) + " differ");
  FSWAP_ASSIGN_OR_RETURN(Shape batch, broadcast(c, {Shape(a.begin(), a.end() - 2), Shape(b.begin(), b.end() - 2)}));
  if (!a_vec) batch.push_back(a[a.size() - 2]);
  if (!b_vec) batch.push_back(b.back());
  c.set(0, c.dtype(0), std::move(batch));
  return Status::ok();
}

Status rule_gemm(Ctx& c) {
  FSWAP_RETURN_IF_ERROR(c.need_inputs(2));
  const Shape& a = c.shape(0);
  const Shape& b = c.shape(1);
  if (a.size() != 2 || b.size() != 2) return c.error("Gemm needs 2-D inputs, got " + shape_to_string(a) + " and " + shape_to_string(b));
  const bool ta = c.attrs().i("transA", 0) != 0, tb = c.attrs().i("transB", 0) != 0;
  const std::int64_t m = ta ? a[1] : a[0], ka = ta ? a[0] : a[1];
  const std::int64_t kb = tb ? b[1] : b[0], n = tb ? b[0] : b[1];
  if (ka != kb) return c.error("inner dimensions of " + shape_to_string(a) + " and " + shape_to_string(b) + " differ");
  if (c.has(2)) FSWAP_RETURN_IF_ERROR(broadcast(c, {c.shape(2), Shape{m, n}}).status());
  c.set(0, c.dtype(0), Shape{m, n});
  return Status::ok();
}

Status rule_reduce(Ctx& c, bool arg) {
  FSWAP_RETURN_IF_ERROR(c.need_inputs(1));
  const Shape& x = c.shape(0);
  const std::int64_t r = static_cast<std::int64_t>(x.size());
  const bool keep = c.attrs().i("keepdims", 1) != 0;
  std::vector<bool> reduce(x.size(), false);
  if (arg) {
    FSWAP_ASSIGN_OR_RETURN(std::int64_t a, c.axis(c.attrs().i("axis", 0), r));
    reduce[a] = true;
  } else {
    FSWAP_ASSIGN_OR_RETURN(Ints axes, axes_of(c, 1));
    if (axes.empty()) {
      if (c.attrs().i("noop_with_empty_axes", 0) != 0) {
        c.set(0, c.dtype(0), x);
        return Status::ok();
      }
      reduce.assign(x.size(), true);
    }
    for (auto a : axes) {
      FSWAP_ASSIGN_OR_RETURN(std::int64_t k, c.axis(a, r));
      reduce[k] = true;
    }
  }
  Shape out;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!reduce[i]) out.push_back(x[i]);
    else if (keep) out.push_back(1);
  }
  c.set(0, arg ? DType::kInt64 : c.dtype(0), std::move(out));
  return Status::ok();
}

Status rule_reshape(Ctx& c) {
  FSWAP_RETURN_IF_ERROR(c.need_inputs(2));
  const Shape& x = c.shape(0);
  FSWAP_ASSIGN_OR_RETURN(Ints target, c.ints(1, "shape"));
  const bool allowzero = c.attrs().i("allowzero", 0) != 0;
  Shape out(target.size());
  int infer = -1;
  std::int64_t known = 1;
  for (std::size_t i = 0; i < target.size(); ++i) {
    std::int64_t d = target[i];
    if (d == 0 && !allowzero) {
      if (i >= x.size()) return c.error("shape " + shape_to_string(target) + " copies dim " + std::to_string(i) + " of " + shape_to_string(x));
      d = x[i];
    }
    if (d == -1) {
      if (infer >= 0) return c.error("shape " + shape_to_string(target) + " has two -1 entries");
      infer = static_cast<int>(i);
      continue;
    }
    if (d < 0) return c.error("shape " + shape_to_string(target) + " has a negative entry");
    out[i] = d;
    known *= d;
  }
  const std::int64_t total = shape_elements(x);
  if (infer >= 0) {
    if (known == 0 || total % known != 0)
      return c.error("cannot reshape " + shape_to_string(x) + " to " + shape_to_string(target));
    out[infer] = total / known;
  } else if (known != total) {
    return c.error("cannot reshape " + shape_to_string(x) + " (" + std::to_string(total) + " elements) to " + shape_to_string(out));
  }
  c.set(0, c.dtype(0), std::move(out));
  return Status::ok();
}

Status rule_slice(Ctx& c) {
  FSWAP_RETURN_IF_ERROR(c.need_inputs(1));
  const Shape& x = c.shape(0);
  const std::int64_t r = static_cast<std::int64_t>(x.size());
  Ints starts, ends, axes, steps;
  if (c.opset() < 10 || !c.has(1)) {
    starts = c.attrs().ints("starts", {});
    ends = c.attrs().ints("ends", {});
    axes = c.attrs().ints("axes", {});
  } else {
    FSWAP_RETURN_IF_ERROR(c.need_inputs(3));
    FSWAP_ASSIGN_OR_RETURN(starts, c.ints(1, "starts"));
    FSWAP_ASSIGN_OR_RETURN(ends, c.ints(2, "ends"));
    if (c.has(3)) {
      FSWAP_ASSIGN_OR_RETURN(axes, c.ints(3, "axes"));
    }
    if (c.has(4)) {
      FSWAP_ASSIGN_OR_RETURN(steps, c.ints(4, "steps"));
    }
  }
  if (axes.empty())
    for (std::size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<std::int64_t>(i));
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
    return c.error("starts, ends, axes and steps have different lengths");
  Shape out = x;
  for (std::size_t i = 0; i < starts.size(); ++i) {
    FSWAP_ASSIGN_OR_RETURN(std::int64_t a, c.axis(axes[i], r));
    const std::int64_t dim = x[a], step = steps[i];
    if (step == 0) return c.error("a slice step is 0");
    std::int64_t s = starts[i], e = ends[i];
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    if (step > 0) {
      s = std::clamp<std::int64_t>(s, 0, dim);
      e = std::clamp<std::int64_t>(e, 0, dim);
      out[a] = e > s ? (e - s + step - 1) / step : 0;
    } else {
      s = std::clamp<std::int64_t>(s, 0, dim - 1);
      e = std::clamp<std::int64_t>(e, -1, dim - 1);
      out[a] = s > e ? (s - e - step - 1) / -step : 0;
    }
  }
  c.set(0, c.dtype(0), std::move(out));
  return Status::ok();
}

Status rule_split(Ctx& c) {
  FSWAP_RETURN_IF_ERROR(c.need_inputs(1));
  const Shape& x = c.shape(0);
  FSWAP_ASSIGN_OR_RETURN(std::int64_t a, c.axis(c.attrs().i("axis", 0), static_cast<std::int64_t>(x.size())));
  Ints sizes;
  if (c.has(1)) {
    FSWAP_ASSIGN_OR_RETURN(sizes, c.ints(1, "split"));
  } else {
    sizes = c.attrs().ints("split", {});
  }
  const std::int64_t dim = x[a];
  if (sizes.empty()) {
    const std::int64_t parts = c.attrs().i("num_outputs", c.outputs());
    if (parts <= 0) return c.error("has no outputs");
    const std::int64_t chunk = (dim + parts - 1) / parts;
    if (dim % parts != 0 && !c.attrs().has("num_outputs"))
      return c.error("axis of size " + std::to_string(dim) + " does not split evenly into " + std::to_string(parts));
    for (std::int64_t i = 0; i < parts; ++i) sizes.push_back(std::min(chunk, dim - chunk * i));
  }
  if (std::accumulate(sizes.begin(), sizes.end(), std::int64_t{0}) != dim || static_cast<int>(sizes.size()) != c.outputs())
    return c.error("split sizes " + shape_to_string(sizes) + " do not cover axis of size " + std::to_string(dim) + " with " +
                   std::to_string(c.outputs()) + " outputs");
  for (int i = 0; i < c.outputs(); ++i) {
    Shape s = x;
    s[a] = sizes[i];
    c.set(i, c.dtype(0), std::move(s));
  }
  return Status::ok();
}

Status rule_concat(Ctx& c) {
  FSWAP_RETURN_IF_ERROR(c.need_inputs(1));
  Shape out = c.shape(0);
  FSWAP_ASSIGN_OR_RETURN(std::int64_t a, c.axis(c.attrs().i("axis", 0), static_cast<std::int64_t>(out.size())));
  out[a] = 0;
  for (int i = 0; i < c.inputs(); ++i) {
    if (!c.has(i)) continue;
    const Shape& s = c.shape(i);
    if (s.size() != out.size()) return c.error("inputs " + shape_to_string(c.shape(0)) + " and " + shape_to_string(s) + " differ in rank");
    for (std::size_t k = 0; k < s.size(); ++k)
      if (static_cast<std::int64_t>(k) != a && s[k] != out[k])
        return c.error("inputs " + shape_to_string(c.shape(0)) + " and " + shape_to_string(s) + " differ off the concat axis");
    out[a] += s[a];
  }
  c.set(0, c.dtype(0), std::move(out));
  return Status::ok();
}

Status rule_resize(Ctx& c) {
  FSWAP_RETURN_IF_ERROR(c.need_inputs(1));
  const Shape& x = c.shape(0);
  const std::int64_t r = static_cast<std::int64_t>(x.size());
  int scales_in = 1, sizes_in = -1;
  if (c.node().op == OpType::kResize && c.opset() >= 11) scales_in = 2, sizes_in = 3;
  Ints axes = c.attrs().ints("axes", {});
  if (axes.empty())
    for (std::int64_t i = 0; i < r; ++i) axes.push_back(i);
  for (auto& axis : axes) {
    FSWAP_ASSIGN_OR_RETURN(axis, c.axis(axis, r));
  }
  Shape out = x;
  const Tensor* sizes_t = sizes_in >= 0 ? c.constant(sizes_in) : nullptr;
  if (sizes_in >= 0 && c.has(sizes_in) && !sizes_t) return c.ints(sizes_in, "sizes").status();
  if (sizes_t && sizes_t->elements() > 0) {
    FSWAP_ASSIGN_OR_RETURN(Ints sizes, c.ints(sizes_in, "sizes"));
    if (sizes.size() != axes.size()) return c.error("sizes " + shape_to_string(sizes) + " do not match the axes");
    const std::string policy = c.attrs().s("keep_aspect_ratio_policy", "stretch");
    if (policy == "stretch") {
      for (std::size_t i = 0; i < axes.size(); ++i) out[axes[i]] = sizes[i];
    } else {
      double scale = policy == "not_larger" ? 1e300 : 0;
      for (std::size_t i = 0; i < axes.size(); ++i) {
        const double s = static_cast<double>(sizes[i]) / static_cast<double>(x[axes[i]]);
        scale = policy == "not_larger" ? std::min(scale, s) : std::max(scale, s);
      }
      for (auto axis : axes) out[axis] = static_cast<std::int64_t>(std::round(scale * static_cast<double>(x[axis])));
    }
  } else {
    std::vector<double> scales;
    if (c.has(scales_in)) {
      FSWAP_ASSIGN_OR_RETURN(scales, c.reals(scales_in, "scales"));
    } else {
      const auto f = c.attrs().floats("scales", {});  // Upsample before opset 9
      scales.assign(f.begin(), f.end());
    }
    if (scales.size() != axes.size())
      return c.error("needs scales or sizes for each of the " + std::to_string(axes.size()) + " axes");
    for (std::size_t i = 0; i < axes.size(); ++i) {
      if (scales[i] <= 0) return c.error("scales must be positive");
      // Scales are float32 in the file; multiply in that precision's exact double value.
      out[axes[i]] = static_cast<std::int64_t>(std::floor(static_cast<double>(x[axes[i]]) * static_cast<double>(static_cast<float>(scales[i]))));
    }
  }
  c.set(0, c.dtype(0), std::move(out));
  return Status::ok();
}

Status rule_pad(Ctx& c) {
  FSWAP_RETURN_IF_ERROR(c.need_inputs(1));
  const Shape& x = c.shape(0);
  const std::int64_t r = static_cast<std::int64_t>(x.size());
  Ints pads;
  if (c.has(1)) {
    FSWAP_ASSIGN_OR_RETURN(pads, c.ints(1, "pads"));
  } else {
    pads = c.attrs().ints("pads", {});
  }
  Ints axes;
  if (c.has(3)) {
    FSWAP_ASSIGN_OR_RETURN(axes, c.ints(3, "axes"));
  } else {
    for (std::int64_t i = 0; i < r; ++i) axes.push_back(i);
  }
  const std::size_t n = axes.size();
  if (pads.size() != 2 * n) return c.error("pads " + shape_to_string(pads) + " need 2 entries per axis of " + shape_to_string(x));
  Shape out = x;
  for (std::size_t i = 0; i < n; ++i) {
    FSWAP_ASSIGN_OR_RETURN(std::int64_t a, c.axis(axes[i], r));
    out[a] += pads[i] + pads[i + n];
    if (out[a] < 0) return c.error("pads " + shape_to_string(pads) + " remove more than " + shape_to_string(x) + " holds");
  }
  c.set(0, c.dtype(0), std::move(out));
  return Status::ok();
}

Status rule_constant(Ctx& c) {
  const auto& a = c.attrs();
  if (const Tensor* t = a.tensor("value")) {
    c.set(0, t->dtype(), t->shape());
  } else if (a.has("value_float")) {
    c.set(0, DType::kFloat32, {});
  } else if (a.has("value_floats")) {
    c.set(0, DType::kFloat32, {static_cast<std::int64_t>(a.floats("value_floats", {}).size())});
  } else if (a.has("value_int")) {
    c.set(0, DType::kInt64, {});
  } else if (a.has("value_ints")) {
    c.set(0, DType::kInt64, {static_cast<std::int64_t>(a.ints("value_ints", {}).size())});
  } else {
    return unsupported(c.error("holds no tensor, float or int value (sparse and string constants are not supported)").message());
  }
  return Status::ok();
}

Status rule_squeeze(Ctx& c) {
  FSWAP_RETURN_IF_ERROR(c.need_inputs(1));
  const Shape& x = c.shape(0);
  const std::int64_t r = static_cast<std::int64_t>(x.size());
  FSWAP_ASSIGN_OR_RETURN(Ints axes, axes_of(c, 1));
  std::vector<bool> drop(x.size(), false);
  if (axes.empty())
    for (std::size_t i = 0; i < x.size(); ++i) drop[i] = x[i] == 1;
  for (auto a : axes) {
    FSWAP_ASSIGN_OR_RETURN(std::int64_t k, c.axis(a, r));
    if (x[k] != 1) return c.error("cannot squeeze axis " + std::to_string(a) + " of " + shape_to_string(x));
    drop[k] = true;
  }
  Shape out;
  for (std::size_t i = 0; i < x.size(); ++i)
    if (!drop[i]) out.push_back(x[i]);
  c.set(0, c.dtype(0), std::move(out));
  return Status::ok();
}

Status rule_unsqueeze(Ctx& c) {
  FSWAP_RETURN_IF_ERROR(c.need_inputs(1));
  const Shape& x = c.shape(0);
  FSWAP_ASSIGN_OR_RETURN(Ints axes, axes_of(c, 1));
  const std::int64_t r = static_cast<std::int64_t>(x.size() + axes.size());
  std::vector<bool> inserted(r, false);
  for (auto a : axes) {
    FSWAP_ASSIGN_OR_RETURN(std::int64_t k, c.axis(a, r));
    if (inserted[k]) return c.error("axis " + std::to_string(a) + " appears twice");
    inserted[k] = true;
  }
  Shape out;
  std::size_t next = 0;
  for (std::int64_t i = 0; i < r; ++i) out.push_back(inserted[i] ? 1 : x[next++]);
  c.set(0, c.dtype(0), std::move(out));
  return Status::ok();
}

Status rule_same(Ctx& c) {
  FSWAP_RETURN_IF_ERROR(c.need_inputs(1));
  c.set(0, c.dtype(0), c.shape(0));
  return Status::ok();
}

Status infer(Ctx& c) {
  const auto& a = c.attrs();
  switch (c.node().op) {
    case OpType::kAbs: case OpType::kNeg: case OpType::kReciprocal: case OpType::kSqrt: case OpType::kExp:
    case OpType::kLog: case OpType::kFloor: case OpType::kCeil: case OpType::kRound: case OpType::kSin:
    case OpType::kCos: case OpType::kErf: case OpType::kNot: case OpType::kIdentity: case OpType::kRelu:
    case OpType::kLeakyRelu: case OpType::kElu: case OpType::kSelu: case OpType::kSigmoid:
    case OpType::kHardSigmoid: case OpType::kHardSwish: case OpType::kTanh: case OpType::kSoftplus:
    case OpType::kSoftsign: case OpType::kGelu: case OpType::kMish: case OpType::kClip: case OpType::kSoftmax:
    case OpType::kLogSoftmax: case OpType::kInstanceNormalization: case OpType::kLpNormalization:
    case OpType::kScatterND: case OpType::kFilterResponseNorm:
      return rule_same(c);
    case OpType::kDropout:
      FSWAP_RETURN_IF_ERROR(rule_same(c));
      c.set(1, DType::kBool, c.shape(0));
      return Status::ok();
    case OpType::kCast: {
      FSWAP_RETURN_IF_ERROR(c.need_inputs(1));
      auto to = dtype_from_onnx(a.i("to", 0));
      if (!to) return unsupported(c.error(to.status().message()).message());
      c.set(0, *to, c.shape(0));
      return Status::ok();
    }
    case OpType::kPRelu: case OpType::kAdd: case OpType::kSub: case OpType::kMul: case OpType::kDiv:
    case OpType::kPow: case OpType::kMod: case OpType::kMin: case OpType::kMax: case OpType::kSum:
    case OpType::kMean:
      FSWAP_RETURN_IF_ERROR(c.need_inputs(1));
      return rule_broadcast(c, c.dtype(0), true);
    case OpType::kEqual: case OpType::kLess: case OpType::kLessOrEqual: case OpType::kGreater:
    case OpType::kGreaterOrEqual: case OpType::kAnd: case OpType::kOr: case OpType::kXor:
      FSWAP_RETURN_IF_ERROR(c.need_inputs(2));
      return rule_broadcast(c, DType::kBool, false);
    case OpType::kWhere: {
      FSWAP_RETURN_IF_ERROR(c.need_inputs(3));
      FSWAP_ASSIGN_OR_RETURN(Shape s, broadcast(c, {c.shape(0), c.shape(1), c.shape(2)}));
      c.set(0, c.dtype(1), std::move(s));
      return Status::ok();
    }
    case OpType::kMatMul: return rule_matmul(c);
    case OpType::kGemm: return rule_gemm(c);
    case OpType::kConv: return rule_conv(c);
    case OpType::kConvTranspose: return rule_conv_transpose(c);
    case OpType::kBatchNormalization: {
      FSWAP_RETURN_IF_ERROR(rule_same(c));
      const Shape& x = c.shape(0);
      if (x.size() < 2) return c.error("input " + shape_to_string(x) + " has no channel axis");
      for (int i = 1; i < c.outputs(); ++i) c.set(i, c.dtype(0), {x[1]});  // training-mode statistics
      return Status::ok();
    }
    case OpType::kLayerNormalization: {
      FSWAP_RETURN_IF_ERROR(rule_same(c));
      const Shape& x = c.shape(0);
      FSWAP_ASSIGN_OR_RETURN(std::int64_t ax, c.axis(a.i("axis", -1), c.rank(0)));
      Shape stat = x;
      for (std::size_t i = static_cast<std::size_t>(ax); i < stat.size(); ++i) stat[i] = 1;
      c.set(1, DType::kFloat32, stat);
      c.set(2, DType::kFloat32, stat);
      return Status::ok();
    }
    case OpType::kMaxPool: case OpType::kAveragePool: return rule_pool(c);
    case OpType::kGlobalAveragePool: case OpType::kGlobalMaxPool: {
      FSWAP_RETURN_IF_ERROR(c.need_inputs(1));
      Shape s = c.shape(0);
      if (s.size() < 3) return c.error("input " + shape_to_string(s) + " has no spatial axes");
      std::fill(s.begin() + 2, s.end(), 1);
      c.set(0, c.dtype(0), std::move(s));
      return Status::ok();
    }
    case OpType::kReduceMean: case OpType::kReduceSum: case OpType::kReduceMax: case OpType::kReduceMin:
    case OpType::kReduceProd: case OpType::kReduceL2: case OpType::kReduceSumSquare:
      return rule_reduce(c, false);
    case OpType::kArgMax: case OpType::kArgMin: return rule_reduce(c, true);
    case OpType::kReshape: return rule_reshape(c);
    case OpType::kFlatten: {
      FSWAP_RETURN_IF_ERROR(c.need_inputs(1));
      const Shape& x = c.shape(0);
      std::int64_t ax = a.i("axis", 1);
      if (ax < 0) ax += c.rank(0);
      if (ax < 0 || ax > c.rank(0)) return c.error("axis " + std::to_string(a.i("axis", 1)) + " is out of range");
      std::int64_t outer = 1, inner = 1;
      for (std::int64_t i = 0; i < c.rank(0); ++i) (i < ax ? outer : inner) *= x[i];
      c.set(0, c.dtype(0), {outer, inner});
      return Status::ok();
    }
    case OpType::kTranspose: {
      FSWAP_RETURN_IF_ERROR(c.need_inputs(1));
      const Shape& x = c.shape(0);
      Ints perm = a.ints("perm", {});
      if (perm.empty())
        for (std::int64_t i = c.rank(0) - 1; i >= 0; --i) perm.push_back(i);
      if (static_cast<std::int64_t>(perm.size()) != c.rank(0)) return c.error("perm " + shape_to_string(perm) + " does not match " + shape_to_string(x));
      Shape out;
      std::vector<bool> seen(x.size(), false);
      for (auto p : perm) {
        FSWAP_ASSIGN_OR_RETURN(std::int64_t k, c.axis(p, c.rank(0)));
        if (seen[k]) return c.error("perm " + shape_to_string(perm) + " is not a permutation");
        seen[k] = true;
        out.push_back(x[k]);
      }
      c.set(0, c.dtype(0), std::move(out));
      return Status::ok();
    }
    case OpType::kSqueeze: return rule_squeeze(c);
    case OpType::kUnsqueeze: return rule_unsqueeze(c);
    case OpType::kConcat: return rule_concat(c);
    case OpType::kSplit: return rule_split(c);
    case OpType::kSlice: return rule_slice(c);
    case OpType::kGather: {
      FSWAP_RETURN_IF_ERROR(c.need_inputs(2));
      const Shape& x = c.shape(0);
      FSWAP_ASSIGN_OR_RETURN(std::int64_t ax, c.axis(a.i("axis", 0), c.rank(0)));
      Shape out(x.begin(), x.begin() + ax);
      out.insert(out.end(), c.shape(1).begin(), c.shape(1).end());
      out.insert(out.end(), x.begin() + ax + 1, x.end());
      c.set(0, c.dtype(0), std::move(out));
      return Status::ok();
    }
    case OpType::kGatherElements: {
      FSWAP_RETURN_IF_ERROR(c.need_inputs(2));
      if (c.rank(0) != c.rank(1)) return c.error("data and indices differ in rank");
      c.set(0, c.dtype(0), c.shape(1));
      return Status::ok();
    }
    case OpType::kExpand: {
      FSWAP_RETURN_IF_ERROR(c.need_inputs(2));
      FSWAP_ASSIGN_OR_RETURN(Ints target, c.ints(1, "shape"));
      FSWAP_ASSIGN_OR_RETURN(Shape s, broadcast(c, {c.shape(0), target}));
      c.set(0, c.dtype(0), std::move(s));
      return Status::ok();
    }
    case OpType::kTile: {
      FSWAP_RETURN_IF_ERROR(c.need_inputs(2));
      FSWAP_ASSIGN_OR_RETURN(Ints repeats, c.ints(1, "repeats"));
      Shape s = c.shape(0);
      if (repeats.size() != s.size()) return c.error("repeats " + shape_to_string(repeats) + " do not match " + shape_to_string(s));
      for (std::size_t i = 0; i < s.size(); ++i) s[i] *= repeats[i];
      c.set(0, c.dtype(0), std::move(s));
      return Status::ok();
    }
    case OpType::kPad: return rule_pad(c);
    case OpType::kResize: case OpType::kUpsample: return rule_resize(c);
    case OpType::kDepthToSpace: case OpType::kSpaceToDepth: {
      FSWAP_RETURN_IF_ERROR(c.need_inputs(1));
      Shape s = c.shape(0);
      const std::int64_t b = a.i("blocksize", 0);
      if (s.size() != 4 || b <= 0) return c.error("needs a 4-D input and a positive blocksize");
      if (c.node().op == OpType::kDepthToSpace) {
        if (s[1] % (b * b) != 0) return c.error("channels " + std::to_string(s[1]) + " are not divisible by blocksize²");
        s = {s[0], s[1] / (b * b), s[2] * b, s[3] * b};
      } else {
        if (s[2] % b != 0 || s[3] % b != 0) return c.error("spatial size is not divisible by the blocksize");
        s = {s[0], s[1] * b * b, s[2] / b, s[3] / b};
      }
      c.set(0, c.dtype(0), std::move(s));
      return Status::ok();
    }
    case OpType::kTopK: {
      FSWAP_RETURN_IF_ERROR(c.need_inputs(1));
      Shape s = c.shape(0);
      FSWAP_ASSIGN_OR_RETURN(std::int64_t ax, c.axis(a.i("axis", -1), c.rank(0)));
      std::int64_t k = a.i("k", -1);
      if (c.has(1)) {
        FSWAP_ASSIGN_OR_RETURN(Ints kv, c.ints(1, "K"));
        if (kv.size() != 1) return c.error("K must hold one value");
        k = kv[0];
      }
      if (k < 0 || k > s[ax]) return c.error("K = " + std::to_string(k) + " does not fit axis of size " + std::to_string(s[ax]));
      s[ax] = k;
      c.set(0, c.dtype(0), s);
      c.set(1, DType::kInt64, s);
      return Status::ok();
    }
    case OpType::kShape: {
      FSWAP_RETURN_IF_ERROR(c.need_inputs(1));
      const std::int64_t r = c.rank(0);
      std::int64_t start = a.i("start", 0), end = a.i("end", r);
      if (start < 0) start += r;
      if (end < 0) end += r;
      start = std::clamp<std::int64_t>(start, 0, r);
      end = std::clamp<std::int64_t>(end, 0, r);
      c.set(0, DType::kInt64, {std::max<std::int64_t>(end - start, 0)});
      return Status::ok();
    }
    case OpType::kSize:
      FSWAP_RETURN_IF_ERROR(c.need_inputs(1));
      c.set(0, DType::kInt64, {});
      return Status::ok();
    case OpType::kConstantOfShape: {
      FSWAP_RETURN_IF_ERROR(c.need_inputs(1));
      FSWAP_ASSIGN_OR_RETURN(Ints s, c.ints(0, "shape"));
      for (auto d : s)
        if (d < 0) return c.error("shape " + shape_to_string(s) + " has a negative entry");
      const Tensor* v = a.tensor("value");
      c.set(0, v ? v->dtype() : DType::kFloat32, std::move(s));
      return Status::ok();
    }
    case OpType::kConstant: return rule_constant(c);
    case OpType::kRange: {
      FSWAP_RETURN_IF_ERROR(c.need_inputs(3));
      FSWAP_ASSIGN_OR_RETURN(auto start, c.reals(0, "start"));
      FSWAP_ASSIGN_OR_RETURN(auto limit, c.reals(1, "limit"));
      FSWAP_ASSIGN_OR_RETURN(auto delta, c.reals(2, "delta"));
      if (start.size() != 1 || limit.size() != 1 || delta.size() != 1) return c.error("start, limit and delta must be scalars");
      if (delta[0] == 0) return c.error("delta is 0");
      const double n = std::ceil((limit[0] - start[0]) / delta[0]);
      c.set(0, c.dtype(0), {std::max<std::int64_t>(static_cast<std::int64_t>(n), 0)});
      return Status::ok();
    }
    case OpType::kCount: break;
  }
  return c.error("has no shape rule");
}

// ---- evaluate_shape_op: small integer (and float) tensors computed on the spot. ----

// Numbers held as doubles when the dtype is floating, else as int64.
struct Num {
  bool real = false;
  std::vector<std::int64_t> i;
  std::vector<double> f;
  std::size_t size() const { return real ? f.size() : i.size(); }
  double at_f(std::size_t k) const { return real ? f[k] : static_cast<double>(i[k]); }
  std::int64_t at_i(std::size_t k) const { return real ? static_cast<std::int64_t>(f[k]) : i[k]; }
};

bool is_real(DType d) { return d == DType::kFloat32 || d == DType::kFloat64 || d == DType::kFloat16; }

std::optional<Num> read_num(const Tensor& t) {
  Num n;
  const std::size_t count = static_cast<std::size_t>(t.elements());
  switch (t.dtype()) {
    case DType::kFloat32: n.real = true; n.f.assign(t.data<float>(), t.data<float>() + count); break;
    case DType::kFloat64: n.real = true; n.f.assign(t.data<double>(), t.data<double>() + count); break;
    case DType::kInt64: n.i.assign(t.data<std::int64_t>(), t.data<std::int64_t>() + count); break;
    case DType::kInt32: n.i.assign(t.data<std::int32_t>(), t.data<std::int32_t>() + count); break;
    case DType::kInt8: n.i.assign(t.data<std::int8_t>(), t.data<std::int8_t>() + count); break;
    case DType::kUInt8:
    case DType::kBool: n.i.assign(t.data<std::uint8_t>(), t.data<std::uint8_t>() + count); break;
    case DType::kFloat16: return std::nullopt;
  }
  return n;
}

std::optional<Tensor> write_num(DType dtype, const Shape& shape, const Num& n) {
  Tensor t = Tensor::zeros(dtype, shape);
  if (static_cast<std::size_t>(t.elements()) != n.size()) return std::nullopt;
  for (std::size_t k = 0; k < n.size(); ++k) {
    switch (dtype) {
      case DType::kFloat32: t.data<float>()[k] = static_cast<float>(n.at_f(k)); break;
      case DType::kFloat64: t.data<double>()[k] = n.at_f(k); break;
      case DType::kInt64: t.data<std::int64_t>()[k] = n.at_i(k); break;
      case DType::kInt32: t.data<std::int32_t>()[k] = static_cast<std::int32_t>(n.at_i(k)); break;
      case DType::kInt8: t.data<std::int8_t>()[k] = static_cast<std::int8_t>(n.at_i(k)); break;
      case DType::kUInt8: t.data<std::uint8_t>()[k] = static_cast<std::uint8_t>(n.at_i(k)); break;
      case DType::kBool: t.data<std::uint8_t>()[k] = n.real ? n.f[k] != 0 : n.i[k] != 0; break;
      case DType::kFloat16: return std::nullopt;
    }
  }
  return t;
}

// Flat index into `in` (broadcast to `out`) of flat output index k.
std::size_t broadcast_index(const Shape& out, const Shape& in, std::size_t k) {
  std::size_t idx = 0, stride = 1;
  auto rem = static_cast<std::int64_t>(k);
  for (std::size_t d = out.size(); d-- > 0;) {
    const std::int64_t coord = rem % out[d];
    rem /= out[d];
    const std::size_t off = out.size() - in.size();
    if (d < off) continue;
    const std::int64_t dim = in[d - off];
    if (dim != 1) idx += static_cast<std::size_t>(coord) * stride;
    stride *= static_cast<std::size_t>(dim);
  }
  return idx;
}

// Gathers elements of `src` (shape in) at output positions: out multi-index → in flat index.
template <class F>
Num remap(const Num& src, const Shape& out, F&& index_of) {
  Num r;
  r.real = src.real;
  const auto n = static_cast<std::size_t>(shape_elements(out));
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t from = index_of(k);
    if (r.real) r.f.push_back(src.f[from]);
    else r.i.push_back(src.i[from]);
  }
  return r;
}

}  // namespace

Result<DType> dtype_from_onnx(std::int64_t onnx_type) {
  switch (onnx_type) {
    case 1: return DType::kFloat32;
    case 2: return DType::kUInt8;
    case 3: return DType::kInt8;
    case 6: return DType::kInt32;
    case 7: return DType::kInt64;
    case 9: return DType::kBool;
    case 10: return DType::kFloat16;
    case 11: return DType::kFloat64;
    default:
      return unsupported("ONNX element type " + std::to_string(onnx_type) +
                         " is not supported by the native engine (float32/16/64, int64/32/8, uint8, bool are)");
  }
}

Status infer_node_shapes(Graph& g, const Node& node) {
  Ctx c(g, node);
  for (int i = 0; i < c.inputs(); ++i)
    if (c.has(i) && !c.in(i).known_shape)
      return c.error("input " + c.in(i).name + " has no shape yet (" + shape_to_string(c.in(i).shape) + ")");
  return infer(c);
}

Status infer_shapes(Graph& g) {
  for (const Node& n : g.nodes) FSWAP_RETURN_IF_ERROR(infer_node_shapes(g, n));
  return Status::ok();
}

std::optional<Tensor> evaluate_shape_op(const Graph& g, const Node& node) {
  constexpr std::int64_t kMaxElements = 4096;
  const auto& a = node.attrs;
  if (node.outputs.empty() || node.outputs[0] < 0) return std::nullopt;
  const Value& out = g.values[node.outputs[0]];

  if (node.op == OpType::kConstant) {
    if (const Tensor* t = a.tensor("value")) return *t;
    if (a.has("value_float")) {
      Tensor t = Tensor::zeros(DType::kFloat32, {});
      t.data<float>()[0] = a.f("value_float", 0);
      return t;
    }
    if (a.has("value_floats")) {
      auto v = a.floats("value_floats", {});
      Tensor t = Tensor::zeros(DType::kFloat32, {static_cast<std::int64_t>(v.size())});
      std::copy(v.begin(), v.end(), t.data<float>());
      return t;
    }
    if (a.has("value_int")) {
      Tensor t = Tensor::zeros(DType::kInt64, {});
      t.data<std::int64_t>()[0] = a.i("value_int", 0);
      return t;
    }
    if (a.has("value_ints")) {
      auto v = a.ints("value_ints", {});
      Tensor t = Tensor::zeros(DType::kInt64, {static_cast<std::int64_t>(v.size())});
      std::copy(v.begin(), v.end(), t.data<std::int64_t>());
      return t;
    }
    return std::nullopt;
  }
  if (node.outputs.size() != 1 || !out.known_shape || shape_elements(out.shape) > kMaxElements) return std::nullopt;
  auto in_value = [&](std::size_t i) -> const Value* {
    return i < node.inputs.size() && node.inputs[i] >= 0 ? &g.values[node.inputs[i]] : nullptr;
  };
  if (node.op == OpType::kShape || node.op == OpType::kSize) {
    const Value* x = in_value(0);
    if (!x || !x->known_shape) return std::nullopt;
    Num n;
    if (node.op == OpType::kSize) {
      n.i = {shape_elements(x->shape)};
    } else {
      const auto r = static_cast<std::int64_t>(x->shape.size());
      std::int64_t start = a.i("start", 0), end = a.i("end", r);
      if (start < 0) start += r;
      if (end < 0) end += r;
      start = std::clamp<std::int64_t>(start, 0, r);
      end = std::clamp<std::int64_t>(end, 0, r);
      for (std::int64_t k = start; k < end; ++k) n.i.push_back(x->shape[k]);
    }
    return write_num(out.dtype, out.shape, n);
  }

  // Everything else needs every present input constant and small.
  std::vector<std::optional<Num>> in(node.inputs.size());
  std::vector<Shape> shapes(node.inputs.size());
  for (std::size_t i = 0; i < node.inputs.size(); ++i) {
    if (node.inputs[i] < 0) continue;
    const Tensor* t = g.constant_data(node.inputs[i]);
    if (!t || t->elements() > kMaxElements) return std::nullopt;
    in[i] = read_num(*t);
    if (!in[i]) return std::nullopt;
    shapes[i] = t->shape();
  }
  if (in.empty() || !in[0]) return std::nullopt;
  const Num& x = *in[0];
  const Shape& xs = shapes[0];
  const Shape& os = out.shape;
  const bool real_out = is_real(out.dtype);

  switch (node.op) {
    case OpType::kIdentity: case OpType::kReshape: case OpType::kFlatten: case OpType::kSqueeze:
    case OpType::kUnsqueeze: case OpType::kCast:
      return write_num(out.dtype, os, x);
    case OpType::kNeg: {
      Num r = x;
      for (auto& v : r.i) v = -v;
      for (auto& v : r.f) v = -v;
      return write_num(out.dtype, os, r);
    }
    case OpType::kAdd: case OpType::kSub: case OpType::kMul: case OpType::kDiv: case OpType::kMin:
    case OpType::kMax: case OpType::kEqual: case OpType::kLess: case OpType::kGreater: {
      if (node.inputs.size() != 2 || !in[1]) return std::nullopt;
      const Num& y = *in[1];
      const bool real = x.real || y.real;
      Num r;
      r.real = real && node.op != OpType::kEqual && node.op != OpType::kLess && node.op != OpType::kGreater;
      const auto n = static_cast<std::size_t>(shape_elements(os));
      for (std::size_t k = 0; k < n; ++k) {
        const std::size_t ix = broadcast_index(os, xs, k), iy = broadcast_index(os, shapes[1], k);
        if (real) {
          const double p = x.at_f(ix), q = y.at_f(iy);
          double v = 0;
          switch (node.op) {
            case OpType::kAdd: v = p + q; break;
            case OpType::kSub: v = p - q; break;
            case OpType::kMul: v = p * q; break;
            case OpType::kDiv: v = p / q; break;
            case OpType::kMin: v = std::min(p, q); break;
            case OpType::kMax: v = std::max(p, q); break;
            case OpType::kEqual: v = p == q; break;
            case OpType::kLess: v = p < q; break;
            default: v = p > q; break;
          }
          if (r.real) r.f.push_back(v);
          else r.i.push_back(static_cast<std::int64_t>(v));
        } else {
          const std::int64_t p = x.i[ix], q = y.i[iy];
          std::int64_t v = 0;
          switch (node.op) {
            case OpType::kAdd: v = p + q; break;
            case OpType::kSub: v = p - q; break;
            case OpType::kMul: v = p * q; break;
            case OpType::kDiv:
              if (q == 0) return std::nullopt;
              v = p / q;
              break;
            case OpType::kMin: v = std::min(p, q); break;
            case OpType::kMax: v = std::max(p, q); break;
            case OpType::kEqual: v = p == q; break;
            case OpType::kLess: v = p < q; break;
            default: v = p > q; break;
          }
          r.i.push_back(v);
        }
      }
      return write_num(out.dtype, os, r);
    }
    case OpType::kWhere: {
      if (node.inputs.size() != 3 || !in[1] || !in[2] || in[1]->real != in[2]->real) return std::nullopt;
      const auto n = static_cast<std::size_t>(shape_elements(os));
      Num r;
      r.real = in[1]->real;
      for (std::size_t k = 0; k < n; ++k) {
        const bool cond = x.at_i(broadcast_index(os, xs, k)) != 0;
        const Num& src = cond ? *in[1] : *in[2];
        const std::size_t idx = broadcast_index(os, cond ? shapes[1] : shapes[2], k);
        if (r.real) r.f.push_back(src.f[idx]);
        else r.i.push_back(src.i[idx]);
      }
      return write_num(out.dtype, os, r);
    }
    case OpType::kExpand:
      return write_num(out.dtype, os, remap(x, os, [&](std::size_t k) { return broadcast_index(os, xs, k); }));
    case OpType::kGather: {
      if (!in[1]) return std::nullopt;
      const auto r = static_cast<std::int64_t>(xs.size());
      std::int64_t ax = a.i("axis", 0);
      if (ax < 0) ax += r;
      if (ax < 0 || ax >= r) return std::nullopt;
      std::int64_t inner = 1;
      for (std::int64_t d = ax + 1; d < r; ++d) inner *= xs[d];
      const std::int64_t dim = xs[ax];
      const auto idx_count = static_cast<std::int64_t>(in[1]->size());
      for (std::size_t k = 0; k < in[1]->size(); ++k) {
        const std::int64_t v = in[1]->at_i(k);
        if (v < -dim || v >= dim) return std::nullopt;
      }
      return write_num(out.dtype, os, remap(x, os, [&](std::size_t k) {
        const auto kk = static_cast<std::int64_t>(k);
        const std::int64_t in_pos = kk % inner, rest = kk / inner;
        const std::int64_t j = rest % idx_count, outer = rest / idx_count;
        std::int64_t v = in[1]->at_i(static_cast<std::size_t>(j));
        if (v < 0) v += dim;
        return static_cast<std::size_t>((outer * dim + v) * inner + in_pos);
      }));
    }
    case OpType::kConcat: {
      const auto r = static_cast<std::int64_t>(os.size());
      std::int64_t ax = a.i("axis", 0);
      if (ax < 0) ax += r;
      if (ax < 0 || ax >= r) return std::nullopt;
      std::int64_t outer = 1, inner = 1;
      for (std::int64_t d = 0; d < ax; ++d) outer *= os[d];
      for (std::int64_t d = ax + 1; d < r; ++d) inner *= os[d];
      Num res;
      res.real = real_out;
      for (std::int64_t o = 0; o < outer; ++o) {
        for (std::size_t i = 0; i < in.size(); ++i) {
          if (!in[i]) continue;
          const std::int64_t block = shapes[i][ax] * inner;
          for (std::int64_t k = 0; k < block; ++k) {
            const auto from = static_cast<std::size_t>(o * block + k);
            if (res.real) res.f.push_back(in[i]->at_f(from));
            else res.i.push_back(in[i]->at_i(from));
          }
        }
      }
      return write_num(out.dtype, os, res);
    }
    case OpType::kSlice: {
      // Recover per-axis start and step from the inferred output and the slice parameters.
      const auto r = static_cast<std::int64_t>(xs.size());
      Ints starts, axes, steps;
      if (node.inputs.size() >= 3 && in[1]) {
        for (std::size_t k = 0; k < in[1]->size(); ++k) starts.push_back(in[1]->at_i(k));
        if (in.size() > 3 && in[3])
          for (std::size_t k = 0; k < in[3]->size(); ++k) axes.push_back(in[3]->at_i(k));
        if (in.size() > 4 && in[4])
          for (std::size_t k = 0; k < in[4]->size(); ++k) steps.push_back(in[4]->at_i(k));
      } else {
        starts = a.ints("starts", {});
        axes = a.ints("axes", {});
      }
      if (axes.empty())
        for (std::size_t k = 0; k < starts.size(); ++k) axes.push_back(static_cast<std::int64_t>(k));
      if (steps.empty()) steps.assign(starts.size(), 1);
      Ints begin(xs.size(), 0), step(xs.size(), 1);
      for (std::size_t k = 0; k < starts.size() && k < axes.size() && k < steps.size(); ++k) {
        std::int64_t ax = axes[k] < 0 ? axes[k] + r : axes[k];
        if (ax < 0 || ax >= r) return std::nullopt;
        const std::int64_t dim = xs[ax];
        std::int64_t s = starts[k];
        if (s < 0) s += dim;
        s = steps[k] > 0 ? std::clamp<std::int64_t>(s, 0, dim) : std::clamp<std::int64_t>(s, 0, dim - 1);
        begin[ax] = s;
        step[ax] = steps[k];
      }
      return write_num(out.dtype, os, remap(x, os, [&](std::size_t k) {
        auto rem = static_cast<std::int64_t>(k);
        std::int64_t idx = 0, stride = 1;
        for (std::size_t d = os.size(); d-- > 0;) {
          const std::int64_t coord = rem % os[d];
          rem /= os[d];
          idx += (begin[d] + coord * step[d]) * stride;
          stride *= xs[d];
        }
        return static_cast<std::size_t>(idx);
      }));
    }
    case OpType::kConstantOfShape: {
      Num r;
      const Tensor* v = a.tensor("value");
      std::optional<Num> fill = v ? read_num(*v) : std::nullopt;
      r.real = real_out;
      const auto n = static_cast<std::size_t>(shape_elements(os));
      const double fv = fill && fill->size() > 0 ? fill->at_f(0) : 0.0;
      const std::int64_t iv = fill && fill->size() > 0 ? fill->at_i(0) : 0;
      if (r.real) r.f.assign(n, fv);
      else r.i.assign(n, iv);
      return write_num(out.dtype, os, r);
    }
    case OpType::kRange: {
      if (node.inputs.size() != 3 || !in[1] || !in[2]) return std::nullopt;
      Num r;
      r.real = real_out;
      const auto n = static_cast<std::size_t>(shape_elements(os));
      for (std::size_t k = 0; k < n; ++k) {
        if (r.real) r.f.push_back(x.at_f(0) + static_cast<double>(k) * in[2]->at_f(0));
        else r.i.push_back(x.at_i(0) + static_cast<std::int64_t>(k) * in[2]->at_i(0));
      }
      return write_num(out.dtype, os, r);
    }
    default:
      return std::nullopt;
  }
}

}  // namespace fswap
