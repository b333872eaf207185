#include "backends/cpu/blas.h"

#include <dlfcn.h>

#include <cstdlib>
#include <string>

namespace fswap {

const char* openblas_core_for_this_cpu() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  return "";
}

Result<SgemmFn> load_sgemm() {
  static const Result<SgemmFn> loaded = []() -> Result<SgemmFn> {
    const char* core = openblas_core_for_this_cpu();
    if (*core) setenv("OPENBLAS_CORETYPE", core, /*overwrite=*/0);
    void* lib = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* why = dlerror();
      return unsupported(std::string("the CPU backend needs OpenBLAS (libopenblas.so.0): ") + (why ? why : "not found") +
                         "; install Debian's libopenblas0");
    }
    auto fn = reinterpret_cast<SgemmFn>(dlsym(lib, "cblas_sgemm"));
    if (!fn) return unsupported("libopenblas.so.0 has no cblas_sgemm");
    return fn;
  }();
  return loaded;
}

}  // namespace fswap
