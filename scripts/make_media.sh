#!/usr/bin/env bash
# Generates the target test clips from the real sample photos (camera motion + the audio of
# Megamind.avi) with fswap's own clip tool. Cached: existing clips are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
media=third_party/media
tool=build/release/tools/fswap-make-clip
make_clip() {  # image width height output
  local out="$media/$4"
  [[ -s "$out" ]] && return 0
  echo "make_media: $out"
  "$tool" --image "$media/$1" --width "$2" --height "$3" --seconds 6 --fps 30 \
    --audio-from "$media/Megamind.avi" --out "$out"
}
make_clip messi5.jpg 1280 720 messi_720p.mp4
make_clip messi5.jpg 1920 1080 messi_1080p.mp4
make_clip astronaut.png 1280 720 astronaut_720p.mp4
make_clip astronaut.png 1920 1080 astronaut_1080p.mp4
