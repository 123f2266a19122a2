#!/usr/bin/env bash
# Storytelling as inverse inverse planning: each effect's searched story against the naive
# planners (characters simply pursuing their own goals), over a few seeds. Prints the mean
# objective of both and their ratio, and the time of the search (planning is cached after the
# first run). Usage: bench/story/run.sh [path/to/inferkit] [seeds] [beam]
set -euo pipefail
bin=${1:-build/apps/inferkit/inferkit}
seeds=${2:-3}
beam=${3:-500}
effects="help hinder indifferent help-then-hinder hinder-then-help help-then-goal hinder-then-goal irony cinderella flashback-help flashback-hinder surprise suspense curiosity"
"$bin" story --effect help --length 1 --beam 1 --baseline 0 --no-render >/dev/null  # fill the cache
printf '%-18s %6s %12s %12s %7s %9s\n' effect length story naive ratio search_s
for e in $effects; do
  for s in $(seq 1 "$seeds"); do
    "$bin" story --effect "$e" --seed "$s" --beam "$beam" --baseline 20 --no-render
  done | awk -v e="$e" '
    /^story:/ { len = $3 }
    /^search:/ { t += $(NF-4) }
    /^objective/ { st += $2; nv += $7; n++ }
    END { printf "%-18s %6s %12.4f %12.4f %7.3f %9.2f\n", e, len, st / n, nv / n, st / nv, t / n }'
done
