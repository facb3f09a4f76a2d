#!/usr/bin/env bash
# Builds, on this machine, what bench/gpu/run.sh runs on a lent GPU machine (which has no
# cargo, Node or network): the CUDA test binaries, copied into .device/ (carry it).
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .device/bin
for t in nvrtc gpu; do
  bin=$(cargo test --release -p maskfr-cuda --test "$t" --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys; print([m["executable"] for m in map(json.loads, sys.stdin) if m.get("executable")][-1])')
  cp "$bin" ".device/bin/cuda-$t"
done
ls -la .device/bin
