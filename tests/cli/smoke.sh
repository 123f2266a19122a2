#!/usr/bin/env bash
# The LLM commands end to end on the default model: deterministic sampling, multi-turn chat
# reusing the cache, tokenize and info.
set -u
bin=$1
model=$2
[ -f "$model" ] || { echo "skipped: $model missing (run make setup)"; exit 0; }
fail=0
check() {  # check "what" condition-command...
  local what=$1
  shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fail=1; fi
}
a=$("$bin" generate -m "$model" -p "Once upon a time" -n 24 --temp 0.9 --seed 42 -q 2>/dev/null)
b=$("$bin" generate -m "$model" -p "Once upon a time" -n 24 --temp 0.9 --seed 42 -q 2>/dev/null)
c=$("$bin" generate -m "$model" -p "Once upon a time" -n 24 --temp 0.9 --seed 43 -q 2>/dev/null)
check "same seed, same text" [ -n "$a" ] && [ "$a" = "$b" ]
check "another seed, another text" [ "$a" != "$c" ]
g=$("$bin" generate -m "$model" -p "The capital of France is" -n 8 --temp 0 -q 2>/dev/null)
check "greedy answer mentions Paris ('$g')" grep -q Paris <<<"$g"
chat_err=$(printf 'My name is Ada.\nWhat is my name?\n' | "$bin" chat -m "$model" --temp 0 -n 24 2>&1 >/dev/null)
turns=$(grep -c '^\[prompt' <<<"$chat_err")
check "chat answered two turns" [ "$turns" -eq 2 ]
first=$(grep '^\[prompt' <<<"$chat_err" | head -1 | sed 's/\[prompt \([0-9]*\).*/\1/')
second=$(grep '^\[prompt' <<<"$chat_err" | tail -1 | sed 's/\[prompt \([0-9]*\).*/\1/')
# The second turn prefills only its new tokens (plus any re-tokenized tail of the reply).
check "second turn reuses the KV cache ($first then $second tokens prefilled)" [ "$second" -lt 40 ]
ids=$("$bin" tokenize -m "$model" -p "Hello world" 2>/dev/null)
check "tokenize ($ids)" [ "$ids" = "[19556, 905]" ]
check "info lists 272 tensors" grep -q "tensors: 272" <("$bin" info -m "$model")
# Ladder retraining writes a model that reloads with the same perplexity (its own k by default).
tmp=$(mktemp -d)
fixture=$(dirname "$0")/../llm/fixtures/perplexity_text.txt
head -c 8000 /usr/share/common-licenses/GPL-3 >"$tmp/train.txt"
after=$("$bin" tp-retrain -m "$model" --ladder-last 2 --train "$tmp/train.txt" --eval "$fixture" --steps 2 \
  --eval-window 128 -o "$tmp/l2.gguf" 2>/dev/null | sed -n 's/.*ladder \([0-9.]*\) (.* after .*/\1/p')
reloaded=$("$bin" tp-perplexity -m "$tmp/l2.gguf" -f "$fixture" --window 128 2>/dev/null | awk '$1 == 2 {print $2}')
check "retrained ladder model reloads (perplexity $after, reloaded $reloaded)" [ -n "$after" ] && [ "$after" = "$reloaded" ]
# An interrupted sweep continues: --resume keeps the points already in the CSV.
"$bin" study downscale -m "$model" --methods magnitude --sparsities 0 --limit 2 --ppl-windows 0 \
  --families closed_book -o "$tmp/ds" >/dev/null 2>&1
first_row=$(sed -n 2p "$tmp/ds/downscale_all.csv")
resumed=$("$bin" study downscale -m "$model" --methods magnitude --sparsities 0,0.5 --limit 2 --ppl-windows 0 \
  --families closed_book -o "$tmp/ds" --resume 2>&1 >/dev/null)
check "study --resume keeps the done point" grep -q "magnitude 0.00: kept from the earlier run" <<<"$resumed"
check "study --resume adds the new point ($(wc -l <"$tmp/ds/downscale_all.csv") lines)" \
  [ "$(sed -n 2p "$tmp/ds/downscale_all.csv")" = "$first_row" ] && [ "$(wc -l <"$tmp/ds/downscale_all.csv")" -eq 3 ]
# Without sparsity 0 the 5% criterion has no dense accuracy to compare with: it says so.
no_dense=$("$bin" study downscale -m "$model" --methods magnitude --sparsities 0.5 --limit 1 --ppl-windows 0 \
  --families closed_book -o "$tmp/ds0" 2>/dev/null)
check "study without sparsity 0 explains the missing criterion" grep -q "needs the dense accuracy" <<<"$no_dense"
rm -rf "$tmp"
exit $fail
