#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <type_traits>

#include "backends/cpu/tensor_kernels.h"

namespace fswap::tensor_ops {
namespace {

// The input's dims merged into alternating kept/reduced groups (size-1 dims dropped).
struct ReduceLayout {
  struct Group {
    std::int64_t size, stride;  // stride in input elements
    bool reduced;
  };
  std::vector<Group> groups;
  std::int64_t reduced_count = 1;  // elements reduced into each output element
};

ReduceLayout reduce_layout(const Shape& shape, const std::vector<bool>& reduced) {
  ReduceLayout l;
  const std::vector<std::int64_t> strides = contiguous_strides(shape);
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (reduced[d]) l.reduced_count *= shape[d];
    if (shape[d] == 1) continue;
    if (!l.groups.empty() && l.groups.back().reduced == reduced[d]) {
      l.groups.back().size *= shape[d];
      l.groups.back().stride = strides[d];
    } else {
      l.groups.push_back({shape[d], strides[d], static_cast<bool>(reduced[d])});
    }
  }
  return l;
}

// Offsets of every combination of the given groups' indices, in row-major order.
std::vector<std::int64_t> group_offsets(const std::vector<ReduceLayout::Group>& groups) {
  std::vector<std::int64_t> offs{0};
  for (const auto& g : groups) {
    std::vector<std::int64_t> next;
    next.reserve(offs.size() * static_cast<std::size_t>(g.size));
    for (std::int64_t o : offs)
      for (std::int64_t i = 0; i < g.size; ++i) next.push_back(o + i * g.stride);
    offs.swap(next);
  }
  return offs;
}

template <class T>
struct Reducer {
  OpType op;
  using Acc = std::conditional_t<std::is_floating_point_v<T>, double, T>;

  Acc identity() const {
    switch (op) {
      case OpType::kReduceMax: return std::numeric_limits<T>::lowest();
      case OpType::kReduceMin: return std::numeric_limits<T>::max();
      case OpType::kReduceProd: return 1;
      default: return 0;
    }
  }
  Acc load(T v) const {
    const Acc a = static_cast<Acc>(v);
    return op == OpType::kReduceSumSquare || op == OpType::kReduceL2 ? a * a : a;
  }
  Acc combine(Acc acc, Acc v) const {
    switch (op) {
      case OpType::kReduceMax: return v > acc ? v : acc;
      case OpType::kReduceMin: return v < acc ? v : acc;
      case OpType::kReduceProd: return acc * v;
      default: return acc + v;
    }
  }
  T finish(Acc acc, std::int64_t count) const {
    if (op == OpType::kReduceMean) {
      if constexpr (std::is_floating_point_v<T>) return static_cast<T>(acc / static_cast<Acc>(count));
      else return count == 0 ? T{0} : static_cast<T>(acc / count);
    }
    if (op == OpType::kReduceL2) return static_cast<T>(std::sqrt(static_cast<double>(acc)));
    return static_cast<T>(acc);
  }
};

template <class T>
Status reduce_typed(const KernelArgs& args, const TensorView& x, const TensorView& y, const std::vector<bool>& reduced) {
  const Reducer<T> r{args.op};
  const ReduceLayout l = reduce_layout(x.shape, reduced);
  const T* in = x.as<const T>();
  T* out = y.as<T>();
  const std::int64_t m = y.elements();
  if (l.reduced_count == 0) {  // reducing an empty axis: the identity (NaN for a float mean)
    for (std::int64_t j = 0; j < m; ++j) out[j] = r.finish(r.identity(), 0);
    return Status::ok();
  }
  if (m == 0) return Status::ok();

  std::vector<ReduceLayout::Group> kept, red;
  const bool inner_reduced = !l.groups.empty() && l.groups.back().reduced;
  const std::int64_t inner = l.groups.empty() ? 1 : l.groups.back().size;
  for (std::size_t g = 0; g + 1 < l.groups.size(); ++g) (l.groups[g].reduced ? red : kept).push_back(l.groups[g]);
  if (!l.groups.empty() && !inner_reduced) kept.push_back(l.groups.back());  // kept keeps the inner group
  if (l.groups.empty()) {  // every dim has size 1
    out[0] = r.finish(r.combine(r.identity(), r.load(in[0])), l.reduced_count);
    return Status::ok();
  }
  const std::vector<std::int64_t> red_offs = group_offsets(red);

  // Base offset of row `row` enumerating the first ngroups kept groups.
  auto kept_base = [&](std::int64_t row, std::size_t ngroups) {
    std::int64_t base = 0;
    for (std::size_t g = ngroups; g-- > 0;) {
      base += (row % kept[g].size) * kept[g].stride;
      row /= kept[g].size;
    }
    return base;
  };

  if (inner_reduced) {
    // Each output element reduces contiguous runs of `inner` elements at every reduced offset.
    const std::int64_t grain = std::max<std::int64_t>(1, kElementGrain / std::max<std::int64_t>(1, l.reduced_count));
    parallel_range(m, grain, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t j = b; j < e; ++j) {
        const T* base = in + kept_base(j, kept.size());
        typename Reducer<T>::Acc acc = r.identity();
        for (std::int64_t off : red_offs) {
          const T* p = base + off;
          for (std::int64_t i = 0; i < inner; ++i) acc = r.combine(acc, r.load(p[i]));
        }
        out[j] = r.finish(acc, l.reduced_count);
      }
    });
    return Status::ok();
  }

  // The inner group is kept: accumulate rows of `inner` elements, chunked along the row too so
  // that a single long row still spreads over the pool.
  const std::int64_t rows = m / inner;
  constexpr std::int64_t kChunk = 4096;
  const std::int64_t chunks = (inner + kChunk - 1) / kChunk;
  const std::size_t outer_groups = kept.size() - 1;
  const std::int64_t grain = std::max<std::int64_t>(1, kElementGrain / (kChunk * static_cast<std::int64_t>(red_offs.size())));
  parallel_range(rows * chunks, grain, [&](std::int64_t b, std::int64_t e) {
    std::vector<typename Reducer<T>::Acc> acc(static_cast<std::size_t>(std::min(inner, kChunk)));
    for (std::int64_t t = b; t < e; ++t) {
      const std::int64_t row = t / chunks;
      const std::int64_t k0 = (t % chunks) * kChunk;
      const std::int64_t len = std::min(kChunk, inner - k0);
      const T* base = in + kept_base(row, outer_groups) + k0;
      std::fill(acc.begin(), acc.begin() + len, r.identity());
      for (std::int64_t off : red_offs) {
        const T* p = base + off;
        for (std::int64_t k = 0; k < len; ++k) acc[k] = r.combine(acc[k], r.load(p[k]));
      }
      T* o = out + row * inner + k0;
      for (std::int64_t k = 0; k < len; ++k) o[k] = r.finish(acc[k], l.reduced_count);
    }
  });
  return Status::ok();
}

}  // namespace

Status reduce_kernel(const KernelArgs& args) {
  const TensorView& x = args.inputs.at(0);
  const TensorView& y = args.outputs.at(0);
  const int rank = static_cast<int>(x.shape.size());
  std::vector<std::int64_t> axes;
  if (const TensorView* a = optional_input(args, 1)) {
    FSWAP_ASSIGN_OR_RETURN(axes, read_ints(args, *a, "axes"));
  } else if (args.inputs.size() > 1 && args.inputs[1].data == nullptr && args.inputs[1].elements() > 0) {
    return op_error(args, "axes input has no data");
  } else {
    axes = args.attrs.ints("axes", {});
  }
  if (axes.empty() && args.attrs.i("noop_with_empty_axes", 0) != 0) {
    if (x.dtype != y.dtype || x.bytes() != y.bytes()) return op_error(args, "noop output differs from the input");
    copy_unless_aliased(y, x);
    return Status::ok();
  }
  FSWAP_ASSIGN_OR_RETURN(const std::vector<bool> reduced,
                         reduced_axes(op_name(args.op), axes, static_cast<std::size_t>(rank)));
  std::int64_t kept_elements = 1;
  for (int d = 0; d < rank; ++d)
    if (!reduced[static_cast<std::size_t>(d)]) kept_elements *= x.shape[static_cast<std::size_t>(d)];
  if (kept_elements != y.elements() || x.dtype != y.dtype)
    return op_error(args, "output " + std::string(dtype_name(y.dtype)) + shape_to_string(y.shape) +
                              " does not match reducing " + shape_to_string(x.shape));
  switch (x.dtype) {
    case DType::kFloat32: return reduce_typed<float>(args, x, y, reduced);
    case DType::kInt64: return reduce_typed<std::int64_t>(args, x, y, reduced);
    case DType::kInt32: return reduce_typed<std::int32_t>(args, x, y, reduced);
    default: return unsupported_dtype(args, x.dtype);
  }
}

// ---- ArgMax / ArgMin ----
namespace {

template <class T>
void arg_reduce_typed(const TensorView& x, const TensorView& y, std::int64_t outer, std::int64_t n, std::int64_t inner,
                      bool is_max, bool last) {
  const T* in = x.as<const T>();
  std::int64_t* out = y.as<std::int64_t>();
  const std::int64_t grain = std::max<std::int64_t>(1, kElementGrain / std::max<std::int64_t>(1, n));
  parallel_range(outer * inner, grain, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t t = b; t < e; ++t) {
      const T* p = in + (t / inner) * n * inner + t % inner;
      T best = p[0];
      std::int64_t best_i = 0;
      for (std::int64_t i = 1; i < n; ++i) {
        const T v = p[i * inner];
        const bool better = is_max ? (last ? v >= best : v > best) : (last ? v <= best : v < best);
        if (better) {
          best = v;
          best_i = i;
        }
      }
      out[t] = best_i;
    }
  });
}

}  // namespace

Status arg_reduce_kernel(const KernelArgs& args) {
  const TensorView& x = args.inputs.at(0);
  const TensorView& y = args.outputs.at(0);
  const int rank = static_cast<int>(x.shape.size());
  FSWAP_ASSIGN_OR_RETURN(int axis, normalize_axis(args, args.attrs.i("axis", 0), std::max(rank, 1)));
  if (y.dtype != DType::kInt64) return op_error(args, "output must be int64");
  const std::int64_t n = rank == 0 ? 1 : x.shape[static_cast<std::size_t>(axis)];
  if (n == 0) return op_error(args, "cannot take the index of an empty axis");
  const std::int64_t outer = rank == 0 ? 1 : shape_elements(Shape(x.shape.begin(), x.shape.begin() + axis));
  const std::int64_t inner = rank == 0 ? 1 : shape_elements(Shape(x.shape.begin() + axis + 1, x.shape.end()));
  if (y.elements() != outer * inner) return op_error(args, "output shape " + shape_to_string(y.shape) + " is wrong");
  const bool is_max = args.op == OpType::kArgMax;
  const bool last = args.attrs.i("select_last_index", 0) != 0;
  switch (x.dtype) {
    case DType::kFloat32: arg_reduce_typed<float>(x, y, outer, n, inner, is_max, last); break;
    case DType::kInt64: arg_reduce_typed<std::int64_t>(x, y, outer, n, inner, is_max, last); break;
    case DType::kInt32: arg_reduce_typed<std::int32_t>(x, y, outer, n, inner, is_max, last); break;
    case DType::kUInt8: arg_reduce_typed<std::uint8_t>(x, y, outer, n, inner, is_max, last); break;
    default: return unsupported_dtype(args, x.dtype);
  }
  return Status::ok();
}

// ---- TopK ----
namespace {

template <class T>
void top_k_typed(const TensorView& x, const TensorView& values, const TensorView& indices, std::int64_t outer,
                 std::int64_t n, std::int64_t inner, std::int64_t k, bool largest) {
  const T* in = x.as<const T>();
  T* vo = values.as<T>();
  std::int64_t* io = indices.as<std::int64_t>();
  const std::int64_t grain = std::max<std::int64_t>(1, kElementGrain / std::max<std::int64_t>(1, n));
  parallel_range(outer * inner, grain, [&](std::int64_t b, std::int64_t e) {
    std::vector<std::int64_t> order(static_cast<std::size_t>(n));
    for (std::int64_t t = b; t < e; ++t) {
      const std::int64_t o = t / inner, i = t % inner;
      const T* p = in + o * n * inner + i;
      std::iota(order.begin(), order.end(), std::int64_t{0});
      // Ties: the lower index first.
      auto before = [&](std::int64_t a, std::int64_t c) {
        const T va = p[a * inner], vc = p[c * inner];
        if (va != vc) return largest ? va > vc : va < vc;
        return a < c;
      };
      std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
      T* vdst = vo + o * k * inner + i;
      std::int64_t* idst = io + o * k * inner + i;
      for (std::int64_t j = 0; j < k; ++j) {
        vdst[j * inner] = p[order[static_cast<std::size_t>(j)] * inner];
        idst[j * inner] = order[static_cast<std::size_t>(j)];
      }
    }
  });
}

}  // namespace

Status top_k_kernel(const KernelArgs& args) {
  const TensorView& x = args.inputs.at(0);
  if (args.outputs.size() < 2) return op_error(args, "expects the values and indices outputs");
  const TensorView& values = args.outputs[0];
  const TensorView& indices = args.outputs[1];
  const int rank = static_cast<int>(x.shape.size());
  FSWAP_ASSIGN_OR_RETURN(int axis, normalize_axis(args, args.attrs.i("axis", -1), rank));
  std::int64_t k = args.attrs.i("k", -1);  // opset 1 attribute form
  if (const TensorView* kin = optional_input(args, 1)) {
    FSWAP_ASSIGN_OR_RETURN(std::vector<std::int64_t> kv, read_ints(args, *kin, "K"));
    if (kv.size() != 1) return op_error(args, "K must hold one value");
    k = kv[0];
  }
  const std::int64_t n = x.shape[static_cast<std::size_t>(axis)];
  if (k < 0 || k > n) return op_error(args, "K=" + std::to_string(k) + " is outside [0, " + std::to_string(n) + "]");
  Shape expect = x.shape;
  expect[static_cast<std::size_t>(axis)] = k;
  if (values.shape != expect || indices.shape != expect || indices.dtype != DType::kInt64 || values.dtype != x.dtype)
    return op_error(args, "outputs do not have the shape " + shape_to_string(expect));
  const bool largest = args.attrs.i("largest", 1) != 0;
  const std::int64_t outer = shape_elements(Shape(x.shape.begin(), x.shape.begin() + axis));
  const std::int64_t inner = shape_elements(Shape(x.shape.begin() + axis + 1, x.shape.end()));
  if (k == 0) return Status::ok();
  switch (x.dtype) {
    case DType::kFloat32: top_k_typed<float>(x, values, indices, outer, n, inner, k, largest); break;
    case DType::kInt64: top_k_typed<std::int64_t>(x, values, indices, outer, n, inner, k, largest); break;
    case DType::kInt32: top_k_typed<std::int32_t>(x, values, indices, outer, n, inner, k, largest); break;
    default: return unsupported_dtype(args, x.dtype);
  }
  return Status::ok();
}

}  // namespace fswap::tensor_ops
