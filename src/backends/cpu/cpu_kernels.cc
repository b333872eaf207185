#include "backends/cpu/cpu_kernels.h"

#include "backends/cpu/kernels.h"

namespace fswap {

// The CPU backend's kernel table: two explicit switches, one per kernel family file.
CpuKernel cpu_kernel(OpType op) {
  if (CpuKernel k = cpu_nn_kernel(op)) return k;
  return cpu_tensor_kernel(op);
}

}  // namespace fswap
