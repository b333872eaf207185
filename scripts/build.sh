#!/usr/bin/env bash
# Configures and builds one CMake preset, by default the CPU release build (build/release).
# Incremental.
#   scripts/build.sh                              # the README commands and CI
#   scripts/build.sh --preset cuda --target fswap # the Docker image (Dockerfile)
set -euo pipefail
cd "$(dirname "$0")/.."
preset=release
targets=()
while (($#)); do
  case "$1" in
    --preset) preset=${2:?build: --preset needs a name (release, debug, asan, cuda)}; shift 2 ;;
    --target) targets+=(--target "${2:?build: --target needs a name}"); shift 2 ;;
    *) echo "build: unknown flag $1 (--preset NAME, --target NAME)" >&2; exit 2 ;;
  esac
done
[[ -f build/$preset/build.ninja ]] || cmake --preset "$preset"
cmake --build --preset "$preset" "${targets[@]}"
