#!/bin/bash
# Plain vs speculative serving: N concurrent greedy completions (different prompts) against
# `inferkit serve` without and with `--spec ARCH --heads FILE --tree TREE`; prints the total
# completion tokens per second of each and whether every request's text is identical.
# Usage: tests/llm/serve/spec_bench.sh path/to/inferkit ARCH HEADS [TREE] [N] [MAX_TOKENS]
# (run from the repository root; the default model; -t 2).
set -eu
INFERKIT=${1:?usage: spec_bench.sh inferkit ARCH HEADS [TREE] [N] [MAX_TOKENS]}
ARCH=${2:?arch}
HEADS=${3:?heads file}
TREE=${4:-mc-15}
N=${5:-4}
MAX=${6:-96}
MODEL=${INFERKIT_MODEL:-.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT

# run NAME FLAGS...: serve with FLAGS, send the N requests at once, write NAME.json.
run() {
  local name=$1
  shift
  "$INFERKIT" serve -m "$MODEL" --device cpu --host 127.0.0.1 --port 0 --parallel "$N" --ctx 1024 -t 2 "$@" \
    2> "$DIR/$name.log" &
  local server=$!
  for _ in $(seq 300); do
    grep -q "on http://" "$DIR/$name.log" && break
    sleep 0.1
  done
  local port
  port=$(sed -n 's/.*on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$DIR/$name.log")
  python3 - "$port" "$N" "$MAX" > "$DIR/$name.json" << 'EOF'
import json, sys, threading, time, urllib.request
port, n, max_tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
topics = ["compilers", "the water cycle", "binary search", "photosynthesis", "TCP handshakes", "vaccines",
          "black holes", "hash tables"]
out = [None] * n
def ask(i):
    body = {"messages": [{"role": "user", "content": f"Explain {topics[i % len(topics)]} in a few sentences."}],
            "max_tokens": max_tokens, "temperature": 0}
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    out[i] = json.load(urllib.request.urlopen(req, timeout=600))
t0 = time.time()
threads = [threading.Thread(target=ask, args=(i,)) for i in range(n)]
for t in threads: t.start()
for t in threads: t.join()
wall = time.time() - t0
tokens = sum(r["usage"]["completion_tokens"] for r in out)
print(json.dumps({"wall_s": wall, "tokens": tokens, "texts": [r["choices"][0]["message"]["content"] for r in out]}))
EOF
  kill -TERM "$server"
  wait "$server" 2> /dev/null || true
}

run plain
run spec --spec "$ARCH" --heads "$HEADS" --tree "$TREE"
python3 - "$DIR/plain.json" "$DIR/spec.json" "$ARCH" "$TREE" "$N" << 'EOF'
import json, sys
p, s = (json.load(open(f)) for f in sys.argv[1:3])
arch, tree, n = sys.argv[3:6]
for name, r in (("plain", p), (f"--spec {arch} --tree {tree}", s)):
    print(f"{name:32s} {n} requests: {r['tokens']} tokens in {r['wall_s']:.2f} s = {r['tokens'] / r['wall_s']:.1f} tok/s")
same = p["texts"] == s["texts"]
print(f"ratio spec/plain: {(s['tokens'] / s['wall_s']) / (p['tokens'] / p['wall_s']):.2f}x; identical texts: {'yes' if same else 'NO'}")
sys.exit(0 if same else 1)
EOF
