#!/bin/bash
# Batch-1 and batch-4 decode on the Llama-3-8B and SmolLM2-135M shapes (random bf16 weights),
# as shipped and with each launch-level change turned off: the fused decode kernels
# (IK_NO_DECODE_FUSION=1: RoPE + KV store and RMSNorm as separate launches), the small-matrix
# decode kernel (IK_MATVEC_CUBLAS=1: cuBLAS for every matrix, so no fused norm either) and chained
# launches (IK_NO_PDL=1: programmatic dependent launch off). Needs .devcarry (bench/cuda/pack.sh).
# Usage (device tool): bash bench/cuda/decode_variants.sh
set -u
cd "$(dirname "$0")/../.."
. bench/cuda/env.sh
variant() {  # name, then environment assignments
  local name=$1
  shift
  for cfg in llama3-8b smollm2-135m; do
    env "$@" $BIN bench --device cuda --random-weights --config $cfg --batch 1,4 --prompt-tokens 512 \
      --gen-tokens 128 --prefill-tokens 64 --reps 2 2>&1 | grep -E "decode batch" | sed "s/^/$name $cfg: /"
  done
}
{
  variant "as shipped       " IK_UNUSED=1
  variant "unfused decode   " IK_NO_DECODE_FUSION=1
  variant "no chaining      " IK_NO_PDL=1
  variant "cuBLAS only      " IK_MATVEC_CUBLAS=1
  variant "none of these    " IK_MATVEC_CUBLAS=1 IK_NO_PDL=1 IK_NO_DECODE_FUSION=1
} | tee "$OUTDIR/decode_variants.txt"
