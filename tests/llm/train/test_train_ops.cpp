// Every backward of src/llm/train/ops.hpp against central finite differences of its forward
// (tolerance in gradcheck.hpp), on small random shapes.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.hpp"
#include "gradcheck.hpp"
#include "llm/train/ops.hpp"

using namespace ik;
using namespace ik::llm::train;
using train_test::dot;
using train_test::expect_grad;
using train_test::random_vec;

TEST(TrainOps, LinearBackward) {
  Rng rng(1, 0);
  const int64_t m = 5, k = 7, n = 6;
  auto x = random_vec(rng, m * k), w = random_vec(rng, n * k), b = random_vec(rng, n), r = random_vec(rng, m * n);
  std::vector<float> y(m * n);
  auto loss = [&] {
    linear_forward(x.data(), w.data(), b.data(), y.data(), m, k, n);
    return dot(r, y.data());
  };
  // Start the gradients at 1 to check that they accumulate rather than overwrite.
  std::vector<float> dx(m * k, 1.0f), dw(n * k, 1.0f), db(n, 1.0f);
  linear_backward(x.data(), w.data(), r.data(), dx.data(), dw.data(), db.data(), m, k, n);
  for (auto* g : {&dx, &dw, &db})
    for (auto& v : *g) v -= 1.0f;
  expect_grad("dx", x, dx, loss);
  expect_grad("dw", w, dw, loss);
  expect_grad("db", b, db, loss);
  // The forward against a direct sum.
  loss();
  double e = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = b[j];
      for (int64_t t = 0; t < k; ++t) s += double(x[i * k + t]) * w[j * k + t];
      e = std::max(e, std::fabs(s - y[i * n + j]));
    }
  EXPECT_LT(e, 1e-5);
}

TEST(TrainOps, RmsNormBackward) {
  Rng rng(2, 0);
  const int64_t m = 4, n = 9;
  const float eps = 1e-5f;
  auto x = random_vec(rng, m * n), w = random_vec(rng, n, 0.3f, 1.0f), r = random_vec(rng, m * n);
  std::vector<float> y(m * n);
  auto loss = [&] {
    backend::rms_norm(x.data(), w.data(), y.data(), m, n, eps);
    return dot(r, y.data());
  };
  std::vector<float> dx(m * n, 0.0f), dw(n, 0.0f);
  rms_norm_backward(x.data(), w.data(), r.data(), dx.data(), dw.data(), m, n, eps);
  expect_grad("dx", x, dx, loss);
  expect_grad("dweight", w, dw, loss);
}

TEST(TrainOps, RopeBackwardBothLayouts) {
  for (auto layout : {backend::RopeLayout::Adjacent, backend::RopeLayout::Half}) {
    Rng rng(3, int(layout));
    const int64_t m = 4;
    const int heads = 3, hd = 8;
    const auto rope = backend::Rope::make(hd, 10000.0, 1.0, {}, layout);
    const std::vector<int32_t> pos = {0, 3, 17, 250};
    auto x = random_vec(rng, m * heads * hd), r = random_vec(rng, m * heads * hd);
    std::vector<float> y;
    auto loss = [&] {
      y = x;
      rope.apply(y.data(), m, heads, hd, pos.data());
      return dot(r, y.data());
    };
    std::vector<float> d = r;
    rope_backward(rope, d.data(), m, heads, hd, pos.data());
    expect_grad(layout == backend::RopeLayout::Adjacent ? "adjacent" : "half", x, d, loss);
  }
}

namespace {
void check_attention(int n_head, int n_kv, int64_t m, int64_t n_keys, bool with_mask, uint64_t seed) {
  Rng rng(seed, 0);
  const int hd = 4;
  const AttentionShape s{m, n_keys, n_head, n_kv, hd};
  auto q = random_vec(rng, m * n_head * hd), k = random_vec(rng, n_keys * n_kv * hd),
       v = random_vec(rng, n_keys * n_kv * hd), r = random_vec(rng, m * n_head * hd);
  std::vector<uint8_t> mask;
  if (with_mask) {  // random visibility; row 1 sees nothing (zero output, zero gradient)
    mask.resize(m * n_keys);
    for (auto& b : mask) b = rng.uniform() < 0.6;
    for (int64_t j = 0; j < n_keys; ++j) mask[1 * n_keys + j] = 0;
  }
  const uint8_t* mp = with_mask ? mask.data() : nullptr;
  std::vector<float> out(m * n_head * hd), probs(n_head * m * n_keys);
  auto loss = [&] {
    attention_forward(s, q.data(), k.data(), v.data(), out.data(), probs.data(), mp);
    return dot(r, out.data());
  };
  loss();
  // The forward against a direct computation (double) for one head and row.
  for (int64_t i = 0; i < m; ++i) {
    const int h = n_head - 1, g = h / (n_head / n_kv);
    std::vector<double> p(n_keys);
    double mx = -1e300, sum = 0;
    for (int64_t j = 0; j < n_keys; ++j) {
      const bool vis = mp ? mp[i * n_keys + j] : j <= n_keys - m + i;
      double sc = 0;
      for (int t = 0; t < hd; ++t) sc += double(q[(i * n_head + h) * hd + t]) * k[(j * n_kv + g) * hd + t];
      p[j] = vis ? sc / 2.0 : -1e300;  // 1/sqrt(4)
      mx = std::max(mx, p[j]);
    }
    for (auto& e : p) sum += e <= -1e299 ? (e = 0) : (e = std::exp(e - mx));
    for (int t = 0; t < hd; ++t) {
      double o = 0;
      for (int64_t j = 0; j < n_keys; ++j) o += (sum > 0 ? p[j] / sum : 0) * v[(j * n_kv + g) * hd + t];
      EXPECT_NEAR(out[(i * n_head + h) * hd + t], o, 1e-5) << "row " << i;
    }
  }
  std::vector<float> dq(q.size(), 0.0f), dk(k.size(), 0.0f), dv(v.size(), 0.0f);
  attention_backward(s, q.data(), k.data(), v.data(), probs.data(), r.data(), dq.data(), dk.data(), dv.data());
  expect_grad("dq", q, dq, loss);
  expect_grad("dk", k, dk, loss);
  expect_grad("dv", v, dv, loss);
}
}  // namespace

TEST(TrainOps, AttentionBackwardCausalGrouped) { check_attention(4, 2, 6, 6, false, 4); }
TEST(TrainOps, AttentionBackwardMoreKeysThanQueries) { check_attention(2, 1, 3, 7, false, 5); }
TEST(TrainOps, AttentionBackwardExtraMask) { check_attention(3, 3, 5, 5, true, 6); }

TEST(TrainOps, SiluMulBackward) {
  Rng rng(7, 0);
  const int64_t n = 40;
  auto g = random_vec(rng, n, 2.0f), u = random_vec(rng, n), r = random_vec(rng, n);
  std::vector<float> y(n);
  auto loss = [&] {
    backend::silu_mul(g.data(), u.data(), y.data(), n);
    return dot(r, y.data());
  };
  std::vector<float> dg(n, 0.0f), du(n, 0.0f);
  silu_mul_backward(g.data(), u.data(), r.data(), dg.data(), du.data(), n);
  expect_grad("dgate", g, dg, loss);
  expect_grad("dup", u, du, loss);
}

TEST(TrainOps, EmbeddingScatterAdd) {
  Rng rng(8, 0);
  const int64_t vocab = 6, dim = 3;
  const std::vector<int32_t> toks = {2, 5, 2, 0};  // token 2 twice: its gradient rows add
  auto table = random_vec(rng, vocab * dim), r = random_vec(rng, toks.size() * dim);
  std::vector<float> y(toks.size() * dim);
  auto loss = [&] {
    embedding_forward(table.data(), vocab, toks.data(), int64_t(toks.size()), dim, y.data());
    return dot(r, y.data());
  };
  std::vector<float> dt(vocab * dim, 0.0f);
  embedding_backward(toks.data(), int64_t(toks.size()), dim, r.data(), dt.data());
  expect_grad("dtable", table, dt, loss);
  EXPECT_FLOAT_EQ(dt[2 * dim], r[0] + r[2 * dim]);
  EXPECT_EQ(dt[1 * dim], 0.0f);
  const std::vector<int32_t> bad = {6};
  EXPECT_THROW(embedding_forward(table.data(), vocab, bad.data(), 1, dim, y.data()), Error);
}

TEST(TrainOps, ResidualBackward) {
  const std::vector<float> dy = {1, -2, 3};
  std::vector<float> da = {1, 1, 1}, db = {0, 0, 0};
  residual_backward(dy.data(), da.data(), db.data(), 3);
  EXPECT_EQ(da, (std::vector<float>{2, -1, 4}));
  EXPECT_EQ(db, dy);
}

TEST(TrainOps, CrossEntropyHardTargets) {
  Rng rng(9, 0);
  const int64_t m = 4, vocab = 11;
  auto z = random_vec(rng, m * vocab, 2.0f);
  const std::vector<int32_t> t = {3, -1, 10, 0};  // row 1 not scored
  std::vector<float> d(m * vocab, 7.0f);
  const double l = cross_entropy(z.data(), t.data(), m, vocab, d.data());
  // Direct: mean of lse - z_t over the 3 scored rows.
  double expect = 0;
  for (int64_t i : {0, 2, 3}) {
    double s = 0;
    for (int64_t j = 0; j < vocab; ++j) s += std::exp(double(z[i * vocab + j]));
    expect += std::log(s) - z[i * vocab + t[i]];
  }
  EXPECT_NEAR(l, expect / 3, 1e-6);
  for (int64_t j = 0; j < vocab; ++j) EXPECT_EQ(d[vocab + j], 0.0f);
  expect_grad("dlogits", z, d, [&] { return cross_entropy(z.data(), t.data(), m, vocab, nullptr); });
}

TEST(TrainOps, SoftCrossEntropyDistillation) {
  Rng rng(10, 0);
  const int64_t m = 3, vocab = 8;
  auto z = random_vec(rng, m * vocab, 2.0f), teacher = random_vec(rng, m * vocab, 2.0f);
  std::vector<float> p(m * vocab);
  softmax_rows(teacher.data(), p.data(), m, vocab, 2.0f);
  for (int64_t i = 0; i < m; ++i) {
    double s = 0;
    for (int64_t j = 0; j < vocab; ++j) s += p[i * vocab + j];
    EXPECT_NEAR(s, 1.0, 1e-6);
  }
  std::vector<float> d(m * vocab);
  const double l = soft_cross_entropy(z.data(), p.data(), m, vocab, d.data());
  // Soft CE with a one-hot target equals the hard CE; and l >= entropy of p (Gibbs).
  double entropy = 0;
  for (float e : p) entropy -= e * std::log(double(e));
  EXPECT_GT(l, entropy / m);
  expect_grad("dlogits", z, d, [&] { return soft_cross_entropy(z.data(), p.data(), m, vocab, nullptr); });
  std::vector<float> onehot(m * vocab, 0.0f);
  const std::vector<int32_t> t = {1, 7, 4};
  for (int64_t i = 0; i < m; ++i) onehot[i * vocab + t[i]] = 1.0f;
  EXPECT_NEAR(soft_cross_entropy(z.data(), onehot.data(), m, vocab, nullptr),
              cross_entropy(z.data(), t.data(), m, vocab, nullptr), 1e-9);
}
