#!/bin/bash
# A/B of prefill throughput in one device call (machines differ by a few percent between calls):
# every .devcarry/bin/inferkit* under every VARIANTS setting (ab_runs in env.sh) runs one prefill
# of each PREFILL length per config (random weights), ROUNDS times in turn. Copy the other
# build's stripped binary into .devcarry/bin as inferkit_<name> after bench/cuda/pack.sh.
# MAXROWS="512 2048": also each --max-rows (rows per forward call; needs a build that has the flag).
# Usage (device tool): [CONFIGS="llama3-8b smollm2-135m"] [PREFILL="2048 8192"] [MAXROWS=...] [VARIANTS=...] [ROUNDS=2]
#   bash bench/cuda/prefill_ab.sh
set -u
cd "$(dirname "$0")/../.."
. bench/cuda/env.sh
for round in $(seq "${ROUNDS:-2}"); do
  ab_runs | while read -r label bin setting; do
    for cfg in ${CONFIGS:-llama3-8b smollm2-135m}; do
      for n in ${PREFILL:-2048 8192}; do
        for rows in ${MAXROWS:--}; do
          flag=$([ "$rows" = - ] || echo "--max-rows $rows")
          env $setting $bin bench --device cuda --random-weights --config $cfg --batch 1 --prompt-tokens 8 \
            --gen-tokens 1 --prefill-tokens $n --reps 3 $flag 2>&1 < /dev/null | grep -E "^prefill|rror" |
            sed "s/^/round $round $label $cfg ${flag:+rows $rows}: /"
        done
      done
    done
  done
done | tee "$OUTDIR/prefill_ab.txt"
