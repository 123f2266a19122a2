#include "backend/cpu/lut_int8.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <immintrin.h>

#include "backend/cpu/cpu_features.hpp"
#include "backend/cpu/quant_dot.hpp"
#include "core/error.hpp"

namespace ik::backend {

void lut_prepare_int8(LutWeights& w) {
  const char* env = std::getenv("IK_LUT_KERNEL");
  const bool pow2_group = w.group >= 32 && (w.group & (w.group - 1)) == 0;  // scale index by a shift
  if (w.cols % 32 != 0 || !pow2_group || (env && std::strcmp(env, "f32") == 0)) return;
  float tmax = 0;
  for (float t : w.table) tmax = std::max(tmax, std::fabs(t));
  w.table_i8_scale = tmax > 0 ? tmax / 127.0f : 1.0f;
  std::fill(std::begin(w.table_i8), std::end(w.table_i8), int8_t(0));
  for (size_t i = 0; i < w.table.size(); ++i) w.table_i8[i] = int8_t(std::lround(w.table[i] / w.table_i8_scale));
  if (w.bits < 4) {
    const size_t row4 = size_t(w.cols) / 2;
    w.codes4.assign(row4 * size_t(w.rows), 0);
    for (int64_t r = 0; r < w.rows; ++r)
      for (int64_t k = 0; k < w.cols; ++k)
        w.codes4[r * row4 + k / 2] |= uint8_t(lut_code(w.row_codes(r), w.bits, k) << (4 * (k & 1)));
  }
  w.int8 = true;
}

namespace avx2 {
#define LUT_DOT32(w_u8, x_s8) _mm256_madd_epi16(_mm256_maddubs_epi16(w_u8, x_s8), _mm256_set1_epi16(1))
#define LUT_OFFSET_TABLE 0
#include "backend/cpu/lut_int8_body.inc"
#undef LUT_DOT32
#undef LUT_OFFSET_TABLE
void matmul(const LutWeights& w, const ActQ8* xq, float* y, int64_t m) { lut_matmul_int8_impl(w, xq, y, m); }
}  // namespace avx2

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")
namespace vnni {
#define LUT_DOT32(w_u8, x_s8) _mm256_dpbusd_epi32(_mm256_setzero_si256(), w_u8, x_s8)
#define LUT_OFFSET_TABLE 1
#include "backend/cpu/lut_int8_body.inc"
#undef LUT_DOT32
#undef LUT_OFFSET_TABLE
void matmul(const LutWeights& w, const ActQ8* xq, float* y, int64_t m) { lut_matmul_int8_impl(w, xq, y, m); }
}  // namespace vnni
#pragma GCC pop_options

// Activations to int8 blocks once per call, then the ISA's kernel.
template <void (*Kernel)(const LutWeights&, const ActQ8*, float*, int64_t)>
static void run(const LutWeights& w, const float* x, float* y, int64_t m) {
  IK_CHECK(w.int8, "lut_matmul_int8: weights not prepared (lut_prepare_int8)");
  const int64_t nb = w.cols / 32;
  thread_local std::vector<ActQ8> xq;
  xq.resize(size_t(m * nb));
  for (int64_t i = 0; i < m; ++i) quantize_act_q8(x + i * w.cols, xq.data() + i * nb, w.cols);
  Kernel(w, xq.data(), y, m);
}

std::vector<LutInt8Kernel> lut_int8_kernels() {
  const CpuFeatures& f = cpu_features();
  std::vector<LutInt8Kernel> k;
  if (f.avx512vnni && f.avx512bw && f.avx512vl && f.avx512dq) k.push_back({"avx512-vnni", run<vnni::matmul>});
  k.push_back({"avx2", run<avx2::matmul>});  // the build's baseline (x86-64-v3)
  return k;
}

void lut_matmul_int8(const LutWeights& w, const float* x, float* y, int64_t m) {
  static const LutMatmulFn best = lut_int8_kernels().front().fn;
  best(w, x, y, m);
}

}  // namespace ik::backend
