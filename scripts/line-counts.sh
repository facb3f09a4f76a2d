#!/usr/bin/env bash
# Lines per source file, largest first (tinygrad's habit): a file past ~800 lines should split.
cd "$(dirname "$0")/.."
echo "== source lines per file (top 10; total below) =="
git ls-files 'crates/*.rs' 'ts/*.ts' 'test/*.ts' 'bench/*.ts' 'bench/*.py' 'test/*.py' | xargs wc -l | sort -rn | head -11
git ls-files 'crates/*.rs' 'ts/*.ts' | xargs wc -l | awk '$1 > 800 && $2 != "total" { print "warning: " $2 " has " $1 " lines; split it"; }'
