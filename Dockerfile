# syntax=docker/dockerfile:1
# fswap's server image: the `cuda` preset built by the README's own scripts (scripts/setup.sh,
# scripts/build.sh), run on NVIDIA's CUDA 13 + cuDNN 9 runtime image as a non-root user.
#
#   docker build -t fswap .                        # from the repository root (docs/SERVING.md)
#   docker build --build-arg CUDA_ARCHS=90 -t fswap .   # one architecture: a much shorter build
#   docker run --gpus all -p 8080:8080 -v fswap-data:/data fswap
#
# Two distributions, on purpose. scripts/setup.sh is written for Debian 12 (its package names;
# scripts/fetch_assets.py pins Debian 12 packages by version and sha256), and NVIDIA publishes
# no Debian image (nvidia/cuda is Ubuntu, UBI, Rocky and Oracle Linux only), but it does publish
# a Debian 12 apt repository with the same CUDA 13 and cuDNN 9 packages as its Ubuntu images.
# So the build stage is Debian 12 plus that repository, like our build machines (Debian 12 with
# the CUDA 13 toolkit), and the runtime stage is nvidia/cuda's cudnn-runtime image (Ubuntu 24.04)
# plus the shared libraries fswap links that it lacks, the way scripts/gpu_bundle.sh carries
# Debian 12 builds to the Ubuntu 24.04 GPU machine (glibc 2.36 binaries run on 2.39).
# tests/integration/test_container_files.sh checks in CI that the scripts, flags and paths named
# here exist; the image itself is not built in CI (no Docker registry there).

ARG CUDA_VERSION=13.0.2

FROM debian:12 AS build
# The architectures nvcc compiles the kernels for (the cuda preset's list).
ARG CUDA_ARCHS="75;80;86;89;90"
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# The CUDA 13.0 toolkit and cuDNN 9 from NVIDIA's Debian 12 repository, and Node.js/npm, which
# the README expects on the machine (scripts/fetch_assets.py fetches npm packages).
ADD https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/cuda-keyring_1.1-1_all.deb /tmp/
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ca-certificates nodejs npm \
 && dpkg -i /tmp/cuda-keyring_1.1-1_all.deb \
 && apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends cuda-toolkit-13-0 cudnn9-cuda-13 \
 && rm -rf /var/lib/apt/lists/* /tmp/cuda-keyring_1.1-1_all.deb
ENV PATH=/usr/local/cuda-13.0/bin:$PATH CUDACXX=/usr/local/cuda-13.0/bin/nvcc CUDAARCHS=$CUDA_ARCHS
WORKDIR /src
# setup.sh first, with only what it reads: its layer stays cached while the sources change.
# --with-cuda adds ONNX Runtime's CUDA 13 provider: jobs with the default engine (auto = ort) run
# on the GPU too; "engine": "native" picks fswap's own CUDA engine.
COPY scripts/setup.sh scripts/fetch_assets.py scripts/
COPY models/manifest.json models/
RUN scripts/setup.sh --with-cuda
COPY . .
RUN scripts/build.sh --preset cuda --target fswap
# /opt/fswap: the program, the shared libraries it links beyond glibc, libstdc++ and what the
# runtime image provides (CUDA, cuBLAS, cuDNN), ONNX Runtime's CUDA provider next to
# libonnxruntime.so.1 (where fswap looks for it), a wrapper that points the loader at them (only
# for fswap: the image's own tools keep Ubuntu's libraries), and scripts/serve_mps.sh.
RUN mkdir -p /opt/fswap/bin /opt/fswap/libexec /opt/fswap/lib /opt/fswap/models \
 && install -m 755 -s build/cuda/src/cli/fswap /opt/fswap/libexec/fswap \
 && ! ldd /opt/fswap/libexec/fswap | grep 'not found' \
 && ldd /opt/fswap/libexec/fswap | awk '/=> \// { print $3 }' | while read -r lib; do \
      case "$(basename "$lib")" in \
        ld-linux*|libc.so*|libm.so*|libdl.so*|librt.so*|libpthread.so*|libstdc++.so*|libgcc_s.so*) ;; \
        libcuda.so*|libcudart.so*|libcudnn*|libcublas*) ;; \
        *) cp -L "$lib" /opt/fswap/lib/ ;; \
      esac; \
    done \
 && cp third_party/onnxruntime/lib/libonnxruntime_providers_cuda.so \
      third_party/onnxruntime/lib/libonnxruntime_providers_shared.so /opt/fswap/lib/ \
 && printf '#!/bin/sh\nLD_LIBRARY_PATH=/opt/fswap/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} exec /opt/fswap/libexec/fswap "$@"\n' \
      > /opt/fswap/bin/fswap \
 && chmod 755 /opt/fswap/bin/fswap \
 && install -m 755 scripts/serve_mps.sh /opt/fswap/bin/serve_mps.sh \
 && cp third_party/models/*.onnx /opt/fswap/models/

FROM nvidia/cuda:${CUDA_VERSION}-cudnn-runtime-ubuntu24.04 AS runtime
# curl for the health check only.
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --create-home --home-dir /home/fswap fswap \
 && mkdir -p /data /models \
 && chown fswap:fswap /data /models
COPY --from=build /opt/fswap /opt/fswap
# The default models (fr_detect, fr_landmark, fr_feature, fr_pose, blazeface); a named volume on
# /models starts with them, and FaceFusion's files (inswapper_128.onnx, ...) can be added there.
COPY --from=build --chown=fswap:fswap /opt/fswap/models/ /models/
ENV PATH=/opt/fswap/bin:$PATH
USER fswap
WORKDIR /home/fswap
VOLUME ["/data", "/models"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
# `docker run IMAGE --worker-only --queue redis://...` replaces the arguments (compose.yaml).
ENTRYPOINT ["fswap", "serve"]
CMD ["--host", "0.0.0.0", "--port", "8080", "--data-dir", "/data", "--models-dir", "/models", "--device", "cuda"]
