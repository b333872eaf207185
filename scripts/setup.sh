#!/usr/bin/env bash
# Installs everything fswap needs on a Debian 12 machine: Debian packages, then the pinned
# npm/Debian assets of models/manifest.json (ONNX Runtime, models, sample media).
# Idempotent and cached: with nothing to do it takes about a second.
# Flags: --tests (test oracles: OpenCV, ffmpeg CLI, Chromium, redis-server, curl, YAML), --with-cuda (ONNX
# Runtime's CUDA provider).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  cmake ninja-build g++ pkg-config python3
  libavformat-dev libavcodec-dev libavutil-dev libswscale-dev libswresample-dev
  nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev libcpp-httplib-dev libssl-dev libsqlite3-dev libhiredis-dev
  libprotobuf-dev protobuf-compiler libonnx-dev libopenblas-dev
  python3-onnx python3-numpy
  libgtest-dev libgmock-dev libbenchmark-dev
)
# Test-only: OpenCV is the imaging oracle, ffmpeg/ffprobe make and inspect fixtures, Chromium
# drives the web page, redis-server backs the scale-out test (--queue redis://), curl drives the
# server from shell tests (scripts/serve_mps.sh's test), python3-yaml reads compose.yaml.
fetch_flags=()
for arg in "$@"; do
  case "$arg" in
    --tests) packages+=(libopencv-dev ffmpeg chromium chromium-driver redis-server curl python3-yaml) ;;
    --with-cuda) fetch_flags+=(--with-cuda) ;;
    *) echo "setup: unknown flag $arg (--tests, --with-cuda)" >&2; exit 2 ;;
  esac
done

command -v npm >/dev/null || { echo "setup: npm is required (Node.js with npm, as on the build machines)" >&2; exit 1; }

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

/usr/bin/python3 scripts/fetch_assets.py "${fetch_flags[@]}"
