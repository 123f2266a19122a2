#!/usr/bin/env bash
# Regenerates tests/explain/data/node_outputs.txt.gz: N random programs of the JS subset
# from our generator (inferkit explain --random-programs N --seed S) are evaluated ONCE by
# node; the fixture stores node's outputs, one per line (printing rule: docs/explain.md),
# after a header with the seed, the count and the CRC-32 of the program text, so that
# test_explain regenerates the same programs with the same generator and notices any drift.
# node is not needed to run the tests.
#   tools/explain_node_fixture.sh [path/to/inferkit] [N=20000] [SEED=1]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
inferkit=${1:-$root/build/bin/inferkit}
count=${2:-20000}
seed=${3:-1}
out=$root/tests/explain/data/node_outputs.txt.gz
command -v node >/dev/null || { echo "node is not on PATH" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$inferkit" explain --random-programs "$count" --seed "$seed" > "$tmp/programs.txt"
node "$root/tools/explain_node_eval.js" < "$tmp/programs.txt" > "$tmp/outputs.txt"
[ "$(wc -l < "$tmp/programs.txt")" = "$(wc -l < "$tmp/outputs.txt")" ] || { echo "line count mismatch" >&2; exit 1; }
crc=$(python3 -c 'import sys, zlib; print(format(zlib.crc32(open(sys.argv[1], "rb").read()), "08x"))' "$tmp/programs.txt")
{
  echo "# seed $seed count $count programs_crc32 $crc node $(node --version)"
  cat "$tmp/outputs.txt"
} | gzip -9n > "$out"
echo "wrote $out ($(stat -c %s "$out") bytes, $count programs, seed $seed)"
