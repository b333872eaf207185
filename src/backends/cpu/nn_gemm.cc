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
  const TensorView* c = args.inputs.size() > 2 && args.inputs[2].data != nullptr ? &args.inputs[2] : nullptr;
  FSWAP_ASSIGN_OR_RETURN(const GemmGeometry g, gemm_geometry(kOp, args.attrs, av.shape, bv.shape, y.shape,
                                                             c != nullptr ? &c->shape : nullptr));
  const bool trans_a = g.trans_a, trans_b = g.trans_b;
  const float alpha = g.alpha;
  float beta = g.beta;
  const std::int64_t m = g.m, k = g.k, n = g.n;
  float* yd = y.as<float>();
  if (g.has_c) {
    // Y = beta * C (unidirectional broadcast to [M, N]), then sgemm accumulates.
    const std::int64_t cm = g.c_rows, cn = g.c_cols;
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
  const TensorView* bias = args.inputs.size() > 2 && args.inputs[2].data != nullptr ? &args.inputs[2] : nullptr;
  FSWAP_ASSIGN_OR_RETURN(const MatMulGeometry g,
                         mat_mul_geometry(kOp, sa, sb, y.shape, bias != nullptr ? &bias->shape : nullptr));
  const std::int64_t m = g.m, k = g.k, n = g.n, batches = g.batches;
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
    if (g.count_b == 1 && g.count_a == batches) {
      sgemm(batches * m, ad, bd, yd);  // B shared by every batch item: one tall GEMM
    } else {
      const std::vector<MatrixPair> pairs = batch_matrices(g);
      for (std::int64_t bi = 0; bi < batches; ++bi) {
        const MatrixPair& p = pairs[static_cast<std::size_t>(bi)];
        sgemm(m, ad + p.a * m * k, bd + p.b * k * n, yd + bi * m * n);
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
