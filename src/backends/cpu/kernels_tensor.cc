#include "backends/cpu/kernels.h"

namespace fswap {

CpuKernel cpu_tensor_kernel(OpType op) {
  switch (op) {
    default:
      return nullptr;
  }
}

}  // namespace fswap
