#include <cstring>
#include <limits>
#include <utility>

#include "backends/cpu/tensor_kernels.h"

#include <algorithm>

namespace fswap::tensor_ops {
namespace {

Status check_dtype_kept(const KernelArgs& args, const TensorView& x, const TensorView& y) {
  if (x.dtype != y.dtype)
    return op_error(args, "output dtype " + std::string(dtype_name(y.dtype)) + " differs from the input's " +
                              dtype_name(x.dtype));
  return Status::ok();
}

std::int64_t product(const Shape& s, std::size_t begin, std::size_t end) {
  end = std::min(end, s.size());
  std::int64_t n = 1;
  for (std::size_t d = begin; d < end; ++d) n *= s[d];
  return n;
}

}  // namespace

Status transpose_kernel(const KernelArgs& args) {
  const TensorView& x = args.inputs.at(0);
  const TensorView& y = args.outputs.at(0);
  FSWAP_RETURN_IF_ERROR(check_dtype_kept(args, x, y));
  FSWAP_ASSIGN_OR_RETURN(const StridedRead r, transpose_read(op_name(args.op), args.attrs, x.shape, y.shape));
  strided_copy(dtype_size(x.dtype), y.data, r.shape, x.data, r.strides);
  return Status::ok();
}

Status concat_kernel(const KernelArgs& args) {
  const TensorView& y = args.outputs.at(0);
  const std::size_t rank = y.shape.size();
  FSWAP_ASSIGN_OR_RETURN(int axis, normalize_axis(args, args.attrs.i("axis", 0), static_cast<int>(rank)));
  const std::size_t esize = dtype_size(y.dtype);
  const std::int64_t outer = product(y.shape, 0, static_cast<std::size_t>(axis));
  const std::int64_t inner = product(y.shape, static_cast<std::size_t>(axis) + 1, rank);
  std::vector<std::size_t> row_bytes;
  std::vector<const std::byte*> srcs;
  std::int64_t total = 0;
  for (const TensorView& x : args.inputs) {
    FSWAP_RETURN_IF_ERROR(check_dtype_kept(args, x, y));
    if (x.shape.size() != rank) return op_error(args, "inputs differ in rank");
    for (std::size_t d = 0; d < rank; ++d)
      if (d != static_cast<std::size_t>(axis) && x.shape[d] != y.shape[d])
        return op_error(args, "input " + shape_to_string(x.shape) + " does not fit the output " + shape_to_string(y.shape));
    total += x.shape[static_cast<std::size_t>(axis)];
    if (x.elements() == 0) continue;
    row_bytes.push_back(static_cast<std::size_t>(x.shape[static_cast<std::size_t>(axis)] * inner) * esize);
    srcs.push_back(static_cast<const std::byte*>(x.data));
  }
  if (total != y.shape[static_cast<std::size_t>(axis)]) return op_error(args, "input sizes along axis do not add up");
  const std::size_t out_row = static_cast<std::size_t>(total * inner) * esize;
  auto* dst = static_cast<std::byte*>(y.data);
  const std::int64_t grain = std::max<std::int64_t>(1, kElementGrain * 4 / std::max<std::int64_t>(1, static_cast<std::int64_t>(out_row)));
  parallel_range(outer, grain, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t o = b; o < e; ++o) {
      std::byte* d = dst + static_cast<std::size_t>(o) * out_row;
      for (std::size_t k = 0; k < srcs.size(); ++k) {
        std::memcpy(d, srcs[k] + static_cast<std::size_t>(o) * row_bytes[k], row_bytes[k]);
        d += row_bytes[k];
      }
    }
  });
  return Status::ok();
}

Status split_kernel(const KernelArgs& args) {
  const TensorView& x = args.inputs.at(0);
  const std::size_t rank = x.shape.size();
  FSWAP_ASSIGN_OR_RETURN(int axis, normalize_axis(args, args.attrs.i("axis", 0), static_cast<int>(rank)));
  const std::size_t esize = dtype_size(x.dtype);
  const std::int64_t outer = product(x.shape, 0, static_cast<std::size_t>(axis));
  const std::int64_t inner = product(x.shape, static_cast<std::size_t>(axis) + 1, rank);
  // The outputs' shapes (from shape inference) carry the split sizes, whichever form gave them.
  std::int64_t total = 0;
  for (const TensorView& y : args.outputs) {
    FSWAP_RETURN_IF_ERROR(check_dtype_kept(args, x, y));
    if (y.shape.size() != rank) return op_error(args, "outputs differ in rank from the input");
    total += y.shape[static_cast<std::size_t>(axis)];
  }
  if (total != x.shape[static_cast<std::size_t>(axis)]) return op_error(args, "output sizes along axis do not add up");
  const std::size_t in_row = static_cast<std::size_t>(total * inner) * esize;
  const auto* src = static_cast<const std::byte*>(x.data);
  parallel_range(outer, std::max<std::int64_t>(1, kElementGrain * 4 / std::max<std::int64_t>(1, static_cast<std::int64_t>(in_row))),
                 [&](std::int64_t b, std::int64_t e) {
                   for (std::int64_t o = b; o < e; ++o) {
                     const std::byte* s = src + static_cast<std::size_t>(o) * in_row;
                     for (const TensorView& y : args.outputs) {
                       const std::size_t n = static_cast<std::size_t>(y.shape[static_cast<std::size_t>(axis)] * inner) * esize;
                       if (n > 0 && y.data != nullptr)
                         std::memcpy(static_cast<std::byte*>(y.data) + static_cast<std::size_t>(o) * n, s, n);
                       s += n;
                     }
                   }
                 });
  return Status::ok();
}

Status slice_kernel(const KernelArgs& args) {
  const TensorView& x = args.inputs.at(0);
  const TensorView& y = args.outputs.at(0);
  FSWAP_RETURN_IF_ERROR(check_dtype_kept(args, x, y));
  std::vector<std::int64_t> starts, ends, axes, steps;
  if (args.inputs.size() >= 3) {  // opset >= 10
    FSWAP_ASSIGN_OR_RETURN(starts, read_ints(args, args.inputs[1], "starts"));
    FSWAP_ASSIGN_OR_RETURN(ends, read_ints(args, args.inputs[2], "ends"));
    if (const TensorView* a = optional_input(args, 3)) {
      FSWAP_ASSIGN_OR_RETURN(axes, read_ints(args, *a, "axes"));
    }
    if (const TensorView* s = optional_input(args, 4)) {
      FSWAP_ASSIGN_OR_RETURN(steps, read_ints(args, *s, "steps"));
    }
  } else {  // opset 1: attributes
    starts = args.attrs.ints("starts", {});
    ends = args.attrs.ints("ends", {});
    axes = args.attrs.ints("axes", {});
  }
  FSWAP_ASSIGN_OR_RETURN(const StridedRead r, slice_read(op_name(args.op), x.shape, y.shape, starts, ends,
                                                         std::move(axes), std::move(steps)));
  if (y.elements() == 0) return Status::ok();
  const std::size_t esize = dtype_size(x.dtype);
  strided_copy(esize, y.data, r.shape, static_cast<const std::byte*>(x.data) + r.offset * static_cast<std::int64_t>(esize),
               r.strides);
  return Status::ok();
}

namespace {

// Indices normalised to [0, dim): negative ones count from the end.
Result<std::vector<std::int64_t>> read_indices(const KernelArgs& args, const TensorView& v, std::int64_t dim) {
  FSWAP_ASSIGN_OR_RETURN(std::vector<std::int64_t> idx, read_ints(args, v, "indices"));
  for (std::int64_t& i : idx) {
    if (i < -dim || i >= dim)
      return op_error(args, "index " + std::to_string(i) + " is out of range for a dimension of " + std::to_string(dim));
    if (i < 0) i += dim;
  }
  return idx;
}

template <class T>
void gather_elements_typed(const TensorView& y, const T* data, const std::vector<std::int64_t>& idx,
                           const StridedPlan& plan, std::int64_t axis_stride) {
  T* out = y.as<T>();
  parallel_range(plan.elements, kElementGrain, [&](std::int64_t b, std::int64_t e) {
    for_each_segment(plan, b, e, [&](std::int64_t pos, const std::int64_t* offs, const std::int64_t* st, std::int64_t n) {
      for (std::int64_t i = 0; i < n; ++i)
        out[pos + i] = data[offs[0] + i * st[0] + idx[static_cast<std::size_t>(pos + i)] * axis_stride];
    });
  });
}

template <class T>
void gather_rows(const TensorView& y, const T* data, const std::vector<std::int64_t>& idx, std::int64_t outer,
                 std::int64_t n) {
  T* out = y.as<T>();
  const auto count = static_cast<std::int64_t>(idx.size());
  parallel_range(outer * count, kElementGrain, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t t = b; t < e; ++t) out[t] = data[(t / count) * n + idx[static_cast<std::size_t>(t % count)]];
  });
}

}  // namespace

Status gather_kernel(const KernelArgs& args) {
  const TensorView& x = args.inputs.at(0);
  const TensorView& y = args.outputs.at(0);
  FSWAP_RETURN_IF_ERROR(check_dtype_kept(args, x, y));
  const std::size_t rank = x.shape.size();
  FSWAP_ASSIGN_OR_RETURN(int axis, normalize_axis(args, args.attrs.i("axis", 0), static_cast<int>(rank)));
  const auto a = static_cast<std::size_t>(axis);
  const std::int64_t n = x.shape[a];
  FSWAP_ASSIGN_OR_RETURN(std::vector<std::int64_t> idx, read_indices(args, args.inputs.at(1), n));
  const std::int64_t outer = product(x.shape, 0, a);
  const std::int64_t inner = product(x.shape, a + 1, rank);
  const auto count = static_cast<std::int64_t>(idx.size());
  if (y.elements() != outer * count * inner) return op_error(args, "output shape " + shape_to_string(y.shape) + " is wrong");
  const std::size_t esize = dtype_size(x.dtype);
  if (inner == 1) {
    switch (esize) {
      case 1: gather_rows(y, x.as<const std::uint8_t>(), idx, outer, n); break;
      case 2: gather_rows(y, x.as<const std::uint16_t>(), idx, outer, n); break;
      case 4: gather_rows(y, x.as<const std::uint32_t>(), idx, outer, n); break;
      default: gather_rows(y, x.as<const std::uint64_t>(), idx, outer, n); break;
    }
    return Status::ok();
  }
  const std::size_t row = static_cast<std::size_t>(inner) * esize;
  const auto* src = static_cast<const std::byte*>(x.data);
  auto* dst = static_cast<std::byte*>(y.data);
  parallel_range(outer * count, std::max<std::int64_t>(1, kElementGrain * 4 / static_cast<std::int64_t>(row)),
                 [&](std::int64_t b, std::int64_t e) {
                   for (std::int64_t t = b; t < e; ++t) {
                     const std::int64_t o = t / count, j = idx[static_cast<std::size_t>(t % count)];
                     std::memcpy(dst + static_cast<std::size_t>(t) * row, src + static_cast<std::size_t>(o * n + j) * row, row);
                   }
                 });
  return Status::ok();
}

Status gather_elements_kernel(const KernelArgs& args) {
  const TensorView& x = args.inputs.at(0);
  const TensorView& indices = args.inputs.at(1);
  const TensorView& y = args.outputs.at(0);
  FSWAP_RETURN_IF_ERROR(check_dtype_kept(args, x, y));
  const std::size_t rank = x.shape.size();
  FSWAP_ASSIGN_OR_RETURN(int axis, normalize_axis(args, args.attrs.i("axis", 0), static_cast<int>(rank)));
  FSWAP_RETURN_IF_ERROR(
      check_gather_elements(op_name(args.op), x.shape, indices.shape, y.shape, static_cast<std::size_t>(axis)));
  FSWAP_ASSIGN_OR_RETURN(std::vector<std::int64_t> idx, read_indices(args, indices, x.shape[static_cast<std::size_t>(axis)]));
  std::vector<std::int64_t> strides = contiguous_strides(x.shape);
  const std::int64_t axis_stride = strides[static_cast<std::size_t>(axis)];
  strides[static_cast<std::size_t>(axis)] = 0;
  const StridedPlan plan = make_strided_plan(y.shape, {strides});
  switch (dtype_size(x.dtype)) {
    case 1: gather_elements_typed(y, x.as<const std::uint8_t>(), idx, plan, axis_stride); break;
    case 2: gather_elements_typed(y, x.as<const std::uint16_t>(), idx, plan, axis_stride); break;
    case 4: gather_elements_typed(y, x.as<const std::uint32_t>(), idx, plan, axis_stride); break;
    default: gather_elements_typed(y, x.as<const std::uint64_t>(), idx, plan, axis_stride); break;
  }
  return Status::ok();
}

Status expand_kernel(const KernelArgs& args) {
  const TensorView& x = args.inputs.at(0);
  const TensorView& y = args.outputs.at(0);
  FSWAP_RETURN_IF_ERROR(check_dtype_kept(args, x, y));
  std::vector<std::int64_t> strides;
  if (!broadcast_strides(x.shape, y.shape, strides))
    return op_error(args, "input " + shape_to_string(x.shape) + " does not broadcast to " + shape_to_string(y.shape));
  if (y.data == x.data) return Status::ok();  // same shape, in place
  strided_copy(dtype_size(x.dtype), y.data, y.shape, x.data, strides);
  return Status::ok();
}

Status tile_kernel(const KernelArgs& args) {
  const TensorView& x = args.inputs.at(0);
  const TensorView& y = args.outputs.at(0);
  FSWAP_RETURN_IF_ERROR(check_dtype_kept(args, x, y));
  FSWAP_ASSIGN_OR_RETURN(std::vector<std::int64_t> repeats, read_ints(args, args.inputs.at(1), "repeats"));
  FSWAP_ASSIGN_OR_RETURN(const StridedRead r, tile_read(op_name(args.op), x.shape, y.shape, repeats));
  if (y.elements() == 0) return Status::ok();
  strided_copy(dtype_size(x.dtype), y.data, r.shape, x.data, r.strides);
  return Status::ok();
}

Status scatter_nd_kernel(const KernelArgs& args) {
  const TensorView& x = args.inputs.at(0);
  const TensorView& indices = args.inputs.at(1);
  const TensorView& updates = args.inputs.at(2);
  const TensorView& y = args.outputs.at(0);
  FSWAP_RETURN_IF_ERROR(check_dtype_kept(args, x, y));
  FSWAP_RETURN_IF_ERROR(check_dtype_kept(args, updates, y));
  const std::string reduction = args.attrs.s("reduction", "none");
  if (reduction != "none") return unsupported("ScatterND: reduction=\"" + reduction + "\"");
  if (x.shape != y.shape) return op_error(args, "output shape differs from the data's");
  if (indices.shape.empty()) return op_error(args, "indices must have rank >= 1");
  const auto k = static_cast<std::size_t>(indices.shape.back());
  const std::size_t rank = x.shape.size();
  if (k > rank) return op_error(args, "indices' last dimension exceeds the data's rank");
  Shape expect(indices.shape.begin(), indices.shape.end() - 1);
  expect.insert(expect.end(), x.shape.begin() + static_cast<std::ptrdiff_t>(k), x.shape.end());
  if (updates.shape != expect)
    return op_error(args, "updates " + shape_to_string(updates.shape) + " should be " + shape_to_string(expect));
  FSWAP_ASSIGN_OR_RETURN(std::vector<std::int64_t> idx, read_ints(args, indices, "indices"));
  const std::vector<std::int64_t> strides = contiguous_strides(x.shape);
  const std::size_t esize = dtype_size(x.dtype);
  const std::size_t slice = static_cast<std::size_t>(product(x.shape, k, rank)) * esize;
  const auto tuples = static_cast<std::size_t>(product(indices.shape, 0, indices.shape.size() - 1));
  std::vector<std::int64_t> offsets(tuples);
  for (std::size_t t = 0; t < tuples; ++t) {
    std::int64_t off = 0;
    for (std::size_t j = 0; j < k; ++j) {
      std::int64_t i = idx[t * k + j];
      const std::int64_t dim = x.shape[j];
      if (i < -dim || i >= dim) return op_error(args, "index " + std::to_string(i) + " is out of range for a dimension of " + std::to_string(dim));
      if (i < 0) i += dim;
      off += i * strides[j];
    }
    offsets[t] = off;
  }
  copy_unless_aliased(y, x);
  auto* dst = static_cast<std::byte*>(y.data);
  const auto* src = static_cast<const std::byte*>(updates.data);
  for (std::size_t t = 0; t < tuples; ++t)
    std::memcpy(dst + static_cast<std::size_t>(offsets[t]) * esize, src + t * slice, slice);
  return Status::ok();
}

}  // namespace fswap::tensor_ops
