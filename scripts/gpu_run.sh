#!/usr/bin/env bash
# Runs on the GPU test machine, from the repository root, with bundle/ made by scripts/gpu_bundle.sh:
# the GPU tests and the memory benchmark. Writes a short summary table plus the full logs to $OUT
# (default out/gpu) and prints the summary last. Exit status: non-zero when a test or benchmark failed.
set -uo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
export LD_LIBRARY_PATH="/usr/local/cuda-13.0/targets/x86_64-linux/lib:/usr/lib/x86_64-linux-gnu:/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib:$PWD/bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

if [[ ! -x bundle/bin/test_cuda_memory ]]; then
  echo "bundle/bin/test_cuda_memory missing: run scripts/gpu_bundle.sh on a build machine first" >&2
  exit 2
fi

# Read-only queries only: GPU settings are never changed here.
nvidia-smi --query-gpu=name,driver_version,pcie.link.gen.current,pcie.link.width.current,memory.used,memory.total \
  --format=csv > "$OUT/nvidia_smi.csv" 2>&1 || true
card=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)

timeout 300 bundle/bin/test_cuda_memory --gtest_output="xml:$OUT/test_cuda_memory.xml" 2>&1 | tee "$OUT/test_cuda_memory.log"
rc_test=${PIPESTATUS[0]}
timeout 240 bundle/bin/bench_memory 2>&1 | tee "$OUT/bench_memory.log"
rc_bench=${PIPESTATUS[0]}

{
  echo "# GPU run $(cat bundle/VERSION 2>/dev/null) on ${card:-unknown card}, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "test_cuda_memory: exit $rc_test"
  grep -E '^\[ +(OK|FAILED|SKIPPED|PASSED) +\]' "$OUT/test_cuda_memory.log" | sed 's/^/    /'
  grep -E '^(device|budget|residency|H2D|stage)' "$OUT/test_cuda_memory.log" | sed 's/^/    /'
  echo
  echo "bench_memory: exit $rc_bench"
  sed -n '/^| what/,$p' "$OUT/bench_memory.log"
} > "$OUT/summary.md"
echo
cat "$OUT/summary.md"
(( rc_test == 0 && rc_bench == 0 ))
