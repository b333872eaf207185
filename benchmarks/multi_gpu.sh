#!/usr/bin/env bash
# Two GPUs on one video (`--device cuda:0,1`, issue 6) on the GPU machine (scripts/gpu_run.sh's
# "multigpu" part, a machine with two GPUs; bundle/ unpacked, clips made by benchmarks/video_gpu.sh
# or here): the same clip on one GPU in the same two segments, then on two; prints both fps and
# compares the outputs frame by frame (python3 with OpenCV, which the GPU machine has): frame
# counts, the worst PSNR, and each output's audio and video durations from their containers.
set -uo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-/tmp/fswap-gpu}
OUT=${OUT:-out/gpu}
bin=bundle/bin
clip=$WORK/clip_1080p.mp4
[[ -s $clip ]] || $bin/fswap-make-clip --image bundle/media/messi5.jpg --width 1920 --height 1080 --seconds 4 --fps 30 \
  --audio-from bundle/media/Megamind.avi --out "$clip" >/dev/null
frames=120
native=(--engine native --precision fp16 --models-dir "$WORK/models" -s bundle/media/astronaut.png -t "$clip")
run() {  # label output args...
  local label=$1 out=$2
  shift 2
  local start=$(date +%s.%N)
  if $bin/fswap swap "${native[@]}" -o "$out" "$@" > "$OUT/multigpu_$label.log" 2>&1; then
    echo "$label: $(grep -o '[0-9]* frames, [0-9]* faces swapped, [0-9.]* s, [0-9.]* fps' "$OUT/multigpu_$label.log")"
  else
    echo "$label: failed: $(tail -1 "$OUT/multigpu_$label.log")"
  fi
}
nvidia-smi --query-gpu=index,name --format=csv,noheader
run one_gpu "$WORK/one_gpu.mp4" --device cuda:0 --segment-frames $((frames / 2))
run two_gpus "$WORK/two_gpus.mp4" --device cuda:0,1
python3 - "$WORK/one_gpu.mp4" "$WORK/two_gpus.mp4" "$clip" <<'PY'
import sys, cv2, numpy as np
a, b, src = (cv2.VideoCapture(p) for p in sys.argv[1:4])
worst, n = 99.0, 0
while True:
    ok_a, fa = a.read(); ok_b, fb = b.read()
    if not ok_a or not ok_b:
        print(f"frames: one GPU {n + ok_a}+, two GPUs {n + ok_b}+ (ended together: {ok_a == ok_b})")
        break
    n += 1
    mse = np.mean((fa.astype(np.float64) - fb.astype(np.float64)) ** 2)
    worst = min(worst, 99.0 if mse == 0 else 10 * np.log10(255 ** 2 / mse))
print(f"compared {n} frames: worst PSNR two GPUs vs one {worst:.1f} dB (99 = identical)")
for name, cap in (("one GPU", cv2.VideoCapture(sys.argv[1])), ("two GPUs", cv2.VideoCapture(sys.argv[2])),
                  ("source", cv2.VideoCapture(sys.argv[3]))):
    print(f"{name}: {int(cap.get(cv2.CAP_PROP_FRAME_COUNT))} frames at {cap.get(cv2.CAP_PROP_FPS):.2f} fps")
PY
# Audio: the container's stream durations, from the MP4 boxes (no ffprobe there): fswap's own reader.
for f in one_gpu two_gpus; do
  python3 - "$WORK/$f.mp4" <<'PY'
import struct, sys
# Walk moov/trak/mdia/{mdhd,hdlr}: each track's handler and duration in seconds.
data = open(sys.argv[1], 'rb').read()
def boxes(buf, start, end):
    i = start
    while i + 8 <= end:
        size, kind = struct.unpack('>I4s', buf[i:i + 8])
        head = 8
        if size == 1: size, head = struct.unpack('>Q', buf[i + 8:i + 16])[0], 16
        if size == 0: size = end - i
        yield kind.decode('latin1'), i + head, i + size
        i += size
def find(buf, start, end, path):
    for kind, s, e in boxes(buf, start, end):
        if kind == path[0]:
            if len(path) == 1: yield s, e
            else: yield from find(buf, s, e, path[1:])
out = []
for ts, te in find(data, 0, len(data), ['moov', 'trak']):
    handler = next((data[s + 8:s + 12].decode('latin1') for s, e in find(data, ts, te, ['mdia', 'hdlr'])), '?')
    for s, e in find(data, ts, te, ['mdia', 'mdhd']):
        v = data[s]
        scale, dur = struct.unpack('>IQ', data[s + 20:s + 32]) if v == 1 else struct.unpack('>II', data[s + 12:s + 20])
        out.append(f"{handler} {dur / scale:.3f} s")
print(sys.argv[1].rsplit('/', 1)[-1] + ": " + ", ".join(out))
PY
done
