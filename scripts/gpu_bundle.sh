#!/usr/bin/env bash
# Builds the GPU bundle: the CUDA build's test and benchmark programs plus every shared library they
# need that the GPU test machine (Ubuntu 24.04 + CUDA 13, GPU.md) does not provide, in bundle/.
# Run on a build machine (nvcc, no GPU needed). Then run scripts/gpu_run.sh on the GPU machine.
#   scripts/gpu_bundle.sh            # sm_90 only (the H100), 2 build jobs
#   CUDA_ARCHS="80;90" JOBS=8 scripts/gpu_bundle.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CUDA_ARCHS=${CUDA_ARCHS:-90}
JOBS=${JOBS:-2}
TARGETS=(test_cuda_memory bench_memory)
LIMIT_MIB=60

cmake --preset cuda -DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCHS" >/dev/null
cmake --build build/cuda -j"$JOBS" --target "${TARGETS[@]}"

rm -rf bundle
mkdir -p bundle/bin bundle/lib
cp build/cuda/tests/gpu/test_cuda_memory build/cuda/benchmarks/bench_memory bundle/bin/
strip --strip-unneeded bundle/bin/*

# Shared libraries beyond glibc, libstdc++/libgcc and the driver's libcuda (cudart is linked
# statically; the machine has its own libcudart anyway).
for bin in bundle/bin/*; do
  ldd "$bin" | awk '/=> \// { print $3 }'
done | sort -u | while read -r lib; do
  case "$(basename "$lib")" in
    ld-linux*|libc.so*|libm.so*|libdl.so*|librt.so*|libpthread.so*|libstdc++.so*|libgcc_s.so*|libcuda.so*|libcudart.so*) ;;
    *) cp -L "$lib" bundle/lib/ && echo "bundled $(basename "$lib")" ;;
  esac
done

git rev-parse --short HEAD > bundle/VERSION 2>/dev/null || true
size=$(du -sb bundle | cut -f1)
printf 'bundle/: %d files, %.1f MiB (limit %d MiB)\n' "$(find bundle -type f | wc -l)" "$(echo "$size / 1048576" | bc -l)" "$LIMIT_MIB"
if (( size >= LIMIT_MIB * 1048576 )); then
  echo "bundle is over the $LIMIT_MIB MiB limit" >&2
  exit 1
fi
