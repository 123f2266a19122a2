// Pruning: exact sparsity patterns, bad input, SparseGPT's single-weight step against the
// closed-form optimal brain surgeon update, and the reconstruction-error ordering of the
// three methods on correlated random calibration inputs.
#include <gtest/gtest.h>

#include <eigen3/Eigen/Dense>
#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "llm/prune/prune.hpp"

using namespace ik::llm::prune;

namespace {

std::vector<float> random_matrix(int64_t rows, int64_t cols, uint64_t seed) {
  ik::Rng rng(seed, 0);
  std::vector<float> w(rows * cols);
  for (auto& v : w) v = float(rng.normal());
  return w;
}

// Calibration inputs X [n, k] with correlated features of very different scales.
std::vector<float> correlated_inputs(int64_t n, int64_t k, uint64_t seed) {
  ik::Rng rng(seed, 1);
  std::vector<float> scale(k), mix(k * k);
  for (auto& s : scale) s = float(std::exp(1.0 * rng.normal()));
  for (int64_t i = 0; i < k * k; ++i) mix[i] = (i / k == i % k ? 1.0f : 0.0f) + 0.3f * float(rng.normal());
  std::vector<float> x(n * k), z(k);
  for (int64_t i = 0; i < n; ++i) {
    for (auto& v : z) v = float(rng.normal());
    for (int64_t j = 0; j < k; ++j) {
      double acc = 0;
      for (int64_t t = 0; t < k; ++t) acc += z[t] * mix[t * k + j];
      x[i * k + j] = float(acc * scale[j]);
    }
  }
  return x;
}

// ||W X^T - W' X^T||_F for inputs x [n, k].
double reconstruction_error(const std::vector<float>& w, const std::vector<float>& w2, const std::vector<float>& x,
                            int64_t rows, int64_t k) {
  const int64_t n = int64_t(x.size()) / k;
  double err = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < n; ++i) {
      double d = 0;
      for (int64_t j = 0; j < k; ++j) d += (w[r * k + j] - w2[r * k + j]) * double(x[i * k + j]);
      err += d * d;
    }
  return std::sqrt(err);
}

int zeros_in(const float* p, int64_t n) { return int(std::count(p, p + n, 0.0f)); }

}  // namespace

TEST(Prune, MagnitudeDropsTheSmallestOfEachRow) {
  const int64_t rows = 16, cols = 100;
  const auto w0 = random_matrix(rows, cols, 1);
  auto w = w0;
  prune_magnitude(w.data(), rows, cols, Pattern{0.3});
  for (int64_t r = 0; r < rows; ++r) {
    EXPECT_EQ(zeros_in(&w[r * cols], cols), 30);
    float max_dropped = 0, min_kept = 1e9f;
    for (int64_t j = 0; j < cols; ++j) {
      const float a = std::fabs(w0[r * cols + j]);
      if (w[r * cols + j] == 0) max_dropped = std::max(max_dropped, a);
      else {
        min_kept = std::min(min_kept, a);
        EXPECT_EQ(w[r * cols + j], w0[r * cols + j]);  // kept weights untouched
      }
    }
    EXPECT_LE(max_dropped, min_kept);
  }
}

TEST(Prune, WandaWeighsByInputNorm) {
  // Two inputs per row: the larger weight sits on an input with a tiny norm, so Wanda drops it.
  std::vector<float> w = {3.0f, 1.0f, -2.0f, 0.5f};
  prune_wanda(w.data(), 2, 2, Pattern{0.5}, {0.01f, 10.0f});
  EXPECT_EQ(w, (std::vector<float>{0.0f, 1.0f, 0.0f, 0.5f}));
}

TEST(Prune, EveryMethodKeepsTheExactPattern) {
  const int64_t rows = 24, cols = 256, n = 512;
  const auto x = correlated_inputs(n, cols, 7);
  InputStats stats(cols, false);
  stats.add(x.data(), n);
  for (Method m : {Method::magnitude, Method::wanda, Method::sparsegpt}) {
    auto w = random_matrix(rows, cols, 3);
    prune_matrix(m, w.data(), rows, cols, Pattern{0.37}, &stats);
    for (int64_t r = 0; r < rows; ++r) EXPECT_EQ(zeros_in(&w[r * cols], cols), 94) << method_name(m);  // floor(256*.37)
    auto v = random_matrix(rows, cols, 4);
    prune_matrix(m, v.data(), rows, cols, parse_nm("2:4"), &stats);
    for (int64_t g = 0; g < rows * cols; g += 4) ASSERT_EQ(zeros_in(&v[g], 4), 2) << method_name(m) << " group " << g;
  }
}

TEST(Prune, BadInputIsRejected) {
  auto w = random_matrix(2, 10, 1);
  EXPECT_THROW(prune_magnitude(w.data(), 2, 10, Pattern{1.0}), ik::Error);
  EXPECT_THROW(prune_magnitude(w.data(), 2, 10, Pattern{-0.1}), ik::Error);
  EXPECT_THROW(prune_magnitude(w.data(), 2, 10, parse_nm("2:4")), ik::Error);  // 4 does not divide 10
  EXPECT_THROW(parse_nm("4:4"), ik::Error);
  EXPECT_THROW(parse_nm("2-4"), ik::Error);
  EXPECT_THROW(parse_nm("2:4x"), ik::Error);
  EXPECT_THROW(method_from_name("random"), ik::Error);
  InputStats diag(10, true);
  EXPECT_THROW(prune_sparsegpt(w.data(), 2, 10, Pattern{0.5}, diag), ik::Error);
}

TEST(Prune, SparseGptSingleWeightIsTheOptimalBrainSurgeonUpdate) {
  // Pruning one weight (the first column, made the least salient) with the compensation
  // over the others is the least-squares optimum: w'_keep = H_kk^-1 H_k: w, with H damped.
  const int64_t k = 8, n = 64;
  const auto x = correlated_inputs(n, k, 11);
  InputStats stats(k, false);
  stats.add(x.data(), n);
  auto w = random_matrix(1, k, 5);
  w[0] = 1e-4f;
  const auto w0 = w;
  prune_sparsegpt(w.data(), 1, k, Pattern{0.125}, stats);  // floor(8 * 0.125) = 1 weight
  Eigen::MatrixXd H(k, k);
  for (int64_t i = 0; i < k * k; ++i) H(i / k, i % k) = 2.0 * stats.xtx[i] / n;
  H.diagonal().array() += 0.01 * H.diagonal().mean();
  Eigen::VectorXd wv(k);
  for (int64_t j = 0; j < k; ++j) wv[j] = w0[j];
  const Eigen::VectorXd rhs = (H * wv).tail(k - 1);
  const Eigen::VectorXd expect = H.bottomRightCorner(k - 1, k - 1).ldlt().solve(rhs);
  EXPECT_EQ(w[0], 0.0f);
  for (int64_t j = 1; j < k; ++j) EXPECT_NEAR(w[j], expect[j - 1], 1e-4 * (1 + std::fabs(expect[j - 1])));
}

TEST(Prune, ReconstructionErrorOrdersSparseGptWandaMagnitude) {
  const int64_t rows = 32, cols = 128, n = 1024;
  const auto x = correlated_inputs(n, cols, 21);
  InputStats stats(cols, false);
  stats.add(x.data(), n);
  const auto w0 = random_matrix(rows, cols, 9);
  for (const Pattern& p : {Pattern{0.5}, parse_nm("2:4")}) {
    double err[3];
    for (Method m : {Method::magnitude, Method::wanda, Method::sparsegpt}) {
      auto w = w0;
      prune_matrix(m, w.data(), rows, cols, p, &stats);
      err[int(m)] = reconstruction_error(w0, w, x, rows, cols);
    }
    EXPECT_LT(err[2], err[1]) << p.describe();
    EXPECT_LT(err[1], err[0]) << p.describe();
  }
}
