#include "backend/cpu/cpu_features.hpp"

#include <cpuid.h>
#include <cstdint>

namespace ik::backend {

static uint64_t xgetbv0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (uint64_t(edx) << 32) | eax;
}

static CpuFeatures detect() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27);
  const uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  const bool ymm_ok = (xcr0 & 0x6) == 0x6;
  const bool zmm_ok = (xcr0 & 0xe6) == 0xe6;
  const bool amx_ok = (xcr0 & (3ull << 17)) == (3ull << 17);
  f.fma = ymm_ok && (c & (1u << 12));
  f.f16c = ymm_ok && (c & (1u << 29));
  __cpuid_count(7, 0, a, b, c, d);
  f.avx2 = ymm_ok && (b & (1u << 5));
  f.avx512f = zmm_ok && (b & (1u << 16));
  f.avx512bw = zmm_ok && (b & (1u << 30));
  f.avx512dq = zmm_ok && (b & (1u << 17));
  f.avx512vl = zmm_ok && (b & (1u << 31));
  f.avx512vnni = zmm_ok && (c & (1u << 11));
  f.amx_bf16 = amx_ok && (d & (1u << 22));
  f.amx_tile = amx_ok && (d & (1u << 24));
  f.amx_int8 = amx_ok && (d & (1u << 25));
  __cpuid_count(7, 1, a, b, c, d);
  f.avx512bf16 = zmm_ok && (a & (1u << 5));
  return f;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

std::string CpuFeatures::describe() const {
  std::string s;
  auto add = [&](bool on, const char* name) {
    if (on) s += (s.empty() ? "" : " ") + std::string(name);
  };
  add(avx2, "AVX2");
  add(fma, "FMA");
  add(f16c, "F16C");
  add(avx512f, "AVX512F");
  add(avx512bw, "AVX512BW");
  add(avx512vnni, "AVX512-VNNI");
  add(avx512bf16, "AVX512-BF16");
  add(amx_int8, "AMX-INT8");
  add(amx_bf16, "AMX-BF16");
  return s.empty() ? "scalar" : s;
}

}  // namespace ik::backend
