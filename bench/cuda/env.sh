# Sourced by the GPU-machine scripts (bench/cuda/run.sh, bench/tp/gpu.sh, bench/cp/gpu.sh): the
# carried shared libraries, the library path (the CUDA toolkit, then PyTorch's pip cuBLAS / NCCL
# where the toolkit lacks them), NVLink multicast off, and OUTDIR (the device tool's $OUT).
D=.devcarry
mkdir -p /tmp/iklib && tar -xJf $D/libs.tar.xz -C /tmp/iklib
[ -f $D/bins.tar.xz ] && mkdir -p $D/bin && tar -xJf $D/bins.tar.xz -C $D/bin && rm $D/bins.tar.xz  # PACK_BINS=xz
pylib() { python3 -c "import $1 as m; print(list(m.__path__)[0] + '/lib')" 2>/dev/null || true; }
export LD_LIBRARY_PATH=/tmp/iklib:/usr/local/cuda/lib64:$(pylib nvidia.cublas):$(pylib nvidia.nccl):${LD_LIBRARY_PATH:-}
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
OUTDIR=${OUT:-/tmp/ikout}
mkdir -p "$OUTDIR"
BIN=$D/bin/inferkit
# The runs an A/B compares (bench/cuda/ab.sh, bench/flute/ab.sh): every carried build
# ($D/bin/inferkit*) under every setting of VARIANTS (space-separated VAR=VALUE, "-" for none;
# default "-"; several at once joined by commas: "IK_A=1,IK_B=2"). One line per run: label
# (build, +setting; slashes as _), the binary, the settings for env (the rest of the line).
ab_runs() {
  for bin in $D/bin/inferkit*; do
    for v in ${VARIANTS:--}; do
      if [ "$v" = - ]; then echo "$(basename $bin) $bin IK_UNUSED=1"; else v2=${v//\//_} && echo "$(basename $bin)+${v2//,/+} $bin ${v//,/ }"; fi
    done
  done
}
