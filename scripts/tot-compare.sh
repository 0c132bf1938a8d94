#!/usr/bin/env bash
# The Tree of Thoughts reference client (scripts/tot-client.py) against
# `seed serve` with no options, llama-server, and llama-server with its n-gram
# speculation: for each row, each server in turn, started fresh for the row; with
# ONE_SERVER=1, each server started once and the client run once over all the rows
# (as a user runs it: the few-shot prompts' KV may then serve every row).
# Usage: [ONE_SERVER=1] LLAMA_BIN=DIR TOT_PYTHON=tot/bin/python scripts/tot-compare.sh TEMPERATURE ROW...
# (LLAMA_BIN: llama.cpp's build/bin; SEED: the seed binary; TARGET: the target GGUF;
# one JSON line per row and server goes to stdout.)
set -u
T=$1; shift
SEED=${SEED:-target/release/seed}
TARGET=${TARGET:-$HOME/.cache/seed/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf}
PORT=${PORT:-8090}
CLIENT=$(dirname "$0")/tot-client.py
wait_up() { for _ in $(seq 120); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && return 0; sleep 1; done; return 1; }
run() {  # SERVER ROW...: one server started, the client over the rows, the server stopped
  local server=$1; shift
  case $server in
    seed) "$SEED" serve --port "$PORT" >/dev/null 2>&1 & ;;
    llama-server*)
      local spec=(); [ "$server" = llama-server-ngram ] && spec=(--spec-type ngram-mod)
      LD_LIBRARY_PATH=$LLAMA_BIN "$LLAMA_BIN/llama-server" -m "$TARGET" -t 2 -np 4 -c 16384 --port "$PORT" "${spec[@]}" >/dev/null 2>&1 & ;;
  esac
  local pid=$!
  if wait_up; then
    OPENAI_API_KEY=x OPENAI_API_BASE=http://127.0.0.1:$PORT/v1 "$TOT_PYTHON" "$CLIENT" "$server" "$T" "$@" 2>/dev/null
  else
    echo "{\"server\": \"$server\", \"rows\": \"$*\", \"error\": \"did not start\"}"
  fi
  kill "$pid"; wait "$pid" 2>/dev/null
}
SERVERS="seed llama-server llama-server-ngram"
if [ "${ONE_SERVER:-0}" = 1 ]; then
  for server in $SERVERS; do run "$server" "$@"; done
else
  for row in "$@"; do
    for server in $SERVERS; do run "$server" "$row"; done
  done
fi
