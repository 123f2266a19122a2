#!/bin/bash
# The down-scaling sweep on the GPU machine (device tool), after bench/spec/pack_gpu.sh and
# `bench/spec/gpu.sh stage 1..N` have gathered the model in /tmp/ikstage:
#   bench/prune/device.sh DIR [study flags...]
# runs `study downscale --resume -o DIR` with the machine's cores for pruning and perplexity,
# stopped cleanly before the device tool's 10-minute limit (the point in progress is lost; the
# finished ones are in DIR/*.csv, which the next call carries back in the working tree). The
# default texts for calibration and perplexity come from this side, in case the image lacks them.
set -u
cd "$(dirname "$0")/../.."
S=/tmp/ikstage
[ -d .devcarry ] || cp -r $S/devcarry .devcarry
. bench/cuda/env.sh
DIR=$1 && shift
mkdir -p $S/files && [ -f $S/files/SHA256SUMS ] || tar -C $S/files -xf $S/blob
for t in $D/texts/*; do [ -f $S/$(basename $t) ] || cp $t $S/; done
export OMP_NUM_THREADS=$(nproc)
timeout ${LIMIT_S:-560} $BIN study downscale -m $S/files/SmolLM2-135M-Instruct.Q4_1.gguf \
  --calib $S/GPL-3 --ppl-text $S/GFDL-1.3 --resume -o "$DIR" "$@" 2>&1 | grep -v ETA | tail -n 40
cp -r "$DIR" "$OUTDIR/"
