#!/usr/bin/env bash
# The README's "Training from a script" section, run as written: its marked blocks
# (`<!-- check-examples: NAME -->`) in empty folders, against the tarball users get, so CI fails
# when those instructions break. `npm i maskfr` installs the packed tarball instead, and
# CHECK_EXAMPLES_STEPS (3) replaces the README's 100 steps. A CommonJS and an ES-module
# project, each with TypeScript 5.9 (tsc, ts-node, tsx), then 7 (tsc, tsx); every example runs
# with ts-node in the first and with tsx in the second, train-synthetic.ts with every command
# (about 3 minutes on 2 cores). Needs the built package (`npm ci` or `npm run build`).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
steps=${CHECK_EXAMPLES_STEPS:-3}
# In order: evaluate.ts and export-onnx.ts load the weights train-synthetic.ts writes.
examples=(train-synthetic.ts evaluate.ts export-onnx.ts distill.ts fine-tune.ts)
work=$(mktemp -d "${TMPDIR:-/tmp}/maskfr-examples-XXXXXX")
trap 'rm -rf "$work"' EXIT
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

# The lines of the block marked NAME in the README, indentation removed.
block() {
  local lines
  lines=$(awk -v marker="<!-- check-examples: $1 -->" '
    index($0, marker) { found = 1; next }
    found && /^[[:space:]]*```/ { if (inside) exit; inside = 1; next }
    inside { sub(/^[[:space:]]+/, ""); print }
  ' "$root/README.md")
  [ -n "$lines" ] || { echo "check-examples: README.md has no block marked '$1'" >&2; exit 1; }
  printf '%s\n' "$lines"
}

# Runs one command line in the project folder, its output kept in a log shown on failure.
step() {
  local dir=$1 cmd=$2 t0=$SECONDS
  if ! (cd "$dir" && bash -euo pipefail -c "$cmd") </dev/null >"$work/log" 2>&1; then
    tail -n 40 "$work/log"
    echo "check-examples: FAILED in $(basename "$dir"): $cmd" >&2
    exit 1
  fi
  printf '  %3ds  %s\n' $((SECONDS - t0)) "$cmd"
}

# Calls FN DIR LINE for each line of the README's block NAME.
each() {
  local name=$1 fn=$2 dir=$3 text line
  text=$(block "$name")
  while IFS= read -r line; do "$fn" "$dir" "$line"; done <<<"$text"
}

# A run line of the README, its `train-synthetic.ts 100` with the steps; on a line of the
# command $every, once per example (with the steps, or nothing for those that load weights).
run_line() {
  local dir=$1 line=$2 ex arg
  if [[ $line != *"train-synthetic.ts 100"* ]]; then step "$dir" "$line"; return; fi
  if [[ $line != *"$every "* ]]; then step "$dir" "${line/train-synthetic.ts 100/train-synthetic.ts $steps}"; return; fi
  for ex in "${examples[@]}"; do
    case $ex in evaluate.ts | export-onnx.ts) arg='' ;; *) arg=" $steps" ;; esac
    step "$dir" "${line/train-synthetic.ts 100/$ex$arg}"
  done
}

# A setup line, with the packed tarball for the registry's maskfr.
install() { step "$1" "${2/npm i maskfr/npm i $work/$tgz}"; }

tgz=$(npm pack --ignore-scripts --pack-destination "$work" 2>/dev/null | tail -n 1)
echo "check-examples: $tgz, $steps steps per training"
for kind in cjs esm; do
  dir="$work/$kind"
  if [ "$kind" = cjs ]; then every=ts-node; else every=tsx; fi
  mkdir "$dir"
  echo "$kind project, TypeScript 5.9:"
  each setup install "$dir"
  config=$(block tsconfig.json)
  printf '%s\n' "$config" >"$dir/tsconfig.json"
  if [ "$kind" = esm ]; then
    step "$dir" 'npm pkg set type=module'
    # Node's ES-module loader sees every export of the CommonJS build as a named export.
    cat >"$work/exports.mjs" <<'EOF'
import * as named from 'maskfr';
import { createRequire } from 'node:module';
const missing = Object.keys(createRequire(`${process.cwd()}/`)('maskfr')).filter((k) => !(k in named));
if (missing.length > 0) throw new Error(`not seen as named ES-module exports: ${missing.join(', ')}`);
EOF
    step "$dir" "cp '$work/exports.mjs' . && node exports.mjs"
  fi
  each "run-$kind" run_line "$dir"
  echo "$kind project, TypeScript 7:"
  every=none
  each setup-ts7 step "$dir"
  step "$dir" 'npx tsc --version | grep -q "^Version 7\."'
  run_line "$dir" 'npx tsc --noEmit'
  run_line "$dir" 'npx tsx train-synthetic.ts 100'
done
echo "check-examples: ok"
