#!/bin/bash
# Nsight Compute's device time per kernel kind over a random-weight model's bench run whose work is
# mostly one prefill of --prefill-tokens (default llama3-8b, 2,048 tokens; the 8-token prompt and
# the one decode step are a small part), kernels serialized, beside the prefill's tokens/s in a
# plain run. Needs .devcarry (bench/cuda/pack.sh). Usage (device tool): bash bench/cuda/profile_prefill.sh [config] [tokens]
set -u
cd "$(dirname "$0")/../.."
. bench/cuda/env.sh
CFG=${1:-llama3-8b}
N=${2:-2048}
ARGS="bench --device cuda --random-weights --config $CFG --batch 1 --prompt-tokens 8 --gen-tokens 1 --prefill-tokens $N --reps 1"
$BIN $ARGS 2>&1 | grep -E "prefill" | tee "$OUTDIR/profile_prefill_${CFG}_wall.txt"
ncu --csv --page raw --metrics gpu__time_duration.sum --cache-control none --clock-control none \
  $BIN $ARGS > "$OUTDIR/ncu_prefill_$CFG.csv" 2> "$OUTDIR/ncu_prefill_$CFG.err"
python3 bench/cuda/ncu_between.py "$OUTDIR/ncu_prefill_$CFG.csv" - "whole run" | tee "$OUTDIR/profile_prefill_$CFG.txt"
