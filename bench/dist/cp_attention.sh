#!/usr/bin/env bash
# Context-parallel attention benchmark: the per-round work table (ring vs striped vs
# zig-zag against the ideal (2P-1)/P) and the MPI P=2 prefill timing (ring is the
# baseline; the vs_ring column is the ratio).
# Usage: bench/dist/cp_attention.sh [build_dir] [seq lengths, comma separated]
set -euo pipefail
BUILD=${1:-build}
SEQS=${2:-2048,4096,8192}
BIN="$BUILD/bin/inferkit"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$BIN" cp-attention --table --P 2,4,8 --seq 8192
echo
mpirun --oversubscribe -np 2 "$BIN" cp-attention --time --seq "$SEQS" --heads 8 --kv-heads 2 --head-dim 64
