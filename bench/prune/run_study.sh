#!/bin/sh
# The down-scaling sweep (docs/downscale.md). Default: the reduced study whose numbers are in
# the doc; FULL=1: all methods, sparsities 0..0.9, every QA fact and 200 prompts per function kind.
# Usage: bench/prune/run_study.sh [BUILD_DIR]   (run from the repository root)
set -e
BIN=${1:-build}/bin/inferkit
if [ "${FULL:-0}" = 1 ]; then
  for only in all attn mlp; do
    time "$BIN" study downscale --methods magnitude,wanda,sparsegpt \
      --sparsities 0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9 --only $only -o bench/prune/full
  done
else
  time "$BIN" study downscale --methods magnitude,wanda --sparsities 0,0.5 --limit 20 \
    --ppl-windows 2 --calib-windows 4 -o bench/prune/reduced
fi
