#!/usr/bin/env bash
# One call on a lent GPU machine (run `bash bench/gpu/prepare.sh` here first and carry
# .device): finds the CUDA libraries pip put under site-packages/nvidia, then runs the CUDA
# tests (NVRTC compile; every kernel against its CPU reference) and writes what it saw to
# $OUT (device, driver, libraries, test output).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/maskfr-gpu}
mkdir -p "$OUT"
NV=$(python3 -c 'import nvidia, os; print(nvidia.__path__[0])' 2>/dev/null || true)
LIBS=$(find "$NV" -maxdepth 3 -type d -name lib 2>/dev/null | paste -sd:)
# cudarc's loader asks for libnccl.so, the wheel ships libnccl.so.2.
mkdir -p /tmp/maskfr-libs
for l in $(find "$NV" -name 'libnccl.so.*' 2>/dev/null | head -1); do ln -sf "$l" /tmp/maskfr-libs/libnccl.so; done
export LD_LIBRARY_PATH="/tmp/maskfr-libs:$LIBS:${LD_LIBRARY_PATH:-}"
{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' 2>&1
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
} > "$OUT/device.txt"
status=0
for t in nvrtc gpu; do
  MASKFR_REQUIRE_NVRTC=1 ".device/bin/cuda-$t" --nocapture > "$OUT/cuda-$t.txt" 2>&1 || status=1
done
cat "$OUT/device.txt" "$OUT"/cuda-*.txt | tail -40
exit $status
