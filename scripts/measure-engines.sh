#!/usr/bin/env bash
# Tokens/s of each engine on the same prompts, interleaved over rounds so that
# machine noise falls on all alike. Usage: scripts/measure-engines.sh PROMPTS.txt [ROUNDS] [MAX_TOKENS]
set -euo pipefail
prompts=${1:?prompt file}; rounds=${2:-2}; max=${3:-128}
bin=./target/release/seed
for r in $(seq 1 "$rounds"); do
  for e in "ar" "sd" "seed --verify fcfs" "seed --verify batched"; do
    # shellcheck disable=SC2086
    $bin generate --engine $e --file "$prompts" --max-tokens "$max" --json 2>&1 >/dev/null | sed "s/^/round $r: /"
  done
done
