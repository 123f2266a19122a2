#include "llm/prune/prune.hpp"

#include <eigen3/Eigen/Dense>  // ik_llm does not link Eigen3::Eigen; the header path is stable on Debian
#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.hpp"

namespace ik::llm::prune {

using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

Method method_from_name(const std::string& name) {
  if (name == "magnitude") return Method::magnitude;
  if (name == "wanda") return Method::wanda;
  if (name == "sparsegpt") return Method::sparsegpt;
  fail("unknown pruning method '{}' (choices: magnitude, wanda, sparsegpt)", name);
}

const char* method_name(Method m) {
  switch (m) {
    case Method::magnitude: return "magnitude";
    case Method::wanda: return "wanda";
    case Method::sparsegpt: return "sparsegpt";
  }
  return "?";
}

std::string Pattern::describe() const {
  return nm() ? fmt::format("{}:{}", n, m) : fmt::format("{:.0f}% unstructured", sparsity * 100);
}

Pattern parse_nm(const std::string& text) {
  Pattern p;
  const auto colon = text.find(':');
  IK_CHECK(colon != std::string::npos, "N:M pattern '{}' is not of the form N:M (e.g. 2:4)", text);
  try {
    size_t used_n = 0, used_m = 0;
    p.n = std::stoi(text.substr(0, colon), &used_n);
    p.m = std::stoi(text.substr(colon + 1), &used_m);
    IK_CHECK(used_n == colon && used_m == text.size() - colon - 1, "bad N:M");
  } catch (const std::exception&) {
    fail("N:M pattern '{}' is not of the form N:M (e.g. 2:4)", text);
  }
  IK_CHECK(p.n > 0 && p.m > 1 && p.n < p.m, "N:M pattern '{}' needs 0 < N < M", text);
  p.sparsity = double(p.n) / p.m;
  return p;
}

void check_pattern(const Pattern& p, int64_t cols) {
  IK_CHECK(p.sparsity >= 0 && p.sparsity < 1, "sparsity {} is outside [0, 1)", p.sparsity);
  if (p.nm())
    IK_CHECK(cols % p.m == 0, "N:M pattern {}:{} does not divide the input dimension {}", p.n, p.m, cols);
}

// Weights pruned among the first i inputs of a row: floor(i * s), so a row loses exactly
// floor(cols * s) in total however the columns are split into blocks.
static int64_t pruned_before(int64_t i, double s) { return int64_t(std::floor(double(i) * s + 1e-9)); }

// The `count` lowest scores among idx[0..size): their positions are moved to the front.
static void select_lowest(std::vector<int64_t>& idx, int64_t count, const std::vector<double>& score) {
  std::nth_element(idx.begin(), idx.begin() + count, idx.end(),
                   [&](int64_t a, int64_t b) { return score[a] < score[b] || (score[a] == score[b] && a < b); });
}

// Zero, per row, the lowest-scoring weights the pattern asks for; score(r, j) >= 0.
template <typename Score>
static void prune_by_score(float* w, int64_t rows, int64_t cols, const Pattern& p, Score score) {
  check_pattern(p, cols);
  const int64_t group = p.nm() ? p.m : cols;
  const int64_t drop = p.nm() ? p.n : pruned_before(cols, p.sparsity);
  if (drop == 0) return;
  std::vector<double> s(cols);
  std::vector<int64_t> idx(group);
  for (int64_t r = 0; r < rows; ++r) {
    float* row = w + r * cols;
    for (int64_t j = 0; j < cols; ++j) s[j] = score(r, j);
    for (int64_t g0 = 0; g0 < cols; g0 += group) {
      std::iota(idx.begin(), idx.end(), g0);
      select_lowest(idx, drop, s);
      for (int64_t i = 0; i < drop; ++i) row[idx[i]] = 0.0f;
    }
  }
}

void prune_magnitude(float* w, int64_t rows, int64_t cols, const Pattern& p) {
  prune_by_score(w, rows, cols, p, [&](int64_t r, int64_t j) { return std::fabs(double(w[r * cols + j])); });
}

void prune_wanda(float* w, int64_t rows, int64_t cols, const Pattern& p, const std::vector<float>& col_norms) {
  IK_CHECK(int64_t(col_norms.size()) == cols, "wanda: {} input norms for {} columns", col_norms.size(), cols);
  prune_by_score(w, rows, cols, p,
                 [&](int64_t r, int64_t j) { return std::fabs(double(w[r * cols + j])) * col_norms[j]; });
}

InputStats::InputStats(int64_t k_, bool diag_only_)
    : k(k_), diag_only(diag_only_), xtx(diag_only_ ? size_t(k_) : size_t(k_ * k_), 0.0f) {}

void InputStats::add(const float* x, int64_t m) {
  n += m;
  if (diag_only) {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < k; ++j) xtx[j] += x[i * k + j] * x[i * k + j];
    return;
  }
  Eigen::Map<const MatF> X(x, m, k);
  Eigen::Map<MatF> H(xtx.data(), k, k);
  H.noalias() += X.transpose() * X;
}

std::vector<float> InputStats::column_norms() const {
  std::vector<float> out(k);
  for (int64_t j = 0; j < k; ++j) out[j] = std::sqrt(std::max(0.0f, diag(j)));
  return out;
}

// The upper Cholesky factor U of (H + damping)^-1 (H^-1 = U^T U): row j of U from column j
// on is what the sweep needs to spread the error of pruning weight j over the later ones.
static MatD inverse_hessian_factor(MatD H, double damp) {
  const int64_t k = H.rows();
  H.diagonal().array() += damp * H.diagonal().mean();
  Eigen::LLT<MatD> llt(H);
  IK_CHECK(llt.info() == Eigen::Success, "sparsegpt: the damped Hessian is not positive definite");
  const MatD Hinv = llt.solve(MatD::Identity(k, k));
  Eigen::LLT<MatD> llt_inv(Hinv);
  IK_CHECK(llt_inv.info() == Eigen::Success, "sparsegpt: the inverse Hessian is not positive definite");
  return llt_inv.matrixU();
}

void prune_sparsegpt(float* w, int64_t rows, int64_t cols, const Pattern& p, const InputStats& stats, double damp,
                     int block) {
  check_pattern(p, cols);
  IK_CHECK(!stats.diag_only && stats.k == cols && stats.n > 0,
           "sparsegpt needs the full input statistics of {} columns (have k={}, n={})", cols, stats.k, stats.n);
  MatD H = Eigen::Map<const MatF>(stats.xtx.data(), cols, cols).cast<double>() * (2.0 / double(stats.n));
  MatD W = Eigen::Map<MatF>(w, rows, cols).cast<double>();
  for (int64_t j = 0; j < cols; ++j) {
    if (H(j, j) == 0) {  // an input that never fires: its weights are free to drop
      H(j, j) = 1;
      W.col(j).setZero();
    }
  }
  const MatD U = inverse_hessian_factor(std::move(H), damp);
  if (p.nm()) block = std::max(p.m, block / p.m * p.m);

  Eigen::Array<bool, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> mask;
  std::vector<double> score(cols);
  std::vector<int64_t> idx;
  for (int64_t i1 = 0; i1 < cols; i1 += block) {
    const int64_t i2 = std::min<int64_t>(i1 + block, cols), count = i2 - i1;
    MatD W1 = W.middleCols(i1, count);
    MatD Err1 = MatD::Zero(rows, count);
    mask.setConstant(rows, count, false);
    // Mask choice: lowest w^2 / [H^-1]_jj^2 (the OBS saliency), per row within the block
    // (unstructured) or per group of M when the sweep reaches it (N:M).
    auto choose = [&](int64_t from, int64_t size, int64_t drop) {
      idx.resize(size);
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t j = from; j < from + size; ++j) {
          const double d = U(i1 + j, i1 + j);
          score[j] = W1(r, j) * W1(r, j) / (d * d);
        }
        std::iota(idx.begin(), idx.end(), from);
        select_lowest(idx, drop, score);
        for (int64_t i = 0; i < drop; ++i) mask(r, idx[i]) = true;
      }
    };
    if (!p.nm()) choose(0, count, pruned_before(i2, p.sparsity) - pruned_before(i1, p.sparsity));
    for (int64_t i = 0; i < count; ++i) {
      if (p.nm() && i % p.m == 0) choose(i, p.m, p.n);
      const double d = U(i1 + i, i1 + i);
      Eigen::VectorXd err(rows);
      for (int64_t r = 0; r < rows; ++r) err[r] = mask(r, i) ? W1(r, i) / d : 0.0;
      // Compensate in the columns of the block not yet visited (column i itself becomes q).
      W1.rightCols(count - i).noalias() -= err * U.row(i1 + i).segment(i1 + i, count - i);
      for (int64_t r = 0; r < rows; ++r)
        if (mask(r, i)) W1(r, i) = 0.0;
      Err1.col(i) = err;
    }
    W.middleCols(i1, count) = W1;
    if (i2 < cols) W.rightCols(cols - i2).noalias() -= Err1 * U.block(i1, i2, count, cols - i2);
  }
  Eigen::Map<MatF>(w, rows, cols) = W.cast<float>();
}

void prune_matrix(Method method, float* w, int64_t rows, int64_t cols, const Pattern& p, const InputStats* stats) {
  switch (method) {
    case Method::magnitude: return prune_magnitude(w, rows, cols, p);
    case Method::wanda:
      IK_CHECK(stats, "wanda needs calibration activations");
      return prune_wanda(w, rows, cols, p, stats->column_norms());
    case Method::sparsegpt:
      IK_CHECK(stats, "sparsegpt needs calibration activations");
      return prune_sparsegpt(w, rows, cols, p, *stats);
  }
}

}  // namespace ik::llm::prune
