// Gemm and MatMul on cuBLASLt, semantics of the CPU kernels (nn_gemm.cc). Row-major Y = A·B is
// cuBLASLt's column-major Yᵀ = Bᵀ·Aᵀ, so B is its first operand and no data moves. float32 computes
// in strict float32 (CUBLAS_COMPUTE_32F, no TF32: the CPU tolerance is 1e-4), float16 with float32
// accumulation. A bias over the last axis and Relu ride cuBLASLt's epilogue; other biases (scalar,
// per row, scaled by Gemm's beta) and activations take the epilogue kernel. A one-row Gemm against
// transB weights (up to kGemvMaxSide wide and deep) takes our row GEMV instead (epilogue.h).
//
// Descriptors and the heuristic query are per call; caching them per node would save a few
// microseconds a call.

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "backends/cuda/cuda_kernels.h"
#include "backends/cuda/epilogue.h"
#include "backends/cuda/libraries.h"
#include "backends/op_rules.h"

namespace fswap::cuda {
namespace {

constexpr std::size_t kLtWorkspaceBytes = 32u << 20;
constexpr std::uint32_t kMaxAlignment = 256;  // cuBLASLt's default assumption about operand pointers
constexpr std::int64_t kGemvMaxSide = 4096;    // one-row Gemms up to this wide and deep take row_gemv

using MatmulDescriptor =
    std::unique_ptr<std::remove_pointer_t<cublasLtMatmulDesc_t>, DestroyWith<cublasLtMatmulDescDestroy>>;
using MatrixLayout =
    std::unique_ptr<std::remove_pointer_t<cublasLtMatrixLayout_t>, DestroyWith<cublasLtMatrixLayoutDestroy>>;
using MatmulPreference =
    std::unique_ptr<std::remove_pointer_t<cublasLtMatmulPreference_t>, DestroyWith<cublasLtMatmulPreferenceDestroy>>;

// Row-major Y[i] = alpha · op(A[i]) · op(B[i]) (+ beta · C[i]) (+ bias) (relu) for i < batch, with
// operand i at its pointer + i · stride elements (stride 0: one matrix shared by every i).
struct GemmShape {
  DType dtype = DType::kFloat32;
  std::int64_t m = 0, n = 0, k = 0;       // op(A) is [m, k], op(B) is [k, n], Y is [m, n]
  bool trans_a = false, trans_b = false;  // A stored [k, m] / B stored [n, k]
  std::int64_t batch = 1, stride_a = 0, stride_b = 0, stride_y = 0;
  float alpha = 1, beta = 0;   // beta != 0: C is read, laid out like Y
  const void* bias = nullptr;  // n values in Y's dtype, added to every row
  bool relu = false;
  std::uint32_t alignment = kMaxAlignment;  // bytes every operand pointer is a multiple of
};

// The largest power of two up to kMaxAlignment dividing every given address or byte offset.
std::uint32_t common_alignment(std::initializer_list<std::uintptr_t> values) {
  std::uint32_t alignment = kMaxAlignment;
  for (const std::uintptr_t v : values)
    while (alignment > 1 && v % alignment != 0) alignment /= 2;
  return alignment;
}

std::uintptr_t address(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }

cudaDataType_t lt_type(DType dtype) { return dtype == DType::kFloat16 ? CUDA_R_16F : CUDA_R_32F; }

template <class T>
Status set_attribute(const char* op, cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attribute,
                     const T& value) {
  FSWAP_CUBLAS_CHECK(op, cublasLtMatmulDescSetAttribute(desc, attribute, &value, sizeof(value)));
  return Status::ok();
}
template <class T>
Status set_attribute(const char* op, cublasLtMatrixLayout_t layout, cublasLtMatrixLayoutAttribute_t attribute,
                     const T& value) {
  FSWAP_CUBLAS_CHECK(op, cublasLtMatrixLayoutSetAttribute(layout, attribute, &value, sizeof(value)));
  return Status::ok();
}
template <class T>
Status set_attribute(const char* op, cublasLtMatmulPreference_t pref, cublasLtMatmulPreferenceAttributes_t attribute,
                     const T& value) {
  FSWAP_CUBLAS_CHECK(op, cublasLtMatmulPreferenceSetAttribute(pref, attribute, &value, sizeof(value)));
  return Status::ok();
}

// A column-major rows × cols matrix (leading dimension rows), batched by `stride` elements.
Result<MatrixLayout> matrix_layout(const char* op, DType dtype, std::int64_t rows, std::int64_t cols,
                                   std::int64_t batch, std::int64_t stride) {
  cublasLtMatrixLayout_t raw = nullptr;
  FSWAP_CUBLAS_CHECK(op, cublasLtMatrixLayoutCreate(&raw, lt_type(dtype), static_cast<std::uint64_t>(rows),
                                                    static_cast<std::uint64_t>(cols), rows));
  MatrixLayout layout(raw);
  if (batch > 1) {
    FSWAP_RETURN_IF_ERROR(
        set_attribute(op, layout.get(), CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, static_cast<std::int32_t>(batch)));
    FSWAP_RETURN_IF_ERROR(set_attribute(op, layout.get(), CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, stride));
  }
  return layout;
}

// One GemmShape made ready for cuBLASLt: descriptors and the heuristic's algorithm, reusable for
// several operand sets of the same shape.
class LtGemm {
 public:
  static Result<LtGemm> create(const CudaContext& ctx, const char* op, const GemmShape& s,
                               std::size_t workspace_bytes) {
    if (s.batch > std::numeric_limits<std::int32_t>::max())
      return unsupported(std::string(op) + " on CUDA: " + std::to_string(s.batch) + " batches exceed cuBLASLt's range");
    LtGemm g;
    g.op_ = op;
    g.alpha_ = s.alpha;
    g.beta_ = s.beta;
    g.workspace_bytes_ = workspace_bytes;
    cublasLtMatmulDesc_t desc = nullptr;
    FSWAP_CUBLAS_CHECK(op, cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    g.desc_.reset(desc);
    // cuBLASLt's first operand is our B, its second our A (column-major view of row-major data).
    const cublasOperation_t op_first = s.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t op_second = s.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    FSWAP_RETURN_IF_ERROR(set_attribute(op, desc, CUBLASLT_MATMUL_DESC_TRANSA, op_first));
    FSWAP_RETURN_IF_ERROR(set_attribute(op, desc, CUBLASLT_MATMUL_DESC_TRANSB, op_second));
    const cublasLtEpilogue_t epilogue = s.bias != nullptr
                                            ? (s.relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS)
                                            : (s.relu ? CUBLASLT_EPILOGUE_RELU : CUBLASLT_EPILOGUE_DEFAULT);
    FSWAP_RETURN_IF_ERROR(set_attribute(op, desc, CUBLASLT_MATMUL_DESC_EPILOGUE, epilogue));
    if (s.bias != nullptr) FSWAP_RETURN_IF_ERROR(set_attribute(op, desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, s.bias));

    // Stored row-major [r, c] is column-major [c, r].
    const std::int64_t b_rows = s.trans_b ? s.k : s.n, b_cols = s.trans_b ? s.n : s.k;
    const std::int64_t a_rows = s.trans_a ? s.m : s.k, a_cols = s.trans_a ? s.k : s.m;
    FSWAP_ASSIGN_OR_RETURN(g.first_, matrix_layout(op, s.dtype, b_rows, b_cols, s.batch, s.stride_b));
    FSWAP_ASSIGN_OR_RETURN(g.second_, matrix_layout(op, s.dtype, a_rows, a_cols, s.batch, s.stride_a));
    FSWAP_ASSIGN_OR_RETURN(g.out_, matrix_layout(op, s.dtype, s.n, s.m, s.batch, s.stride_y));

    cublasLtMatmulPreference_t raw_pref = nullptr;
    FSWAP_CUBLAS_CHECK(op, cublasLtMatmulPreferenceCreate(&raw_pref));
    const MatmulPreference pref(raw_pref);
    FSWAP_RETURN_IF_ERROR(set_attribute(op, pref.get(), CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                        static_cast<std::uint64_t>(workspace_bytes)));
    for (const auto attribute :
         {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
          CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
      FSWAP_RETURN_IF_ERROR(set_attribute(op, pref.get(), attribute, s.alignment));
    cublasLtMatmulHeuristicResult_t result{};
    int count = 0;
    FSWAP_CUBLAS_CHECK(op, cublasLtMatmulAlgoGetHeuristic(ctx.cublaslt, desc, g.first_.get(), g.second_.get(),
                                                          g.out_.get(), g.out_.get(), pref.get(), 1, &result, &count));
    if (count == 0)
      return unsupported(std::string(op) + " on CUDA: cuBLASLt has no algorithm for m=" + std::to_string(s.m) +
                         " n=" + std::to_string(s.n) + " k=" + std::to_string(s.k) +
                         " batch=" + std::to_string(s.batch) + " " + dtype_name(s.dtype));
    g.algo_ = result.algo;
    return g;
  }

  // Enqueues Y = ... for one operand set; c is read only when beta != 0.
  Status run(const CudaContext& ctx, const void* a, const void* b, const void* c, void* y, void* workspace) const {
    FSWAP_CUBLAS_CHECK(op_, cublasLtMatmul(ctx.cublaslt, desc_.get(), &alpha_, b, first_.get(), a, second_.get(),
                                           &beta_, beta_ != 0.0f ? c : y, out_.get(), y, out_.get(), &algo_, workspace,
                                           workspace_bytes_, ctx.stream));
    return Status::ok();
  }

 private:
  LtGemm() = default;

  const char* op_ = "";
  float alpha_ = 1, beta_ = 0;
  std::size_t workspace_bytes_ = 0;
  MatmulDescriptor desc_;
  MatrixLayout first_, second_, out_;
  cublasLtMatmulAlgo_t algo_{};
};

struct LtWorkspace {
  void* data = nullptr;
  std::size_t bytes = 0;
};

// cuBLASLt runs without workspace too (slower for some shapes), so a short budget is no error.
Result<LtWorkspace> lt_workspace(const CudaContext& ctx) {
  Result<void*> data = ctx.workspace(kLtWorkspaceBytes);
  if (data) return LtWorkspace{*data, kLtWorkspaceBytes};
  if (data.status().code() == StatusCode::kOutOfMemory) return LtWorkspace{};
  return data.status();
}

Status require_context(const CudaContext& ctx, const char* op) {
  if (ctx.cublaslt == nullptr || !ctx.workspace)
    return internal_error(std::string(op) + " on CUDA: the CudaContext lacks cuBLASLt or a workspace");
  return Status::ok();
}

Status shape_error(const char* op, const std::string& what) { return invalid_input(std::string(op) + ": " + what); }

// Y = 0 when the inner dimension is empty; bias and activation follow as usual.
Status zero_output(const CudaContext& ctx, const char* op, const TensorView& y) {
  FSWAP_CUDA_RUNTIME_CHECK(op, cudaMemsetAsync(y.data, 0, y.bytes(), ctx.stream));
  return Status::ok();
}

}  // namespace

Status pointwise_gemm(const CudaContext& ctx, const char* op, DType dtype, std::int64_t rows, std::int64_t inner,
                      std::int64_t cols, const void* x, const void* w, const void* bias, const void* residual, void* y,
                      const FusedActivation& act) {
  FSWAP_RETURN_IF_ERROR(require_context(ctx, op));
  FSWAP_ASSIGN_OR_RETURN(const LtWorkspace ws, lt_workspace(ctx));
  // cuBLASLt adds the residual as C and the bias in its epilogue, Relu too; other activations after.
  const bool relu_in_lt = act.kind == Activation::kRelu;
  GemmShape s{.dtype = dtype, .m = rows, .n = cols, .k = inner, .trans_a = false, .trans_b = true,
              .beta = residual != nullptr ? 1.0f : 0.0f, .bias = bias, .relu = relu_in_lt};
  s.alignment = common_alignment({address(x), address(w), address(y), address(residual), address(bias)});
  FSWAP_ASSIGN_OR_RETURN(const LtGemm gemm, LtGemm::create(ctx, op, s, ws.bytes));
  FSWAP_RETURN_IF_ERROR(gemm.run(ctx, x, w, residual, y, ws.data));
  if (relu_in_lt || act.kind == Activation::kNone) return Status::ok();
  return bias_activation(dtype, y, nullptr, rows, cols, column_bias(), act, ctx.stream, op);
}

Status gemm_kernel(const CudaKernelArgs& args) {
  constexpr const char* kOp = "Gemm";
  if (args.inputs.size() < 2 || args.outputs.empty()) return shape_error(kOp, "needs A and B");
  FSWAP_ASSIGN_OR_RETURN(const DType dtype, linear_dtype(args, kOp));
  const TensorView& av = args.inputs[0];
  const TensorView& bv = args.inputs[1];
  const TensorView& y = args.outputs[0];
  const bool c_present = args.inputs.size() > 2 && args.inputs[2].data != nullptr;
  FSWAP_ASSIGN_OR_RETURN(const GemmGeometry g, gemm_geometry(kOp, args.attrs, av.shape, bv.shape, y.shape,
                                                             c_present ? &args.inputs[2].shape : nullptr));
  const bool trans_a = g.trans_a, trans_b = g.trans_b;
  const float alpha = g.alpha, beta = g.beta;
  const std::int64_t m = g.m, k = g.k, n = g.n;
  const TensorView* c = g.has_c ? &args.inputs[2] : nullptr;  // absent, or ignored as beta is 0
  const std::int64_t cm = g.c_rows, cn = g.c_cols;
  if (y.elements() == 0) return Status::ok();
  FSWAP_RETURN_IF_ERROR(require_context(args.ctx, kOp));

  // C of Y's shape is cuBLASLt's C; a row vector with beta 1 is its bias epilogue; any other C is
  // added, scaled by beta, by the epilogue kernel.
  const bool c_full = c != nullptr && cm == m && cn == n;
  const bool c_as_bias = c != nullptr && !c_full && cm == 1 && cn == n && beta == 1.0f;
  const TensorView* c_after = c != nullptr && !c_full && !c_as_bias ? c : nullptr;
  const FusedActivation& act = args.attrs.activation;
  const bool relu_in_lt = act.kind == Activation::kRelu && c_after == nullptr;
  const BiasLayout c_layout{cm, cm == 1 ? 0 : cn, cn == 1 ? 0 : 1, beta};

  if (k == 0) {
    FSWAP_RETURN_IF_ERROR(zero_output(args.ctx, kOp, y));
    return bias_activation(dtype, y.data, c != nullptr ? c->data : nullptr, m, n, c_layout, act, args.ctx.stream, kOp);
  }
  const void* c_data = c_full ? c->data : nullptr;
  const void* bias = c_as_bias ? c->data : nullptr;
  const float c_beta = c_full ? beta : 0.0f;
  if (m == 1 && trans_b && n <= kGemvMaxSide && k <= kGemvMaxSide) {
    // One row against transB weights (a landmark MLP's layers, a swapper's style projection): a
    // cuBLASLt call costs the GPU more than the arithmetic.
    FSWAP_RETURN_IF_ERROR(
        row_gemv(dtype, av.data, bv.data, c_data, bias, y.data, n, k, alpha, c_beta, relu_in_lt, args.ctx.stream, kOp));
  } else {
    FSWAP_ASSIGN_OR_RETURN(const LtWorkspace ws, lt_workspace(args.ctx));
    GemmShape s{.dtype = dtype, .m = m, .n = n, .k = k, .trans_a = trans_a, .trans_b = trans_b, .alpha = alpha,
                .beta = c_beta, .bias = bias, .relu = relu_in_lt};
    s.alignment = common_alignment({address(av.data), address(bv.data), address(y.data), address(c_data)});
    FSWAP_ASSIGN_OR_RETURN(const LtGemm gemm, LtGemm::create(args.ctx, kOp, s, ws.bytes));
    FSWAP_RETURN_IF_ERROR(gemm.run(args.ctx, av.data, bv.data, c_data, y.data, ws.data));
  }
  if (relu_in_lt) return Status::ok();
  return bias_activation(dtype, y.data, c_after != nullptr ? c_after->data : nullptr, m, n, c_layout, act,
                         args.ctx.stream, kOp);
}

Status mat_mul_kernel(const CudaKernelArgs& args) {
  constexpr const char* kOp = "MatMul";
  if (args.inputs.size() < 2 || args.outputs.empty()) return shape_error(kOp, "needs A and B");
  FSWAP_ASSIGN_OR_RETURN(const DType dtype, linear_dtype(args, kOp));
  const TensorView& av = args.inputs[0];
  const TensorView& bv = args.inputs[1];
  const TensorView& y = args.outputs[0];
  const TensorView* bias = args.inputs.size() > 2 && args.inputs[2].data != nullptr ? &args.inputs[2] : nullptr;
  FSWAP_ASSIGN_OR_RETURN(const MatMulGeometry g, mat_mul_geometry(kOp, av.shape, bv.shape, y.shape,
                                                                  bias != nullptr ? &bias->shape : nullptr));
  const std::int64_t m = g.m, k = g.k, n = g.n, batches = g.batches, count_a = g.count_a, count_b = g.count_b;
  if (y.elements() == 0) return Status::ok();
  FSWAP_RETURN_IF_ERROR(require_context(args.ctx, kOp));

  // A bias of n values is cuBLASLt's bias epilogue; a scalar one (n > 1) is added by the epilogue kernel.
  const bool bias_in_lt = bias != nullptr && bias->elements() == n;
  const TensorView* bias_after = bias != nullptr && !bias_in_lt ? bias : nullptr;
  const FusedActivation& act = args.attrs.activation;
  const bool relu_in_lt = act.kind == Activation::kRelu && bias_after == nullptr;
  const std::int64_t rows = batches * m;
  const BiasLayout scalar_bias{1, 0, 0, 1};

  if (k == 0) {
    FSWAP_RETURN_IF_ERROR(zero_output(args.ctx, kOp, y));
    return bias_activation(dtype, y.data, bias != nullptr ? bias->data : nullptr, rows, n,
                           bias_in_lt ? column_bias() : scalar_bias, act, args.ctx.stream, kOp);
  }
  FSWAP_ASSIGN_OR_RETURN(const LtWorkspace ws, lt_workspace(args.ctx));
  GemmShape s{.dtype = dtype, .m = m, .n = n, .k = k, .bias = bias_in_lt ? bias->data : nullptr, .relu = relu_in_lt};
  const std::size_t element = dtype_size(dtype);
  const bool a_linear = count_a == 1 || count_a == batches, b_linear = count_b == 1 || count_b == batches;
  const bool one_tall_gemm = count_b == 1 && count_a == batches;  // B shared: the batch folds into A's rows
  if (one_tall_gemm) {
    s.m = rows;
  } else if (a_linear && b_linear) {
    s.batch = batches;
    s.stride_a = count_a == 1 ? 0 : m * k;
    s.stride_b = count_b == 1 ? 0 : k * n;
    s.stride_y = m * n;
  }
  const bool per_batch_offsets = !one_tall_gemm;
  s.alignment = common_alignment({address(av.data), address(bv.data), address(y.data),
                                  per_batch_offsets ? static_cast<std::uintptr_t>(m * k * element) : 0,
                                  per_batch_offsets ? static_cast<std::uintptr_t>(k * n * element) : 0,
                                  per_batch_offsets ? static_cast<std::uintptr_t>(m * n * element) : 0});
  FSWAP_ASSIGN_OR_RETURN(const LtGemm gemm, LtGemm::create(args.ctx, kOp, s, ws.bytes));
  if (one_tall_gemm || (a_linear && b_linear)) {
    FSWAP_RETURN_IF_ERROR(gemm.run(args.ctx, av.data, bv.data, nullptr, y.data, ws.data));
  } else {
    // Batch strides no single stride describes (A [2, 1, ...] with B [3, ...]): one call per matrix.
    const auto* a_bytes = static_cast<const std::byte*>(av.data);
    const auto* b_bytes = static_cast<const std::byte*>(bv.data);
    auto* y_bytes = static_cast<std::byte*>(y.data);
    const std::vector<MatrixPair> pairs = batch_matrices(g);
    for (std::int64_t bi = 0; bi < batches; ++bi) {
      const MatrixPair& p = pairs[static_cast<std::size_t>(bi)];
      FSWAP_RETURN_IF_ERROR(gemm.run(args.ctx, a_bytes + p.a * m * k * element, b_bytes + p.b * k * n * element,
                                     nullptr, y_bytes + bi * m * n * element, ws.data));
    }
  }
  if (relu_in_lt) return Status::ok();
  return bias_activation(dtype, y.data, bias_after != nullptr ? bias_after->data : nullptr, rows, n, scalar_bias, act,
                         args.ctx.stream, kOp);
}

}  // namespace fswap::cuda
