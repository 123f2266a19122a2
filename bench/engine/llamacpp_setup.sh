#!/usr/bin/env bash
# Builds the llama.cpp baseline for the engine benchmark: llama-cpp-python compiled
# from source (native CPU, OpenMP, no CUDA/BLAS) into .cache/llamacpp-venv.
# A benchmark baseline only, never a dependency of inferkit itself.
# Idempotent: if the venv already imports the pinned version, it does nothing.
#
#   bench/engine/llamacpp_setup.sh            # build (log: .cache/llamacpp-build.log)
#   JOBS=4 bench/engine/llamacpp_setup.sh     # more parallel compile jobs
set -euo pipefail

LLAMA_CPP_PYTHON_VERSION=0.3.36
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.cache/llamacpp-venv"
LOG="$ROOT/.cache/llamacpp-build.log"
PYTHON="${PYTHON:-python3}"
JOBS="${JOBS:-2}"

installed_version() {
    "$VENV/bin/python" -c 'import llama_cpp; print(llama_cpp.__version__)' 2>/dev/null || true
}

if [[ -x "$VENV/bin/python" && "$(installed_version)" == "$LLAMA_CPP_PYTHON_VERSION" ]]; then
    echo "llama-cpp-python $LLAMA_CPP_PYTHON_VERSION already built in $VENV"
    exit 0
fi

mkdir -p "$ROOT/.cache"
echo "building llama-cpp-python $LLAMA_CPP_PYTHON_VERSION from source into $VENV (log: $LOG); this takes a while"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip >"$LOG" 2>&1

# Native CPU build with OpenMP, like a user compiling llama.cpp for this machine.
# Examples, tools, tests, server and the multimodal library are not needed.
export CMAKE_ARGS="-DGGML_NATIVE=ON -DGGML_OPENMP=ON -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_BLAS=OFF \
-DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF \
-DLLAMA_CURL=OFF -DLLAVA_BUILD=OFF -DMTMD_BUILD=OFF"
export CMAKE_BUILD_PARALLEL_LEVEL="$JOBS" MAKEFLAGS="-j$JOBS" FORCE_CMAKE=1
if ! nice -n 10 "$VENV/bin/python" -m pip install --verbose --no-cache-dir \
        --no-binary llama-cpp-python "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" >>"$LOG" 2>&1; then
    echo "error: llama-cpp-python build failed; last lines of $LOG:" >&2
    tail -n 30 "$LOG" >&2
    exit 1
fi
echo "built llama-cpp-python $(installed_version) in $VENV"
