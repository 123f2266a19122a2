#!/bin/bash
# Continuous batching benchmark: CLIENTS concurrent streaming clients for DURATION seconds
# against `inferkit serve --parallel 1` (the baseline: one sequence at a time) and
# --parallel N. Prints tokens/s, time to first token p50/p99, failed requests and the
# server's resident memory at start and end.
# Usage: bench/serve/run.sh [path/to/inferkit]
#   env: CLIENTS=64 DURATION=60 MAX_TOKENS=64 PARALLEL="1 8" THREADS=0 CTX=512 MODEL=...
set -eu
INFERKIT=${1:-build/bin/inferkit}
CLIENTS=${CLIENTS:-64}
DURATION=${DURATION:-60}
MAX_TOKENS=${MAX_TOKENS:-64}
PARALLEL=${PARALLEL:-"1 8"}
THREADS=${THREADS:-0}
CTX=${CTX:-512}
MODEL=${MODEL:-.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf}
HERE=$(cd "$(dirname "$0")" && pwd)
rss_mib() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }

printf "%-9s %8s %8s %7s %9s %9s %7s %9s %9s\n" parallel requests failed tok/s ttft_p50 ttft_p99 ratio rss_start rss_end
BASE=""
for P in $PARALLEL; do
  LOG=$(mktemp)
  "$INFERKIT" serve -m "$MODEL" --port 0 --parallel "$P" --ctx "$CTX" -t "$THREADS" --max-queue 1024 2> "$LOG" &
  SERVER=$!
  trap 'kill $SERVER 2> /dev/null' EXIT
  for _ in $(seq 300); do grep -q "on http://" "$LOG" && break; sleep 0.1; done
  PORT=$(sed -n 's/.*on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$LOG")
  RSS0=$(rss_mib $SERVER)
  R=$(python3 "$HERE/load.py" --port "$PORT" --clients "$CLIENTS" --duration "$DURATION" --max-tokens "$MAX_TOKENS")
  RSS1=$(rss_mib $SERVER)
  kill $SERVER; wait $SERVER 2> /dev/null || true
  rm -f "$LOG"
  field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$R" "$1"; }
  TOKS=$(field tok_s)
  BASE=${BASE:-$TOKS}
  printf "%-9s %8s %8s %7s %8ss %8ss %6.2fx %6s MiB %5s MiB\n" "$P" "$(field requests)" "$(field failed)" "$TOKS" \
    "$(field ttft_p50_s)" "$(field ttft_p99_s)" "$(python3 -c "print($TOKS / $BASE)")" "$RSS0" "$RSS1"
  [ "$(field failed)" = 0 ] || echo "  errors: $(field errors)"
done
echo "($CLIENTS streaming clients, ${DURATION}s, $MAX_TOKENS tokens per request, ctx $CTX, threads $THREADS; ratio vs the first row)"
