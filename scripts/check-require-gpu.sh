#!/usr/bin/env bash
# CI, where there is no GPU: MASKFR_REQUIRE_GPU=1 turns a GPU test's skip into a failure that
# names what did not load, on both sides (bench/gpu/run.sh relies on it to be red when cuDNN or
# the driver does not load). One cargo test (crates/cuda/tests/gpu.rs) and one ava test
# (test/cuda.test.ts), each run without the variable (passes, skipped) and with it (fails).
# Reuses the release build and the built addon: seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# expect pass|fail PATTERN COMMAND...: COMMAND must end that way, its output matching PATTERN.
expect() {
  local want=$1 pattern=$2 rc=0
  shift 2
  "$@" >"$log" 2>&1 || rc=$?
  if [ "$want" = pass ] && [ $rc -eq 0 ] && grep -qE -- "$pattern" "$log"; then return; fi
  if [ "$want" = fail ] && [ $rc -ne 0 ] && grep -qE -- "$pattern" "$log"; then return; fi
  echo "check-require-gpu: expected to $want with /$pattern/ in the output (exit $rc): $*"
  tail -n 40 "$log"
  exit 1
}

cargo_test=(cargo test --release -p maskfr-cuda --test gpu memory_is_cached_and_counted -- --nocapture)
expect pass 'skipped: ' env -u MASKFR_REQUIRE_GPU "${cargo_test[@]}"
expect fail 'MASKFR_REQUIRE_GPU=1 and this test cannot run: .*(lib(cuda|nvrtc|cublas|cudnn)|GPU)' env MASKFR_REQUIRE_GPU=1 "${cargo_test[@]}"

ava_test=(npx ava test/cuda.test.ts --match 'device memory is counted and cached per device*')
expect pass '1 test skipped' env -u MASKFR_REQUIRE_GPU "${ava_test[@]}"
expect fail 'MASKFR_REQUIRE_GPU=1 and this test cannot run: .*(lib(cuda|nvrtc|cublas|cudnn)|GPU)' env MASKFR_REQUIRE_GPU=1 "${ava_test[@]}"
echo "check-require-gpu: without a GPU the cargo and ava GPU tests skip, and fail with MASKFR_REQUIRE_GPU=1"
