#include "backend/cpu/quant_dot.hpp"

#include <cmath>
#include <cstring>
#include <immintrin.h>

#include "backend/cpu/cpu_features.hpp"
#include "backend/cpu/simd.hpp"
#include "core/fp16.hpp"

namespace ik::backend {

// F16C conversion for the hot loops (x86-64-v3 baseline has it).
static inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

void quantize_act_q8(const float* x, ActQ8* out, int64_t k) {
  for (int64_t b = 0; b < k / kQBlock; ++b) {
    const float* xb = x + b * kQBlock;
    __m256 amax = _mm256_setzero_ps();
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int i = 0; i < kQBlock; i += 8) amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, _mm256_loadu_ps(xb + i)));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float maxabs = _mm_cvtss_f32(m4);
    const float d = maxabs / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int sum = 0;
    for (int i = 0; i < kQBlock; ++i) {
      const int q = int(std::nearbyint(xb[i] * id));
      out[b].qs[i] = int8_t(q);
      sum += q;
    }
    out[b].d = d;
    out[b].s = d * float(sum);
  }
}

// ---- scalar references ----------------------------------------------------------------

static float dot_q4_0_ref(const void* wv, const ActQ8* x, int64_t nb) {
  const auto* w = static_cast<const BlockQ4_0*>(wv);
  float acc = 0;
  for (int64_t b = 0; b < nb; ++b) {
    int s = 0;
    for (int j = 0; j < 16; ++j) {
      s += ((w[b].qs[j] & 0xf) - 8) * x[b].qs[j];
      s += ((w[b].qs[j] >> 4) - 8) * x[b].qs[j + 16];
    }
    acc += fp16_to_f32(w[b].d) * x[b].d * float(s);
  }
  return acc;
}

static float dot_q4_1_ref(const void* wv, const ActQ8* x, int64_t nb) {
  const auto* w = static_cast<const BlockQ4_1*>(wv);
  float acc = 0;
  for (int64_t b = 0; b < nb; ++b) {
    int s = 0;
    for (int j = 0; j < 16; ++j) {
      s += (w[b].qs[j] & 0xf) * x[b].qs[j];
      s += (w[b].qs[j] >> 4) * x[b].qs[j + 16];
    }
    acc += fp16_to_f32(w[b].d) * x[b].d * float(s) + fp16_to_f32(w[b].m) * x[b].s;
  }
  return acc;
}

static float dot_q8_0_ref(const void* wv, const ActQ8* x, int64_t nb) {
  const auto* w = static_cast<const BlockQ8_0*>(wv);
  float acc = 0;
  for (int64_t b = 0; b < nb; ++b) {
    int s = 0;
    for (int j = 0; j < 32; ++j) s += w[b].qs[j] * x[b].qs[j];
    acc += fp16_to_f32(w[b].d) * x[b].d * float(s);
  }
  return acc;
}

// ---- AVX2 -----------------------------------------------------------------------------

// 32 nibbles as unsigned bytes: low nibbles give elements 0..15, high nibbles 16..31.
static inline __m256i unpack_nibbles(const uint8_t* qs) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

// Sum of u8 * s8 products, as 8 float lanes.
static inline __m256 dot_u8_s8(__m256i u, __m256i s) {
  const __m256i p16 = _mm256_maddubs_epi16(u, s);
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

static float dot_q4_1_avx2(const void* wv, const ActQ8* x, int64_t nb) {
  const auto* w = static_cast<const BlockQ4_1*>(wv);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  float offs = 0;
  int64_t b = 0;
  for (; b + 1 < nb; b += 2) {
    const __m256i q0 = unpack_nibbles(w[b].qs), q1 = unpack_nibbles(w[b + 1].qs);
    const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs));
    const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b + 1].qs));
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[b].d) * x[b].d), dot_u8_s8(q0, x0), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[b + 1].d) * x[b + 1].d), dot_u8_s8(q1, x1), acc1);
    offs += h2f(w[b].m) * x[b].s + h2f(w[b + 1].m) * x[b + 1].s;
  }
  float tail = b < nb ? dot_q4_1_ref(w + b, x + b, nb - b) : 0.0f;
  return hsum(_mm256_add_ps(acc0, acc1)) + offs + tail;
}

static float dot_q4_0_avx2(const void* wv, const ActQ8* x, int64_t nb) {
  const auto* w = static_cast<const BlockQ4_0*>(wv);
  __m256 acc = _mm256_setzero_ps();
  float offs = 0;
  for (int64_t b = 0; b < nb; ++b) {
    const __m256i q = unpack_nibbles(w[b].qs);
    const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs));
    const float dw = h2f(w[b].d);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(dw * x[b].d), dot_u8_s8(q, xq), acc);
    offs -= 8.0f * dw * x[b].s;  // (q - 8) . x = q . x - 8 sum(x)
  }
  return hsum(acc) + offs;
}

static float dot_q8_0_avx2(const void* wv, const ActQ8* x, int64_t nb) {
  const auto* w = static_cast<const BlockQ8_0*>(wv);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs));
    const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs));
    // maddubs needs one unsigned operand: |q| against x with q's sign moved onto it.
    const __m256 p = dot_u8_s8(_mm256_sign_epi8(q, q), _mm256_sign_epi8(xq, q));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[b].d) * x[b].d), p, acc);
  }
  return hsum(acc);
}

// ---- AVX-512 VNNI: two blocks per 512-bit dpbusd ----------------------------------------

__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni"))) static float dot_q4_1_vnni(
    const void* wv, const ActQ8* x, int64_t nb) {
  const auto* w = static_cast<const BlockQ4_1*>(wv);
  __m512 acc = _mm512_setzero_ps();
  float offs = 0;
  int64_t b = 0;
  for (; b + 1 < nb; b += 2) {
    const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(unpack_nibbles(w[b].qs)),
                                         unpack_nibbles(w[b + 1].qs), 1);
    const __m512i xq = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs))),
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b + 1].qs)), 1);
    const __m512 p = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), q, xq));
    const __m512 scale = _mm512_insertf32x8(
        _mm512_castps256_ps512(_mm256_set1_ps(h2f(w[b].d) * x[b].d)),
        _mm256_set1_ps(h2f(w[b + 1].d) * x[b + 1].d), 1);
    acc = _mm512_fmadd_ps(scale, p, acc);
    offs += h2f(w[b].m) * x[b].s + h2f(w[b + 1].m) * x[b + 1].s;
  }
  float tail = b < nb ? dot_q4_1_ref(w + b, x + b, nb - b) : 0.0f;
  return _mm512_reduce_add_ps(acc) + offs + tail;
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni"))) static float dot_q8_0_vnni(
    const void* wv, const ActQ8* x, int64_t nb) {
  const auto* w = static_cast<const BlockQ8_0*>(wv);
  __m512 acc = _mm512_setzero_ps();
  int64_t b = 0;
  for (; b + 1 < nb; b += 2) {
    const __m512i q = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs))),
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b + 1].qs)), 1);
    const __m512i xq = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs))),
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b + 1].qs)), 1);
    // dpbusd multiplies unsigned by signed bytes: |w| against x carrying w's sign.
    const __mmask64 neg = _mm512_movepi8_mask(q);
    const __m512i xs = _mm512_mask_sub_epi8(xq, neg, _mm512_setzero_si512(), xq);
    const __m512 p = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(q), xs));
    const __m512 scale = _mm512_insertf32x8(
        _mm512_castps256_ps512(_mm256_set1_ps(h2f(w[b].d) * x[b].d)), _mm256_set1_ps(h2f(w[b + 1].d) * x[b + 1].d), 1);
    acc = _mm512_fmadd_ps(scale, p, acc);
  }
  float tail = b < nb ? dot_q8_0_ref(w + b, x + b, nb - b) : 0.0f;
  return _mm512_reduce_add_ps(acc) + tail;
}

static bool has_vnni512() {
  const auto& f = cpu_features();
  return f.avx512vnni && f.avx512bw && f.avx512vl && f.avx512dq;
}

// ---- Q4_1 repacked for VNNI -------------------------------------------------------------

bool q4_1x4_available() { return has_vnni512(); }

void repack_q4_1x4(const void* stored_row, uint8_t* out, int64_t nb) {
  const auto* w = static_cast<const BlockQ4_1*>(stored_row);
  auto* d = reinterpret_cast<uint16_t*>(out);
  auto* m = d + nb;
  uint8_t* qs = out + 4 * nb;
  for (int64_t b = 0; b < nb; ++b) {
    d[b] = w[b].d;
    m[b] = w[b].m;
    std::memcpy(qs + 16 * b, w[b].qs, 16);
  }
}

// Layout: f32 d[nb], f32 s[nb], int8 q[32 nb] (groups of four blocks split lo/hi, the
// remaining blocks in natural order).
size_t act_q8x4_bytes(int64_t k) { return size_t(k / kQBlock) * 8 + size_t(k); }

void quantize_act_q8x4(const float* x, uint8_t* out, int64_t k) {
  const int64_t nb = k / kQBlock;
  thread_local std::vector<ActQ8> tmp;
  tmp.resize(nb);
  quantize_act_q8(x, tmp.data(), k);
  auto* d = reinterpret_cast<float*>(out);
  float* s = d + nb;
  auto* q = reinterpret_cast<int8_t*>(out + 8 * nb);
  const int64_t full = nb / 4 * 4;
  for (int64_t b = 0; b < nb; ++b) {
    d[b] = tmp[b].d;
    s[b] = tmp[b].s;
    if (b < full) {
      int8_t* group = q + (b / 4) * 128;
      std::memcpy(group + 16 * (b % 4), tmp[b].qs, 16);
      std::memcpy(group + 64 + 16 * (b % 4), tmp[b].qs + 16, 16);
    } else {
      std::memcpy(q + 32 * b, tmp[b].qs, 32);
    }
  }
}

// The blocks after the last full group of four, and the offset term sum_b m_b * s_b.
static inline float q4_1x4_tail_and_offsets(const uint8_t* w_row, const uint8_t* x, int64_t nb) {
  const auto* wd = reinterpret_cast<const uint16_t*>(w_row);
  const uint16_t* wm = wd + nb;
  const uint8_t* qs = w_row + 4 * nb;
  const auto* xd = reinterpret_cast<const float*>(x);
  const float* xs = xd + nb;
  const auto* xq = reinterpret_cast<const int8_t*>(x + 8 * nb);
  float total = 0;
  for (int64_t b = nb / 4 * 4; b < nb; ++b) {
    int s = 0;
    for (int j = 0; j < 16; ++j) s += (qs[16 * b + j] & 0xf) * xq[32 * b + j] + (qs[16 * b + j] >> 4) * xq[32 * b + j + 16];
    total += h2f(wd[b]) * xd[b] * float(s);
  }
  __m256 off = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 8 <= nb; b += 8)
    off = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wm + b))),
                          _mm256_loadu_ps(xs + b), off);
  for (; b < nb; ++b) total += h2f(wm[b]) * xs[b];
  return total + hsum(off);
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni"))) float dot_q4_1x4(
    const uint8_t* w_row, const uint8_t* x, int64_t nb) {
  const auto* wd = reinterpret_cast<const uint16_t*>(w_row);
  const uint8_t* qs = w_row + 4 * nb;
  const auto* xd = reinterpret_cast<const float*>(x);
  const auto* xq = reinterpret_cast<const int8_t*>(x + 8 * nb);
  const __m512i nib = _mm512_set1_epi8(0x0f);
  // Lane l of a 16-lane vector belongs to block l / 4 of the group.
  const __m512i spread = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
  __m512 acc = _mm512_setzero_ps();
  const int64_t full = nb / 4 * 4;
  for (int64_t b = 0; b < full; b += 4) {
    const __m512i q = _mm512_loadu_si512(qs + 16 * b);
    const __m512i lo = _mm512_and_si512(q, nib), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), nib);
    const int8_t* xg = xq + 32 * b;
    __m512i sum = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, _mm512_loadu_si512(xg));
    sum = _mm512_dpbusd_epi32(sum, hi, _mm512_loadu_si512(xg + 64));
    const __m128 scale4 = _mm_mul_ps(_mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(wd + b))),
                                     _mm_loadu_ps(xd + b));
    const __m512 scale = _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(scale4));
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), scale, acc);
  }
  return _mm512_reduce_add_ps(acc) + q4_1x4_tail_and_offsets(w_row, x, nb);
}

// Four activation rows against one weight row: each weight group is loaded and unpacked once
// (prompt processing).
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni"))) void dot_q4_1x4_rows4(
    const uint8_t* w_row, const uint8_t* const x[4], int64_t nb, float out[4]) {
  const auto* wd = reinterpret_cast<const uint16_t*>(w_row);
  const uint8_t* qs = w_row + 4 * nb;
  const __m512i nib = _mm512_set1_epi8(0x0f);
  const __m512i spread = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  const int64_t full = nb / 4 * 4;
  for (int64_t b = 0; b < full; b += 4) {
    const __m512i q = _mm512_loadu_si512(qs + 16 * b);
    const __m512i lo = _mm512_and_si512(q, nib), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), nib);
    const __m128 wscale = _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(wd + b)));
    for (int r = 0; r < 4; ++r) {
      const auto* xd = reinterpret_cast<const float*>(x[r]);
      const int8_t* xg = reinterpret_cast<const int8_t*>(x[r] + 8 * nb) + 32 * b;
      __m512i sum = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, _mm512_loadu_si512(xg));
      sum = _mm512_dpbusd_epi32(sum, hi, _mm512_loadu_si512(xg + 64));
      const __m512 scale = _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(_mm_mul_ps(wscale, _mm_loadu_ps(xd + b))));
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), scale, acc[r]);
    }
  }
  for (int r = 0; r < 4; ++r) out[r] = _mm512_reduce_add_ps(acc[r]) + q4_1x4_tail_and_offsets(w_row, x[r], nb);
}

std::vector<QuantDotKernel> quant_dot_kernels(io::DType t) {
  const bool vnni = has_vnni512(), avx2 = cpu_features().avx2;
  std::vector<QuantDotKernel> k;
  switch (t) {
    case io::DType::Q4_0:
      if (avx2) k.push_back({"avx2", dot_q4_0_avx2});
      k.push_back({"scalar", dot_q4_0_ref});
      break;
    case io::DType::Q4_1:
      if (vnni) k.push_back({"avx512-vnni", dot_q4_1_vnni});
      if (avx2) k.push_back({"avx2", dot_q4_1_avx2});
      k.push_back({"scalar", dot_q4_1_ref});
      break;
    case io::DType::Q8_0:
      if (vnni) k.push_back({"avx512-vnni", dot_q8_0_vnni});
      if (avx2) k.push_back({"avx2", dot_q8_0_avx2});
      k.push_back({"scalar", dot_q8_0_ref});
      break;
    default: break;
  }
  return k;
}

QuantDotFn quant_dot(io::DType t) {
  static const QuantDotFn q4_0 = quant_dot_kernels(io::DType::Q4_0).front().fn;
  static const QuantDotFn q4_1 = quant_dot_kernels(io::DType::Q4_1).front().fn;
  static const QuantDotFn q8_0 = quant_dot_kernels(io::DType::Q8_0).front().fn;
  switch (t) {
    case io::DType::Q4_0: return q4_0;
    case io::DType::Q4_1: return q4_1;
    case io::DType::Q8_0: return q8_0;
    default: return nullptr;
  }
}

}  // namespace ik::backend
