#!/bin/bash
# Context-parallel attention on several GPUs (docs/distributed.md) in one device call on
# nvidia-h200-x2 or larger: the GPU checks, then ring / striped / zig-zag prefill timing at the
# Llama-3-8B attention shape; the engine's striped prefill (8B shape, random weights) on 1 and P
# GPUs; generate --context-parallel end to end on a real model (.devcarry/models/smol-2blocks.gguf,
# tools/truncate_gguf.py) against one GPU. Needs .devcarry from bench/cuda/pack.sh.
# Usage: bench/cp/gpu.sh [P] [SEQS] [stages: tests time engine e2e]
set -u
cd "$(dirname "$0")/../.."
P=${1:-2}
SEQS=${2:-65536,131072,262144}
shift 2 || true
STAGES=${*:-tests time engine e2e}
. bench/cuda/env.sh
nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader
for s in $STAGES; do
  case $s in
  tests)
    for t in test_cuda_ops test_llama_gpu; do [ -x $D/bin/$t ] && $D/bin/$t --gtest_brief=1 2>&1 | tail -n 3; done
    sh tests/dist/multi_gpu_check.sh $BIN 2>&1 | tee "$OUTDIR/multi_gpu_check.txt"
    ;;
  time)
    $BIN cp-attention --time --device cuda --gpus $P --seq $SEQS --heads 32 --kv-heads 8 --head-dim 128 \
      --layouts ring,striped,zigzag --repeat 1 --timeout 600 2>&1 | tee "$OUTDIR/cp_gpu_p$P.txt"
    ;;
  engine)
    for T in 32768 65536; do
      for p in 1 $P; do
        $BIN bench --device cuda --random-weights --config llama3-8b --context-parallel $p --prefill-tokens $T --reps 1 \
          2>&1 | tee -a "$OUTDIR/cp_engine.txt"
      done
    done
    ;;
  e2e)
    M=$D/models/smol-2blocks.gguf
    [ -f $M ] || { xz -dc $M.xz > /tmp/smol-2blocks.gguf && M=/tmp/smol-2blocks.gguf; }  # carried compressed
    cat docs/*.md | head -c 22000 > /tmp/long_prompt.txt   # about 7.5k tokens: the model's context is 8192
    $BIN generate --device cuda -m $M -f /tmp/long_prompt.txt -n 24 --temp 0 -c 8192 -q > /tmp/one.txt 2> /tmp/one.log
    $BIN generate --device cuda --context-parallel $P -m $M -f /tmp/long_prompt.txt -n 24 --temp 0 -c 8192 -q \
      > /tmp/cp.txt 2> /tmp/cp.log
    $BIN generate --device cuda --context-parallel $P -m $M -f /tmp/long_prompt.txt -n 24 --temp 0 -c 8192 2>&1 >/dev/null |
      tail -n 1 | tee "$OUTDIR/cp_e2e.txt"
    tail -n 2 /tmp/one.log /tmp/cp.log
    if cmp -s /tmp/one.txt /tmp/cp.txt; then echo "e2e: same greedy text on 1 GPU and $P GPUs"; else
      echo "e2e: DIFFERENT text"; cat /tmp/one.txt /tmp/cp.txt; fi | tee -a "$OUTDIR/cp_e2e.txt"
    ;;
  esac
done
