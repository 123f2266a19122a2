#!/usr/bin/env bash
# Each case must exit non-zero (not by a signal) with exactly one line on stderr that
# contains the expected words.
set -u
bin=$1
model=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0 passed=0

expect_error() {  # expect_error "words" cmd...
  local words=$1
  shift
  "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
  local rc=$?
  local lines
  lines=$(wc -l <"$tmp/err")
  if [ $rc -eq 0 ] || [ $rc -ge 128 ] || [ "$lines" -ne 1 ] || ! grep -qi -- "$words" "$tmp/err"; then
    echo "FAIL: '$*' (exit $rc, $lines stderr lines; expected '$words'):"
    sed 's/^/    /' "$tmp/err" | head -5
    failures=$((failures + 1))
  else
    passed=$((passed + 1))
  fi
}

expect_error "cannot open" "$bin" generate -m "$tmp/missing.gguf" -p hi
printf 'PK\003\004 this is a zip, not a model......................................' >"$tmp/zip.gguf"
expect_error "not a GGUF" "$bin" generate -m "$tmp/zip.gguf" -p hi
expect_error "not a GGUF" "$bin" info -m "$tmp/zip.gguf"
: >"$tmp/empty.gguf"
expect_error "gguf" "$bin" info -m "$tmp/empty.gguf"
expect_error "unknown\|extra\|not expected\|bogus" "$bin" generate --bogus-flag
expect_error "max-tokens\|-n" "$bin" generate -n -5 -p hi
expect_error "temp" "$bin" generate --temp -1 -p hi
expect_error "top-p" "$bin" generate --top-p 1.5 -p hi
expect_error "subcommand\|required" "$bin"
if [ -f "$model" ]; then
  head -c 3000000 "$model" >"$tmp/truncated.gguf"
  expect_error "truncated\|out of\|beyond\|exceeds" "$bin" generate -m "$tmp/truncated.gguf" -p hi
  long=$(printf 'word %.0s' $(seq 1 200))
  expect_error "context" "$bin" generate -m "$model" -c 32 -p "$long"
  expect_error "empty prompt" "$bin" generate -m "$model" -p ""
  # A Ladder Residual file is refused by the plain engine (it would compute another function).
  "$bin" convert -m "$model" -o "$tmp/ladder.gguf" --ladder-last 2 >/dev/null 2>&1
  expect_error "Ladder Residual" "$bin" generate -m "$tmp/ladder.gguf" -p hi
  # --device cuda on a machine without a GPU (or a build without CUDA) is an error, not a fallback.
  if ! command -v nvidia-smi >/dev/null 2>&1; then
    expect_error "CUDA\|GPU" "$bin" generate -m "$model" --device cuda -p hi -n 1
    expect_error "CUDA\|GPU" "$bin" bench --device cuda --random-weights --config tiny
    # Forked GPU ranks: still one line (rank 0's; the others' stderr goes to a file).
    expect_error "CUDA\|GPU" "$bin" tp-bench --device cuda --gpus 2 --config tiny --check
    expect_error "CUDA\|GPU" "$bin" generate -m "$model" --device cuda --context-parallel 2 -p hi -n 1
    expect_error "CUDA\|GPU" "$bin" bench-matvec --shapes 64x64
  fi
  expect_error "multiple of 8" "$bin" bench-matvec --shapes 12x7
  expect_error "nodes" "$bin" hydra tree --heads "$model" --data "$model" --nodes 0
  expect_error "ranks" "$bin" hydra tree --heads "$model" --data "$model" --ranks 33
  expect_error "multiple of 32" "$bin" bench-flute --shapes 4096x100
  expect_error "not NxK" "$bin" bench-matvec --shapes 4096
  expect_error "ladder-last" "$bin" tp-retrain -m "$model" --ladder-last 99 --train "$tmp/ladder.gguf" --eval "$tmp/ladder.gguf"
  expect_error "train" "$bin" tp-retrain -m "$model" --train "$tmp/missing.txt" --eval "$tmp/missing.txt"
  expect_error "context-parallel" "$bin" bench --device cpu --random-weights --config tiny --context-parallel 2
  expect_error "device" "$bin" generate -m "$model" --device tpu -p hi
  expect_error "unknown model shape" "$bin" bench --device cpu --random-weights --config llama9
  expect_error "tree-nodes" "$bin" bench --device cpu --random-weights --config tiny --tree-nodes 16
  expect_error "tree-nodes" "$bin" bench --device cuda --random-weights --config tiny --tree-nodes 0
  # The down-scaling sweep checks its flags before any work.
  expect_error "sparsit" "$bin" study downscale -m "$model" --sparsities 0,1.0 -o "$tmp/ds"
  expect_error "fn-dims" "$bin" study downscale -m "$model" --fn-dims 0 -o "$tmp/ds"
  expect_error "family" "$bin" study downscale -m "$model" --families closed_book,trivia --limit 1 -o "$tmp/ds"
else
  echo "note: $model missing, model cases skipped (run make setup)"
fi
echo "$passed passed, $failures failed"
[ $failures -eq 0 ]
