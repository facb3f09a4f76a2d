#!/usr/bin/env bash
# Builds, on this machine, what bench/gpu/run.sh runs on a lent GPU machine (which has no
# cargo, Node or network) into .device/ (carry it): the CUDA test binaries, the gpu-ops
# bench binary, the native addon, the GPU-touching ava tests and the gpu-train bench
# bundled for plain Node, and Node itself (xz, ~24 MB).
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .device/bin .device/js .device/native
exe() { python3 -c 'import json,sys; print([m["executable"] for m in map(json.loads, sys.stdin) if m.get("executable")][-1])'; }
for t in first_contact gpu nvrtc; do
  cp "$(cargo test --release -p maskfr-cuda --test "$t" --no-run --message-format=json 2>/dev/null | exe)" ".device/bin/cuda-$t"
done
cp "$(cargo bench -p maskfr-cuda --bench gpu_ops --no-run --message-format=json 2>/dev/null | exe)" .device/bin/gpu-ops
npm run build:native >/dev/null
cp native/index.js native/*.node .device/native/
bundle() { npx esbuild "$1" --bundle --platform=node --alias:ava=./bench/gpu/ava-shim.ts \
  --external:../native/index.js --outfile="$2" --log-level=warning; }
bundle bench/gpu/device-tests.ts .device/js/device-tests.js
bundle bench/gpu/train-bench.ts .device/js/gpu-train.js
[ -f .device/node.xz ] || xz -T2 -c "$(command -v node)" > .device/node.xz
du -sh .device/*
