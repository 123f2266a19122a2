#!/usr/bin/env bash
# Snapshot inference (issue 13): mean total-variation error of the goal posterior vs the exact
# solve for rejection ("light tracing", the baseline), backward ("path tracing") and
# bidirectional estimators at N = 1..1000 over 4 worlds x 20 cells, then paths/s and the time
# each needs to match rejection's error at N = 1000 (ratio = speedup over the baseline).
# Run from the repository root: bench/agents/snapshot_efficiency.sh [extra snapshot-bench flags]
set -euo pipefail
BIN=${BIN:-build/bin/inferkit}
"$BIN" snapshot-bench --out "${OUT:-out/snapshot}" "$@"
