#!/usr/bin/env bash
# The README's main command: sets up, builds, and swaps the astronaut's face into the
# generated 720p clip (audio kept). Extra arguments are passed to `fswap swap`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
scripts/make_media.sh
mkdir -p out
build/release/src/cli/fswap swap -s third_party/media/astronaut.png \
  -t third_party/media/messi_720p.mp4 -o out/swapped_720p.mp4 "$@"
echo "run: wrote out/swapped_720p.mp4"
