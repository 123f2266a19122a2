#!/bin/bash
# Tensor parallelism on GPUs (docs/tensor_parallel.md) in one device call on a machine with
# several GPUs (nvidia-h200-x2 or larger): the GPU tests, the TP-vs-one-GPU check, then
# tp-bench for the Llama-3-8B and 70B shapes, every block variant. Needs .devcarry from
# bench/cuda/pack.sh. Usage: bench/tp/gpu.sh [P] [stages: tests bench8b bench70b]
set -u
cd "$(dirname "$0")/../.."
P=${1:-2}
shift || true
STAGES=${*:-tests bench8b bench70b}
. bench/cuda/env.sh
nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader
nvidia-smi topo -m 2>&1 | head -8
ldd $D/bin/inferkit | grep "not found" && echo "missing libraries (above)"
V=standard,ladder,parallel,desync
for s in $STAGES; do
  case $s in
  tests)
    $D/bin/test_dist_launch --gtest_brief=1 2>&1 | tail -n 3
    $D/bin/test_llama_gpu --gtest_brief=1 2>&1 | tail -n 5
    sh tests/dist/multi_gpu_check.sh $BIN 2>&1 | tee "$OUTDIR/multi_gpu_check.txt"
    ;;
  bench8b)
    for p in 1 $P; do
      $BIN tp-bench --device cuda --gpus $p --config llama3-8b --variants $V --batch 1,4,16,64 \
        --prompt-tokens 1024 --gen-tokens 256 --prefill-tokens 2048 --repeat 2 2>&1 | tee "$OUTDIR/tp_8b_p$p.txt"
    done
    ;;
  bench70b)
    $BIN tp-bench --device cuda --gpus $P --config llama3-70b-8layers --layers 80 --variants $V --batch 1,4,16,64 \
      --prompt-tokens 1024 --gen-tokens 128 --prefill-tokens 2048 --repeat 1 2>&1 | tee "$OUTDIR/tp_70b_p$P.txt"
    ;;
  esac
done
