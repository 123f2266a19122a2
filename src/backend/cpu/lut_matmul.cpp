#include "backend/cpu/lut_matmul.hpp"

#include <algorithm>
#include <cstring>
#include <immintrin.h>

#include "backend/cpu/lut_int8.hpp"
#include "core/error.hpp"
#include "core/fp16.hpp"
#include "io/dtype.hpp"

namespace ik::backend {

void lut_dequant_row(const LutWeights& w, int64_t r, float* out) {
  const uint8_t* q = w.row_codes(r);
  const float* s = w.row_scales(r);
  for (int64_t k = 0; k < w.cols; ++k) out[k] = w.table[lut_code(q, w.bits, k)] * s[k / w.group];
}

std::shared_ptr<LutWeights> lut_from_iq4_nl(const void* blocks, int64_t rows, int64_t cols) {
  IK_CHECK(cols % 32 == 0, "IQ4_NL matrix with {} columns (not a multiple of 32)", cols);
  auto w = std::make_shared<LutWeights>();
  w->bits = 4;
  w->group = 32;
  w->rows = rows;
  w->cols = cols;
  // The table from the io layer's own dequantizer: a block with d = 1 and codes 0..15.
  uint8_t unit[18] = {0x00, 0x3c};  // f16 1.0
  for (int j = 0; j < 16; ++j) unit[2 + j] = uint8_t(j);
  float values[32];
  io::dequantize(io::DType::IQ4_NL, unit, values, 32);
  w->table.assign(values, values + 16);
  const int64_t nb = cols / 32;
  w->scales.resize(size_t(rows * nb));
  w->codes.assign(size_t(rows * nb * 16) + 4, 0);
  const auto* src = static_cast<const uint8_t*>(blocks);
  for (int64_t b = 0; b < rows * nb; ++b) {  // rows are whole blocks, so blocks run on across rows
    const uint8_t* block = src + b * 18;
    uint16_t d;
    std::memcpy(&d, block, 2);
    w->scales[b] = fp16_to_f32(d);
    uint8_t code[32];
    for (int j = 0; j < 16; ++j) {
      code[j] = block[2 + j] & 0x0F;
      code[j + 16] = block[2 + j] >> 4;
    }
    for (int j = 0; j < 16; ++j) w->codes[b * 16 + j] = uint8_t(code[2 * j] | code[2 * j + 1] << 4);
  }
  lut_prepare_int8(*w);
  return w;
}

void lut_matmul_portable(const LutWeights& w, const float* x, float* y, int64_t m) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < w.rows; ++n) {
    const uint8_t* q = w.row_codes(n);
    const float* s = w.row_scales(n);
    for (int64_t i = 0; i < m; ++i) {
      const float* xi = x + i * w.cols;
      float acc = 0;
      for (int64_t g = 0; g < w.groups_per_row(); ++g) {
        float part = 0;
        for (int64_t k = g * w.group; k < std::min((g + 1) * w.group, w.cols); ++k) part += w.table[lut_code(q, w.bits, k)] * xi[k];
        acc += part * s[g];
      }
      y[i * w.rows + n] = acc;
    }
  }
}

#if defined(__AVX2__) && defined(__FMA__)

namespace {

// The table in registers: entries 0-7 and 8-15 (4-bit) as two vectors for vpermps.
struct TableRegs {
  __m256 lo, hi;
  __m256i shifts, mask;
  int bits;
  explicit TableRegs(const LutWeights& w) : bits(w.bits) {
    float t[16] = {};
    std::copy(w.table.begin(), w.table.end(), t);
    lo = _mm256_loadu_ps(t);
    hi = _mm256_loadu_ps(t + 8);
    const int b = w.bits;
    shifts = _mm256_setr_epi32(0, b, 2 * b, 3 * b, 4 * b, 5 * b, 6 * b, 7 * b);
    mask = _mm256_set1_epi32((1 << b) - 1);
  }
  // Values of the 8 codes starting at code index k (k a multiple of 8) of a packed row.
  inline __m256 lookup8(const uint8_t* row, int64_t k) const {
    uint32_t word;
    std::memcpy(&word, row + (k >> 3) * bits, 4);  // b bytes hold the 8 codes; rows are padded
    const __m256i idx = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(int(word)), shifts), mask);
    const __m256 v = _mm256_permutevar8x32_ps(lo, idx);
    if (bits < 4) return v;
    // Bit 3 of the index picks the upper half: move it to the sign bit for blendv.
    return _mm256_blendv_ps(v, _mm256_permutevar8x32_ps(hi, idx), _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
  }
};

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// M = 1: lookups feed the FMAs directly; the scale multiplies each group's partial sum.
float row_dot(const TableRegs& t, const LutWeights& w, int64_t n, const float* x) {
  const uint8_t* q = w.row_codes(n);
  const float* s = w.row_scales(n);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t g = 0; g < w.groups_per_row(); ++g) {
    __m256 p0 = _mm256_setzero_ps(), p1 = _mm256_setzero_ps();
    const int64_t k0 = g * w.group, k1 = std::min(k0 + w.group, w.cols);
    for (int64_t k = k0; k < k1; k += 16) {
      p0 = _mm256_fmadd_ps(t.lookup8(q, k), _mm256_loadu_ps(x + k), p0);
      p1 = _mm256_fmadd_ps(t.lookup8(q, k + 8), _mm256_loadu_ps(x + k + 8), p1);
    }
    acc = _mm256_fmadd_ps(_mm256_add_ps(p0, p1), _mm256_set1_ps(s[g]), acc);
  }
  return hsum(acc);
}

// M > 1: dequantize a tile of rows once into L1/L2-resident floats, then every activation row
// passes over the tile, four weight rows per activation load.
constexpr int64_t kTileRows = 4;

void tile_matmul(const TableRegs& t, const LutWeights& w, int64_t n0, const float* x, float* y, int64_t m,
                 std::vector<float>& buf) {
  const int64_t K = w.cols, nr = std::min(kTileRows, w.rows - n0);
  buf.resize(size_t(kTileRows * K));
  for (int64_t r = 0; r < kTileRows; ++r) {
    float* out = buf.data() + r * K;
    if (r >= nr) {  // past the last row: zeros keep the 4-row loop branch-free
      std::fill(out, out + K, 0.0f);
      continue;
    }
    const uint8_t* q = w.row_codes(n0 + r);
    const float* s = w.row_scales(n0 + r);
    for (int64_t g = 0; g < w.groups_per_row(); ++g) {
      const __m256 sg = _mm256_set1_ps(s[g]);
      for (int64_t k = g * w.group; k < std::min((g + 1) * w.group, w.cols); k += 8)
        _mm256_storeu_ps(out + k, _mm256_mul_ps(t.lookup8(q, k), sg));
    }
  }
  const float *w0 = buf.data(), *w1 = w0 + K, *w2 = w1 + K, *w3 = w2 + K;
  for (int64_t i = 0; i < m; ++i) {
    const float* xi = x + i * K;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t k = 0; k < K; k += 8) {
      const __m256 xv = _mm256_loadu_ps(xi + k);
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + k), xv, a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + k), xv, a1);
      a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + k), xv, a2);
      a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + k), xv, a3);
    }
    const float r4[4] = {hsum(a0), hsum(a1), hsum(a2), hsum(a3)};
    for (int64_t r = 0; r < nr; ++r) y[i * w.rows + n0 + r] = r4[r];
  }
}

}  // namespace

void lut_matmul(const LutWeights& w, const float* x, float* y, int64_t m) {
  IK_CHECK(w.group % 16 == 0 && w.cols % 16 == 0 && w.bits >= 2 && w.bits <= 4,
           "lut_matmul: unsupported {}-bit group {} with {} columns", w.bits, w.group, w.cols);
  const TableRegs t(w);
  if (m == 1) {
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < w.rows; ++n) y[n] = row_dot(t, w, n, x);
    return;
  }
  const int64_t ntiles = (w.rows + kTileRows - 1) / kTileRows;
#pragma omp parallel
  {
    std::vector<float> buf;
#pragma omp for schedule(static)
    for (int64_t tt = 0; tt < ntiles; ++tt) tile_matmul(t, w, tt * kTileRows, x, y, m, buf);
  }
}

#else

void lut_matmul(const LutWeights& w, const float* x, float* y, int64_t m) { lut_matmul_portable(w, x, y, m); }

#endif

}  // namespace ik::backend
