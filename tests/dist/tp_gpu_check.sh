#!/bin/sh
# Tensor parallelism on GPUs (label gpu): every block variant on 2 GPUs (forked ranks, NCCL)
# against one GPU, on random weights of the tiny shape. Skips (77) with fewer than 2 GPUs.
BIN=$1
n=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
[ "${n:-0}" -ge 2 ] || { echo "skipped: $n GPU(s), 2 needed"; exit 77; }
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
"$BIN" tp-bench --device cuda --gpus 2 --config tiny --check --variants standard,ladder,parallel &&
  "$BIN" tp-bench --device cuda --gpus 2 --config llama3-8b --layers 2 --check --variants standard,ladder
