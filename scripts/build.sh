#!/usr/bin/env bash
# Configures and builds the CPU release build (build/release). Incremental.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -f build/release/build.ninja ]] || cmake --preset release
cmake --build --preset release
