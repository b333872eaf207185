// Gemm and MatMul on OpenBLAS sgemm (itself multi-threaded: no parallel_for around it).

#include "backends/cpu/blas.h"
#include "backends/cpu/nn_kernels.h"
#include "core/parallel.h"

namespace fswap {

Status gemm_kernel(const KernelArgs& args) {
  FSWAP_ASSIGN_OR_RETURN(SgemmFn blas_gemm, load_sgemm());
  constexpr const char* kOp = "Gemm";
  FSWAP_RETURN_IF_ERROR(require_float32(args, kOp));
  if (args.inputs.size() < 2) return nn_shape_error(kOp, "needs A and B");
  const TensorView& av = args.inputs[0];
  const TensorView& bv = args.inputs[1];
  const TensorView& y = args.outputs[0];
  if (av.shape.size() != 2 || bv.shape.size() != 2 || y.shape.size() != 2)
    return nn_shape_error(kOp, "A, B and Y must be 2-D, got A " + shape_to_string(av.shape) + " B " +
                                   shape_to_string(bv.shape));
  const bool trans_a = args.attrs.i("transA", 0) != 0, trans_b = args.attrs.i("transB", 0) != 0;
  const float alpha = args.attrs.f("alpha", 1.0f);
  float beta = args.attrs.f("beta", 1.0f);
  const std::int64_t m = trans_a ? av.shape[1] : av.shape[0], k = trans_a ? av.shape[0] : av.shape[1];
  const std::int64_t n = trans_b ? bv.shape[0] : bv.shape[1];
  if ((trans_b ? bv.shape[1] : bv.shape[0]) != k || y.shape[0] != m || y.shape[1] != n)
    return nn_shape_error(kOp, "A " + shape_to_string(av.shape) + " and B " + shape_to_string(bv.shape) +
                                   " do not multiply");
  float* yd = y.as<float>();
  const TensorView* c = args.inputs.size() > 2 && args.inputs[2].data != nullptr ? &args.inputs[2] : nullptr;
  if (c != nullptr && beta != 0.0f) {
    // Y = beta * C (unidirectional broadcast to [M, N]), then sgemm accumulates.
    const std::size_t rank = c->shape.size();
    if (rank > 2) return nn_shape_error(kOp, "C must have rank <= 2, got " + shape_to_string(c->shape));
    const std::int64_t cm = rank == 2 ? c->shape[0] : 1, cn = rank >= 1 ? c->shape[rank - 1] : 1;
    if ((cm != 1 && cm != m) || (cn != 1 && cn != n))
      return nn_shape_error(kOp, "C " + shape_to_string(c->shape) + " does not broadcast to [M, N]");
    const float* cd = c->as<const float>();
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < n; ++j) yd[i * n + j] = beta * cd[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)];
  } else {
    beta = 0.0f;
  }
  if (m > 0 && n > 0) {
    if (k > 0) {
      blas_gemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                  static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, av.as<const float>(),
                  static_cast<int>(av.shape[1]), bv.as<const float>(), static_cast<int>(bv.shape[1]),
                  beta == 0.0f ? 0.0f : 1.0f, yd,
                  static_cast<int>(n));
    } else if (beta == 0.0f) {
      std::fill(yd, yd + m * n, 0.0f);
    }
  }
  apply_activation(args.attrs.activation, yd, m * n);
  return Status::ok();
}

Status mat_mul_kernel(const KernelArgs& args) {
  FSWAP_ASSIGN_OR_RETURN(SgemmFn blas_gemm, load_sgemm());
  constexpr const char* kOp = "MatMul";
  FSWAP_RETURN_IF_ERROR(require_float32(args, kOp));
  if (args.inputs.size() < 2) return nn_shape_error(kOp, "needs A and B");
  const Shape& sa = args.inputs[0].shape;
  const Shape& sb = args.inputs[1].shape;
  const TensorView& y = args.outputs[0];
  if (sa.empty() || sb.empty()) return nn_shape_error(kOp, "scalar operands are not allowed");
  // numpy: a 1-D A is [1, K] and a 1-D B is [K, 1], the added axis removed from Y.
  const std::int64_t m = sa.size() == 1 ? 1 : sa[sa.size() - 2], k = sa.back();
  const std::int64_t kb = sb.size() == 1 ? sb[0] : sb[sb.size() - 2], n = sb.size() == 1 ? 1 : sb.back();
  if (k != kb)
    return nn_shape_error(kOp, "A " + shape_to_string(sa) + " and B " + shape_to_string(sb) + " do not multiply");
  const Shape batch_a(sa.begin(), sa.end() - std::min<std::size_t>(sa.size(), 2));
  const Shape batch_b(sb.begin(), sb.end() - std::min<std::size_t>(sb.size(), 2));
  const std::size_t batch_rank = std::max(batch_a.size(), batch_b.size());
  // Broadcast batch dims and the element strides (in matrices) of A and B along them.
  std::vector<std::int64_t> batch(batch_rank), stride_a(batch_rank, 0), stride_b(batch_rank, 0);
  std::int64_t count_a = 1, count_b = 1;
  for (std::size_t i = batch_rank; i-- > 0;) {
    const std::size_t ra = batch_rank - i;  // position from the right, 1-based
    const std::int64_t da = ra <= batch_a.size() ? batch_a[batch_a.size() - ra] : 1;
    const std::int64_t db = ra <= batch_b.size() ? batch_b[batch_b.size() - ra] : 1;
    if (da != db && da != 1 && db != 1)
      return nn_shape_error(kOp, "batch dims of A " + shape_to_string(sa) + " and B " + shape_to_string(sb) +
                                     " do not broadcast");
    batch[i] = std::max(da, db);
    stride_a[i] = da == 1 ? 0 : count_a;
    stride_b[i] = db == 1 ? 0 : count_b;
    count_a *= da;
    count_b *= db;
  }
  std::int64_t batches = 1;
  for (std::int64_t d : batch) batches *= d;
  if (batches * m * n != y.elements())
    return nn_shape_error(kOp, "output " + shape_to_string(y.shape) + " does not match A " + shape_to_string(sa) +
                                   " x B " + shape_to_string(sb));
  const TensorView* bias = args.inputs.size() > 2 && args.inputs[2].data != nullptr ? &args.inputs[2] : nullptr;
  if (bias != nullptr && bias->elements() != n && bias->elements() != 1)
    return nn_shape_error(kOp, "bias " + shape_to_string(bias->shape) + " does not broadcast over the last axis " +
                                   std::to_string(n));
  const float* ad = args.inputs[0].as<const float>();
  const float* bd = args.inputs[1].as<const float>();
  float* yd = y.as<float>();
  auto sgemm = [&](std::int64_t rows, const float* a, const float* b, float* c) {
    if (k == 0) {
      std::fill(c, c + rows * n, 0.0f);
      return;
    }
    blas_gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows), static_cast<int>(n),
                static_cast<int>(k), 1.0f, a, static_cast<int>(k), b, static_cast<int>(n), 0.0f, c,
                static_cast<int>(n));
  };
  if (y.elements() > 0) {
    if (count_b == 1 && count_a == batches) {
      sgemm(batches * m, ad, bd, yd);  // B shared by every batch item: one tall GEMM
    } else {
      std::vector<std::int64_t> index(batch_rank, 0);
      for (std::int64_t bi = 0; bi < batches; ++bi) {
        std::int64_t oa = 0, ob = 0;
        for (std::size_t i = 0; i < batch_rank; ++i) {
          oa += index[i] * stride_a[i];
          ob += index[i] * stride_b[i];
        }
        sgemm(m, ad + oa * m * k, bd + ob * k * n, yd + bi * m * n);
        for (std::size_t i = batch_rank; i-- > 0;) {
          if (++index[i] < batch[i]) break;
          index[i] = 0;
        }
      }
    }
  }
  const std::int64_t rows = batches * m;
  if (bias != nullptr || args.attrs.activation.kind != Activation::kNone) {
    const float* bd2 = bias != nullptr ? bias->as<const float>() : nullptr;
    const bool scalar_bias = bias != nullptr && bias->elements() == 1;
    parallel_for(
        static_cast<int>(rows),
        [&](int r0, int r1) {
          for (std::int64_t r = r0; r < r1; ++r) {
            float* row = yd + r * n;
            if (bd2 != nullptr)
              for (std::int64_t j = 0; j < n; ++j) row[j] += bd2[scalar_bias ? 0 : j];
            apply_activation(args.attrs.activation, row, n);
          }
        },
        static_cast<int>(std::max<std::int64_t>(1, 8192 / std::max<std::int64_t>(1, n))));
  }
  return Status::ok();
}

}  // namespace fswap
