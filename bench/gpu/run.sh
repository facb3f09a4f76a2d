#!/usr/bin/env bash
# One call on a lent GPU machine (run `bash bench/gpu/prepare.sh` here first and carry
# .device): finds the CUDA libraries pip put under site-packages/nvidia, then runs, the most
# telling results first:
#   0. first contact (at most 90 s): device, driver, every library and its version, one
#      convolution, one GEMM, one NCCL all-reduce, one kernel of each module against the CPU;
#      if anything fails, it stops here with the summary (first-contact.txt),
#   1. every op against its CPU reference (cuda-gpu.txt),
#   2. the GPU-touching ava tests (cuda.test.ts, the golden step and the trainer on cuda:0),
#   3. the gpu-train suite: ours (bench/gpu/train-bench.ts), then PyTorch's eager AMP step,
#   4. the gpu-ops suite: ours (crates/cuda/benches/gpu_ops.rs), then PyTorch on the same cases,
#   5. every kernel module compiled for sm_80 and sm_90 (cuda-nvrtc.txt),
# writing everything to $OUT (device.txt, first-contact.txt, cuda-*.txt, ts-tests.txt,
# gpu-{ops,train}.*, and steps.txt: each step's exit status). The step timeouts add up to
# 9.8 minutes, under the device tool's 10.
set -uo pipefail
cd "$(dirname "$0")/../.."
# On the GPU machine a test that cannot run (no device, a library that does not load) fails,
# naming it, instead of skipping: a run is green only when every GPU test ran.
export MASKFR_REQUIRE_GPU=1
OUT=${OUT:-/tmp/maskfr-gpu}
mkdir -p "$OUT"
: > "$OUT/steps.txt"
NV=$(python3 -c 'import nvidia; print(" ".join(nvidia.__path__))' 2>/dev/null || true)
LIBS=$(find $NV -maxdepth 3 -type d -name lib 2>/dev/null | paste -sd:)
# cudarc's loader asks for libnccl.so, the wheel ships libnccl.so.2.
mkdir -p /tmp/maskfr-libs
for l in $(find $NV -name 'libnccl.so.*' 2>/dev/null | head -1); do ln -sf "$l" /tmp/maskfr-libs/libnccl.so; done
export LD_LIBRARY_PATH="/tmp/maskfr-libs:$LIBS:${LD_LIBRARY_PATH:-}"
{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())' 2>&1
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
} > "$OUT/device.txt"
status=0
if ! timeout 90 .device/bin/cuda-first_contact --nocapture > "$OUT/first-contact.txt" 2>&1; then
  [ -x .device/bin/cuda-first_contact ] || echo "no .device/bin/cuda-first_contact: run bash bench/gpu/prepare.sh and carry .device" >> "$OUT/first-contact.txt"
  cat "$OUT/device.txt"
  echo "== first contact failed; nothing else was run =="
  grep -E '^(ok|FAIL) ' "$OUT/first-contact.txt" | cut -c1-200
  sed -n '/checks failed/,/^\(stack backtrace\|note:\)/p' "$OUT/first-contact.txt" | grep -v '^\(stack backtrace\|note:\)'
  echo "first-contact: failed" >> "$OUT/steps.txt"
  exit 1
fi
echo "first-contact: exit 0" >> "$OUT/steps.txt"
# Each step's exit status goes to steps.txt, so a red run names the step that failed.
step() {
  local name=$1 rc
  shift
  "$@"
  rc=$?
  echo "$name: exit $rc" >> "$OUT/steps.txt"
  [ $rc -eq 0 ] || status=1
}
step cuda-gpu env MASKFR_REQUIRE_NVRTC=1 timeout 60 .device/bin/cuda-gpu --nocapture --test-threads=1 > "$OUT/cuda-gpu.txt" 2>&1
if [ -f .device/node.xz ]; then
  xz -dc .device/node.xz > /tmp/maskfr-node && chmod +x /tmp/maskfr-node
  # The bundle runs from .device/js; test/helpers/tensors.ts reads ../fixtures from there.
  ln -sfn "$PWD/test/fixtures" .device/fixtures
  step ts-tests timeout 60 /tmp/maskfr-node .device/js/device-tests.js > "$OUT/ts-tests.txt" 2>&1
fi
if [ -x /tmp/maskfr-node ]; then
  step gpu-train timeout 120 /tmp/maskfr-node .device/js/gpu-train.js > "$OUT/gpu-train.jsonl" 2> "$OUT/gpu-train.err"
  step gpu-train-torch timeout 100 python3 bench/gpu/torch_train.py "$OUT/gpu-train.jsonl" "$OUT/gpu-train.json" > "$OUT/gpu-train.txt" 2>&1
fi
step gpu-ops timeout 80 .device/bin/gpu-ops > "$OUT/gpu-ops.jsonl" 2> "$OUT/gpu-ops.err"
step gpu-ops-torch timeout 60 python3 bench/gpu/torch_ops.py "$OUT/gpu-ops.jsonl" "$OUT/gpu-ops.json" > "$OUT/gpu-ops.txt" 2>&1
step cuda-nvrtc env MASKFR_REQUIRE_NVRTC=1 timeout 20 .device/bin/cuda-nvrtc --nocapture > "$OUT/cuda-nvrtc.txt" 2>&1
tail -n 30 "$OUT/device.txt" "$OUT/first-contact.txt" "$OUT"/cuda-*.txt "$OUT/ts-tests.txt" "$OUT"/gpu-*.err "$OUT"/gpu-*.txt "$OUT/steps.txt" 2>/dev/null
exit $status
