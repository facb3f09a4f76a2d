#!/usr/bin/env bash
# One call on a lent GPU machine (run `bash bench/gpu/prepare.sh` here first and carry
# .device): finds the CUDA libraries pip put under site-packages/nvidia, checks that the
# driver, NVRTC and the GPU fit (printed to device.txt), then runs
#   1. the CUDA tests: every kernel compiles through NVRTC; every op against its CPU reference,
#   2. the GPU-touching ava tests (cuda.test.ts, the golden step on cuda:0) with plain Node,
#   3. the gpu-ops suite: ours (crates/cuda/benches/gpu_ops.rs), then PyTorch on the same cases,
#   4. the gpu-train suite: ours (bench/gpu/train-bench.ts), then PyTorch's eager AMP step,
# writing everything to $OUT (device.txt, cuda-*.txt, ts-tests.txt, gpu-{ops,train}.*).
# The step timeouts add up to 9.7 minutes, under the device tool's 10 per command.
set -uo pipefail
cd "$(dirname "$0")/../.."
# On the GPU machine a test that cannot run (no device, a library that does not load) fails,
# naming it, instead of skipping: a run is green only when every GPU test ran.
export MASKFR_REQUIRE_GPU=1
OUT=${OUT:-/tmp/maskfr-gpu}
mkdir -p "$OUT"
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
# First: the driver's CUDA version, NVRTC's and the compile target (cubin for the GPU's own
# architecture, or PTX), so a version mismatch says so instead of failing as a kernel would.
timeout 60 .device/bin/cuda-gpu --nocapture --exact compile_target_fits_the_driver >> "$OUT/device.txt" 2>&1 || status=1
for t in nvrtc gpu; do
  MASKFR_REQUIRE_NVRTC=1 timeout 60 ".device/bin/cuda-$t" --nocapture --test-threads=1 > "$OUT/cuda-$t.txt" 2>&1 || status=1
done
if [ -f .device/node.xz ]; then
  xz -dc .device/node.xz > /tmp/maskfr-node && chmod +x /tmp/maskfr-node
  # The bundle runs from .device/js; test/helpers/tensors.ts reads ../fixtures from there.
  ln -sfn "$PWD/test/fixtures" .device/fixtures
  timeout 60 /tmp/maskfr-node .device/js/device-tests.js > "$OUT/ts-tests.txt" 2>&1 || status=1
fi
timeout 90 .device/bin/gpu-ops > "$OUT/gpu-ops.jsonl" 2> "$OUT/gpu-ops.err" || status=1
timeout 90 python3 bench/gpu/torch_ops.py "$OUT/gpu-ops.jsonl" "$OUT/gpu-ops.json" > "$OUT/gpu-ops.txt" 2>&1 || status=1
if [ -x /tmp/maskfr-node ]; then
  timeout 120 /tmp/maskfr-node .device/js/gpu-train.js > "$OUT/gpu-train.jsonl" 2> "$OUT/gpu-train.err" || status=1
  timeout 100 python3 bench/gpu/torch_train.py "$OUT/gpu-train.jsonl" "$OUT/gpu-train.json" > "$OUT/gpu-train.txt" 2>&1 || status=1
fi
tail -n 30 "$OUT/device.txt" "$OUT"/cuda-*.txt "$OUT/ts-tests.txt" "$OUT"/gpu-*.err "$OUT"/gpu-*.txt 2>/dev/null
exit $status
