#!/bin/sh
# Multi-GPU checks (label gpu), forked ranks over NCCL against one GPU: tensor parallelism
# (every block variant, tiny shape and two Llama-3-8B layers) and context-parallel attention
# (ring, striped, zig-zag; grouped-query heads; head_dim 64 and 128), and the engine's striped
# prefill + distributed decode. Skips (77) below 2 GPUs.
BIN=$1
n=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
[ "${n:-0}" -ge 2 ] || { echo "skipped: $n GPU(s), 2 needed"; exit 77; }
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
set -e
"$BIN" tp-bench --device cuda --gpus 2 --config tiny --check --variants standard,ladder,parallel
"$BIN" tp-bench --device cuda --gpus 2 --config llama3-8b --layers 2 --check --variants standard,ladder
"$BIN" cp-attention --time --device cuda --gpus 2 --check --seq 1536 --heads 8 --kv-heads 2 --head-dim 64
"$BIN" cp-attention --time --device cuda --gpus 2 --check --seq 1024 --heads 32 --kv-heads 8 --head-dim 128
# Context parallelism in the engine: prefill striped over 2 GPUs (ring part and the remainder
# through the decode path; T = 2: decode path only) vs one GPU's plain forward.
for T in 301 2; do
  "$BIN" bench --device cuda --random-weights --config tiny --context-parallel 2 --check --prefill-tokens $T
done
"$BIN" bench --device cuda --random-weights --config smollm2-135m --context-parallel 2 --check --prefill-tokens 1000
