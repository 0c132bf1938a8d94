#!/usr/bin/env bash
# Greedy output of every engine against ar's, on the first GSM8K test questions.
# Usage: scripts/exact-check.sh [PROMPTS=20] [N=3] [MAX_TOKENS=128] [OPTIONS...]
# OPTIONS go to every `seed generate` (e.g. --exact, --ctx 16384, --no-prefix-cache).
# ar (the reference) and seed take all prompts as one request (PROMPTS x N branches);
# sd and mcsd, which advance one branch at a time, take one request per prompt
# (llama.cpp attends over every used cell, so 60 branches would make each of
# their one-branch forwards pay for all of them).
# ENGINES (env) picks a subset, e.g. ENGINES="sd;seed --verify fcfs".
# A sample's noise is keyed by its request's seed, prompt index and sample
# index, so at temperature > 0 sd and mcsd are compared with ar run the same
# way (one request per prompt).
set -euo pipefail
count=${1:-20}; n=${2:-3}; max=${3:-128}; shift $(( $# < 3 ? $# : 3 ))
data=${SEED_DATA:-../shared/datasets}/gsm8k/test.jsonl
bin=${SEED_BIN:-./target/release/seed}
out=$(mktemp -d)
head -n "$count" "$data" | python3 -c 'import sys, json; [print(json.loads(l)["question"].replace("\n", " ")) for l in sys.stdin]' > "$out/prompts.txt"
engines=${ENGINES:-"sd;mcsd;seed --verify fcfs;seed --verify batched;seed --verify batched --tree 2,1,1"}
run() { # ENGINE PROMPTS_FILE OUT: one request
  # shellcheck disable=SC2086
  if ! $bin generate "${opts[@]}" --engine $1 --file "$2" --n "$n" --max-tokens "$max" --json \
    >> "$3.jsonl" 2> "$3.err"; then
    echo "$1 failed:" >&2; cat "$3.err" >&2; exit 1
  fi
  tail -1 "$3.err" | sed 's/; peak.*//' >> "$3.stats"
}
opts=("$@")
run_each() { # ENGINE OUT: one request per prompt
  while IFS= read -r p; do
    printf '%s\n' "$p" > "$out/one.txt"
    run "$1" "$out/one.txt" "$2"
  done < "$out/prompts.txt"
}
run ar "$out/prompts.txt" "$out/ar"
echo "ar: $(cat "$out/ar.stats")"
if [[ " $* " == *" --temperature "* ]]; then
  run_each ar "$out/ar-each"
else
  cp "$out/ar.jsonl" "$out/ar-each.jsonl"
fi
i=0
IFS=';' read -ra list <<< "$engines"
for e in "${list[@]}"; do
  i=$((i + 1))
  case $e in
    sd*|mcsd*) run_each "$e" "$out/$i"; ref="$out/ar-each.jsonl" ;;
    *) run "$e" "$out/prompts.txt" "$out/$i"; ref="$out/ar.jsonl" ;;
  esac
  python3 - "$ref" "$out/$i.jsonl" "$e" "$out/$i.stats" "$n" <<'PY'
import json, sys
ref = [json.loads(l)["tokens"] for l in open(sys.argv[1])]
got = [json.loads(l)["tokens"] for l in open(sys.argv[2])]
same = sum(a == b for a, b in zip(ref, got))
stats = open(sys.argv[4]).read().splitlines()
print(f"{sys.argv[3]}: {same}/{len(ref)} completions identical to ar | {len(stats)} request(s), last: {stats[-1]}")
for k, (a, b) in enumerate(zip(ref, got)):
    if a != b:
        at = next((j for j, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        print(f"  prompt {k // int(sys.argv[5])} sample {k % int(sys.argv[5])}: differs from token {at}")
PY
done
rm -rf "$out"
