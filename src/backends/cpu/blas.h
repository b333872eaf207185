// The CPU backend's BLAS: OpenBLAS's cblas_sgemm, loaded on first use.
//
//   FSWAP_ASSIGN_OR_RETURN(SgemmFn sgemm, load_sgemm());
//   sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.f, a, k, b, n, 0.f, c, n);
//
// Why loaded by hand: OpenBLAS picks its kernels when the library initialises, from the CPU
// model; on virtual machines that report a generic "Intel Xeon Processor" it falls back to
// SSE3 (Prescott) kernels at about half speed (64 vs 118 GFLOP/s on the build machine's
// AVX-512 cores). Loading it after setting OPENBLAS_CORETYPE from the CPU's real features
// (unless the user set it) gets the AVX-512/AVX2 kernels. Thread-safe.
#pragma once

#include <cblas.h>

#include "core/status.h"

namespace fswap {

using SgemmFn = decltype(&cblas_sgemm);

// kUnsupported naming the library when OpenBLAS cannot be loaded.
Result<SgemmFn> load_sgemm();

// The OpenBLAS core type chosen from this CPU's features ("SkylakeX", "Haswell"), or "" to
// let OpenBLAS detect it.
const char* openblas_core_for_this_cpu();

}  // namespace fswap
