// Host-side helpers of the CUDA kernel families that need no CUDA headers.
#pragma once

#include "core/status.h"

namespace fswap::cuda {

// The error of the last kernel launch (cudaGetLastError), as kInternal naming `op`; ok when none.
Status check_launch(const char* op);

}  // namespace fswap::cuda
