#!/bin/bash
# bench-matvec for every carried build under every VARIANTS setting (see ab_runs in env.sh), in one
# device call: the decode products' kernels beside cuBLAS, per shape.
# Usage (device tool): [SHAPES=6144x4096,...] [MS=1,2,4] [VARIANTS="- IK_MATVEC_STREAM=8x4"] bash bench/cuda/matvec_ab.sh
set -u
cd "$(dirname "$0")/../.."
. bench/cuda/env.sh
SHAPES=${SHAPES:-6144x4096,4096x4096,28672x4096,4096x14336,128256x4096}
ab_runs | while read -r label bin setting; do
  echo "== $label"
  env $setting $bin bench-matvec --shapes "$SHAPES" --m "${MS:-1,2,4}" 2>&1 < /dev/null | tail -n +4
done | tee "$OUTDIR/matvec_ab.txt"
