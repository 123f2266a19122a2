#!/bin/bash
# Row blocks per warp (each X fragment serving all of them) compared, in one device call:
# bench-flute with IK_LUT_ROW_BLOCKS=1 and 2 (the table's configuration with the warps scaled
# so a stage holds as many row blocks), ROUNDS times in turn.
# Usage (device tool): [SHAPES=...] [MS=1,8,16] [BITS=4,3] [RBS="1 2"] [ROUNDS=2] bash bench/flute/row_blocks_ab.sh
set -u
cd "$(dirname "$0")/../.."
. bench/cuda/env.sh
for round in $(seq "${ROUNDS:-2}"); do
  for rb in ${RBS:-1 2}; do
    IK_LUT_ROW_BLOCKS=$rb $BIN bench-flute --shapes ${SHAPES:-8192x28672,28672x8192,4096x14336,14336x4096,4096x4096} \
      --m ${MS:-1,8,16} --bits ${BITS:-4,3} 2>&1 | grep -E '^ +[0-9]+x' | sed "s/^/round $round rb=$rb /"
  done
done | tee "$OUTDIR/row_blocks_ab.txt"
