#include "backends/cuda/cuda_kernels.h"

#include "backends/cuda/families.h"

namespace fswap::cuda {

CudaKernel cuda_kernel(OpType op) {
  for (CudaKernel (*family)(OpType) : {elementwise_kernel, layout_kernel, norm_pool_kernel, linear_kernel})
    if (CudaKernel k = family(op)) return k;
  return nullptr;
}

}  // namespace fswap::cuda
