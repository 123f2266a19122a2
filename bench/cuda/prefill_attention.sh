#!/bin/bash
# Tensor-core vs CUDA-core prefill attention on one GPU (IK_ATTN_CUDA_CORES=1 selects the latter):
# the CUDA tests, the engine's prefill (Llama-3-8B shape, random weights) at 2048 and 8192 tokens,
# and the virtual ring's blocks at 32k. Needs .devcarry (bench/cuda/pack.sh).
set -u
cd "$(dirname "$0")/../.."
bash bench/cuda/run.sh tests 2>&1 | grep -E "==|PASSED|FAILED|SKIPPED|error" 
export LD_LIBRARY_PATH=/tmp/iklib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
B=.devcarry/bin/inferkit
for mode in tensor-cores cuda-cores; do
  [ $mode = cuda-cores ] && export IK_ATTN_CUDA_CORES=1
  for T in 2048 8192; do
    echo "== $mode, prefill $T"
    $B bench --device cuda --random-weights --config llama3-8b --batch 1 --prompt-tokens 512 --gen-tokens 32 \
      --prefill-tokens $T --reps 2 | grep -E "prefill|decode batch"
  done
  echo "== $mode, virtual ring blocks"
  $B cp-attention --virtual --device cuda --seq 32768 --P 2 --heads 32 --kv-heads 8 --head-dim 128 --repeat 2
done
