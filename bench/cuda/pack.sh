#!/bin/bash
# Packs what the GPU machine needs into .devcarry/ (ignored by git; carried by the device tool):
# the CUDA build's binaries and the Debian shared libraries they load that the GPU machine's
# image lacks (its CUDA toolkit provides cuBLAS). Usage: bench/cuda/pack.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build-cuda}
OUT=.devcarry
grep -qx '/.devcarry/' .git/info/exclude 2>/dev/null || echo '/.devcarry/' >> .git/info/exclude
rm -rf $OUT && mkdir -p $OUT/bin $OUT/lib
bins=()
for b in bin/inferkit tests/backend/test_cuda_ops tests/backend/test_cuda_lut tests/llm/serve/test_scheduler_gpu tests/llm/model/test_llama_gpu tests/llm/spec/test_spec_gpu tests/dist/test_dist_launch; do
  [ -x "$BUILD/$b" ] && cp "$BUILD/$b" $OUT/bin/ && bins+=("$BUILD/$b")
done
# Everything the binaries link except the C runtime, the compiler runtime and CUDA itself.
ldd "${bins[@]}" | awk '/=> \//{print $3}' | sort -u |
  grep -vE '/(libc|libm|libdl|librt|libpthread|ld-linux|libstdc\+\+|libgcc_s|libcuda|libcublas|libcublasLt|libcudart|libnccl|libnvidia)[.-]' |
  while read -r lib; do cp -L "$lib" $OUT/lib/; done
XZ_OPT="-T2 -6" tar -C $OUT/lib -cJf $OUT/libs.tar.xz . && rm -rf $OUT/lib
strip $OUT/bin/* 2>/dev/null || true
# PACK_BINS=xz: the binaries travel compressed (about a fifth of their size) and env.sh unpacks them
# there, for when the test binaries and two builds would pass the 64 MiB a call carries.
if [ "${PACK_BINS:-}" = xz ]; then
  XZ_OPT="-T2 -6" tar -C $OUT/bin -cJf $OUT/bins.tar.xz . && rm -rf $OUT/bin
  du -sh $OUT/bins.tar.xz $OUT/libs.tar.xz
else
  du -sh $OUT/bin $OUT/libs.tar.xz
fi
