#!/usr/bin/env bash
# Builds the libFuzzer targets under tests/fuzz with clang and runs each for N seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
[ -f tests/fuzz/CMakeLists.txt ] || { echo "fuzz: no targets"; exit 0; }
if [ ! -f build-fuzz/CMakeCache.txt ]; then
  CC=clang CXX=clang++ cmake -S tests/fuzz -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build build-fuzz -j "$(nproc)" >/dev/null
for f in build-fuzz/fuzz_*; do
  name=$(basename "$f")
  corpus=build-fuzz/corpus_$name
  mkdir -p "$corpus"
  echo "fuzz: $name for ${secs}s"
  "$f" -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=0 "$corpus" "tests/fuzz/seeds/${name#fuzz_}" 2>&1 | tail -n 3
done
