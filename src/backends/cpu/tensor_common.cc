#include <bit>
#include <cstring>

#include "backends/cpu/tensor_kernels.h"

#include "core/parallel.h"

namespace fswap::tensor_ops {

Status unsupported_dtype(const KernelArgs& args, DType dtype) {
  return unsupported(std::string(op_name(args.op)) + ": dtype " + dtype_name(dtype) +
                     " is not supported by the CPU kernel");
}

Status op_error(const KernelArgs& args, const std::string& what) {
  return invalid_input(std::string(op_name(args.op)) + ": " + what);
}

const TensorView* optional_input(const KernelArgs& args, std::size_t i) {
  return i < args.inputs.size() && args.inputs[i].data != nullptr ? &args.inputs[i] : nullptr;
}

const TensorView* optional_output(const KernelArgs& args, std::size_t i) {
  return i < args.outputs.size() && args.outputs[i].data != nullptr ? &args.outputs[i] : nullptr;
}

Result<std::vector<std::int64_t>> read_ints(const KernelArgs& args, const TensorView& v, const char* what) {
  if (v.data == nullptr && v.elements() > 0) return op_error(args, std::string(what) + " has no data");
  std::vector<std::int64_t> out(static_cast<std::size_t>(v.elements()));
  if (v.dtype == DType::kInt64) {
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = v.as<const std::int64_t>()[i];
  } else if (v.dtype == DType::kInt32) {
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = v.as<const std::int32_t>()[i];
  } else {
    return unsupported(std::string(op_name(args.op)) + ": " + what + " of dtype " + dtype_name(v.dtype) +
                       " (expected int64 or int32)");
  }
  return out;
}

Result<int> normalize_axis(const KernelArgs& args, std::int64_t axis, int rank) {
  return checked_axis(op_name(args.op), axis, static_cast<std::size_t>(rank));
}

bool broadcast_strides(const Shape& in, const Shape& out, std::vector<std::int64_t>& strides) {
  if (in.size() > out.size()) return false;
  const std::size_t lead = out.size() - in.size();
  const std::vector<std::int64_t> dense = contiguous_strides(in);
  strides.assign(out.size(), 0);
  for (std::size_t d = 0; d < in.size(); ++d) {
    if (in[d] == out[lead + d]) {
      strides[lead + d] = in[d] == 1 ? 0 : dense[d];
    } else if (in[d] != 1) {
      return false;
    }
  }
  return true;
}

void copy_unless_aliased(const TensorView& dst, const TensorView& src) {
  if (dst.data != src.data && dst.bytes() > 0) std::memcpy(dst.data, src.data, dst.bytes());
}

void parallel_range(std::int64_t n, std::int64_t grain, const std::function<void(std::int64_t, std::int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<std::int64_t>(grain, 1);
  if (n <= grain) {
    fn(0, n);
    return;
  }
  const std::int64_t blocks = (n + grain - 1) / grain;
  parallel_for(static_cast<int>(blocks), [&](int b0, int b1) {
    fn(b0 * grain, std::min<std::int64_t>(n, static_cast<std::int64_t>(b1) * grain));
  });
}

StridedPlan make_strided_plan(const Shape& out, const std::vector<std::vector<std::int64_t>>& operand_strides) {
  StridedPlan p;
  p.elements = shape_elements(out);
  for (std::size_t d = 0; d < out.size(); ++d) {
    if (out[d] == 1) continue;
    std::array<std::int64_t, kMaxOperands> st{};
    for (std::size_t k = 0; k < operand_strides.size() && k < kMaxOperands; ++k) st[k] = operand_strides[k][d];
    if (!p.dims.empty()) {
      auto& prev = p.strides.back();
      bool merge = true;
      for (int k = 0; k < kMaxOperands; ++k) merge = merge && prev[k] == st[k] * out[d];
      if (merge) {
        p.dims.back() *= out[d];
        prev = st;
        continue;
      }
    }
    p.dims.push_back(out[d]);
    p.strides.push_back(st);
  }
  return p;
}

namespace {

// A transpose whose output rows gather with a stride: copies 32x32 tiles of (the output dim that
// is contiguous in the input) x (the output's inner dim), so each input cache line read is used
// for a whole tile instead of once per output row. false when no such dim exists.
template <class T>
bool tiled_transpose(T* out, const T* in, const StridedPlan& plan) {
  const int m = static_cast<int>(plan.dims.size());
  if (m < 2) return false;
  const std::int64_t s_inner = plan.strides[m - 1][0];
  if (s_inner == 0 || s_inner == 1) return false;
  int j = -1;
  for (int d = 0; d < m - 1; ++d)
    if (plan.strides[d][0] == 1) j = d;
  if (j < 0) return false;
  std::vector<std::int64_t> out_strides(m);
  std::int64_t step = 1;
  for (int d = m; d-- > 0;) {
    out_strides[d] = step;
    step *= plan.dims[d];
  }
  std::vector<int> others;  // every dim but j and the inner one, outermost first
  std::int64_t combos = 1;
  for (int d = 0; d < m - 1; ++d)
    if (d != j) {
      others.push_back(d);
      combos *= plan.dims[d];
    }
  constexpr std::int64_t kTile = 32;
  const std::int64_t nj = plan.dims[j], ni = plan.dims[m - 1];
  const std::int64_t j_tiles = (nj + kTile - 1) / kTile;
  const std::int64_t grain = std::max<std::int64_t>(1, kElementGrain / (kTile * ni));
  parallel_range(combos * j_tiles, grain, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t t = b; t < e; ++t) {
      std::int64_t rest = t / j_tiles, in_base = 0, out_base = 0;
      for (std::size_t k = others.size(); k-- > 0;) {
        const int d = others[k];
        const std::int64_t idx = rest % plan.dims[d];
        rest /= plan.dims[d];
        in_base += idx * plan.strides[d][0];
        out_base += idx * out_strides[d];
      }
      const std::int64_t j0 = (t % j_tiles) * kTile, j1 = std::min(nj, j0 + kTile);
      for (std::int64_t i0 = 0; i0 < ni; i0 += kTile) {
        const std::int64_t i1 = std::min(ni, i0 + kTile);
        for (std::int64_t jj = j0; jj < j1; ++jj) {
          T* o = out + out_base + jj * out_strides[j];
          const T* src = in + in_base + jj;
          for (std::int64_t i = i0; i < i1; ++i) o[i] = src[i * s_inner];
        }
      }
    }
  });
  return true;
}

template <class T>
void strided_copy_typed(T* out, const Shape& out_shape, const T* in, const std::vector<std::int64_t>& in_strides) {
  const StridedPlan plan = make_strided_plan(out_shape, {in_strides});
  if (tiled_transpose(out, in, plan)) return;
  parallel_range(plan.elements, kElementGrain, [&](std::int64_t b, std::int64_t e) {
    for_each_segment(plan, b, e, [&](std::int64_t pos, const std::int64_t* offs, const std::int64_t* st, std::int64_t n) {
      const T* src = in + offs[0];
      T* dst = out + pos;
      if (st[0] == 1) {
        std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(T));
      } else if (st[0] == 0) {
        std::fill(dst, dst + n, *src);
      } else {
        const std::int64_t s = st[0];
        for (std::int64_t i = 0; i < n; ++i) dst[i] = src[i * s];
      }
    });
  });
}

}  // namespace

void strided_copy(std::size_t esize, void* out, const Shape& out_shape, const void* in_base,
                  const std::vector<std::int64_t>& in_strides) {
  switch (esize) {
    case 1:
      return strided_copy_typed(static_cast<std::uint8_t*>(out), out_shape, static_cast<const std::uint8_t*>(in_base),
                                in_strides);
    case 2:
      return strided_copy_typed(static_cast<std::uint16_t*>(out), out_shape,
                                static_cast<const std::uint16_t*>(in_base), in_strides);
    case 4:
      return strided_copy_typed(static_cast<std::uint32_t*>(out), out_shape,
                                static_cast<const std::uint32_t*>(in_base), in_strides);
    default:
      FSWAP_CHECK(esize == 8, "strided_copy: element size " + std::to_string(esize));
      return strided_copy_typed(static_cast<std::uint64_t*>(out), out_shape,
                                static_cast<const std::uint64_t*>(in_base), in_strides);
  }
}

std::uint16_t float_to_half(float f) {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  const auto sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
  const std::uint32_t a = x & 0x7fffffffu;
  if (a >= 0x7f800000u) {  // infinity or NaN (NaN keeps its top payload bits and stays quiet)
    const std::uint32_t nan = a > 0x7f800000u ? 0x200u | ((a >> 13) & 0x3ffu) : 0u;
    return static_cast<std::uint16_t>(sign | 0x7c00u | nan);
  }
  if (a >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // >= 65520 rounds to infinity
  if (a < 0x38800000u) {                                                       // below 2^-14: subnormal or zero
    if (a < 0x33000000u) return sign;                                          // at most 2^-25: rounds to zero
    const std::uint32_t mant = (a & 0x7fffffu) | 0x800000u;
    const int shift = 126 - static_cast<int>(a >> 23);  // units of 2^-24
    std::uint32_t q = mant >> shift;
    const std::uint32_t rem = mant & ((1u << shift) - 1u);
    const std::uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    return static_cast<std::uint16_t>(sign | q);
  }
  std::uint32_t h = (a - 0x38000000u) >> 13;  // rebias 127 → 15
  const std::uint32_t rem = a & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // a carry into the exponent is right
  return static_cast<std::uint16_t>(sign | h);
}

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t e = (h >> 10) & 0x1fu;
  const std::uint32_t m = h & 0x3ffu;
  if (e == 0) {
    const float v = static_cast<float>(m) * 5.9604644775390625e-8f;  // m * 2^-24, exact
    return sign ? -v : v;
  }
  if (e == 31) return std::bit_cast<float>(sign | 0x7f800000u | (m << 13));
  return std::bit_cast<float>(sign | ((e + 112u) << 23) | (m << 13));
}

}  // namespace fswap::tensor_ops
