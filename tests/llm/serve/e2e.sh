#!/bin/bash
# End-to-end test of `inferkit serve`: curl for the routes and bad input, then the `openai`
# Python package (in .cache/test-venv, created here) for chat, streaming and parallel requests.
# Usage: tests/llm/serve/e2e.sh path/to/inferkit   (run from the repository root)
# SERVE_DEVICE=cpu|cuda|auto picks `serve --device` (default auto: the GPU when one is usable).
# Exit 77 (skipped) without the default model.
set -u
INFERKIT=${1:?usage: e2e.sh path/to/inferkit}
MODEL=${INFERKIT_MODEL:-.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf}
HERE=$(cd "$(dirname "$0")" && pwd)
if [ ! -f "$MODEL" ]; then
  echo "SKIP: $MODEL is missing (run make setup)"
  exit 77
fi
command -v curl > /dev/null || { echo "SKIP: curl is missing"; exit 77; }

LOG=$(mktemp)
OUT=$(mktemp)
"$INFERKIT" serve -m "$MODEL" --device "${SERVE_DEVICE:-auto}" --host 127.0.0.1 --port 0 --parallel 4 --ctx 1024 -t 1 2> "$LOG" &
SERVER=$!
cleanup() { kill "$SERVER" 2> /dev/null; wait "$SERVER" 2> /dev/null; rm -f "$LOG" "$OUT"; }
trap cleanup EXIT

FAILED=0
check() {  # check NAME COMMAND...: runs the command, reports
  if "${@:2}"; then echo "ok   $1"; else echo "FAIL $1"; FAILED=1; fi
}

for _ in $(seq 300); do
  grep -q "on http://" "$LOG" && break
  kill -0 "$SERVER" 2> /dev/null || { cat "$LOG"; echo "FAIL server did not start"; exit 1; }
  sleep 0.1
done
PORT=$(sed -n 's/.*on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$LOG")
[ -n "$PORT" ] || { cat "$LOG"; echo "FAIL server did not start"; exit 1; }
URL=http://127.0.0.1:$PORT
echo "server on $URL"

status() {  # status METHOD PATH [BODY]: prints the HTTP status
  curl -s -o /dev/null -w '%{http_code}' --max-time 30 -X "$1" -H 'Content-Type: application/json' \
    ${3+--data-binary "$3"} "$URL$2"
}
json_ok() {  # json_ok FILE PYTHON_EXPR: the JSON in FILE (as j) satisfies the expression
  python3 -c "import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if ($2) else 1)" "$1"
}

curl -s "$URL/health" > "$OUT"
check health json_ok "$OUT" 'j["status"] == "ok" and j["slots_total"] == 4'
curl -s "$URL/v1/models" > "$OUT"
check models json_ok "$OUT" 'j["data"][0]["object"] == "model"'
curl -s "$URL/v1/chat/completions" -H 'Content-Type: application/json' \
  -d '{"messages":[{"role":"user","content":"What is the capital of France?"}],"max_tokens":24,"temperature":0}' > "$OUT"
check chat json_ok "$OUT" 'len(j["choices"][0]["message"]["content"]) > 0 and j["usage"]["completion_tokens"] > 0 and
  j["usage"]["total_tokens"] == j["usage"]["prompt_tokens"] + j["usage"]["completion_tokens"]'

STREAM=$(curl -sfN "$URL/v1/completions" -H 'Content-Type: application/json' \
  -d '{"prompt":"The sky is","max_tokens":12,"temperature":0,"stream":true}')
check "streaming: several data events" test "$(grep -c '^data: {' <<< "$STREAM")" -ge 3
check "streaming: ends with [DONE]" test "$(grep '^data: ' <<< "$STREAM" | tail -1)" = "data: [DONE]"

check "malformed JSON -> 400" test "$(status POST /v1/chat/completions '{"messages": [')" = 400
check "wrong field type -> 400" test "$(status POST /v1/chat/completions '{"messages":"hi"}')" = 400
check "max_tokens 0 -> 400" test "$(status POST /v1/completions '{"prompt":"a","max_tokens":0}')" = 400
check "n 2 -> 400" test "$(status POST /v1/completions '{"prompt":"a","n":2}')" = 400
LONG=$(python3 -c 'import json; print(json.dumps({"prompt": "hello " * 1500}))')
check "prompt longer than the context -> 400" test "$(status POST /v1/completions "$LONG")" = 400
BIG=$(mktemp)
head -c 2000000 /dev/zero | tr '\0' 'a' > "$BIG"
check "oversized body -> 413" test "$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 --data-binary @"$BIG" "$URL/v1/completions")" = 413
rm -f "$BIG"
check "unknown route -> 404" test "$(status GET /v1/nothing)" = 404
curl -s "$URL/v1/completions" -d '{' > "$OUT"
check "error body has OpenAI's shape" json_ok "$OUT" 'j["error"]["type"] == "invalid_request_error" and isinstance(j["error"]["message"], str)'

# GARBAGE (default 1,000) garbage requests (bounded): random bytes, wrong types, random routes. All must be 4xx.
BAD_BODIES=('' 'null' '[]' '"x"' '{"messages":null}' '{"messages":[{"role":1}]}' '{"prompt":{}}'
  '{"prompt":"a","max_tokens":-1}' '{"prompt":"a","temperature":"x"}' '{"prompt":"a","stop":[1]}'
  '{"prompt":"a","top_p":9}' '{"prompt":"a","stream":3}' '{"messages":[{"role":"user","content":[{"type":"image"}]}]}')
PATHS=(/v1/chat/completions /v1/completions /v1/models/x /v1 / /health/x)
GARBAGE_OK=1
rss_kb() { awk '/^VmRSS/ {print $2}' /proc/$SERVER/status; }
# Warm the paths once so allocator pools exist before the leak check.
status POST /v1/completions '{"prompt":"a","max_tokens":-1}' > /dev/null
RSS_BEFORE=$(rss_kb)
for i in $(seq "${GARBAGE:-1000}"); do
  case $((i % 3)) in
    0) BODY=$(head -c $((RANDOM % 300 + 1)) /dev/urandom | tr -d '\0') ;;
    1) BODY=${BAD_BODIES[$((RANDOM % ${#BAD_BODIES[@]}))]} ;;
    2) BODY="{\"prompt\": $((RANDOM)), \"x\": [$(head -c 20 /dev/urandom | od -An -tu1 | tr -s ' ' ',' | sed 's/^,//;s/,$//')]}" ;;
  esac
  P=${PATHS[$((RANDOM % ${#PATHS[@]}))]}
  [ $((i % 7)) = 0 ] && P=${PATHS[$((RANDOM % 2))]}
  CODE=$(status POST "$P" "$BODY")
  if [ "${CODE:0:1}" != 4 ]; then echo "garbage request $i to $P got $CODE: $(head -c 80 <<< "$BODY" | od -c | head -2)"; GARBAGE_OK=0; fi
done
check "${GARBAGE:-1000} garbage requests -> 4xx" test $GARBAGE_OK = 1
check "still serving after garbage" bash -c "curl -sf $URL/health > /dev/null"
RSS_AFTER=$(rss_kb)
echo "server RSS before/after the garbage: ${RSS_BEFORE} / ${RSS_AFTER} KiB"
check "no leak over the garbage (RSS grew by $((RSS_AFTER - RSS_BEFORE)) KiB < 8 MiB)" test $((RSS_AFTER - RSS_BEFORE)) -lt 8192

# A client that disconnects mid-stream: its slot is freed.
curl -sN --max-time 2 "$URL/v1/completions" -H 'Content-Type: application/json' \
  -d '{"prompt":"Count:","max_tokens":100000,"ignore_eos":true,"stream":true}' > /dev/null
FREED=0
for _ in $(seq 50); do
  ACTIVE=$(curl -s "$URL/health" | python3 -c 'import json,sys; print(json.load(sys.stdin)["slots_active"])')
  [ "$ACTIVE" = 0 ] && { FREED=1; break; }
  sleep 0.2
done
check "disconnected client's slot is freed" test $FREED = 1

# The openai package, in a venv of its own (created once).
VENV=.cache/test-venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import openai' 2> /dev/null; then
  python3 -m venv "$VENV" > /dev/null 2>&1 &&
    timeout 60 "$VENV/bin/pip" install -q --timeout 15 --retries 1 openai > /dev/null 2>&1 || echo "SKIP openai client part: cannot create $VENV or install openai from PyPI"
fi
if "$VENV/bin/python" -c 'import openai' 2> /dev/null; then
  check "openai package: chat, streaming, parallel" "$VENV/bin/python" "$HERE/openai_client.py" "$URL/v1"
fi

# serve --spec: bad flag combinations are one-line errors before the model loads.
ERR=$("$INFERKIT" serve -m "$MODEL" --spec hydra 2>&1)
check "--spec without --heads -> one-line error" test $? = 1 -a "$ERR" = "error: --spec hydra needs --heads FILE (train one with \`inferkit hydra train\`)"
ERR=$("$INFERKIT" serve -m "$MODEL" --spec hydra --heads "$MODEL" --device cuda --parallel 2 2>&1)
check "--spec on the GPU with 2 slots -> one-line error" test $? = 1 -a "$(wc -l <<< "$ERR")" = 1 -a "${ERR#*--parallel 1}" != "$ERR"
ERR=$("$INFERKIT" serve -m "$MODEL" --heads "$MODEL" 2>&1)
check "--heads without --spec -> one-line error" test $? = 1 -a "$ERR" = "error: --heads needs --spec medusa|hydra|hydra++"

kill -TERM "$SERVER"
for _ in $(seq 50); do kill -0 "$SERVER" 2> /dev/null || break; sleep 0.1; done
check "server stops on SIGTERM" bash -c "! kill -0 $SERVER 2> /dev/null"
exit $FAILED
