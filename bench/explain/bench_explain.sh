#!/usr/bin/env bash
# Times WatChat-style explanation and diagnostic synthesis against the targets of issue 15
# (one explanation <= 100 ms; all 32 diagnostics <= 60 s) and prints figure, target, ratio.
#   bench/explain/bench_explain.sh [path/to/inferkit]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
inferkit=${1:-$root/build/bin/inferkit}
programs=('[] + []' '[] + {}' '{} + []' 'typeof null' 'NaN === NaN' '[10, 1, 2].sort()' '"10" < "9"'
          '"" == 0' 'null + 1' '[1, 2] + [3]' 'null >= 0' '[] == ![]' '"b" + "a" + +"a" + "a"'
          '[1, [2, [3, null]]] + {} == "1,2,3,[object Object]"')
worst=0
worst_z3=0
printf '%-52s %10s %10s %6s\n' program "best-first" "z3" "sets"
for p in "${programs[@]}"; do
  line=$("$inferkit" explain "$p" | tail -1)   # "(N misconception sets evaluated in X ms)"
  sets=$(sed -E 's/^\(([0-9]+) .*/\1/' <<< "$line")
  ms=$(sed -E 's/.* in ([0-9.]+) ms\)$/\1/' <<< "$line")
  z3=$("$inferkit" explain "$p" --search z3 | tail -1 | sed -E 's/.* in ([0-9.]+) ms\)$/\1/')
  printf '%-52s %10s %10s %6s\n' "$p" "$ms" "$z3" "$sets"
  worst=$(awk -v a="$worst" -v b="$ms" 'BEGIN { print (b > a) ? b : a }')
  worst_z3=$(awk -v a="$worst_z3" -v b="$z3" 'BEGIN { print (b > a) ? b : a }')
done
start=$(date +%s.%N)
"$inferkit" explain '[] + {}' > /dev/null
end=$(date +%s.%N)
process_ms=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", (b - a) * 1000 }')
diag=$("$inferkit" explain --diagnose-all | tail -1)   # "found K/32 diagnostics; ... X s"
diag_s=$(sed -E 's/.* ([0-9.]+) s$/\1/' <<< "$diag")
echo
printf '%-40s %12s %10s %8s\n' metric ours target ratio
printf '%-40s %12s %10s %8s\n' "slowest explanation search (ms)" "$worst" 100 "$(awk -v a="$worst" 'BEGIN { printf "%.4f", a / 100 }')"
printf '%-40s %12s %10s %8s\n' "slowest z3 (MaxSAT) search (ms)" "$worst_z3" 100 "$(awk -v a="$worst_z3" 'BEGIN { printf "%.4f", a / 100 }')"
printf '%-40s %12s %10s %8s\n' "whole 'inferkit explain' process (ms)" "$process_ms" 100 "$(awk -v a="$process_ms" 'BEGIN { printf "%.3f", a / 100 }')"
printf '%-40s %12s %10s %8s\n' "all 32 diagnostics (s)" "$diag_s" 60 "$(awk -v a="$diag_s" 'BEGIN { printf "%.4f", a / 60 }')"
echo "$diag"
