#!/bin/bash
# Prepares the GPU run of speculative decoding (bench/spec/gpu.sh): a slim .devcarry (inferkit,
# the spec, model and op gpu tests, the shared libraries) and the model + f16 heads cut into pieces,
# .devpiece1..N, each small enough to ride one 64 MiB device call beside the repository.
# Usage: bench/spec/pack_gpu.sh BUILD_DIR [HEADS_DIR]   (HEADS_DIR: medusa/hydra/hydra++.gguf, any of them;
# without it only inferkit and the model travel, in two pieces: enough for bench/prune/device.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=$1 HEADS=${2:-}
MODEL=.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
bash bench/cuda/pack.sh "$BUILD" >/dev/null
mkdir -p .devcarry/texts && cp /usr/share/common-licenses/{GPL-3,GFDL-1.3} .devcarry/texts/  # prune/device.sh
keep='inferkit|test_spec_gpu|test_llama_gpu|test_cuda_ops'
[ -n "$HEADS" ] || keep=inferkit
(cd .devcarry/bin && ls | grep -vxE "$keep" | xargs -r rm -f)
for p in '/.devpiece*/' '/.devstage/'; do grep -qxF "$p" .git/info/exclude || echo "$p" >> .git/info/exclude; done
tmp=$(mktemp -d)
for h in $([ -n "$HEADS" ] && echo medusa hydra hydra++); do
  [ -f "$HEADS/$h.gguf" ] || continue  # the kinds present travel
  /opt/ikvenv/bin/python tools/heads_to_f16.py "$HEADS/$h.gguf" "$tmp/$h.gguf" >/dev/null
done
cp "$MODEL" "$tmp/"
(cd "$tmp" && sha256sum *.gguf > SHA256SUMS && tar -cf blob SHA256SUMS *.gguf)
# A call carries the repository's files beside the named paths; 66.6 MB in all was refused, 64.0
# accepted: 63 MB a call, less the repository.
carry=$(du -cb .devcarry | tail -1 | cut -f1)
repo=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
per_call=$((63000000 - repo)) first=$((63000000 - repo - carry))
rm -rf .devpiece[0-9]*
cut_piece() { mkdir -p $1 && dd if="$tmp/blob" of="$1/piece" bs=1M iflag=skip_bytes,count_bytes skip=$2 count=$3 status=none; }
cut_piece .devpiece1 0 $first
size=$(stat -c %s "$tmp/blob") n=1
for ((at = first; at < size; at += per_call)); do n=$((n + 1)) && cut_piece .devpiece$n $at $per_call; done
rm -rf "$tmp"
du -b .devcarry .devpiece*/piece
