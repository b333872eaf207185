// Internal to the CUDA linear family (conv.cc): the channels_last depthwise convolution, one
// hand-written kernel in place of cuDNN's NHWC grouped kernels (slow at fp16). Host declarations
// only; the device code is in depthwise.cu.
//
//   // Conv with channels_last = 1 and group == C: X [N, H, W, C], W [C·multiplier, kH, kW, 1].
//   DepthwiseConv p{.dtype = DType::kFloat16, .batch = n, .channels = c, .multiplier = 1,
//                   .in = {h, w}, .out = {oh, ow}, .kernel = {3, 3}, .stride = {1, 1},
//                   .dilation = {1, 1}, .pad_begin = {1, 1}};
//   FSWAP_RETURN_IF_ERROR(depthwise_conv(p, x, w, bias, /*residual=*/nullptr, y, act, stream, "Conv"));
//
// Output channel m reads input channel m / multiplier; output position o reads input position
// o * stride - pad_begin + k * dilation, and positions outside the input count as 0 (any pads,
// asymmetric or auto_pad, without a padded copy). Bias, the residual and the fused activation are
// applied in the same pass. Float32 or float16 storage, float32 accumulation. No workspace, no host
// synchronisation: one launch on `stream`, checked (check_launch naming `op`).
#pragma once

#include <array>
#include <cstdint>

#include "backends/cuda/cuda_kernels.h"
#include "backends/op.h"
#include "core/status.h"
#include "core/tensor.h"

struct CUstream_st;

namespace fswap::cuda {

// One depthwise problem; spatial arrays are {height, width}.
struct DepthwiseConv {
  DType dtype = DType::kFloat32;
  std::int64_t batch = 1, channels = 1, multiplier = 1;  // C = channels, M = channels × multiplier
  std::array<std::int64_t, 2> in{}, out{}, kernel{}, stride{1, 1}, dilation{1, 1}, pad_begin{};
};

// y [N, OH, OW, M] = act(depthwise(x [N, H, W, C], w [M, kH, kW, 1]) + bias [M] + residual
// [N, OH, OW, M]), added in that order; bias and residual nullptr for none. All pointers are dense
// device memory of p.dtype; the residual is not y.
Status depthwise_conv(const DepthwiseConv& p, const void* x, const void* w, const void* bias, const void* residual,
                      void* y, const FusedActivation& act, CUstream_st* stream, const char* op);

// Conv through cuDNN whatever the group (conv.cc): the path the Conv kernel takes for everything but
// a channels_last depthwise convolution. Declared here so the depthwise kernel can be timed against it.
Status cudnn_conv_kernel(const CudaKernelArgs& args);

}  // namespace fswap::cuda
