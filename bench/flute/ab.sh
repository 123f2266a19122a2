#!/bin/bash
# A/B of kernel builds or settings in one device call (machines differ by several percent between
# calls, so compare only within one): every .devcarry/bin/inferkit* under every VARIANTS setting
# (ab_runs in env.sh) runs the same bench-flute lines, ROUNDS times in turn. Copy the other
# build's stripped binary into .devcarry/bin as inferkit_<name> after bench/cuda/pack.sh (mind the
# 64 MiB a call carries). bench/cuda/ab.sh does the same for the whole model. E.g. row blocks per
# warp: VARIANTS="IK_LUT_ROW_BLOCKS=1 IK_LUT_ROW_BLOCKS=2"; a tuning run: VARIANTS="- IK_LUT_TUNED=FILE".
# Usage (device tool): [SHAPES=...] [MS=1,8,16,32] [BITS=4,3] [VARIANTS=...] [ROUNDS=2] bash bench/flute/ab.sh
set -u
cd "$(dirname "$0")/../.."
. bench/cuda/env.sh
for round in $(seq "${ROUNDS:-2}"); do
  ab_runs | while read -r label bin setting; do
    env $setting $bin bench-flute --shapes ${SHAPES:-8192x28672,28672x8192,4096x14336,14336x4096,4096x4096} \
      --m ${MS:-1,8,16,32} --bits ${BITS:-4,3} 2>&1 < /dev/null | grep -E '^ +[0-9]+x' | sed "s/^/round $round $label /"
  done
done | tee "$OUTDIR/flute_ab.txt"
