#!/bin/sh
# Tensor-parallel decode speed per block variant (standard, ladder, parallel, desync), each
# printed beside standard and desync as ratios (docs/tensor_parallel.md).
#   bench/tp/tp_bench.sh [build-dir] [P] [model.gguf | random-spec]
# random-spec: layers,embd,ff,heads,kv_heads (default 2,4096,14336,32,8: two Llama-3-8B layers)
set -eu
BUILD=${1:-build}
P=${2:-2}
WHAT=${3:-2,4096,14336,32,8}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
if [ -f "$WHAT" ]; then SRC="-m $WHAT"; else SRC="--random $WHAT"; fi
# shellcheck disable=SC2086
mpirun --oversubscribe -np "$P" "$BUILD/bin/inferkit" tp-bench $SRC -t 1 --gen-tokens 16 --repeat 2
