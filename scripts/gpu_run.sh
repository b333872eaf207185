#!/usr/bin/env bash
# Runs on the GPU test machine, from the repository root, with bundle/ made by scripts/gpu_bundle.sh:
# generates the replicas, then runs the GPU tests and the benchmarks. Writes a short summary table
# plus the full logs to $OUT (default out/gpu) and prints the summary last.
# Exit status: non-zero when a test or benchmark failed.
#   scripts/gpu_run.sh                  # everything
#   PARTS="ops models" scripts/gpu_run.sh   # a subset of: memory memory-bench ops models face imaging nhwc video bench torch
#   PARTS="multigpu" scripts/gpu_run.sh     # on a machine with two GPUs: --device cuda:0,1 vs one GPU
#   BENCH_PARTS="budget-light budget" PARTS=bench scripts/gpu_run.sh   # bench_native's parts
#   MODELS_FILTER='-*real_esrgan_x4*' PARTS=models scripts/gpu_run.sh   # a gtest filter for test_cuda_models
#   OPS_FILTER='*Nhwc*' PARTS=ops scripts/gpu_run.sh                  # ... and for test_cuda_ops
set -uo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-out/gpu}
PARTS=${PARTS:-memory memory-bench ops models face imaging nhwc video bench torch}
WORK=${WORK:-/tmp/fswap-gpu}
mkdir -p "$OUT" "$WORK/models"
export LD_LIBRARY_PATH="/usr/local/cuda-13.0/targets/x86_64-linux/lib:/usr/lib/x86_64-linux-gnu:/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib:$PWD/bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export FSWAP_GPU_MODELS="$WORK/models" FSWAP_GPU_PHOTO="$WORK/astronaut.npy"
PY=python3
[[ -x /opt/torch/.venv/bin/python3 ]] && PY=/opt/torch/.venv/bin/python3
export FSWAP_OP_CASES_JSON="$PWD/bundle/cases/cases.json" XDG_CACHE_HOME="$WORK/cache"

if [[ ! -f bundle/programs.tar.xz ]]; then
  echo "bundle/programs.tar.xz missing: run scripts/gpu_bundle.sh on a build machine first" >&2
  exit 2
fi
$PY -c "import tarfile; tarfile.open('bundle/programs.tar.xz').extractall('bundle')" || exit 2
has() { [[ " $PARTS " == *" $1 "* ]]; }

# Read-only queries only: GPU settings are never changed here.
nvidia-smi --query-gpu=name,driver_version,pcie.link.gen.current,pcie.link.width.current,memory.used,memory.total \
  --format=csv > "$OUT/setup.log" 2>&1 || true
card=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)

start=$(date +%s)
cp bundle/models/*.onnx "$WORK/models/"
# The replicas and the photo only for the parts that read them.
if has models || has face || has bench || has torch || has video || has multigpu; then
replicas="inswapper_128 arcface_w600k_r50 scrfd_2.5g yoloface_8n 2dfan4 fan_68_5 hyperswap_1a_256 simswap_256 gfpgan_1.4 xseg bisenet_resnet_34 real_esrgan_x4 retinaface_10g codeformer yunet_2023_mar"
echo $replicas | tr ' ' '\n' | xargs -P 8 -I{} $PY tools/replicas/generate_replicas.py --out "$WORK/models" --only {} \
  >> "$OUT/setup.log" 2>&1
$PY -c "import cv2, numpy; numpy.save('$FSWAP_GPU_PHOTO', cv2.cvtColor(cv2.imread('bundle/media/astronaut.png'), cv2.COLOR_BGR2RGB))" \
  >> "$OUT/setup.log" 2>&1
fi
echo "setup: replicas and photo in $(( $(date +%s) - start )) s" | tee -a "$OUT/setup.log"

declare -A rc
run() {  # run NAME TIMEOUT CMD...: logs to $OUT/NAME.log, exit status in rc[NAME]
  local name=$1 limit=$2
  shift 2
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  rc[$name]=$?
  echo "$name: exit ${rc[$name]}"
}
# The benchmarks before the long op harness: a call cut short still brings their logs back.
has memory && run test_cuda_memory 300 bundle/bin/test_cuda_memory
has bench && run bench_native 480 bundle/bin/bench_native ${BENCH_PARTS:-}
has models && run test_cuda_models 400 bundle/bin/test_cuda_models ${MODELS_FILTER:+--gtest_filter=$MODELS_FILTER}
has face && run test_cuda_face 200 bundle/bin/test_cuda_face
has imaging && run test_cuda_imaging 200 bundle/bin/test_cuda_imaging
has nhwc && run test_cuda_channels_last 200 bundle/bin/test_cuda_channels_last
has nhwc && run test_cuda_nhwc_norm_pool 200 bundle/bin/test_cuda_nhwc_norm_pool
has nhwc && run test_cuda_reductions 200 bundle/bin/test_cuda_reductions
# The video benchmark makes the clips that the NVDEC test decodes.
has video && run video_bench 600 env WORK="$WORK" OUT="$OUT" bash benchmarks/video_gpu.sh
has multigpu && run multi_gpu 400 env WORK="$WORK" OUT="$OUT" bash benchmarks/multi_gpu.sh
has video && run test_cuda_video 200 env FSWAP_GPU_CLIPS="$WORK/clip_1080p.mp4:$WORK/clip_4k.mp4" bundle/bin/test_cuda_video
has ops && run test_cuda_ops 500 bundle/bin/test_cuda_ops ${OPS_FILTER:+--gtest_filter=$OPS_FILTER}
has memory-bench && run bench_memory 240 bundle/bin/bench_memory
has torch && [[ -f tools/bench/torch_baseline.py ]] &&
  run torch_baseline 400 $PY tools/bench/torch_baseline.py --models "$WORK/models" --batches 1 8 32 --runs 30

{
  echo "# GPU run $(cat bundle/VERSION 2>/dev/null) on ${card:-unknown card}, $(date -u +%Y-%m-%dT%H:%MZ)"
  for name in "${!rc[@]}"; do
    echo
    echo "## $name: exit ${rc[$name]}"
    grep -E '^\[  (PASSED|FAILED) ' "$OUT/$name.log" | sed 's/^/    /'
    grep -E '^\[  FAILED  \] [A-Za-z]' "$OUT/$name.log" | sort -u | head -60 | sed 's/^/    /'
    grep -E '^(model |budget |face |imaging |failure injection|device|residency|H2D|stage|unified|Pipeline|pool )' "$OUT/$name.log" | head -80 | sed 's/^/    /'
    sed -n '/^| /p' "$OUT/$name.log" | head -120
    sed -n '/^PyTorch /,$p' "$OUT/$name.log" | head -60
    grep -E '^(video decode|### | *[^|]+ \| )|^budget ' "$OUT/$name.log" | head -80 | sed 's/^/    /'
    grep -E '^(one_gpu|two_gpus|compared|frames:|one GPU|two GPUs|source|[0-9], )' "$OUT/$name.log" | sed 's/^/    /'
  done
} > "$OUT/summary.md"
echo
cat "$OUT/summary.md"
for name in "${!rc[@]}"; do (( rc[$name] == 0 )) || exit 1; done
