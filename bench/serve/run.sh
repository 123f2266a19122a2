#!/bin/bash
# Continuous batching benchmark: CLIENTS concurrent streaming clients for DURATION seconds
# against `inferkit serve --parallel 1` (the baseline: one sequence at a time) and
# --parallel N. Prints tokens/s (the server's counter over the duration), time to first token
# p50/p99, failed requests, and the server's resident memory (VmRSS sampled every second):
# after warm-up (WARMUP s) vs at the end of the duration, and the maximum. The clients still
# waiting at the end disconnect; the server must then free every slot (slots_after).
# Usage: bench/serve/run.sh [path/to/inferkit]
#   env: CLIENTS=64 DURATION=60 WARMUP=20 MAX_TOKENS=64 PARALLEL="1 8" THREADS=0 CTX=512 MODEL=...
#        RSS_CSV_DIR=dir (write the RSS samples of each run there), SERVER_ARGS="..." (more serve flags)
set -eu
INFERKIT=${1:-build/bin/inferkit}
CLIENTS=${CLIENTS:-64}
DURATION=${DURATION:-60}
WARMUP=${WARMUP:-20}
MAX_TOKENS=${MAX_TOKENS:-64}
PARALLEL=${PARALLEL:-"1 8"}
THREADS=${THREADS:-0}
CTX=${CTX:-512}
MODEL=${MODEL:-.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf}
HERE=$(cd "$(dirname "$0")" && pwd)

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
printf "%-8s %8s %6s %7s %8s %8s %6s %6s %9s %9s %9s %5s\n" parallel requests failed tok/s ttft_p50 ttft_p99 \
  ratio no_ttft rss_warm rss_end rss_max slots_after
BASE=""
for P in $PARALLEL; do
  LOG=$(mktemp)
  "$INFERKIT" serve -m "$MODEL" --port 0 --parallel "$P" --ctx "$CTX" -t "$THREADS" --max-queue 1024 ${SERVER_ARGS:-} 2> "$LOG" &
  SERVER=$!
  trap 'kill $SERVER 2> /dev/null' EXIT
  for _ in $(seq 1200); do grep -q "on http://" "$LOG" && break; sleep 0.1; done
  PORT=$(sed -n 's/.*on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$LOG")
  CSV=()
  [ -n "${RSS_CSV_DIR:-}" ] && CSV=(--rss-csv "$RSS_CSV_DIR/rss_parallel$P.csv")
  R=$(python3 "$HERE/load.py" --port "$PORT" --clients "$CLIENTS" --duration "$DURATION" --max-tokens "$MAX_TOKENS" \
    --server-pid "$SERVER" --warmup "$WARMUP" "${CSV[@]}")
  kill $SERVER; wait $SERVER 2> /dev/null || true
  rm -f "$LOG"
  field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$R" "$1"; }
  TOKS=$(field tok_s)
  BASE=${BASE:-$TOKS}
  printf "%-8s %8s %6s %7s %7ss %7ss %5.2fx %6s %5s MiB %5s MiB %5s MiB %5s\n" "$P" "$(field requests)" \
    "$(field failed)" "$TOKS" "$(field ttft_p50_s)" "$(field ttft_p99_s)" "$(python3 -c "print($TOKS / $BASE)")" \
    "$(field no_first_token)" "$(field rss_warm_mib)" "$(field rss_end_mib)" "$(field rss_max_mib)" \
    "$(field slots_active_after)"
  [ "$(field failed)" = 0 ] || echo "  errors: $(field errors)"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "($CLIENTS streaming clients, ${DURATION}s, $MAX_TOKENS tokens per request, ctx $CTX, threads $THREADS;"
echo " ratio vs the first row; no_ttft: requests that got no token before the end; rss_warm at ${WARMUP}s)"
