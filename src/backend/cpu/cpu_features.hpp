#pragma once
// What this CPU can run, read once at start-up (cpuid + xgetbv), for run-time kernel dispatch.
#include <string>

namespace ik::backend {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512dq = false, avx512bw = false, avx512vl = false, avx512vnni = false, avx512bf16 = false;
  bool amx_tile = false, amx_int8 = false, amx_bf16 = false;
  std::string describe() const;  // e.g. "AVX2 FMA AVX512F AVX512-VNNI AVX512-BF16"
};

const CpuFeatures& cpu_features();

}  // namespace ik::backend
