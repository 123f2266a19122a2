#!/bin/bash
# Real weights on the GPU machine: the default model cut to its first 2 blocks (made here with
# tools/truncate_gguf.py, 36 MB, carried in .devcarry/models), plus an NF4 copy quantized there;
# test_llama_gpu's GpuRealWeights test compares the GPU engine with the CPU engine on both.
# Prepare here:  /opt/ikvenv/bin/python tools/truncate_gguf.py .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf \
#                  .devcarry/models/smol-2blocks.gguf 2
# Run there:     bash bench/cuda/real_weights.sh
set -eu
cd "$(dirname "$0")/../.."
D=.devcarry
mkdir -p /tmp/iklib && tar -xJf $D/libs.tar.xz -C /tmp/iklib
export LD_LIBRARY_PATH=/tmp/iklib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
M=$D/models/smol-2blocks.gguf
$D/bin/inferkit quantize -m $M -o /tmp/smol-2blocks-nf4.gguf --bits 4 --group 64 --table nf
export IK_GPU_REAL_MODELS=$M:/tmp/smol-2blocks-nf4.gguf
$D/bin/test_llama_gpu --gtest_filter='GpuRealWeights.*' 2>&1 | tail -n 12
for f in $M /tmp/smol-2blocks-nf4.gguf; do
  $D/bin/inferkit generate --device cuda -m $f -p "The capital of France is" -n 12 --temp 0 2>&1 | tail -n 2
  $D/bin/inferkit generate --device cpu -m $f -p "The capital of France is" -n 12 --temp 0 2>&1 | tail -n 2
done
