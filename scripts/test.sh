#!/usr/bin/env bash
# The README's test command: sets up, builds, makes the media, runs every CPU test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
scripts/build.sh
scripts/make_media.sh
ctest --preset release -j2 "$@"
