#!/bin/bash
# The verification pass of a speculative draft tree on the SmolLM2-135M shape (random bf16
# weights), beside batch-1 decode: as shipped, and without the key split of the attention
# (IK_NO_KEY_SPLIT=1: one block per head and 64 queries walks every key). With PROFILE=1 also
# Nsight Compute's per-kernel times for one pass of 64 nodes (kernels serialized, so they add
# up to more than the chained pass). Needs .devcarry (bench/cuda/pack.sh); every
# .devcarry/bin/inferkit* under every VARIANTS setting runs (ab_runs in env.sh, as in ab.sh);
# VARIANTS="-" skips the run without the key split.
# Usage (device tool): [VARIANTS="- IK_NO_KEY_SPLIT=1"] [NODES=16,32,64] bash bench/cuda/verify.sh
set -u
cd "$(dirname "$0")/../.."
. bench/cuda/env.sh
VARIANTS=${VARIANTS:-- IK_NO_KEY_SPLIT=1} ab_runs | while read -r label bin setting; do
  echo "== $label"
  env $setting $bin bench --device cuda --random-weights --config smollm2-135m --batch 1 --tree-nodes ${NODES:-16,32,64} \
    --prompt-tokens 512 --gen-tokens 128 --prefill-tokens 64 --reps 2 2>&1 < /dev/null | grep -E "decode|verification" |
    tee "$OUTDIR/verify_${label//[^A-Za-z0-9_.-]/_}.txt"
done
if [ "${PROFILE:-0}" = 1 ] && command -v ncu > /dev/null; then
  ncu --csv --page raw --metrics gpu__time_duration.sum --cache-control none --clock-control none \
    $BIN bench --device cuda --random-weights --config smollm2-135m --batch 1 --tree-nodes 64 --prompt-tokens 512 \
    --gen-tokens 2 --prefill-tokens 8 --reps 1 > "$OUTDIR/ncu_verify.csv" 2> "$OUTDIR/ncu_verify.err"
  python3 bench/cuda/ncu_between.py "$OUTDIR/ncu_verify.csv" keep_rows_kernel "last pass" | tee "$OUTDIR/ncu_verify_summary.txt"
fi
