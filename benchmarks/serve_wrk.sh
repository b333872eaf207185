#!/usr/bin/env bash
# Status requests/s of `fswap serve` under load (issue 7's benchmark), with wrk: starts the server
# on loopback with a fresh data dir, submits one small job (10 frames of the 720p sample clip made
# by scripts/make_media.sh) and waits until it is done, then runs wrk against GET /healthz,
# GET /v1/jobs/{id} and GET /v1/jobs, each with kept-alive connections (wrk's default, like most
# clients) and with a new connection per request (Connection: close). Prints requests/s and
# latency percentiles per run as a Markdown table, with the machine, then stops the server.
#
#   benchmarks/serve_wrk.sh [--duration 10s] [--connections 16] [--wrk-threads 2]
#
# Needs build/release/src/cli/fswap (or FSWAP=path), curl and the sample clip; installs Debian's
# wrk when it is missing (apt-get, as root or through sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

duration=10s connections=16 wrk_threads=2
while (($#)); do
  case "$1" in
    --duration) duration=${2:?}; shift 2 ;;
    --connections) connections=${2:?}; shift 2 ;;
    --wrk-threads) wrk_threads=${2:?}; shift 2 ;;
    *) echo "usage: $0 [--duration 10s] [--connections 16] [--wrk-threads 2]" >&2; exit 2 ;;
  esac
done
fswap=${FSWAP:-build/release/src/cli/fswap}
media=third_party/media
[[ -x $fswap ]] || { echo "serve_wrk: $fswap is not built (scripts/build.sh)" >&2; exit 2; }
for f in astronaut.png messi_720p.mp4; do
  [[ -s $media/$f ]] || { echo "serve_wrk: $media/$f is missing (scripts/setup.sh, scripts/make_media.sh)" >&2; exit 2; }
done
command -v curl >/dev/null || { echo "serve_wrk: curl is missing" >&2; exit 2; }
if ! command -v wrk >/dev/null; then
  echo "serve_wrk: installing Debian's wrk"
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends wrk
fi

work=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

"$fswap" serve --host 127.0.0.1 --port 0 --data-dir "$work/data" --log-level warning >"$work/serve.log" 2>&1 &
server_pid=$!
port=
for _ in $(seq 200); do
  port=$(sed -n 's|.*serving on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$work/serve.log")
  [[ -n $port ]] && break
  sleep 0.05
done
[[ -n $port ]] || { echo "serve_wrk: fswap serve did not start" >&2; cat "$work/serve.log" >&2; exit 1; }
url=http://127.0.0.1:$port

json_field() { /usr/bin/python3 -c "import json, sys; print(json.load(sys.stdin)['$1'])"; }
job=$(curl -fsS -F "source=@$media/astronaut.png" -F "target=@$media/messi_720p.mp4" \
  -F 'options={"trim_frame_end": 10}' "$url/v1/jobs" | json_field id)
state=
for _ in $(seq 1200); do
  state=$(curl -fsS "$url/v1/jobs/$job" | json_field state)
  [[ $state == done || $state == failed || $state == cancelled ]] && break
  sleep 0.1
done
[[ $state == done ]] || { echo "serve_wrk: job $job ended '$state'" >&2; cat "$work/serve.log" >&2; exit 1; }

# One wrk run: prints a table row (endpoint, connections, requests/s, latency p50/p75/p90/p99,
# errors). bench NAME PATH keep-alive|close
bench() {
  local name=$1 path=$2 mode=$3 out=$work/wrk.txt
  local header=()
  [[ $mode == close ]] && header=(-H "Connection: close")
  wrk -t"$wrk_threads" -c"$connections" -d"$duration" --latency "${header[@]}" "$url$path" >"$out"
  local rps p50 p75 p90 p99 non2xx errors
  rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
  read -r p50 p75 p90 p99 < <(awk '/^ +(50|75|90|99)%/ { printf "%s ", $2 } END { print "" }' "$out")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
  errors=$(awk '/Socket errors:/ { sub(/.*Socket errors: /, ""); print }' "$out")
  printf '| `GET %s` | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$mode" "$rps" "$p50" "$p75" "$p90" "$p99" \
    "${non2xx:-0} non-2xx${errors:+; socket errors: $errors}"
}

echo "fswap serve under wrk: $wrk_threads wrk threads, $connections connections, $duration per endpoint, one job (done) in the store"
echo "load average before: $(cut -d" " -f1-3 /proc/loadavg)"
echo "machine: $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)), $(. /etc/os-release && echo "$PRETTY_NAME"), $(date -u '+%Y-%m-%d %H:%M UTC'), fswap $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo
echo "| request | connections | requests/s | p50 | p75 | p90 | p99 | errors |"
echo "|---|---|---:|---:|---:|---:|---:|---|"
for mode in keep-alive close; do
  bench /healthz /healthz "$mode"
  bench '/v1/jobs/{id}' "/v1/jobs/$job" "$mode"
  bench /v1/jobs /v1/jobs "$mode"
done
