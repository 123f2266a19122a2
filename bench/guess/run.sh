#!/usr/bin/env bash
# Gradient-guessing study (docs/guess.md): cosine tables, bias check, speed, accuracy table.
# Usage: bench/guess/run.sh [build-dir] [out-dir]     (about 8 minutes of CPU time on a 2-core VM)
# OpenBLAS runs single-threaded so timings are per core and the machine stays usable.
set -euo pipefail
BUILD=${1:-build}
OUT=${2:-guess_out}
IK="$BUILD/bin/inferkit"
export OPENBLAS_NUM_THREADS=1
mkdir -p "$OUT"

# 1. Speed: forward pass vs backprop step vs forward-gradient steps (baseline: the forward pass).
"$IK" guess speed --widths 256,256 --reps 50 --out "$OUT/speed256"
"$IK" guess speed --widths 1024,1024 --reps 10 --out "$OUT/speed1024"

# 2. Cosine with the true gradient at initialization, 784-256-256-10 and 784-1024-1024-10.
"$IK" guess cosine --widths 256,256 --guesses 100 --out "$OUT/cos256"
"$IK" guess cosine --widths 1024,1024 --guesses 30 --out "$OUT/cos1024"

# 3. During training with W^T guesses (self-sharpening: cosine vs effective rank).
"$IK" guess cosine --widths 1024,1024 --method wt --lr 1e-4 --epochs 1 --checkpoints 5 --guesses 20 \
  --out "$OUT/cos1024_wt"

# 4. Bias: empirical E[(g.y)y] vs the analytic M M^T g.
"$IK" guess bias --widths 32,32 --batch 8 --samples 10000 --out "$OUT/bias"

# 5. Test accuracy after a fixed budget, every method vs backprop (same init, same batch order).
#    Adam; per-method learning rates picked by training loss in a 0.3-epoch pilot over {1e-3, 3e-4, 1e-4}.
LRS=1e-3,1e-3,3e-4,1e-4,3e-4,3e-4
"$IK" guess train --method backprop,directional,act-pert,wt,downstream,act-mix --k 1 --lr $LRS \
  --epochs 3 --eval-every 300 --out "$OUT/train_k1"
"$IK" guess train --method backprop,directional,act-pert,wt,downstream,act-mix --k 4 --lr $LRS \
  --epochs 1 --eval-every 300 --out "$OUT/train_k4"
# Plain SGD, 1 epoch, lrs from a 0.5-epoch pilot over {0.1, 1}.
"$IK" guess train --method backprop,act-pert,wt,downstream,act-mix --k 1 --optimizer sgd \
  --lr 0.1,1,0.3,0.1,0.3 --epochs 1 --eval-every 300 --out "$OUT/train_sgd"
