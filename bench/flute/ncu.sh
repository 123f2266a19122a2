#!/bin/bash
# Nsight Compute profile of the lookup-table GEMM kernel (one launch after warm-up) for each
# (bits, M) on one shape: the full section set as text, in $OUT/ncu_<shape>_<bits>b_m<M>.txt
# (PAGE=raw: every metric's value, e.g. the stall reasons smsp__average_warps_issue_stalled_*).
# Note ncu locks the SM clock at base (1.37 GHz on the H200): times are longer than bench-flute's.
# Usage (device tool): [SHAPE=8192x28672] [CASES="4:1 4:16 3:1"] [PAGE=details|raw] bash bench/flute/ncu.sh
set -u
cd "$(dirname "$0")/../.."
. bench/cuda/env.sh
NCU=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
shape=${SHAPE:-8192x28672}
for case in ${CASES:-4:1 4:16 3:1}; do
  bits=${case%%:*} m=${case##*:}
  $NCU --kernel-name regex:lut_gemm_kernel --launch-skip 20 --launch-count 1 --set full --page ${PAGE:-details} \
    $BIN bench-flute --shapes $shape --m $m --bits $bits > "$OUTDIR/ncu_${shape}_${bits}b_m$m.txt" 2>&1
  echo "$shape ${bits}-bit M=$m: rc $?"
done
