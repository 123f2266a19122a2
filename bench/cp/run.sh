#!/bin/sh
# Long-prompt prefill: the single-rank engine (inferkit generate) vs the context-parallel
# engine (striped attention, KV cache distributed) on 1 and 2 MPI ranks, same prompt, greedy.
# Usage: bench/cp/run.sh [chars of prompt text, default 12600 (~4.1k SmolLM2 tokens)]
# Env: INFERKIT (binary, default build/bin/inferkit), RANKS (default "1 2").
set -eu
cd "$(dirname "$0")/../.."
BIN=${INFERKIT:-build/bin/inferkit}
CHARS=${1:-12600}
RANKS=${RANKS:-"1 2"}
prompt=$(mktemp)
trap 'rm -f "$prompt" "$prompt".*' EXIT
cat docs/*.md | head -c "$CHARS" > "$prompt"

# "[prompt N tokens, X tok/s | ..." -> "N X"
prefill() { sed -n 's/.*\[prompt \([0-9]*\) tokens, \([0-9.]*\) tok\/s.*/\1 \2/p' "$prompt.log" | tail -1; }

# Generated text only (-q), newlines dropped: compared across engines.
/usr/bin/time -f "%U %S" -o "$prompt.cpu" "$BIN" generate -f "$prompt" -n 4 --temp 0 -c 8192 > "$prompt.out1" \
  2> "$prompt.log" || true
set -- $(prefill)
base_tok=$1 base=$2
echo "prompt: $base_tok tokens ($CHARS chars of docs/*.md), SmolLM2-135M Q4_1, greedy, 4 new tokens"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (cores: $(nproc))"
printf '%-34s %10s %10s %8s\n' engine prefill_s tok/s vs_base
printf '%-34s %10.2f %10.1f %8s\n' "single-rank (generate)" "$(echo "$base_tok / $base" | bc -l)" "$base" "1.00x"
echo "    process CPU s (user sys; load + prefill + 4 tokens): $(tail -1 "$prompt.cpu")"
echo "    continuation: $(tail -c 120 "$prompt.out1" | tr -d '\n')"
for P in $RANKS; do
  mpirun --allow-run-as-root --oversubscribe -np "$P" "$BIN" generate --context-parallel "$P" -f "$prompt" -n 4 \
    --temp 0 -c 8192 > "$prompt.outcp" 2> "$prompt.log" || true
  set -- $(prefill)
  printf '%-34s %10.2f %10.1f %7.2fx\n' "context-parallel P=$P (striped)" "$(echo "$1 / $2" | bc -l)" "$2" \
    "$(echo "$2 / $base" | bc -l)"
  grep '^\[cp\]' "$prompt.log" | sed 's/^/    /'
  if [ "$(tr -d '\n' < "$prompt.out1")" = "$(tr -d '\n' < "$prompt.outcp")" ]; then echo "    same text as single-rank"
  else echo "    TEXT DIFFERS from single-rank: $(tail -c 120 "$prompt.outcp" | tr -d '\n')"; fi
done
