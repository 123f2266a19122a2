#!/bin/bash
# Nsight Compute's per-kernel device times for one decode step (context 512; BATCH sequences,
# default 1) of a random-weight model (default llama3-8b), kernels serialized: what each kind of
# kernel costs, against the step's wall time in the same bench run. Needs .devcarry
# (bench/cuda/pack.sh).
# Usage (device tool): [BATCH=64] bash bench/cuda/profile_decode.sh [config]
set -u
cd "$(dirname "$0")/../.."
. bench/cuda/env.sh
CFG=${1:-llama3-8b}
B=${BATCH:-1}
$BIN bench --device cuda --random-weights --config $CFG --batch $B --prompt-tokens 512 --gen-tokens 64 \
  --prefill-tokens 8 --reps 1 2>&1 | grep "decode batch" | tee "$OUTDIR/profile_${CFG}_b${B}_wall.txt"
ncu --csv --page raw --metrics gpu__time_duration.sum --cache-control none --clock-control none \
  $BIN bench --device cuda --random-weights --config $CFG --batch $B --prompt-tokens 512 --gen-tokens 3 \
  --prefill-tokens 8 --reps 1 > "$OUTDIR/ncu_decode_${CFG}_b$B.csv" 2> "$OUTDIR/ncu_decode_${CFG}_b$B.err"
python3 bench/cuda/ncu_between.py "$OUTDIR/ncu_decode_${CFG}_b$B.csv" sample_kernel "one decode step" --with-marker | tee "$OUTDIR/profile_${CFG}_b$B.txt"
# DETAIL=regex: Nsight Compute's full report (or NCU_SECTIONS) of one launch of the kernels matching it.
if [ -n "${DETAIL:-}" ]; then
  ncu ${NCU_SECTIONS:---set full} --kernel-name "regex:$DETAIL" --launch-skip 40 --launch-count 1 \
    $BIN bench --device cuda --random-weights --config $CFG --batch $B --prompt-tokens 512 --gen-tokens 3 \
    --prefill-tokens 8 --reps 1 2>&1 | grep -vE "^\s*$|^==PROF==" | tee "$OUTDIR/ncu_detail_${CFG}_b$B.txt" | head -150
fi
