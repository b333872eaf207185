// Host-side helpers of the CUDA kernel families that need no CUDA headers.
#pragma once

#include <string>

#include "core/status.h"

namespace fswap::cuda {

// `op` as the CUDA kernels' messages name it ("Slice on CUDA"), the `who` of the shared op rules
// (backends/op_rules.h) where the CUDA kernel's own messages say "on CUDA".
inline std::string on_cuda(const char* op) { return std::string(op) + " on CUDA"; }

// The error of the last kernel launch (cudaGetLastError), as kInternal naming `op`; ok when none.
Status check_launch(const char* op);

}  // namespace fswap::cuda
