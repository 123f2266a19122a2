#!/bin/sh
# The down-scaling sweep (docs/downscale.md). Default: the reduced study whose numbers are in
# the doc; FULL=1: all methods, sparsities 0..0.9, every QA fact and 200 prompts per function kind
# (ONLY=attn|mlp for the sweeps that prune one kind of matrix). The full sweep takes ~7 h on a
# 2-core VM and 16 min on one H200 with `--device cuda` (bench/prune/device.sh, docs/downscale.md).
# Usage: bench/prune/run_study.sh [BUILD_DIR]   (run from the repository root)
set -e
BIN=${1:-build}/bin/inferkit
if [ "${FULL:-0}" = 1 ]; then
  # ~13 min a point on 2 cores, ~7 h in all: --resume keeps the points already in
  # bench/prune/full/downscale_all.csv, so an interrupted run continues where it stopped. The
  # coarse grid comes first so that a partial run already spans the whole range.
  for grid in 0,0.2,0.4,0.6,0.8 0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9; do
    time "$BIN" study downscale --methods magnitude,wanda,sparsegpt --sparsities $grid \
      --ppl-windows 4 --only "${ONLY:-all}" --resume -o bench/prune/full
  done
else
  time "$BIN" study downscale --methods magnitude,wanda --sparsities 0,0.5 --limit 20 \
    --ppl-windows 2 --calib-windows 4 -o bench/prune/reduced
fi
