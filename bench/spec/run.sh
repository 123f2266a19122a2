#!/bin/sh
# Speculative decoding on CPU, end to end, with SmolLM2-135M-Instruct (the default model):
#  1. self-distillation data from the prompt sets (bench/spec/make_prompts.sh made them),
#  2. Medusa, Hydra and Hydra++ heads trained on it (base frozen),
#  3. per-head top-1 accuracy on held-out prompts,
#  4. plain greedy decoding beside each head type and tree size, same prompts (tokens/step,
#     tok/s, ratio to plain, and whether the output is identical to plain decoding).
# Usage: bench/spec/run.sh [OUTDIR]   (INFERKIT=path/to/inferkit; SIZE=small|medium|full)
# "small" (default) is the size run for docs/speculative.md on the shared 2-core machine:
# 64 training prompts x 40 answer tokens, 300 steps of 4 sequences x 16 positions per arch.
set -eu
# One thread each: on the shared machine OpenMP/OpenBLAS spin-waiting costs more than it gains.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
here=$(cd "$(dirname "$0")" && pwd)
ik=${INFERKIT:-inferkit}
out=${1:-/tmp/ik-spec}
mkdir -p "$out"
case "${SIZE:-small}" in
full) n_train=1017 answer=64 steps=2000 ;;
medium) n_train=400 answer=64 steps=1500 ;;  # the GPU run's heads (~40 min here; Hydra++ 2400 steps)
*) n_train=64 answer=40 steps=300 ;;
esac

[ -f "$out/heldout.gguf" ] || $ik hydra data --prompts "$here/prompts_heldout.txt" --max-prompts 24 --answer-tokens 48 -o "$out/heldout.gguf"
[ -f "$out/train.gguf" ] || $ik hydra data --prompts "$here/prompts_train.txt" --max-prompts $n_train --answer-tokens $answer -o "$out/train.gguf"
for arch in medusa hydra hydra++; do
  arch_steps=$steps
  [ "$arch" = hydra++ ] && [ "${SIZE:-small}" = medium ] && arch_steps=2400  # 19 min; 800 gave 0.40 per head
  [ -f "$out/$arch.gguf" ] || $ik hydra train --arch $arch --data "$out/train.gguf" --steps $arch_steps --heads 4 \
    --heldout "$out/heldout.gguf" -o "$out/$arch.gguf" | tee "$out/train_$arch.log"
done
for arch in medusa hydra hydra++; do $ik hydra eval --heads "$out/$arch.gguf" --data "$out/heldout.gguf"; done
$ik hydra bench --prompts "$here/prompts_heldout.txt" --n-prompts 4 --tokens 32 \
  --heads "$out/medusa.gguf" --heads "$out/hydra.gguf" --heads "$out/hydra++.gguf" \
  --tree chain-1 --tree chain-2 --tree mc-3 --tree mc-5 --tree mc-15 --tree mc_sim_7b_63 --csv "$out/bench.csv"
# Losslessness on more prompts and longer answers (the "identical" column).
$ik hydra bench --prompts "$here/prompts_heldout.txt" --n-prompts 20 --tokens 64 \
  --heads "$out/medusa.gguf" --heads "$out/hydra.gguf" --heads "$out/hydra++.gguf" --tree mc-5 --tree chain-4
