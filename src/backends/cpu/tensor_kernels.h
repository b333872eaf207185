// Internal to the CPU backend: the tensor-family kernels (kernels_tensor.cc's table) and the
// helpers they share.
//
//   FSWAP_ASSIGN_OR_RETURN(std::vector<std::int64_t> axes, read_ints(args, args.inputs[1], "axes"));
//   strided_copy(dtype_size(x.dtype), y.data, y.shape, x.data, strides);
//
// Kernels follow the contract in cpu_kernels.h. Everything lives in fswap::tensor_ops so that
// helper names cannot collide with the nn family's.
// Decisions the ONNX spec leaves open:
// - float → integer Cast: NaN → 0, saturates to int64, then wraps to narrower integers
//   (what ONNX Runtime and numpy give on x86 for values within int32);
// - integer Div and Mod by zero give 0 (no trap); INT_MIN / -1 wraps;
// - Mod with fmod=0 on floats uses the divisor's sign (Python's %), fmod=1 is C fmod;
// - ReduceMax/ReduceMin over an empty axis give lowest/highest, ReduceMean NaN;
// - TopK orders equal values by lower index first, also when sorted=0.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backends/cpu/cpu_kernels.h"
#include "backends/op_rules.h"

namespace fswap::tensor_ops {

// Element-wise unary ops, activations and Cast (tensor_unary.cc).
Status unary_kernel(const KernelArgs& args);       // Abs ... Erf, Relu ... Mish (one input, one output)
Status not_kernel(const KernelArgs& args);
Status identity_kernel(const KernelArgs& args);    // also Reshape, Flatten, Squeeze, Unsqueeze
Status dropout_kernel(const KernelArgs& args);
Status cast_kernel(const KernelArgs& args);
Status clip_kernel(const KernelArgs& args);
// Broadcasting binary and variadic ops, PRelu and Where (tensor_binary.cc).
Status binary_kernel(const KernelArgs& args);      // Add Sub Mul Div Pow Mod, comparisons, And Or Xor
Status variadic_kernel(const KernelArgs& args);    // Sum Mean Min Max
Status prelu_kernel(const KernelArgs& args);
Status where_kernel(const KernelArgs& args);
// Reductions, ArgMax/ArgMin and TopK (tensor_reduce.cc).
Status reduce_kernel(const KernelArgs& args);
Status arg_reduce_kernel(const KernelArgs& args);
Status top_k_kernel(const KernelArgs& args);
// Layout and indexing (tensor_layout.cc).
Status transpose_kernel(const KernelArgs& args);
Status concat_kernel(const KernelArgs& args);
Status split_kernel(const KernelArgs& args);
Status slice_kernel(const KernelArgs& args);
Status gather_kernel(const KernelArgs& args);
Status gather_elements_kernel(const KernelArgs& args);
Status expand_kernel(const KernelArgs& args);
Status tile_kernel(const KernelArgs& args);
Status scatter_nd_kernel(const KernelArgs& args);
// Shapes and constants (tensor_shape.cc).
Status shape_kernel(const KernelArgs& args);
Status size_kernel(const KernelArgs& args);
Status constant_of_shape_kernel(const KernelArgs& args);
Status constant_kernel(const KernelArgs& args);
Status range_kernel(const KernelArgs& args);

// ---- shared helpers (tensor_common.cc) ----

// "Abs: dtype float16 is not supported" as kUnsupported.
Status unsupported_dtype(const KernelArgs& args, DType dtype);
// kInvalidInput naming the op: "<Op>: <what>".
Status op_error(const KernelArgs& args, const std::string& what);

// Input i when present (index in range and data != nullptr), else nullptr.
const TensorView* optional_input(const KernelArgs& args, std::size_t i);
// Output i when present, else nullptr.
const TensorView* optional_output(const KernelArgs& args, std::size_t i);

// The values of an int64 or int32 tensor (axes, starts, repeats, ...).
Result<std::vector<std::int64_t>> read_ints(const KernelArgs& args, const TensorView& v, const char* what);
// axis in [-rank, rank) → [0, rank); kInvalidInput naming the op otherwise.
Result<int> normalize_axis(const KernelArgs& args, std::int64_t axis, int rank);

// Strides of in broadcast to out (numpy rules, rank-aligned to out): 0 on broadcast dims.
// false when in does not broadcast to out.
bool broadcast_strides(const Shape& in, const Shape& out, std::vector<std::int64_t>& strides);

// dst = src for bytes when they are different buffers (the in-place rule makes them equal).
void copy_unless_aliased(const TensorView& dst, const TensorView& src);

// Runs fn(begin, end) over [0, n) in chunks of at least grain items on the worker pool;
// inline when n <= grain.
inline constexpr std::int64_t kElementGrain = 32768;
void parallel_range(std::int64_t n, std::int64_t grain, const std::function<void(std::int64_t, std::int64_t)>& fn);

// Output-ordered iteration over a dense output and up to kMaxOperands strided operands.
// Dims of size 1 are dropped and dims that are contiguous for every operand merged, so a
// same-shape or trailing-broadcast case becomes one long segment.
inline constexpr int kMaxOperands = 3;
struct StridedPlan {
  std::vector<std::int64_t> dims;                                  // outermost first
  std::vector<std::array<std::int64_t, kMaxOperands>> strides;     // per dim, per operand (elements)
  std::int64_t elements = 1;
};
StridedPlan make_strided_plan(const Shape& out, const std::vector<std::vector<std::int64_t>>& operand_strides);

// Calls seg(out_pos, offsets, inner_strides, count) for the runs of consecutive output
// elements in [begin, end): offsets are the operands' element offsets at out_pos and
// inner_strides their steps along the run.
template <class Seg>
void for_each_segment(const StridedPlan& p, std::int64_t begin, std::int64_t end, Seg&& seg) {
  if (begin >= end) return;
  const int m = static_cast<int>(p.dims.size());
  std::array<std::int64_t, kMaxOperands> offs{};
  if (m == 0) {
    seg(begin, offs.data(), offs.data(), end - begin);  // a single element: strides irrelevant
    return;
  }
  std::vector<std::int64_t> idx(m);
  std::int64_t rest = begin;
  for (int d = m - 1; d >= 0; --d) {
    idx[d] = rest % p.dims[d];
    rest /= p.dims[d];
    for (int k = 0; k < kMaxOperands; ++k) offs[k] += idx[d] * p.strides[d][k];
  }
  const std::int64_t inner = p.dims[m - 1];
  const auto& inner_strides = p.strides[m - 1];
  std::int64_t pos = begin;
  while (pos < end) {
    const std::int64_t len = std::min(inner - idx[m - 1], end - pos);
    seg(pos, offs.data(), inner_strides.data(), len);
    pos += len;
    if (pos >= end) break;
    idx[m - 1] += len;
    for (int k = 0; k < kMaxOperands; ++k) offs[k] += len * inner_strides[k];
    for (int d = m - 1; d > 0 && idx[d] == p.dims[d]; --d) {
      idx[d] = 0;
      for (int k = 0; k < kMaxOperands; ++k) offs[k] += p.strides[d - 1][k] - p.dims[d] * p.strides[d][k];
      ++idx[d - 1];
    }
  }
}

// out (dense, out_shape) = in_base[sum idx_d * in_strides_d] for element size esize; strides in
// elements, any sign, 0 for repeats. Parallel over the output.
void strided_copy(std::size_t esize, void* out, const Shape& out_shape, const void* in_base,
                  const std::vector<std::int64_t>& in_strides);

// IEEE 754 binary16 conversions (round to nearest even; NaN, infinities and subnormals kept).
std::uint16_t float_to_half(float f);
float half_to_float(std::uint16_t h);

}  // namespace fswap::tensor_ops
