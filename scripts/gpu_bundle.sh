#!/usr/bin/env bash
# Builds the GPU bundle: the CUDA build's test and benchmark programs and `fswap` itself, plus every
# shared library they need that the GPU test machine (Ubuntu 24.04 + CUDA 13, GPU.md) does not
# provide, the op harness cases, the default models and the sample media, in bundle/. The video
# programs use the bundle's own small FFmpeg (scripts/build_ffmpeg_gpu.sh, with NVDEC): build/cuda
# is configured against it. The replicas and test clips are generated there (gpu_run.sh).
# Run on a build machine (nvcc, no GPU needed). Then run scripts/gpu_run.sh on the GPU machine.
#   scripts/gpu_bundle.sh            # sm_90 only (the H100), 2 build jobs
#   CUDA_ARCHS="80;90" JOBS=8 scripts/gpu_bundle.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CUDA_ARCHS=${CUDA_ARCHS:-90}
JOBS=${JOBS:-2}
TARGETS=(test_cuda_memory test_cuda_ops test_cuda_models test_cuda_face test_cuda_imaging test_cuda_video
         test_cuda_channels_last test_cuda_nhwc_norm_pool test_cuda_reductions bench_memory bench_native fswap
         fswap_make_clip)
LIMIT_MIB=60

scripts/build_ffmpeg_gpu.sh
# -U drops the cached FFmpeg lookup so pkg-config finds the bundle's FFmpeg.
PKG_CONFIG_PATH="$PWD/build/ffmpeg-gpu/lib/pkgconfig" \
  cmake --preset cuda -U '*FFMPEG*' -DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCHS" >/dev/null
cmake --build build/cuda -j"$JOBS" --target "${TARGETS[@]}"

rm -rf bundle
mkdir -p bundle/bin bundle/lib
for t in "${TARGETS[@]}"; do
  find build/cuda/tests/gpu build/cuda/benchmarks build/cuda/src/cli build/cuda/tools -maxdepth 1 \
    -name "${t//_/[_-]}" -type f -exec cp {} bundle/bin/ \;
done
strip --strip-unneeded bundle/bin/*
cp -r build/cuda/tests/op_harness/cases bundle/cases
mkdir -p bundle/models bundle/media
cp third_party/models/fr_detect.onnx third_party/models/fr_landmark.onnx third_party/models/fr_feature.onnx bundle/models/
cp third_party/media/astronaut.png third_party/media/messi5.jpg third_party/media/Megamind.avi bundle/media/

# Shared libraries beyond glibc, libstdc++/libgcc and the driver's libcuda (cudart is linked
# statically; the machine has its own libcudart anyway).
for bin in bundle/bin/*; do
  ldd "$bin" | awk '/=> \// { print $3 }'
done | sort -u | while read -r lib; do
  case "$(basename "$lib")" in
    ld-linux*|libc.so*|libm.so*|libdl.so*|librt.so*|libpthread.so*|libstdc++.so*|libgcc_s.so*|libcuda.so*|libcudart.so*) ;;
    libcudnn*|libcublas*) ;;  # the GPU machine has cuDNN 9 and cuBLAS 13 (GPU.md)
    *) cp -L "$lib" bundle/lib/ && echo "bundled $(basename "$lib")" ;;
  esac
done

# The programs share most of their code (statically linked) and the libraries are large (ONNX
# Runtime alone is 43 MiB): xz packs both several times smaller. gpu_run.sh unpacks them with
# Python's tarfile (xz may be missing there).
tar -C bundle -cJf bundle/programs.tar.xz bin lib
rm -rf bundle/bin bundle/lib

git rev-parse --short HEAD > bundle/VERSION 2>/dev/null || true
size=$(du -sb bundle | cut -f1)
printf 'bundle/: %d files, %.1f MiB (limit %d MiB)\n' "$(find bundle -type f | wc -l)" "$(echo "$size / 1048576" | bc -l)" "$LIMIT_MIB"
if (( size >= LIMIT_MIB * 1048576 )); then
  echo "bundle is over the $LIMIT_MIB MiB limit" >&2
  exit 1
fi
