#!/usr/bin/env bash
# Differentiable MH benchmark (docs/mh.md): steps/s with vs without derivatives in the same
# binary, the wall/CPU time of one full Ising optimization (coupled, 1000 Adam iterations of
# 1100 sweeps on 12x12), and the plain NumPy baseline (tools/mh_numpy_baseline.py) beside it.
#   bench/mh/run.sh [path/to/inferkit] [python]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${1:-$root/build/bin/inferkit}
py=${2:-/opt/ikvenv/bin/python}
out=${MH_BENCH_OUT:-$(mktemp -d)}
[[ -x $bin ]] || { echo "error: inferkit binary not found at $bin (pass it as the first argument)" >&2; exit 1; }

echo "== inferkit mh speed (thread CPU time, one thread)"
"$bin" mh speed --steps 20000000

echo "== inferkit mh ising --proposal coupled (one full optimization)"
ours=$("$bin" mh ising --proposal coupled --out "$out" 2>/dev/null | tail -1)
echo "$ours"

echo "== NumPy baseline (same machine, same run)"
base=$("$py" "$root/tools/mh_numpy_baseline.py")
echo "$base"

# Ratio of full-optimization times: ours measured (CPU seconds), NumPy estimated from its rate.
ours_cpu=$(sed -E 's/.* s wall, ([0-9.]+) s CPU.*/\1/' <<<"$ours")
numpy_s=$(sed -nE 's/.*estimated ([0-9.]+) s with derivatives.*/\1/p' <<<"$base")
awk -v a="$ours_cpu" -v b="$numpy_s" \
  'BEGIN { printf "full Ising optimization: inferkit %.1f s CPU, NumPy (estimated) %.0f s: %.0fx faster\n", a, b, b / a }'
