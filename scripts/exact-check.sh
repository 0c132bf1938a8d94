#!/usr/bin/env bash
# Greedy output of every engine against ar's, on the first GSM8K test questions.
# Usage: scripts/exact-check.sh [PROMPTS=20] [N=3] [MAX_TOKENS=128] [OPTIONS...]
# OPTIONS go to every `seed generate` (e.g. --exact, --ctx 16384, --target/--draft).
set -euo pipefail
count=${1:-20}; n=${2:-3}; max=${3:-128}; shift $(( $# < 3 ? $# : 3 ))
data=${SEED_DATA:-../shared/datasets}/gsm8k/test.jsonl
bin=./target/release/seed
out=$(mktemp -d)
head -n "$count" "$data" | python3 -c 'import sys, json; [print(json.loads(l)["question"].replace("\n", " ")) for l in sys.stdin]' > "$out/prompts.txt"
i=0
for e in "ar" "sd" "mcsd" "seed --verify fcfs" "seed --verify batched" "seed --verify batched --tree 2,1,1"; do
  i=$((i + 1))
  # shellcheck disable=SC2086
  if ! $bin generate "$@" --engine $e --file "$out/prompts.txt" --n "$n" --max-tokens "$max" --json \
    > "$out/$i.jsonl" 2> "$out/$i.err"; then
    echo "$e failed:" >&2; cat "$out/$i.err" >&2; exit 1
  fi
  python3 - "$out/1.jsonl" "$out/$i.jsonl" "$(tail -1 "$out/$i.err")" <<'PY'
import json, sys
ref = [json.loads(l)["tokens"] for l in open(sys.argv[1])]
got = [json.loads(l)["tokens"] for l in open(sys.argv[2])]
same = sum(a == b for a, b in zip(ref, got))
stats = sys.argv[3].split("; peak")[0]
print(f"{same}/{len(ref)} completions identical to ar | {stats}")
PY
done
rm -rf "$out"
