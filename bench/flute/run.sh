#!/bin/bash
# FLUTE on the GPU machine, in one device call: the lookup-table GEMM tests, the kernel
# benchmark (ours vs cuBLAS f16 vs the bandwidth floor), optionally the tuning run, and the
# end-to-end Llama-3-8B-shape decode with NF4 / NF3 weights vs bf16.
# Needs .devcarry from bench/cuda/pack.sh. Usage (device tool): bench/flute/run.sh [tests|bench|tune|e2e|all]...
set -u
cd "$(dirname "$0")/../.."
. bench/cuda/env.sh
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
for stage in "${@:-all}"; do
  case $stage in
    tests|all)
      echo "== test_cuda_lut"
      $D/bin/test_cuda_lut --gtest_brief=1 2>&1 | tee "$OUTDIR/test_cuda_lut.log" | tail -n 40 ;;&
    tune|all)
      echo "== bench-flute --tune"
      $D/bin/inferkit bench-flute --tune --tune-out "$OUTDIR/lut_tuned.inc" \
        --shapes 4096x4096,14336x4096,4096x14336,8192x8192,28672x8192,8192x28672,6144x4096,28672x4096,10240x8192,57344x8192 \
        --bits 4,3 --reps 5 2>&1 | tee "$OUTDIR/tune.txt" ;;&
    bench|all)
      echo "== bench-flute"
      $D/bin/inferkit bench-flute 2>&1 | tee "$OUTDIR/bench_flute.txt" ;;&
    e2e|all)
      echo "== end to end, llama3-8b shape"
      for w in bf16 nf4 nf3; do
        $D/bin/inferkit bench --device cuda --random-weights --config llama3-8b --weights $w --batch 1,16 \
          --prompt-tokens 512 --gen-tokens 128 --prefill-tokens 2048 --reps 2 2>&1 | tee "$OUTDIR/e2e_$w.txt"
      done ;;
  esac
done
