// CPU kernels against plain f32 arithmetic on the dequantized values.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "backend/cpu/matmul.hpp"
#include "backend/cpu/ops.hpp"
#include "backend/cpu/quant_dot.hpp"
#include "core/fp16.hpp"
#include "core/rng.hpp"
#include "io/dtype.hpp"

using namespace ik;
using namespace ik::backend;

namespace {

std::vector<float> randn(size_t n, uint64_t seed, float scale = 1.0f) {
  Rng r(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = float(r.normal()) * scale;
  return v;
}

// Random blocks in a stored format: a plausible f16 scale, random quant bytes.
std::vector<uint8_t> random_rows(io::DType t, int64_t rows, int64_t cols, uint64_t seed) {
  Rng r(seed);
  const size_t rb = io::row_bytes(t, cols);
  std::vector<uint8_t> buf(rb * rows);
  for (auto& b : buf) b = uint8_t(r.below(256));
  const auto& tr = io::dtype_traits(t);
  const int64_t nblocks = rows * cols / tr.block_size;
  for (int64_t b = 0; b < nblocks; ++b) {
    auto* h = reinterpret_cast<uint16_t*>(buf.data() + b * tr.block_bytes);
    h[0] = f32_to_fp16(float(r.uniform(0.001, 0.05)));
    if (t == io::DType::Q4_1) h[1] = f32_to_fp16(float(r.uniform(-0.2, 0.0)));
  }
  return buf;
}

std::vector<float> naive_matmul(const std::vector<float>& w, const std::vector<float>& x, int64_t n, int64_t k, int64_t m) {
  std::vector<float> y(m * n);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t c = 0; c < k; ++c) s += double(w[j * k + c]) * x[i * k + c];
      y[i * n + j] = float(s);
    }
  return y;
}

}  // namespace

TEST(QuantDot, EveryIsaEqualsScalarReference) {
  const int64_t k = 32 * 37;  // odd block count exercises the tails
  auto x = randn(k, 1);
  std::vector<ActQ8> xq(k / 32);
  quantize_act_q8(x.data(), xq.data(), k);
  for (io::DType t : {io::DType::Q4_0, io::DType::Q4_1, io::DType::Q8_0}) {
    auto kernels = quant_dot_kernels(t);
    ASSERT_FALSE(kernels.empty());
    EXPECT_STREQ(kernels.back().isa, "scalar");
    auto w = random_rows(t, 1, k, 7);
    const float ref = kernels.back().fn(w.data(), xq.data(), k / 32);
    for (const auto& kern : kernels)
      EXPECT_NEAR(kern.fn(w.data(), xq.data(), k / 32), ref, 1e-4f * (1 + std::fabs(ref)))
          << io::dtype_name(t) << " " << kern.isa;
  }
}

TEST(QuantDot, ActivationQuantizationErrorIsBounded) {
  const int64_t k = 4096;
  auto x = randn(k, 3);
  std::vector<ActQ8> xq(k / 32);
  quantize_act_q8(x.data(), xq.data(), k);
  for (int64_t b = 0; b < k / 32; ++b) {
    int sum = 0;
    for (int i = 0; i < 32; ++i) {
      EXPECT_LE(std::fabs(xq[b].qs[i] * xq[b].d - x[b * 32 + i]), 0.5f * xq[b].d + 1e-7f);
      sum += xq[b].qs[i];
    }
    EXPECT_FLOAT_EQ(xq[b].s, xq[b].d * sum);
  }
}

// Every matmul path against f64 arithmetic on the dequantized weights. The bound covers the
// 8-bit activation rounding: relative error of the output vector in the 2-norm.
TEST(Matmul, AllPathsMatchDequantizedReference) {
  for (io::DType t : {io::DType::F32, io::DType::Q4_0, io::DType::Q4_1, io::DType::Q8_0, io::DType::F16}) {
    for (int64_t m : {1, 3, 17}) {
      const int64_t n = 45, k = 320;
      std::vector<uint8_t> raw;
      if (t == io::DType::F32) {
        auto f = randn(n * k, 11, 0.05f);
        raw.assign(reinterpret_cast<uint8_t*>(f.data()), reinterpret_cast<uint8_t*>(f.data() + f.size()));
      } else if (t == io::DType::F16) {
        auto f = randn(n * k, 11, 0.05f);
        raw.resize(n * k * 2);
        for (int64_t i = 0; i < n * k; ++i) reinterpret_cast<uint16_t*>(raw.data())[i] = f32_to_fp16(f[i]);
      } else {
        raw = random_rows(t, n, k, 5);
      }
      std::vector<float> wf(n * k);
      io::dequantize(t, raw.data(), wf.data(), n * k);
      auto x = randn(m * k, 9);
      auto expect = naive_matmul(wf, x, n, k, m);
      for (auto mode : {WeightMatrix::Mode::Fast, WeightMatrix::Mode::Reference}) {
        auto w = WeightMatrix::prepare(t, n, k, raw.data(), mode);
        std::vector<float> y(m * n, NAN);
        matmul(w, x.data(), y.data(), m);
        double err = 0, norm = 0;
        for (int64_t i = 0; i < m * n; ++i) {
          err += (y[i] - expect[i]) * (y[i] - expect[i]);
          norm += expect[i] * expect[i];
        }
        const bool exact = w.type == io::DType::F32;
        EXPECT_LT(std::sqrt(err / norm), exact ? 1e-5 : 2e-2)
            << io::dtype_name(t) << " m=" << m << " mode=" << int(mode);
      }
    }
  }
}

TEST(Ops, RmsNormAndSiluMul) {
  std::vector<float> x{1, -2, 3, -4}, w{1, 2, 3, 4}, out(4);
  rms_norm(x.data(), w.data(), out.data(), 1, 4, 0.0f);
  const float rms = std::sqrt((1 + 4 + 9 + 16) / 4.0f);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(out[i], x[i] / rms * w[i], 1e-6);
  std::vector<float> g{0.5f, -1.0f}, u{2.0f, 3.0f}, o(2);
  silu_mul(g.data(), u.data(), o.data(), 2);
  EXPECT_NEAR(o[0], 0.5f / (1 + std::exp(-0.5f)) * 2, 1e-6);
  EXPECT_NEAR(o[1], -1.0f / (1 + std::exp(1.0f)) * 3, 1e-6);
}

// The two rotary layouts are the same rotation after permuting dimensions the way the GGUF
// converter permutes Q/K rows.
TEST(Ops, RopeLayoutsAgreeUnderPermutation) {
  const int d = 8;
  auto x = randn(d, 4);
  std::vector<float> adj(d), half = x;
  for (int i = 0; i < d / 2; ++i) {
    adj[2 * i] = x[i];
    adj[2 * i + 1] = x[i + d / 2];
  }
  int32_t pos = 13;
  Rope::make(d, 10000, 1, {}, RopeLayout::Adjacent).apply(adj.data(), 1, 1, d, &pos);
  Rope::make(d, 10000, 1, {}, RopeLayout::Half).apply(half.data(), 1, 1, d, &pos);
  for (int i = 0; i < d / 2; ++i) {
    EXPECT_NEAR(adj[2 * i], half[i], 1e-6);
    EXPECT_NEAR(adj[2 * i + 1], half[i + d / 2], 1e-6);
  }
  // Rotation preserves the norm.
  double n0 = 0, n1 = 0;
  for (int i = 0; i < d; ++i) n0 += x[i] * x[i], n1 += half[i] * half[i];
  EXPECT_NEAR(n0, n1, 1e-5);
}

// Attention against a direct softmax(QK^T/sqrt(d))V with grouped heads, causal and tree masks.
TEST(Ops, AttentionMatchesDirectComputation) {
  const int n_head = 4, n_kv = 2, hd = 8;
  const int64_t n_past = 5, m = 3, n_keys = n_past + m;
  auto q = randn(m * n_head * hd, 21), k = randn(n_keys * n_kv * hd, 22), v = randn(n_keys * n_kv * hd, 23);
  const uint8_t tree[9] = {1, 0, 0, 1, 1, 0, 1, 0, 1};  // query 2 sees itself and query 0 only
  for (const uint8_t* mask : {(const uint8_t*)nullptr, tree}) {
    std::vector<float> out(m * n_head * hd, NAN);
    attention(q.data(), k.data(), v.data(), out.data(), m, n_past, n_head, n_kv, hd, mask);
    for (int64_t i = 0; i < m; ++i)
      for (int h = 0; h < n_head; ++h) {
        const int kvh = h / (n_head / n_kv);
        std::vector<double> p(n_keys, 0.0);
        double mx = -1e300, sum = 0;
        auto visible = [&](int64_t j) {
          if (j < n_past) return true;
          return mask ? mask[i * m + (j - n_past)] != 0 : j <= n_past + i;
        };
        for (int64_t j = 0; j < n_keys; ++j)
          if (visible(j)) {
            double s = 0;
            for (int d = 0; d < hd; ++d) s += q[(i * n_head + h) * hd + d] * k[(j * n_kv + kvh) * hd + d];
            p[j] = s / std::sqrt(double(hd));
            mx = std::max(mx, p[j]);
          }
        for (int64_t j = 0; j < n_keys; ++j) sum += p[j] = visible(j) ? std::exp(p[j] - mx) : 0.0;
        for (int d = 0; d < hd; ++d) {
          double o = 0;
          for (int64_t j = 0; j < n_keys; ++j) o += p[j] / sum * v[(j * n_kv + kvh) * hd + d];
          EXPECT_NEAR(out[(i * n_head + h) * hd + d], o, 1e-5);
        }
      }
  }
}

// The repacked Q4_1 layout gives the same dot as the stored blocks (same integer sums; only
// the order of float additions differs).
TEST(QuantDot, RepackedQ4_1MatchesStored) {
  if (!q4_1x4_available()) GTEST_SKIP() << "no AVX-512 VNNI on this CPU";
  for (int64_t nb : {1, 3, 4, 18, 48, 129}) {
    const int64_t k = 32 * nb;
    auto x = randn(k, 40 + nb);
    std::vector<ActQ8> xq(nb);
    quantize_act_q8(x.data(), xq.data(), k);
    std::vector<uint8_t> xq4(act_q8x4_bytes(k));
    quantize_act_q8x4(x.data(), xq4.data(), k);
    auto w = random_rows(io::DType::Q4_1, 1, k, 90 + nb);
    std::vector<uint8_t> packed(w.size());
    repack_q4_1x4(w.data(), packed.data(), nb);
    const float ref = quant_dot_kernels(io::DType::Q4_1).back().fn(w.data(), xq.data(), nb);
    EXPECT_NEAR(dot_q4_1x4(packed.data(), xq4.data(), nb), ref, 1e-4f * (1 + std::fabs(ref))) << nb;
    // Four activation rows at once: row r gets activations scaled by r + 1.
    std::vector<std::vector<uint8_t>> xs(4, std::vector<uint8_t>(act_q8x4_bytes(k)));
    const uint8_t* rows[4];
    float expect[4], got[4];
    for (int r = 0; r < 4; ++r) {
      std::vector<float> xr(x);
      for (auto& v : xr) v *= float(r + 1);
      quantize_act_q8x4(xr.data(), xs[r].data(), k);
      rows[r] = xs[r].data();
      expect[r] = dot_q4_1x4(packed.data(), rows[r], nb);
    }
    dot_q4_1x4_rows4(packed.data(), rows, nb, got);
    for (int r = 0; r < 4; ++r) EXPECT_NEAR(got[r], expect[r], 1e-5f * (1 + std::fabs(expect[r]))) << nb << " row " << r;
  }
}
