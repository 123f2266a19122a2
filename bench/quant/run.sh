#!/usr/bin/env bash
# Quality (perplexity) of LUT-quantized SmolLM2-135M variants beside the shipped Q4_1, then the
# kernel speed table. Corpus: /usr/share/games/fortunes/cookie from the Debian package
# `fortunes` (apt-get install fortunes), first WINDOWS windows of 512 tokens.
#   bench/quant/run.sh [build-dir] [windows]
set -euo pipefail
BUILD=${1:-build}
WINDOWS=${2:-4}
IK=$BUILD/bin/inferkit
MODEL=.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
TEXT=/usr/share/games/fortunes/cookie
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
[ -f "$TEXT" ] || { echo "needs $TEXT: apt-get install fortunes" >&2; exit 1; }

ppl() {  # name model
  local line
  line=$("$IK" perplexity -m "$2" -f "$TEXT" --ctx 512 --max-windows "$WINDOWS" 2>/dev/null)
  printf '%-28s %s\n' "$1" "$line"
}

ppl "Q4_1 (original)" "$MODEL"
for cfg in "nf 4 128" "nf 4 64" "nf 3 128" "nf 3 64" "int 4 128" "int 3 64" "kmeans 4 64" "kmeans 3 64"; do
  set -- $cfg
  out="$TMP/$1$2g$3.gguf"
  "$IK" quantize -m "$MODEL" -o "$out" --table "$1" --bits "$2" --group "$3" --ragged --no-progress >/dev/null
  ppl "$1$2 g$3" "$out"
  rm -f "$out"
done
"$IK" bench-lut
