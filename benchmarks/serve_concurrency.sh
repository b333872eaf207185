#!/usr/bin/env bash
# Throughput of `fswap serve` with jobs run together vs one after another (issue 7's benchmark):
# the same 4 small jobs (30-frame cuts of the sample clips, made by scripts/make_media.sh) sent at
# once to a server with --max-running-jobs 4 (one set of face models, calls batched across jobs)
# and to one with --max-running-jobs 1. Prints each wall time (first POST to last job done; the
# best of --rounds, the two modes alternating, so load from other processes skews them alike)
# and the ratio.
#
#   benchmarks/serve_concurrency.sh [--engine auto|ort|native] [--frames 30] [--threads 0] [--rounds 3]
#
# Needs build/release/src/cli/fswap (or FSWAP=path), curl and the sample clips.
set -euo pipefail
cd "$(dirname "$0")/.."

engine=auto frames=30 threads=0 rounds=3
while [[ $# -gt 0 ]]; do
  case "$1" in
    --engine) engine="$2"; shift 2 ;;
    --frames) frames="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    *) echo "usage: $0 [--engine auto|ort|native] [--frames N] [--threads N] [--rounds N]" >&2; exit 2 ;;
  esac
done
fswap="${FSWAP:-build/release/src/cli/fswap}"
media=third_party/media
targets=(messi_720p.mp4 astronaut_720p.mp4 messi_720p.mp4 astronaut_720p.mp4)
for t in "${targets[@]}" astronaut.png messi5.jpg; do
  [[ -s "$media/$t" ]] || { echo "serve_concurrency: $media/$t is missing (run scripts/make_media.sh)" >&2; exit 2; }
done
[[ -x "$fswap" ]] || { echo "serve_concurrency: $fswap is not built" >&2; exit 2; }

work="$(mktemp -d)"
server_pid=""
cleanup() {
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# run_batch N: starts a server running N jobs at once, sends the 4 jobs, waits for all of them;
# prints the wall seconds.
run_batch() {
  local n="$1" dir="$work/data-$1-$RANDOM" log="$work/serve-$1.log"
  : >"$log"
  "$fswap" serve --host 127.0.0.1 --port 0 --data-dir "$dir" --threads "$threads" --max-running-jobs "$n" \
    --log-level warning >"$log" 2>&1 &
  server_pid=$!
  local port=""
  for _ in $(seq 200); do
    port="$(sed -n 's/.*serving on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log")"
    [[ -n "$port" ]] && break
    sleep 0.05
  done
  [[ -n "$port" ]] || { cat "$log" >&2; exit 1; }
  local url="http://127.0.0.1:$port" ids=() start end
  start="$(date +%s.%N)"
  for t in "${targets[@]}"; do
    ids+=("$(curl -sf -F "source=@$media/astronaut.png" -F "target=@$media/$t" \
      -F "options={\"trim_frame_end\": $frames, \"engine\": \"$engine\"};type=application/json" "$url/v1/jobs" |
      sed -n 's/^{"id":"\([0-9a-f-]*\)".*/\1/p; s/.*"id":"\([0-9a-f-]*\)".*/\1/p' | head -n1)")
  done
  for id in "${ids[@]}"; do
    [[ -n "$id" ]] || { echo "serve_concurrency: a job was refused" >&2; cat "$log" >&2; exit 1; }
    while true; do
      local state
      state="$(curl -sf "$url/v1/jobs/$id" | sed -n 's/.*"state":"\([a-z]*\)".*/\1/p')"
      [[ "$state" == done ]] && break
      [[ "$state" == failed || "$state" == cancelled ]] && { echo "serve_concurrency: job $id $state" >&2; exit 1; }
      sleep 0.05
    done
  done
  end="$(date +%s.%N)"
  local metrics cpu
  metrics="$(curl -sf "$url/metrics")"
  # The server's CPU time (user + system): unlike the wall time, barely moved by other processes.
  cpu="$(awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$server_pid/stat")"
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
  local calls batched
  calls="$(sed -n 's/^fswap_face_calls_total \([0-9]*\)/\1/p' <<<"$metrics")"
  batched="$(sed -n 's/^fswap_face_batched_calls_total \([0-9]*\)/\1/p' <<<"$metrics")"
  printf '%s %s %s %s\n' "$(echo "$end - $start" | bc -l)" "$cpu" "${calls:-0}" "${batched:-0}"
}

echo "4 jobs (${frames} frames of 720p each, source astronaut.png), engine $engine, $(nproc) cores, best of $rounds"
sequential="" together="" seq_cpu="" tog_cpu="" calls="" batched=""
for round in $(seq "$rounds"); do
  read -r s sc _ _ < <(run_batch 1)
  read -r t tc c b < <(run_batch 4)
  printf 'round %d: one after another %6.2f s (CPU %6.2f s), together %6.2f s (CPU %6.2f s), load %s\n' \
    "$round" "$s" "$sc" "$t" "$tc" "$(cut -d' ' -f1 /proc/loadavg)"
  [[ -z "$sequential" || $(echo "$s < $sequential" | bc -l) == 1 ]] && sequential="$s" seq_cpu="$sc"
  [[ -z "$together" || $(echo "$t < $together" | bc -l) == 1 ]] && together="$t" tog_cpu="$tc" calls="$c" batched="$b"
done
printf 'one after another (--max-running-jobs 1): %6.2f s (CPU %6.2f s)\n' "$sequential" "$seq_cpu"
printf 'together          (--max-running-jobs 4): %6.2f s (CPU %6.2f s)   (face calls %s, in batches of 2+: %s)\n' \
  "$together" "$tog_cpu" "$calls" "$batched"
printf 'speed-up: %.2fx\n' "$(echo "$sequential / $together" | bc -l)"
