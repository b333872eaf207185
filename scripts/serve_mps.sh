#!/usr/bin/env bash
# Runs N `fswap serve --worker-only` processes on one GPU under NVIDIA MPS (docs/SERVING.md).
#
#   FSWAP_MPS_TOTAL_BUDGET=60GiB scripts/serve_mps.sh 3 --queue redis://10.0.0.5:6379 --data-dir /mnt/fswap --device cuda
#
# - Starts the MPS control daemon (nvidia-cuda-mps-control -d) unless one answers already.
# - Splits FSWAP_MPS_TOTAL_BUDGET (required; 512MiB, 60GiB, or M/G for MiB/GiB) evenly: each
#   worker gets total/N MiB as its MPS device-memory limit (CUDA_MPS_PINNED_DEVICE_MEM_LIMIT, on
#   the device of --device cuda:K, default 0) and, where `fswap serve` takes it, as --vram-budget.
#   Keep the total below the card's memory: the MPS server and the driver need some too.
# - Every other argument goes to each worker. The environment too: CUDA_MPS_ACTIVE_THREAD_PERCENTAGE
#   caps each worker's share of the SMs, CUDA_MPS_PIPE_DIRECTORY/CUDA_MPS_LOG_DIRECTORY reach
#   the daemon and the workers alike.
# - SIGTERM, SIGINT or SIGHUP stop the workers (SIGTERM; SIGKILL after FSWAP_MPS_STOP_TIMEOUT
#   seconds, default 30), then the daemon if this script started it; exit status 0. A worker
#   that ends on its own stops the others the same way; exit status 1.
# The fswap program is $FSWAP, else `fswap` on PATH, else this checkout's build (cuda, release).
set -euo pipefail

usage() {
  echo "usage: FSWAP_MPS_TOTAL_BUDGET=SIZE $0 N [fswap serve args...]   (SIZE: 512MiB, 60GiB, 60G)" >&2
  exit 2
}
die() { echo "serve_mps: $*" >&2; exit 2; }

(($# >= 1)) || usage
workers=$1
shift
[[ $workers =~ ^[1-9][0-9]*$ ]] || die "N must be a positive number of workers, got '$workers'"

total=${FSWAP_MPS_TOTAL_BUDGET:-}
[[ -n $total ]] || die "set FSWAP_MPS_TOTAL_BUDGET to the device memory all $workers workers may use together (e.g. 60GiB)"
if [[ $total =~ ^([0-9]+)(GiB|G)$ ]]; then
  total_mib=$((BASH_REMATCH[1] * 1024))
elif [[ $total =~ ^([0-9]+)(MiB|M)$ ]]; then
  total_mib=${BASH_REMATCH[1]}
else
  die "FSWAP_MPS_TOTAL_BUDGET '$total' is not a size like 512MiB, 60GiB or 60G"
fi
share_mib=$((total_mib / workers))
((share_mib > 0)) || die "FSWAP_MPS_TOTAL_BUDGET $total split $workers ways leaves 0 MiB per worker"

root=$(cd "$(dirname "$0")/.." && pwd)
fswap=${FSWAP:-$(command -v fswap || true)}
for candidate in "$root/build/cuda/src/cli/fswap" "$root/build/release/src/cli/fswap"; do
  [[ -n $fswap ]] && break
  [[ -x $candidate ]] && fswap=$candidate
done
[[ -n $fswap && -x $fswap ]] || die "no fswap program: set FSWAP, put fswap on PATH, or build it (scripts/build.sh)"

command -v nvidia-cuda-mps-control >/dev/null ||
  die "nvidia-cuda-mps-control is missing: it comes with the NVIDIA driver's utilities (in a container, the NVIDIA Container Toolkit mounts it)"

# The device the workers use (--device cuda:K or --device=cuda:K; cuda alone is 0).
device=0
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --device) [[ ${args[i + 1]:-} =~ ^cuda:([0-9]+)$ ]] && device=${BASH_REMATCH[1]} ;;
    --device=cuda:*) device=${args[i]#--device=cuda:} ;;
  esac
done

budget_args=()
if "$fswap" serve --help 2>/dev/null | grep -q -- '--vram-budget'; then
  budget_args=(--vram-budget "${share_mib}MiB")
else
  echo "serve_mps: this fswap serve has no --vram-budget: each worker's ${share_mib} MiB is enforced by MPS alone" >&2
fi

daemon_answers() { echo get_server_list | nvidia-cuda-mps-control >/dev/null 2>&1; }
started_daemon=
if daemon_answers; then
  echo "serve_mps: using the MPS control daemon already running"
else
  nvidia-cuda-mps-control -d || die "nvidia-cuda-mps-control -d failed"
  started_daemon=1
  for _ in $(seq 50); do daemon_answers && break; sleep 0.1; done
  daemon_answers || { echo quit | nvidia-cuda-mps-control >/dev/null 2>&1 || true; die "the MPS control daemon did not answer after starting"; }
  echo "serve_mps: started the MPS control daemon"
fi

pids=()
stopped=
stop_all() {
  [[ -n $stopped ]] && return
  stopped=1
  if ((${#pids[@]})); then
    kill -TERM "${pids[@]}" 2>/dev/null || true
    (sleep "${FSWAP_MPS_STOP_TIMEOUT:-30}"; kill -KILL "${pids[@]}" 2>/dev/null) </dev/null >/dev/null 2>&1 &
    local killer=$!
    wait "${pids[@]}" 2>/dev/null || true
    kill "$killer" 2>/dev/null || true
    echo "serve_mps: ${#pids[@]} workers stopped"
  fi
  if [[ -n $started_daemon ]]; then
    echo quit | nvidia-cuda-mps-control >/dev/null 2>&1 || echo "serve_mps: could not stop the MPS control daemon" >&2
    echo "serve_mps: stopped the MPS control daemon"
  fi
}
signal=
trap 'signal=TERM' TERM
trap 'signal=INT' INT
trap 'signal=HUP' HUP
trap stop_all EXIT

for ((w = 0; w < workers; w++)); do
  CUDA_MPS_PINNED_DEVICE_MEM_LIMIT="${device}=${share_mib}M" \
    "$fswap" serve --worker-only "${budget_args[@]}" "$@" &
  pids+=($!)
  echo "serve_mps: worker $w (pid $!): ${share_mib} MiB on cuda:$device"
done

# Until a signal comes or a worker ends on its own.
status=0
[[ -n $signal ]] || wait -n "${pids[@]}" || status=$?
if [[ -n $signal ]]; then
  echo "serve_mps: SIG$signal received, stopping"
  stop_all
  exit 0
fi
echo "serve_mps: a worker ended on its own (status $status); stopping the others" >&2
stop_all
exit 1
