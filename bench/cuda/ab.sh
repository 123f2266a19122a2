#!/bin/bash
# A/B of engine builds in one device call (machines differ by several percent between calls, so
# compare only within one). Here: copy the other build's stripped binary into .devcarry/bin as
# inferkit_<name> after bench/cuda/pack.sh (mind the 64 MiB a call carries). There: every
# .devcarry/bin/inferkit* under every VARIANTS setting (ab_runs in env.sh, e.g.
# VARIANTS="- IK_NO_PDL=1") runs the same decode benchmark, ROUNDS times in turn.
# Usage (device tool): [CONFIGS="llama3-8b smollm2-135m"] [WEIGHTS="bf16"] [BATCH=1,4] [CONTEXTS="512"] [VARIANTS=...]
#   [ROUNDS=2] bash bench/cuda/ab.sh   (CONTEXTS: prompt lengths the decode steps follow)
set -u
cd "$(dirname "$0")/../.."
. bench/cuda/env.sh
for round in $(seq "${ROUNDS:-2}"); do
  ab_runs | while read -r label bin setting; do
    for cfg in ${CONFIGS:-llama3-8b smollm2-135m}; do
      for w in ${WEIGHTS:-bf16}; do
        for ctx in ${CONTEXTS:-512}; do
          env $setting $bin bench --device cuda --random-weights --config $cfg --weights $w --batch ${BATCH:-1,4} \
            --prompt-tokens $ctx --gen-tokens 128 --prefill-tokens 64 --reps 2 2>&1 < /dev/null | grep -E "decode batch" |
            sed "s/^/round $round $label $cfg $w: /"
        done
      done
    done
  done
done | tee "$OUTDIR/ab.txt"
