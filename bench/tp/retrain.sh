#!/bin/sh
# Ladder Residual retraining (docs/tensor_parallel.md): perplexity of the standard model, of the
# last K layers converted, and after retraining them, for each K. Training text: the licence
# texts in /usr/share/common-licenses and docs/*.md (~179k SmolLM2 tokens); eval: the
# perplexity fixture. Usage: bench/tp/retrain.sh [BUILD_DIR] [K...]   (default: build 4 8)
set -eu
cd "$(dirname "$0")/../.."
BIN=${1:-build}/bin/inferkit
shift || true
KS=${*:-4 8}
train=$(mktemp)
trap 'rm -f "$train"' EXIT
cat /usr/share/common-licenses/* docs/*.md > "$train"
for k in $KS; do
  "$BIN" tp-retrain --ladder-last "$k" --train "$train" --eval tests/llm/fixtures/perplexity_text.txt \
    --steps "${STEPS:-300}" --window 128 --lr 1e-4 --warmup 20 -t "${THREADS:-2}"
done
