#!/usr/bin/env bash
# Engine benchmark: inferkit beside llama.cpp (llama-cpp-python built from source) on the
# same GGUF, the same token ids and the same thread count, in one run. Prints a Markdown
# block (date, commit, CPU, command, table) that can be pasted into docs/results.md.
#
#   bench/engine/run.sh [-m MODEL] [--threads N] [--prompt-tokens N] [--gen-tokens N]
#
# Env: BUILD (inferkit build dir, default build), JOBS (compile jobs, default 2),
#      INFERKIT (use this inferkit binary as it is, instead of building BUILD/bin/inferkit).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
MODEL="$ROOT/.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
THREADS=2
PROMPT_TOKENS=512
GEN_TOKENS=128
BUILD="${BUILD:-$ROOT/build}"
JOBS="${JOBS:-2}"
COMMAND="bench/engine/run.sh $*"

while [[ $# -gt 0 ]]; do
    case "$1" in
        -m|--model) MODEL="$2"; shift 2 ;;
        --threads) THREADS="$2"; shift 2 ;;
        --prompt-tokens) PROMPT_TOKENS="$2"; shift 2 ;;
        --gen-tokens) GEN_TOKENS="$2"; shift 2 ;;
        -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "error: unknown argument '$1' (see --help)" >&2; exit 1 ;;
    esac
done
for n in "$THREADS" "$PROMPT_TOKENS" "$GEN_TOKENS"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "error: expected a positive integer, got '$n'" >&2; exit 1; }
done
[[ -f "$MODEL" ]] || { echo "error: model not found: $MODEL (run 'make setup' to fetch the default one)" >&2; exit 1; }

# Set-up (both idempotent): the llama.cpp venv and our Release binary.
"$ROOT/bench/engine/llamacpp_setup.sh" >&2
if [[ -z "${INFERKIT:-}" ]]; then
    [[ -f "$BUILD/CMakeCache.txt" ]] || cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >&2
    cmake --build "$BUILD" --target inferkit -j "$JOBS" >&2
    INFERKIT="$BUILD/bin/inferkit"
fi

CPU="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
LOAD="$(cut -d' ' -f1-3 /proc/loadavg)"
OURS="$(mktemp)"; THEIRS="$(mktemp)"
trap 'rm -f "$OURS" "$THEIRS"' EXIT
echo "running inferkit bench ($THREADS threads)..." >&2
OMP_NUM_THREADS="$THREADS" "$INFERKIT" bench -m "$MODEL" --prompt-tokens "$PROMPT_TOKENS" \
    --gen-tokens "$GEN_TOKENS" --threads "$THREADS" --json | tail -n 1 >"$OURS"
echo "running llama.cpp ($THREADS threads)..." >&2
OMP_NUM_THREADS="$THREADS" "$ROOT/.cache/llamacpp-venv/bin/python" "$ROOT/bench/engine/llamacpp_bench.py" \
    -m "$MODEL" --threads "$THREADS" --prompt-tokens "$PROMPT_TOKENS" --gen-tokens "$GEN_TOKENS" >"$THEIRS"

python3 - "$OURS" "$THEIRS" "$MODEL" "$CPU" "$(nproc)" "$COMMIT" "$COMMAND" "$LOAD" <<'EOF'
import datetime, json, os, sys
ours_path, theirs_path, model, cpu, cores, commit, command, load = sys.argv[1:]
ours, theirs = json.load(open(ours_path)), json.load(open(theirs_path))
model_mb = os.path.getsize(model) / 2**20
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
print(f"### Engine benchmark: {os.path.basename(model)}, {ours.get('threads', theirs['threads'])} threads\n")
print(f"- date: {now}; commit: {commit}")
print(f"- CPU: {cpu} ({cores} cores visible); load average before the run: {load}")
print(f"- command: `{command.strip()}`")
print(f"- llama.cpp: llama-cpp-python {theirs['version']} built from source (native, OpenMP); "
      f"prompt {theirs['prompt_tokens']} tokens (ids 100 + 37i mod (vocab - 100)), "
      f"{theirs['gen_tokens']} greedy tokens, best of {theirs['reps']}\n")
print("| metric | inferkit | llama.cpp | ratio |")
print("|---|---:|---:|---:|")
for key, label in (("prefill_tok_s", f"prefill tok/s ({theirs['prompt_tokens']}-token prompt)"),
                   ("decode_tok_s", f"decode tok/s ({theirs['gen_tokens']} tokens)")):
    print(f"| {label} | {ours[key]:.1f} | {theirs[key]:.1f} | {ours[key] / theirs[key]:.2f}x |")
print(f"| peak RSS MiB (GGUF file {model_mb:.1f} MiB) | {ours['peak_rss_mb']:.1f} "
      f"| {theirs['peak_rss_mb']:.1f} (incl. Python) | {ours['peak_rss_mb'] / model_mb:.2f}x of file |")
EOF
