#!/bin/bash
# The CUDA backend on the GPU machine, in one device call: the gpu-labelled tests, then the
# engine benchmark (Llama-3-8B and SmolLM2-135M shapes, random bf16 weights) beside PyTorch +
# transformers on the same shape. Needs .devcarry from bench/cuda/pack.sh (built here, carried).
# Usage (device tool): [HF=0] bench/cuda/run.sh [tests|bench|all]
set -u
cd "$(dirname "$0")/../.."
STAGE=${1:-all}
. bench/cuda/env.sh
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv,noheader
ldd $D/bin/inferkit | grep "not found" && echo "missing libraries (above)"

if [ "$STAGE" = tests ] || [ "$STAGE" = all ]; then
  for t in $D/bin/test_*; do
    echo "== $t"
    $t --gtest_brief=1 2>&1 | tee "$OUTDIR/$(basename $t).log" | tail -n 25
  done
fi
if [ "$STAGE" = bench ] || [ "$STAGE" = all ]; then
  echo "== inferkit, llama3-8b shape"
  $D/bin/inferkit bench --device cuda --random-weights --config llama3-8b --batch 1,4,16,64 \
    --prompt-tokens 512 --gen-tokens 128 --prefill-tokens 2048 --reps 2 2>&1 | tee "$OUTDIR/bench_8b.txt"
  echo "== inferkit, smollm2-135m shape"
  $D/bin/inferkit bench --device cuda --random-weights --config smollm2-135m --batch 1,64 \
    --prompt-tokens 512 --gen-tokens 256 --prefill-tokens 2048 --reps 2 2>&1 | tee "$OUTDIR/bench_smol.txt"
  [ "${HF:-1}" = 0 ] && exit 0  # HF=0: without the PyTorch baseline (minutes of torch.compile)
  echo "== PyTorch + transformers, llama3-8b shape"
  PYTHONUNBUFFERED=1 timeout 300 python3 bench/cuda/hf_baseline.py --config llama3-8b --compile 2>&1 |
    tee "$OUTDIR/hf_8b.log" | grep '^{' | tee "$OUTDIR/hf_8b.txt"
fi
