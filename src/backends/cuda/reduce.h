// The Reduce* kernels' baseline path, callable on its own so that its speed can be compared with
// the path reduce.cu picks (tests/gpu/test_cuda_reductions.cc times both):
//
//   FSWAP_RETURN_IF_ERROR(reduce_one_thread_per_output({OpType::kReduceMean, attrs, {x, axes}, {y},
//                                                       {{}, axes_host}, ctx}));
//
// Same contract and results as cuda_kernel(op) for the Reduce* ops (cuda_kernels.h), always with
// one thread per output walking its row in order: the path cuda_kernel takes for short rows and
// for outputs enough to fill the device.
#pragma once

#include "backends/cuda/cuda_kernels.h"

namespace fswap::cuda {

Status reduce_one_thread_per_output(const CudaKernelArgs& args);

}  // namespace fswap::cuda
