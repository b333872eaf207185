#!/usr/bin/env bash
# End-to-end video on the GPU machine (scripts/gpu_run.sh's "video" part; bundle/ unpacked):
# makes 1080p and 4K clips from a real photo, then `fswap bench` (decode + encode only, then the
# full swap, same run) on each:
#   - the default pipeline (fr_detect → fr_landmark → classical swapper) and the FaceFusion default
#     pipeline on replicas (2dfan4 → arcface → hyperswap_1a_256 → gfpgan_1.4, box mask), native engine,
#     CUDA, fp16. Its detector is fr_detect, not the yoloface replica: a replica's random weights find
#     hundreds of boxes that are no faces, where the clip has one; yoloface's own cost is in
#     docs/BENCHMARKS.md's per-family table;
#   - the FaceFusion pipeline with its frames kept on the GPU (the default) and on the host, and
#     with every model in ONNX's NCHW layout (--layout nchw; the default runs channels-last islands);
#   - a VRAM budget sweep at 4K (a 12 s clip): 100%, 50% and 25% of the FaceFusion pipeline's peak
#     device bytes.
# Prints one line per run: clip, setting, mode, frames, fps, steady fps (from frame 30 on), seconds to
# the first frame, stages. Environment: WORK (the models
# folder is $WORK/models, replicas generated), OUT (logs).
set -uo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-/tmp/fswap-gpu}
OUT=${OUT:-out/gpu}
SECONDS_PER_CLIP=${SECONDS_PER_CLIP:-4}
LIMIT=${LIMIT:-150}  # seconds for one fswap command: a stuck run ends, the others still run
VIDEO_PARTS=${VIDEO_PARTS:-bench sweep}  # which to run: bench, lanes, batch, startup, sweep
ROUNDS=${ROUNDS:-1}  # fswap bench --rounds: each section's three runs in turn, medians last (raise LIMIT with it)
# SWEEP_FLAGS: more fswap flags for the sweep's budget runs, e.g. "--log-level debug".
bin=bundle/bin
models=$WORK/models

make_clip() {  # width height file [seconds]
  [[ -s $WORK/$3 ]] || $bin/fswap-make-clip --image bundle/media/messi5.jpg --width "$1" --height "$2" \
    --seconds "${4:-$SECONDS_PER_CLIP}" --fps 30 --audio-from bundle/media/Megamind.avi --out "$WORK/$3" >/dev/null
}
make_clip 1920 1080 clip_1080p.mp4
make_clip 3840 2160 clip_4k.mp4
clips=("$WORK/clip_1080p.mp4" "$WORK/clip_4k.mp4")

native=(--engine native --device cuda --precision fp16 --models-dir "$models" -s bundle/media/astronaut.png)
facefusion=(--face-landmarker-model 2dfan4 --face-swapper-model hyperswap_1a_256
            --processors face_swapper face_enhancer --face-enhancer-model gfpgan_1.4 --face-mask-types box)

bench() {  # label args...: fswap bench over the clips; its table and memory lines prefixed with the label
  local label=$1
  shift
  echo "### $label"
  timeout "$LIMIT" $bin/fswap bench --rounds "$ROUNDS" "$@" -t "${clips[@]}" 2>>"$OUT/video_stderr.log" |
    sed "s/^/$label | /"
}

if [[ " $VIDEO_PARTS " == *" bench "* ]]; then
  bench "default" "${native[@]}"
  bench "facefusion" "${native[@]}" "${facefusion[@]}"
  bench "facefusion, frames on the host" "${native[@]}" "${facefusion[@]}" --frames-on-gpu off
  bench "facefusion, nchw" "${native[@]}" "${facefusion[@]}" --layout nchw
fi
if [[ " $VIDEO_PARTS " == *" lanes "* ]]; then
  # The analysis on a compute lane of its own, against one lane in the same call; and the content
  # masks on the device path (the default) against host frames (--frames-on-gpu off).
  bench "facefusion, 1 lane" "${native[@]}" "${facefusion[@]}" --gpu-lanes 1
  bench "facefusion, 2 lanes" "${native[@]}" "${facefusion[@]}"
  # FaceFusion's default occluder is xseg_1; the replicas write it as xseg.onnx.
  [[ -e $models/xseg_1.onnx ]] || ln -s xseg.onnx "$models/xseg_1.onnx"
  bench "facefusion, occlusion mask, host" "${native[@]}" "${facefusion[@]}" occlusion --frames-on-gpu off
  bench "facefusion, occlusion mask, gpu" "${native[@]}" "${facefusion[@]}" occlusion
fi
if [[ " $VIDEO_PARTS " == *" batch "* ]]; then
  # Four frames at a time in four lanes (--batch-frames 4) against one (the default, in "bench"):
  # the default pipeline's classical swapper and paste-back work on the host, a frame per lane.
  bench "default, 4 lanes" "${native[@]}" --batch-frames 4
  bench "facefusion, 4 lanes" "${native[@]}" "${facefusion[@]}" --batch-frames 4
fi
if [[ " $VIDEO_PARTS " == *" startup "* ]]; then
  # Where a run's first seconds go: the FaceFusion pipeline on the 1080p clip with debug logging
  # (each model's load, executor, first run and CUDA graph capture), twice: the second finds
  # cuDNN's algorithm choices in the cache the first saved.
  rm -rf "$WORK/startup-cache"
  for pass in cold-cache warm-cache; do
    echo "### startup, $pass"
    XDG_CACHE_HOME="$WORK/startup-cache" timeout "$LIMIT" $bin/fswap swap "${native[@]}" "${facefusion[@]}" --log-level debug -t "$WORK/clip_1080p.mp4" \
      -o "$WORK/startup.mp4" 2>&1 | grep -E ' in [0-9.]+ ms|fps|load' | sed "s/^/startup $pass | /"
  done
fi
[[ " $VIDEO_PARTS " == *" sweep "* ]] || exit 0

# The budget sweep: the FaceFusion pipeline's peak device bytes on a 4K clip, then fractions of it.
# The clip is longer than the others (SWEEP_SECONDS, 12 s = 360 frames): under a budget the face
# work runs stage-major over windows of up to a few hundred frames, and a clip of one window would
# measure its start-up (nothing to encode until the window's stages end), not its steady rate.
make_clip 3840 2160 clip_4k_sweep.mp4 "${SWEEP_SECONDS:-12}"
sweep_clip=$WORK/clip_4k_sweep.mp4
# The peak is the second of two unlimited runs: the first fills cuDNN's algorithm cache, whose
# searches take up to 256 MiB of workspace that a warm run never asks for (on a fresh machine the
# first run's peak was 1054 MiB; after other runs had filled the cache, 608).
timeout "$LIMIT" $bin/fswap swap "${native[@]}" "${facefusion[@]}" -t "$sweep_clip" -o "$WORK/peak.mp4" \
  > "$OUT/video_peak_cold.log" 2>&1
peak=$(timeout "$LIMIT" $bin/fswap swap "${native[@]}" "${facefusion[@]}" -t "$sweep_clip" -o "$WORK/peak.mp4" 2>&1 |
  tee "$OUT/video_peak.log" | grep -o 'peak reserved [0-9.]* [KMG]iB' | head -1 |
  awk '{ f = $4 == "GiB" ? 1024 : $4 == "KiB" ? 1 / 1024 : 1; printf "%d", $3 * f }')
echo "### 4K budget sweep (peak ${peak:-?} MiB unlimited)"
if [[ -n $peak ]]; then
  for pct in 100 50 25; do
    budget=$(awk -v p="$peak" -v f="$pct" 'BEGIN { printf "%d", p * f / 100 }')
    # The card's used memory sampled every 100 ms during the run (read-only query), against the
    # level before it: the process's CUDA context and libraries count too, the arena's budget not.
    before=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 | head -1)
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 -lms 100 > "$WORK/sampled_$pct.txt" &
    sampler=$!
    timeout "$LIMIT" $bin/fswap swap "${native[@]}" "${facefusion[@]}" --vram-budget "${budget}MiB" ${SWEEP_FLAGS:-} -t "$sweep_clip" \
      -o "$WORK/budget_$pct.mp4" > "$OUT/video_budget_$pct.log" 2>&1
    status=$?
    kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
    most=$(sort -n "$WORK/sampled_$pct.txt" | tail -1)
    sampled="card used at most $((most - before)) MiB above the idle level ($(wc -l < "$WORK/sampled_$pct.txt") samples)"
    if (( status == 0 )); then
      echo "budget ${pct}% (${budget} MiB) | $(grep -E 'fps|peak' "$OUT/video_budget_$pct.log" | tr '\n' ' ') | $sampled"
    else
      echo "budget ${pct}% (${budget} MiB) | failed: $(tail -1 "$OUT/video_budget_$pct.log")"
    fi
  done
fi
