#!/usr/bin/env bash
# What exact mode costs: fast and --exact side by side, interleaved over rounds.
# Usage: scripts/exact-cost.sh [ROUNDS=2] [BIN=./target/release/seed]
# Decoding: the first 3 GSM8K test questions as 3 branches of 128 tokens (ar and
# seed --verify batched); prompt processing: those questions repeated 4 times, raw.
set -euo pipefail
rounds=${1:-2}; bin=${2:-./target/release/seed}
data=${SEED_DATA:-../shared/datasets}/gsm8k/test.jsonl
prompts=$(mktemp)
head -n 3 "$data" | python3 -c 'import sys, json; [print(json.loads(l)["question"].replace("\n", " ")) for l in sys.stdin]' > "$prompts"
long=$(python3 -c 'import sys; print(open(sys.argv[1]).read().replace("\n", " ") * 4)' "$prompts")
for r in $(seq 1 "$rounds"); do
  for mode in fast exact; do
    flag=""; [ "$mode" = exact ] && flag="--exact"
    for e in "ar" "seed --verify batched"; do
      # shellcheck disable=SC2086
      $bin generate $flag --engine $e --file "$prompts" --max-tokens 128 --json 2>&1 >/dev/null \
        | tail -1 | sed "s/; peak.*//; s/^/round $r $mode: /"
    done
    pp=$($bin generate $flag --engine ar --raw --max-tokens 1 "$long" 2>&1 >/dev/null \
      | tail -1 | sed -E 's/.* in ([0-9.]+) s .*/\1/')
    echo "round $r $mode: prompt processing ${pp} s"
  done
done
rm -f "$prompts"
