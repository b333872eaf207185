// Internal to the CPU backend: the two kernel families and their tables.
//   kernels_nn.cc:     Conv, ConvTranspose, Gemm, MatMul, normalisations, pooling, Resize/Upsample,
//                      DepthToSpace/SpaceToDepth, Softmax/LogSoftmax, Pad
//   kernels_tensor.cc: element-wise unary/binary/variadic ops and activations, reductions,
//                      ArgMax/ArgMin, layout and indexing ops, Shape/Size/ConstantOfShape/
//                      Constant/Range, Cast, Where, TopK
#pragma once

#include "backends/cpu/cpu_kernels.h"

namespace fswap {

CpuKernel cpu_nn_kernel(OpType op);      // nullptr when op is not an nn-family op (or not done)
CpuKernel cpu_tensor_kernel(OpType op);  // nullptr when op is not a tensor-family op (or not done)

}  // namespace fswap
