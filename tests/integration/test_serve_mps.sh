#!/usr/bin/env bash
# scripts/serve_mps.sh with a fake nvidia-cuda-mps-control on PATH (it records every call and
# keeps a "running" state), a redis-server of its own and real fswap workers on the CPU:
#  1. no daemon yet: the script starts it, starts 3 workers with 1024 MiB each (their environment
#     and arguments), the workers take a real job from Redis, SIGTERM stops the workers and then
#     the daemon;
#  2. a daemon already running: used, never started or stopped;
#  3. no nvidia-cuda-mps-control on PATH: exit 2 naming it, nothing started;
#  4. a worker that ends on its own (no --queue): the script stops and exits 1, daemon stopped.
# Exit 77 (CTest skip) without Debian's redis-server (scripts/setup.sh --tests installs it).
# usage: test_serve_mps.sh FSWAP_BINARY SOURCE_DIR MEDIA_DIR
set -euo pipefail
fswap=$1
root=$2
media=$3
script=$root/scripts/serve_mps.sh

if [[ ! -x /usr/bin/redis-server ]]; then
  echo "test_serve_mps: /usr/bin/redis-server is missing (scripts/setup.sh --tests installs it); skipped"
  exit 77
fi
command -v curl >/dev/null || { echo "test_serve_mps: curl is missing (scripts/setup.sh --tests installs it)" >&2; exit 1; }

scratch=$(mktemp -d)
redis_pid= front_pid= mps_pid=
cleanup() {
  for pid in $mps_pid $front_pid $redis_pid; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$scratch"
}
trap cleanup EXIT
fail() {
  echo "test_serve_mps: FAIL: $*" >&2
  for log in "$scratch"/*.log; do echo "--- $log" >&2; cat "$log" >&2; done
  [[ -f $scratch/mps/calls ]] && { echo "--- fake daemon calls" >&2; cat "$scratch/mps/calls" >&2; }
  exit 1
}

# The fake daemon: `-d` starts it (fails if running); other calls read one command on stdin
# (get_server_list, quit) and fail, as the real client does, while no daemon runs.
mkdir -p "$scratch/bin" "$scratch/mps"
cat >"$scratch/bin/nvidia-cuda-mps-control" <<EOF
#!/usr/bin/env bash
state=$scratch/mps
if [[ \${1:-} == -d ]]; then
  echo "-d" >>"\$state/calls"
  [[ -e \$state/running ]] && { echo "An instance of this daemon is already running" >&2; exit 1; }
  touch "\$state/running"
  exit 0
fi
read -r command || true
echo "\$command" >>"\$state/calls"
[[ -e \$state/running ]] || { echo "Cannot find MPS control daemon process" >&2; exit 1; }
[[ \$command == quit ]] && rm -f "\$state/running"
exit 0
EOF
chmod +x "$scratch/bin/nvidia-cuda-mps-control"

free_port() { /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
redis_port=$(free_port)
/usr/bin/redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >"$scratch/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$redis_port") 2>/dev/null && break; sleep 0.05; done
queue="redis://127.0.0.1:$redis_port/mps-test"

# Starts serve_mps.sh N ARGS... in the background with the fake daemon on PATH (log: mps.log).
start_mps() {
  : >"$scratch/mps.log"
  PATH="$scratch/bin:$PATH" FSWAP="$fswap" FSWAP_MPS_TOTAL_BUDGET=3GiB FSWAP_MPS_STOP_TIMEOUT=20 \
    bash "$script" "$@" >"$scratch/mps.log" 2>&1 &
  mps_pid=$!
}
# Waits until N workers say they take jobs; prints their pids (the script's fswap children).
wait_workers() {
  for _ in $(seq 200); do
    (($(grep -c 'fswap: worker taking jobs from' "$scratch/mps.log") == $1)) && break
    kill -0 "$mps_pid" 2>/dev/null || fail "serve_mps.sh exited before $1 workers started"
    sleep 0.05
  done
  (($(grep -c 'fswap: worker taking jobs from' "$scratch/mps.log") == $1)) || fail "$1 workers did not start"
  pgrep -P "$mps_pid" -x fswap
}
# Sends SIGTERM to the script; expects every worker to get SIGTERM (fswap says so), then the
# script's exit status 0 within 10 s (its SIGKILL fallback would come after 20 s).
stop_mps() {
  local workers=("$@")
  kill -TERM "$mps_pid"
  for _ in $(seq 100); do kill -0 "$mps_pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$mps_pid" 2>/dev/null && fail "serve_mps.sh still runs 10 s after SIGTERM"
  local status=0
  wait "$mps_pid" || status=$?
  mps_pid=
  ((status == 0)) || fail "serve_mps.sh exited with $status after SIGTERM"
  for pid in "${workers[@]}"; do
    [[ -e /proc/$pid ]] && fail "worker $pid still runs after serve_mps.sh stopped"
  done
  grep -q "${#workers[@]} workers stopped" "$scratch/mps.log" || fail "the log does not say the workers stopped"
  (($(grep -c 'fswap: SIGTERM received, stopping' "$scratch/mps.log") == ${#workers[@]})) ||
    fail "not every worker was stopped by SIGTERM"
}

budget_flag=
"$fswap" serve --help | grep -q -- '--vram-budget' && budget_flag=1

# 1. No daemon: started, 3 workers with their budgets, a job through Redis, SIGTERM stops all.
start_mps 3 --queue "$queue" --data-dir "$scratch/data" --device cpu --threads 1
mapfile -t workers < <(wait_workers 3)
((${#workers[@]} == 3)) || fail "expected 3 fswap workers under serve_mps.sh, found ${#workers[@]}"
[[ $(head -n 3 "$scratch/mps/calls" | tr '\n' ' ') == "get_server_list -d get_server_list " ]] ||
  fail "the daemon was not probed, started with -d, then probed again"
[[ -e $scratch/mps/running ]] || fail "the fake daemon is not running"
for pid in "${workers[@]}"; do
  tr '\0' '\n' <"/proc/$pid/environ" | grep -qx 'CUDA_MPS_PINNED_DEVICE_MEM_LIMIT=0=1024M' ||
    fail "worker $pid has no MPS limit of 1024 MiB on device 0"
  args=$(tr '\0' ' ' <"/proc/$pid/cmdline")
  [[ $args == *" serve --worker-only "*"--queue $queue "* ]] || fail "worker $pid runs '$args'"
  if [[ -n $budget_flag ]]; then
    [[ $args == *"--vram-budget 1024MiB"* ]] || fail "worker $pid has no --vram-budget 1024MiB: '$args'"
  fi
done
echo "test_serve_mps: 3 workers under a started daemon, 1024 MiB each (MPS limit${budget_flag:+ and --vram-budget})"

"$fswap" serve --host 127.0.0.1 --port 0 --data-dir "$scratch/data" --queue "$queue" --no-worker \
  >"$scratch/front.log" 2>&1 &
front_pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's|.*serving on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$scratch/front.log")
  [[ -n $port ]] && break
  sleep 0.1
done
[[ -n $port ]] || fail "the front end did not start"
job=$(curl -fsS -F "source=@$media/astronaut.png" -F "target=@$media/messi5.jpg" "http://127.0.0.1:$port/v1/jobs" |
  /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
state=
for _ in $(seq 600); do
  state=$(curl -fsS "http://127.0.0.1:$port/v1/jobs/$job" | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["state"])')
  [[ $state == done || $state == failed ]] && break
  sleep 0.1
done
[[ $state == done ]] || fail "job $job ended '$state' (expected done by a worker)"
echo "test_serve_mps: job $job done by a worker through Redis"

stop_mps "${workers[@]}"
[[ $(tail -n 1 "$scratch/mps/calls") == quit ]] || fail "the daemon the script started was not stopped (quit)"
[[ ! -e $scratch/mps/running ]] || fail "the fake daemon still runs"
echo "test_serve_mps: SIGTERM stopped the 3 workers, then the daemon"

# 2. A daemon already running: used as it is.
: >"$scratch/mps/calls"
touch "$scratch/mps/running"
start_mps 2 --queue "$queue" --data-dir "$scratch/data" --device cpu --threads 1
mapfile -t workers < <(wait_workers 2)
((${#workers[@]} == 2)) || fail "expected 2 fswap workers, found ${#workers[@]}"
tr '\0' '\n' <"/proc/${workers[0]}/environ" | grep -qx 'CUDA_MPS_PINNED_DEVICE_MEM_LIMIT=0=1536M' ||
  fail "3GiB over 2 workers should give 1536 MiB each"
stop_mps "${workers[@]}"
grep -qx -- -d "$scratch/mps/calls" && fail "the script started a daemon although one was running"
grep -qx quit "$scratch/mps/calls" && fail "the script stopped a daemon it did not start"
[[ -e $scratch/mps/running ]] || fail "the running daemon was stopped"
echo "test_serve_mps: a running daemon is used, not started or stopped"

# 3. No nvidia-cuda-mps-control: a clear error, nothing started.
status=0
PATH=/usr/bin:/bin FSWAP="$fswap" FSWAP_MPS_TOTAL_BUDGET=3GiB bash "$script" 2 --queue "$queue" \
  --data-dir "$scratch/data" >"$scratch/missing.log" 2>&1 || status=$?
((status == 2)) || fail "without nvidia-cuda-mps-control the script exited $status, not 2"
grep -q 'nvidia-cuda-mps-control is missing' "$scratch/missing.log" || fail "the error does not name nvidia-cuda-mps-control"
rm "$scratch/missing.log"
echo "test_serve_mps: without nvidia-cuda-mps-control: exit 2 naming it"

# 4. A worker that cannot run (--worker-only without --queue): everything stops, exit 1.
rm -f "$scratch/mps/running"
: >"$scratch/mps/calls"
start_mps 2 --data-dir "$scratch/data" --device cpu
for _ in $(seq 200); do kill -0 "$mps_pid" 2>/dev/null || break; sleep 0.05; done
status=0
wait "$mps_pid" || status=$?
mps_pid=
((status == 1)) || fail "a failing worker made the script exit $status, not 1"
grep -q 'a worker ended on its own' "$scratch/mps.log" || fail "the log does not say a worker ended"
[[ $(tail -n 1 "$scratch/mps/calls") == quit && ! -e $scratch/mps/running ]] || fail "the daemon was not stopped after a worker failed"
echo "test_serve_mps: a failing worker stops the others and the daemon (exit 1)"
