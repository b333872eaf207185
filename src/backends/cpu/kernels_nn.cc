#include "backends/cpu/kernels.h"
#include "backends/cpu/nn_kernels.h"

namespace fswap {

CpuKernel cpu_nn_kernel(OpType op) {
  switch (op) {
    case OpType::kConv: return conv_kernel;
    case OpType::kConvTranspose: return conv_transpose_kernel;
    case OpType::kGemm: return gemm_kernel;
    case OpType::kMatMul: return mat_mul_kernel;
    case OpType::kBatchNormalization: return batch_normalization_kernel;
    case OpType::kInstanceNormalization: return instance_normalization_kernel;
    case OpType::kFilterResponseNorm: return filter_response_norm_kernel;
    case OpType::kLayerNormalization: return layer_normalization_kernel;
    case OpType::kLpNormalization: return lp_normalization_kernel;
    case OpType::kMaxPool: return max_pool_kernel;
    case OpType::kAveragePool: return average_pool_kernel;
    case OpType::kGlobalAveragePool: return global_average_pool_kernel;
    case OpType::kGlobalMaxPool: return global_max_pool_kernel;
    case OpType::kResize: return resize_kernel;
    case OpType::kUpsample: return upsample_kernel;
    case OpType::kDepthToSpace: return depth_to_space_kernel;
    case OpType::kSpaceToDepth: return space_to_depth_kernel;
    case OpType::kSoftmax: return softmax_kernel;
    case OpType::kLogSoftmax: return log_softmax_kernel;
    case OpType::kPad: return pad_kernel;
    default:
      return nullptr;
  }
}

}  // namespace fswap
