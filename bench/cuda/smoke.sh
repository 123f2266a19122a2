#!/bin/bash
# CLI checks of --device on the GPU machine (after bench/cuda/run.sh has unpacked the
# libraries), on the tiny Hugging Face checkpoint in tests/io/fixtures.
set -u
cd "$(dirname "$0")/../.."
B=.devcarry/bin/inferkit
M=tests/io/fixtures/tiny_llama
export LD_LIBRARY_PATH=/tmp/iklib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
# The fixture's head dimension (16) has no CUDA kernels: auto falls back to the CPU with a note,
# an explicit --device cuda is a one-line error.
echo "== generate --device auto (falls back)"
$B generate --device auto -m $M -p "Hello world" -n 8 --temp 0 --ignore-eos 2>&1 | tail -n 3
echo "== generate --device cuda (error)"
$B generate --device cuda -m $M -p "Hello world" -n 8; echo "exit $?"
echo "== bad input: --gpu 7"
$B generate --device cuda --gpu 7 -m $M -p hi -n 1; echo "exit $?"
