#!/usr/bin/env bash
# Accuracy and time per problem of `ar` against `seed`, problem by problem in
# turn so that machine noise falls on both alike.
# Usage: scripts/bench-solve.sh TASK FIRST LAST [extra solve options...]
set -euo pipefail
task=$1; first=$2; last=$3; shift 3
bin=./target/release/seed
for i in $(seq "$first" "$last"); do
  for engine in ar seed; do
    $bin solve --task "$task" --index "$i" --engine "$engine" --out "seed-out/bench-$engine" "$@" 2>/dev/null | sed "s/^/$engine /"
  done
done
