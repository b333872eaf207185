// Internal to the CUDA backend: the kernel families and their tables (cuda_kernels.cc joins them).
//   elementwise.cu: element-wise unary/binary/variadic ops and activations, Cast, Where, Clip,
//                   Softmax/LogSoftmax, reductions, ArgMax/ArgMin, TopK
//   layout.cu:      layout, indexing, shape and constant ops, Pad, Resize/Upsample,
//                   DepthToSpace/SpaceToDepth
//   norm_pool.cu:   BatchNormalization, InstanceNormalization, FilterResponseNorm (internal),
//                   LayerNormalization, LpNormalization, MaxPool, AveragePool,
//                   GlobalAveragePool, GlobalMaxPool
//   conv.cc/gemm.cc (+ epilogue.cu): Conv, ConvTranspose (cuDNN), Gemm, MatMul (cuBLASLt);
//                   depthwise.cu: channels-last depthwise Conv (ours: cuDNN's NHWC grouped
//                   kernels are slow)
#pragma once

#include "backends/cuda/cuda_kernels.h"

namespace fswap::cuda {

CudaKernel elementwise_kernel(OpType op);  // nullptr when not in the family
CudaKernel layout_kernel(OpType op);
CudaKernel norm_pool_kernel(OpType op);
CudaKernel linear_kernel(OpType op);       // Conv, ConvTranspose, Gemm, MatMul

}  // namespace fswap::cuda
