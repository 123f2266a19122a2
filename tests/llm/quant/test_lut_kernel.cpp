// The LUT matmul kernels against dequantize-then-f32 (double accumulation), and the identity trick.
#include <gtest/gtest.h>

#include <cmath>

#include "backend/cpu/lut_matmul.hpp"
#include "backend/cpu/matmul.hpp"
#include "core/rng.hpp"
#include "llm/quant/lut_format.hpp"

using namespace ik;
using namespace ik::llm::quant;

namespace {

std::shared_ptr<backend::LutWeights> random_weights(Rng& rng, int64_t rows, int64_t cols, int bits, int group) {
  std::vector<float> w(rows * cols);
  for (auto& x : w) x = float(rng.normal());
  return to_kernel_layout(quantize(w.data(), rows, cols, bits, group, nf_table(bits), /*ragged=*/true));
}

void check_against_dequantized(const backend::LutWeights& w, int64_t m, Rng& rng) {
  std::vector<float> x(m * w.cols), y(m * w.rows), yp(m * w.rows), wd(w.rows * w.cols);
  for (auto& v : x) v = float(rng.normal());
  for (int64_t r = 0; r < w.rows; ++r) backend::lut_dequant_row(w, r, wd.data() + r * w.cols);
  backend::lut_matmul(w, x.data(), y.data(), m);
  backend::lut_matmul_portable(w, x.data(), yp.data(), m);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t n = 0; n < w.rows; ++n) {
      double ref = 0, mag = 0;
      for (int64_t k = 0; k < w.cols; ++k) {
        ref += double(wd[n * w.cols + k]) * x[i * w.cols + k];
        mag += std::fabs(double(wd[n * w.cols + k]) * x[i * w.cols + k]);
      }
      const double tol = 1e-5 * mag + 1e-6;
      ASSERT_NEAR(y[i * w.rows + n], ref, tol) << "avx2 m=" << m << " i=" << i << " n=" << n;
      ASSERT_NEAR(yp[i * w.rows + n], ref, tol) << "portable m=" << m << " i=" << i << " n=" << n;
    }
  }
}

}  // namespace

TEST(LutKernel, MatchesDequantizedF32OnRandomShapes) {
  Rng rng(5, 0);
  struct Shape { int64_t n, k; int bits, group; };
  const Shape shapes[] = {{37, 256, 4, 128}, {13, 512, 3, 64}, {29, 96, 2, 32}, {64, 768, 4, 256},
                          {5, 256, 3, 256}, {18, 160, 4, 32},
                          {11, 576, 4, 128}, {9, 576, 3, 256}};  // ragged: a last group of 64
  for (const Shape& s : shapes) {
    const auto w = random_weights(rng, s.n, s.k, s.bits, s.group);
    for (int64_t m : {1, 2, 3, 5, 7, 16, 31, 32}) check_against_dequantized(*w, m, rng);
  }
}

TEST(LutKernel, IdentityReturnsTheDequantizedWeights) {
  Rng rng(9, 0);
  for (int bits : {2, 3, 4}) {
    for (int group : {32, 64, 128, 256}) {
      const int64_t n = 21, k = 288;  // 288 = 256 + 32: a short last group for every G
      const auto w = random_weights(rng, n, k, bits, group);
      // Y = I * W^T = W^T: row i of Y is column i of W_hat. M = 1 and M = 32 take different paths.
      for (int64_t m : {int64_t(1), int64_t(32)}) {
        // M = 32: every column in 9 calls; M = 1: columns at group edges and the short last group.
        const std::vector<int64_t> starts = m == 1 ? std::vector<int64_t>{0, 1, 31, 32, 127, 128, 255, 256, 287}
                                                   : std::vector<int64_t>{0, 32, 64, 96, 128, 160, 192, 224, 256};
        for (int64_t k0 : starts) {
          std::vector<float> eye(m * k, 0.0f), y(m * n), row(k);
          for (int64_t i = 0; i < m; ++i) eye[i * k + k0 + i] = 1.0f;  // 288 = 9 x 32
          backend::lut_matmul(*w, eye.data(), y.data(), m);
          for (int64_t r = 0; r < n; ++r) {
            backend::lut_dequant_row(*w, r, row.data());
            for (int64_t i = 0; i < m; ++i) ASSERT_EQ(y[i * n + r], row[k0 + i]) << bits << "/" << group;
          }
        }
      }
    }
  }
}

TEST(LutKernel, WeightMatrixDispatchesToTheLutKernel) {
  Rng rng(2, 0);
  backend::WeightMatrix wm;
  wm.lut = random_weights(rng, 40, 128, 4, 64);
  wm.rows = 40;
  wm.cols = 128;
  std::vector<float> x(3 * 128), y1(3 * 40), y2(3 * 40), row(128);
  for (auto& v : x) v = float(rng.normal());
  backend::matmul(wm, x.data(), y1.data(), 3);
  backend::lut_matmul(*wm.lut, x.data(), y2.data(), 3);
  EXPECT_EQ(y1, y2);
  backend::weight_row(wm, 7, row.data());
  std::vector<float> ref(128);
  backend::lut_dequant_row(*wm.lut, 7, ref.data());
  EXPECT_EQ(row, ref);
}
