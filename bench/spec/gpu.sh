#!/bin/bash
# Speculative decoding on one H200 (device tool). SmolLM2 (98 MB) and its heads do not fit one
# 64 MiB transfer, so bench/spec/pack_gpu.sh cuts them into pieces that successive calls
# carry as .devpiece1..N; they gather in /tmp/ikstage on the machine, which lasts while it stays
# warm (30 s between calls; the repository copy does not keep untracked folders):
#   bench/spec/gpu.sh tests         the gpu tests of the speculative path (needs .devcarry)
#   bench/spec/gpu.sh stage N       append the carried piece N to /tmp/ikstage/blob
#   bench/spec/gpu.sh bench [N]     unpack the blob, then `hydra bench --device cuda` (N prompts;
#                                   TREES="chain-1 mc-15 ..." picks the trees; OWN="medusa:FILE
#                                   hydra++:FILE ..." also runs each heads file on its own tree)
set -u
cd "$(dirname "$0")/../.."
S=/tmp/ikstage
[ -d .devcarry ] || cp -r $S/devcarry .devcarry  # carried by the first call only
. bench/cuda/env.sh
case "${1:-tests}" in
tests)
  for t in test_spec_gpu test_llama_gpu test_cuda_ops; do
    [ -x $D/bin/$t ] || continue
    echo "== $t"
    $D/bin/$t --gtest_brief=1 2>&1 | tee "$OUTDIR/$t.log" | tail -n 25
  done
  ;;
stage)
  [ "$2" = 1 ] && rm -rf $S && mkdir -p $S && cp -r .devcarry $S/devcarry
  cat .devpiece$2/piece >> $S/blob && ls -la $S
  ;;
bench | profile)
  mkdir -p $S/files && tar -C $S/files -xf $S/blob && ls -la $S/files
  (cd $S/files && sha256sum -c SHA256SUMS) || exit 1
  M=$S/files/SmolLM2-135M-Instruct.Q4_1.gguf
  heads=""
  for h in medusa hydra hydra++; do [ -f $S/files/$h.gguf ] && heads="$heads --heads $S/files/$h.gguf"; done
  if [ "$1" = profile ]; then  # where a step's drafting goes, per tree level (IK_SPEC_PROFILE)
    for h in ${HEADS:-medusa hydra}; do
      IK_SPEC_PROFILE=1 $BIN hydra bench --device cuda -m $M --prompts bench/spec/prompts_heldout.txt --n-prompts 2 \
        --tokens 64 --heads $S/files/$h.gguf --tree ${TREES:-mc_sim_7b_63} 2>&1 | grep -E "drafting|^$h"
    done
    exit 0
  fi
  $BIN hydra bench --device cuda -m $M --prompts bench/spec/prompts_heldout.txt --n-prompts ${2:-8} --tokens 128 \
    $heads $(for t in ${TREES:-chain-1 chain-3 mc-5 mc-15 mc_sim_7b_63}; do echo --tree $t; done) --csv "$OUTDIR/gpu_bench.csv" \
    2>&1 | tee "$OUTDIR/gpu_bench.txt"
  for pair in ${OWN:-}; do
    h=${pair%%:*} tree=${pair#*:}
    $BIN hydra bench --device cuda -m $M --prompts bench/spec/prompts_heldout.txt --n-prompts ${2:-8} --tokens 128 \
      --heads $S/files/$h.gguf --tree $tree 2>&1 | tee -a "$OUTDIR/gpu_bench_own_trees.txt"
  done
  ;;
esac
