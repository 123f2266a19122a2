// The int8 LUT kernel (lut_int8.hpp), every ISA this CPU runs:
//  - against an exact emulation of its arithmetic (int8 table, int8 activation blocks, integer
//    block sums; double here), which checks the lookups, code unpacking and scaling;
//  - against the reference LUT path (dequantize, then f32 weights times f32 activations in
//    double) within the error bound of its two roundings, computed per output from the data:
//    sum_k |s_g(k)| * (|table[c_k] - ts * table_i8[c_k]| * |x_k| + ts * |table_i8[c_k]| * d_b(k) / 2),
//    ts the table's int8 scale, d_b the activation block's scale (rounding error <= d_b / 2);
//  - IQ4_NL blocks read straight into LUT weights: dequantization bit-exact with the io layer,
//    and WeightMatrix::prepare sends IQ4_NL through the int8 LUT kernel.
#include <gtest/gtest.h>

#include <cmath>

#include "backend/cpu/lut_int8.hpp"
#include "backend/cpu/lut_matmul.hpp"
#include "backend/cpu/matmul.hpp"
#include "backend/cpu/quant_dot.hpp"
#include "core/fp16.hpp"
#include "core/rng.hpp"
#include "io/dtype.hpp"

using namespace ik;
using namespace ik::backend;

namespace {

// Random codes (packed LSB-first), a random ascending table, random positive scales.
LutWeights random_lut(Rng& rng, int64_t rows, int64_t cols, int bits, int group) {
  LutWeights w;
  w.bits = bits;
  w.group = group;
  w.rows = rows;
  w.cols = cols;
  const int entries = 1 << bits;
  for (int i = 0; i < entries; ++i) w.table.push_back(float(-1.0 + 2.0 * (i + 0.3 * rng.uniform()) / (entries - 1)));
  w.scales.resize(size_t(rows * w.groups_per_row()));
  for (auto& s : w.scales) s = float(rng.uniform(0.01, 0.2));
  w.codes.assign(w.code_row_bytes() * rows + 4, 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < cols; ++k) {
      const int64_t bit = k * bits;
      const unsigned code = unsigned(rng.below(entries)) << (bit & 7);
      uint8_t* p = w.codes.data() + r * w.code_row_bytes() + (bit >> 3);
      p[0] |= uint8_t(code);
      p[1] |= uint8_t(code >> 8);
    }
  return w;
}

std::vector<float> random_x(Rng& rng, int64_t n) {
  std::vector<float> x(n);
  for (auto& v : x) v = float(rng.normal() * (rng.uniform() < 0.05 ? 8 : 1));  // some outliers
  return x;
}

// Exact emulation of the int8 kernel, and the reference with the rounding-error bound.
struct Expected {
  std::vector<double> emulated, reference, bound, magnitude;
};

Expected expected(const LutWeights& w, const std::vector<float>& x, int64_t m) {
  const int64_t K = w.cols, N = w.rows, nb = K / 32;
  std::vector<ActQ8> xq(m * nb);
  for (int64_t i = 0; i < m; ++i) quantize_act_q8(x.data() + i * K, xq.data() + i * nb, K);
  Expected e;
  const double ts = w.table_i8_scale;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t n = 0; n < N; ++n) {
      double emu = 0, ref = 0, bound = 0, mag = 0;
      for (int64_t b = 0; b < nb; ++b) {
        const ActQ8& xb = xq[i * nb + b];
        const double s = w.row_scales(n)[b * 32 / w.group];
        int64_t isum = 0;
        for (int j = 0; j < 32; ++j) {
          const int64_t k = b * 32 + j;
          const int c = lut_code(w.row_codes(n), w.bits, k);
          const double xk = x[i * K + k];
          isum += int64_t(w.table_i8[c]) * xb.qs[j];
          ref += double(w.table[c]) * s * xk;
          mag += std::fabs(double(w.table[c]) * s * xk);
          bound += std::fabs(s) * (std::fabs(w.table[c] - ts * w.table_i8[c]) * std::fabs(xk) +
                        ts * std::abs(w.table_i8[c]) * xb.d / 2);
        }
        emu += double(isum) * xb.d * s;
      }
      e.emulated.push_back(emu * ts);
      e.reference.push_back(ref);
      e.bound.push_back(bound);
      e.magnitude.push_back(mag);
    }
  return e;
}

void check_kernels(const LutWeights& w, int64_t m, Rng& rng, const std::string& what) {
  const auto x = random_x(rng, m * w.cols);
  const Expected e = expected(w, x, m);
  for (const auto& k : lut_int8_kernels()) {
    std::vector<float> y(m * w.rows, NAN);
    k.fn(w, x.data(), y.data(), m);
    for (size_t o = 0; o < y.size(); ++o) {
      // f32 accumulation of the scaled block sums: a few ulps of the magnitude
      ASSERT_NEAR(y[o], e.emulated[o], 1e-5 * e.magnitude[o] + 1e-6) << k.isa << " " << what << " out " << o;
      ASSERT_LE(std::fabs(y[o] - e.reference[o]), e.bound[o] + 1e-5 * e.magnitude[o] + 1e-6)
          << k.isa << " " << what << " out " << o;
    }
  }
}

}  // namespace

TEST(LutInt8, MatchesEmulationAndReferenceForEveryWidthGroupAndM) {
  Rng rng(11, 0);
  ASSERT_FALSE(lut_int8_kernels().empty());
  for (int bits : {2, 3, 4})
    for (int group : {32, 64, 128, 256})
      for (int64_t cols : {int64_t(256), int64_t(576)}) {  // 576: a ragged last group for 128, 256
        LutWeights w = random_lut(rng, 37, cols, bits, group);
        lut_prepare_int8(w);
        ASSERT_TRUE(w.int8);
        for (int64_t m : {1, 2, 3, 4, 5, 7, 9})
          check_kernels(w, m, rng, "bits " + std::to_string(bits) + " group " + std::to_string(group) + " K " +
                                       std::to_string(cols) + " m " + std::to_string(m));
      }
}

TEST(LutInt8, TableRoundingAndWidening) {
  Rng rng(12, 0);
  for (int bits : {2, 3, 4}) {
    LutWeights w = random_lut(rng, 5, 64, bits, 32);
    lut_prepare_int8(w);
    float tmax = 0;
    for (float t : w.table) tmax = std::max(tmax, std::fabs(t));
    EXPECT_FLOAT_EQ(w.table_i8_scale, tmax / 127);
    for (size_t i = 0; i < w.table.size(); ++i)
      EXPECT_LE(std::fabs(w.table[i] - w.table_i8_scale * w.table_i8[i]), w.table_i8_scale / 2 + 1e-7);
    for (size_t i = w.table.size(); i < 16; ++i) EXPECT_EQ(w.table_i8[i], 0);
    if (bits == 4) {
      EXPECT_TRUE(w.codes4.empty());
      continue;
    }
    for (int64_t r = 0; r < w.rows; ++r)
      for (int64_t k = 0; k < w.cols; ++k)
        ASSERT_EQ(lut_code(w.codes4.data() + r * w.cols / 2, 4, k), lut_code(w.row_codes(r), bits, k));
  }
}

TEST(LutInt8, LargeMAndWeightMatrixDispatch) {
  Rng rng(13, 0);
  LutWeights wide = random_lut(rng, 24, 1536, 4, 64);  // a SmolLM2 ffn_down row length, prefill M
  lut_prepare_int8(wide);
  check_kernels(wide, 66, rng, "K 1536 m 66");
  auto lut = std::make_shared<LutWeights>(random_lut(rng, 19, 128, 4, 64));
  lut_prepare_int8(*lut);
  check_kernels(*lut, 32, rng, "m 32");
  WeightMatrix wm;
  wm.rows = lut->rows;
  wm.cols = lut->cols;
  wm.lut = lut;
  const auto x = random_x(rng, 3 * 128);
  std::vector<float> y1(3 * 19), y2(3 * 19);
  matmul(wm, x.data(), y1.data(), 3);
  lut_matmul_int8(*lut, x.data(), y2.data(), 3);
  EXPECT_EQ(y1, y2);
}

TEST(LutInt8, Iq4NlReadsStraightIntoLutWeights) {
  Rng rng(14, 0);
  const int64_t rows = 23, cols = 160, nb = cols / 32;
  std::vector<uint8_t> blocks(size_t(rows * nb * 18));
  for (int64_t b = 0; b < rows * nb; ++b) {
    const uint16_t d = f32_to_fp16(float(rng.uniform(-0.02, 0.02)));
    std::memcpy(&blocks[b * 18], &d, 2);
    for (int j = 0; j < 16; ++j) blocks[b * 18 + 2 + j] = uint8_t(rng.below(256));
  }
  const auto lut = lut_from_iq4_nl(blocks.data(), rows, cols);
  EXPECT_EQ(lut->bits, 4);
  EXPECT_EQ(lut->group, 32);
  ASSERT_TRUE(lut->int8);
  EXPECT_EQ(lut->table_i8_scale, 1.0f);  // the IQ4_NL constants are int8 already: no table rounding
  std::vector<float> got(cols), want(cols);
  for (int64_t r = 0; r < rows; ++r) {
    lut_dequant_row(*lut, r, got.data());
    io::dequantize(io::DType::IQ4_NL, blocks.data() + r * nb * 18, want.data(), cols);
    ASSERT_EQ(got, want) << "row " << r;
  }
  for (int64_t m : {1, 4, 6}) check_kernels(*lut, m, rng, "iq4_nl m " + std::to_string(m));

  // Fast mode: the LUT kernel on the stored blocks; Reference: f32. Both against double math.
  const auto fast = WeightMatrix::prepare(io::DType::IQ4_NL, rows, cols, blocks.data(), WeightMatrix::Mode::Fast);
  const auto ref = WeightMatrix::prepare(io::DType::IQ4_NL, rows, cols, blocks.data(), WeightMatrix::Mode::Reference);
  ASSERT_TRUE(fast.lut);
  EXPECT_FALSE(ref.lut);
  EXPECT_EQ(ref.type, io::DType::F32);
  const int64_t m = 3;
  const auto x = random_x(rng, m * cols);
  const Expected e = expected(*lut, x, m);
  std::vector<float> yf(m * rows), yr(m * rows);
  matmul(fast, x.data(), yf.data(), m);
  matmul(ref, x.data(), yr.data(), m);
  for (size_t o = 0; o < yf.size(); ++o) {
    EXPECT_NEAR(yf[o], e.emulated[o], 1e-5 * e.magnitude[o] + 1e-6);
    EXPECT_NEAR(yr[o], e.reference[o], 1e-5 * e.magnitude[o] + 1e-6);
  }
  std::vector<float> row(cols);
  weight_row(fast, 5, row.data());
  io::dequantize(io::DType::IQ4_NL, blocks.data() + 5 * nb * 18, want.data(), cols);
  EXPECT_EQ(row, want);
}
