#!/bin/bash
# Context-parallel attention on several GPUs (docs/distributed.md) in one device call on
# nvidia-h200-x2 or larger: the GPU checks, then ring / striped / zig-zag prefill timing at the
# Llama-3-8B attention shape. Needs .devcarry from bench/cuda/pack.sh.
# Usage: bench/cp/gpu.sh [P] [SEQS] [stages: tests time]
set -u
cd "$(dirname "$0")/../.."
P=${1:-2}
SEQS=${2:-65536,131072,262144}
shift 2 || true
STAGES=${*:-tests time}
D=.devcarry
mkdir -p /tmp/iklib && tar -xJf $D/libs.tar.xz -C /tmp/iklib
pylib() { python3 -c "import $1, os; print(os.path.dirname($1.__file__) + '/lib')" 2>/dev/null || true; }
export LD_LIBRARY_PATH=/tmp/iklib:/usr/local/cuda/lib64:$(pylib nvidia.cublas):$(pylib nvidia.nccl):${LD_LIBRARY_PATH:-}
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
OUTDIR=${OUT:-/tmp/ikout}
mkdir -p "$OUTDIR"
nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader
BIN=$D/bin/inferkit
for s in $STAGES; do
  case $s in
  tests)
    $D/bin/test_cuda_ops --gtest_brief=1 2>&1 | tail -n 3
    sh tests/dist/multi_gpu_check.sh $BIN 2>&1 | tee "$OUTDIR/multi_gpu_check.txt"
    ;;
  time)
    $BIN cp-attention --time --device cuda --gpus $P --seq $SEQS --heads 32 --kv-heads 8 --head-dim 128 \
      --layouts ring,striped,zigzag --repeat 1 --timeout 600 2>&1 | tee "$OUTDIR/cp_gpu_p$P.txt"
    ;;
  esac
done
