// Each CUDA operation against the CPU backend on random inputs (label gpu: skipped without a
// GPU). Inputs are rounded to bf16 first where the device stores bf16, so the bounds measure
// the kernels' arithmetic, not the storage format. Outputs are poisoned (NaN) before each run.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "backend/cpu/ops.hpp"
#include "backend/cuda/cuda.hpp"
#include "cuda_test.hpp"
#include "core/error.hpp"
#include "core/fp16.hpp"
#include "core/rng.hpp"

namespace cuda = ik::backend::cuda;
using cuda::bf16;

namespace {

using CudaOps = CudaTest;

std::vector<float> random_vec(size_t n, uint64_t seed, float scale = 1.0f) {
  ik::Rng rng(seed, 7);
  std::vector<float> v(n);
  for (auto& x : v) x = float(rng.uniform(-scale, scale));
  return v;
}

std::vector<bf16> to_bf16(const std::vector<float>& v) {
  std::vector<bf16> o(v.size());
  for (size_t i = 0; i < v.size(); ++i) o[i] = ik::f32_to_bf16(v[i]);
  return o;
}

std::vector<float> to_f32(const std::vector<bf16>& v) {
  std::vector<float> o(v.size());
  for (size_t i = 0; i < v.size(); ++i) o[i] = ik::bf16_to_f32(v[i]);
  return o;
}

std::vector<float> bf16_round(const std::vector<float>& v) { return to_f32(to_bf16(v)); }

// max |a - b| / (max |b| + tiny), and no NaN anywhere (catches unwritten outputs).
double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double d = 0, m = 1e-20;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_FALSE(std::isnan(a[i])) << "unwritten or NaN output at " << i;
    d = std::max(d, double(std::fabs(a[i] - b[i])));
    m = std::max(m, double(std::fabs(b[i])));
  }
  return d / m;
}

}  // namespace

TEST_F(CudaOps, EmbedGathersRows) {
  const int V = 100, E = 96, m = 7;
  auto table = to_bf16(random_vec(V * E, 1));
  std::vector<int32_t> tok = {0, 5, 99, 42, 5, 17, 63};
  Buf<bf16> t(table);
  Buf<int32_t> d_tok(tok);
  Buf<float> out(m * E);
  cuda::embed(t.p, d_tok.p, m, E, out.p);
  auto got = out.get();
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < E; ++j) ASSERT_EQ(got[i * E + j], ik::bf16_to_f32(table[tok[i] * E + j]));
}

// Widths read as float4 (4096, 576) and one element at a time (1001; and 576 from a row that
// starts off 16-byte alignment).
TEST_F(CudaOps, RmsNormMatchesCpu) {
  for (int n : {4096, 576, 1001}) {
    for (int offset : {0, 1}) {
      const int rows = 5;
      auto x = random_vec(size_t(rows) * n + offset, 2, 3.0f), w = random_vec(n, 3);
      std::vector<float> ref(size_t(rows) * n);
      ik::backend::rms_norm(x.data() + offset, w.data(), ref.data(), rows, n, 1e-5f);
      Buf<float> dx(x), dw(w);
      Buf<bf16> out(size_t(rows) * n);
      cuda::rms_norm(dx.p + offset, dw.p, out.p, rows, n, 1e-5f);
      EXPECT_LT(rel_err(to_f32(out.get()), ref), 1e-2) << "n " << n << " offset " << offset;  // bf16: 2^-8
    }
  }
}

// The norm that also clears the next product's output (lookup-table products add into it): the
// first clear_n floats of each row zeroed, the rest of the row stride untouched (still NaN).
TEST_F(CudaOps, RmsNormClearsTheNextOutput) {
  const int rows = 3, n = 4096, clear_n = 6144 + 33, ld = clear_n + 7;
  auto x = random_vec(size_t(rows) * n, 2, 3.0f), w = random_vec(n, 3);
  std::vector<float> ref(size_t(rows) * n);
  ik::backend::rms_norm(x.data(), w.data(), ref.data(), rows, n, 1e-5f);
  Buf<float> dx(x), dw(w), clear(size_t(rows) * ld);
  Buf<bf16> out(size_t(rows) * n);
  cuda::rms_norm(dx.p, dw.p, out.p, rows, n, 1e-5f, clear.p, clear_n, ld);
  EXPECT_LT(rel_err(to_f32(out.get()), ref), 1e-2);
  const auto got = clear.get();
  for (int r = 0; r < rows; ++r)
    for (int j = 0; j < ld; ++j) {
      const float v = got[size_t(r) * ld + j];
      if (j < clear_n) ASSERT_EQ(v, 0.0f) << "row " << r << " column " << j;
      else ASSERT_TRUE(std::isnan(v)) << "row " << r << " column " << j << " past clear_n was written";
    }
}

TEST_F(CudaOps, MatmulMatchesF32Reference) {
  for (int m : {1, 3, 16, 53}) {
    const int n = 384, k = 576;
    auto x = bf16_round(random_vec(m * k, 4)), w = bf16_round(random_vec(n * k, 5));
    auto y0 = random_vec(m * n, 6);
    for (bool acc : {false, true}) {
      std::vector<float> ref(m * n);
      for (int i = 0; i < m; ++i)
        for (int j = 0; j < n; ++j) {
          double s = acc ? y0[i * n + j] : 0.0;
          for (int t = 0; t < k; ++t) s += double(x[i * k + t]) * w[j * k + t];
          ref[i * n + j] = float(s);
        }
      Buf<bf16> dx(to_bf16(x)), dw(to_bf16(w));
      Buf<float> dy(m * n);
      if (acc) cuda::upload(dy.p, y0.data(), y0.size() * 4);
      cuda::matmul(dx.p, dw.p, dy.p, m, n, k, acc);
      EXPECT_LT(rel_err(dy.get(), ref), 1e-4) << "m=" << m << " accumulate=" << acc;  // fp32 accumulation
    }
  }
}

// A decode product kernel (y = x W^T for m <= 4 rows, or y += with accumulate) against an f64
// reference, with y of leading dimension n + 3: columns it must not touch stay poisoned.
using ProductKernel = void (*)(const cuda::bf16*, const cuda::bf16*, float*, int, int, int, bool, int);
static void expect_product_matches(ProductKernel kernel, int m, int n, int k) {
  const int ldy = n + 3;
  auto x = bf16_round(random_vec(size_t(m) * k, 40 + m)), w = bf16_round(random_vec(size_t(n) * k, 41));
  auto y0 = random_vec(size_t(m) * ldy, 42);
  Buf<bf16> dx(to_bf16(x)), dw(to_bf16(w));
  for (bool acc : {false, true}) {
    std::vector<float> ref(size_t(m) * n), got(size_t(m) * n);
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) {
        double sum = acc ? y0[size_t(i) * ldy + j] : 0.0;
        for (int t = 0; t < k; ++t) sum += double(x[size_t(i) * k + t]) * w[size_t(j) * k + t];
        ref[size_t(i) * n + j] = float(sum);
      }
    Buf<float> dy(size_t(m) * ldy);
    if (acc) cuda::upload(dy.p, y0.data(), y0.size() * 4);
    kernel(dx.p, dw.p, dy.p, m, n, k, acc, ldy);
    const auto y = dy.get();
    for (int i = 0; i < m; ++i) {
      for (int j = 0; j < n; ++j) got[size_t(i) * n + j] = y[size_t(i) * ldy + j];
      for (int j = n; j < ldy; ++j) {
        const float v = y[size_t(i) * ldy + j];
        EXPECT_TRUE(acc ? v == y0[size_t(i) * ldy + j] : std::isnan(v)) << "column " << j << " past n touched";
      }
    }
    EXPECT_LT(rel_err(got, ref), 1e-4) << "n=" << n << " k=" << k << " m=" << m << " accumulate=" << acc;
  }
}

// The decode kernel behind matmul for m <= 4: rows past a multiple of its chunk, more rows than
// one resident wave of warps (each warp strides).
TEST_F(CudaOps, MatvecMatchesF32Reference) {
  struct Shape {
    int n, k;
  };
  for (Shape s : {Shape{1, 8}, Shape{37, 4104}, Shape{300, 14336}, Shape{50000, 64}})
    for (int m = 1; m <= 4; ++m) {
      Buf<bf16> probe(8);
      ASSERT_TRUE(cuda::matvec_fits(probe.p, probe.p, m, s.n, s.k));
      expect_product_matches(cuda::matvec, m, s.n, s.k);
    }
  Buf<bf16> odd(64);
  EXPECT_FALSE(cuda::matvec_fits(odd.p, odd.p, 1, 4, 12)) << "k not a multiple of 8";
  EXPECT_FALSE(cuda::matvec_fits(odd.p + 1, odd.p, 1, 4, 16)) << "x not 16-byte aligned";
  EXPECT_FALSE(cuda::matvec_fits(odd.p, odd.p, 5, 4, 16)) << "more than 4 rows";
  EXPECT_TRUE(cuda::matvec_fits(odd.p, odd.p, 1, 4096, 4096)) << "one row: up to 32 MiB of weights";
  EXPECT_FALSE(cuda::matvec_fits(odd.p, odd.p, 2, 4096, 4104)) << "two rows, k not streamed: up to 16 MiB";
  EXPECT_FALSE(cuda::matvec_fits(odd.p, odd.p, 1, 4104, 4104)) << "one row, past 32 MiB, k not streamed: cuBLAS's";
  EXPECT_TRUE(cuda::matvec_streams(odd.p, odd.p, 1, 28672, 4096)) << "one row of a large matrix: streamed";
  EXPECT_TRUE(cuda::matvec_fits(odd.p, odd.p, 1, 28672, 4096));
  EXPECT_TRUE(cuda::matvec_streams(odd.p, odd.p, 2, 28672, 4096)) << "two rows of a large matrix: streamed";
  EXPECT_FALSE(cuda::matvec_streams(odd.p, odd.p, 3, 28672, 4096)) << "three rows of a large matrix: cuBLAS's";
  EXPECT_FALSE(cuda::matvec_streams(odd.p, odd.p, 1, 960, 2048)) << "small matrices: the load-based kernel";
  EXPECT_TRUE(cuda::matvec_fits(odd.p, odd.p, 1, 49152, 576)) << "one row of short rows (an LM head): any size";
  EXPECT_FALSE(cuda::matvec_fits(odd.p, odd.p, 2, 49152, 576)) << "two rows of short rows: up to 16 MiB";
  EXPECT_THROW(cuda::matvec(odd.p + 1, odd.p, nullptr, 1, 4, 16, false, 4), ik::Error);
}

// The streaming matvec (large matrices): one row, fewer rows than warps, more rows than one wave
// of warps (several rows per warp), long rows (7 copies each), 1-4 rows of x.
TEST_F(CudaOps, StreamMatvecMatchesF32Reference) {
  struct Case {
    int m, n, k;
  };
  for (Case c : {Case{1, 1, 2048}, Case{1, 37, 4096}, Case{4, 37, 4096}, Case{1, 3000, 4096}, Case{3, 3000, 4096},
                 Case{1, 300, 14336}, Case{2, 300, 14336}}) {
    Buf<bf16> probe(8);
    ASSERT_TRUE(cuda::stream_matvec_fits(probe.p, probe.p, c.m, c.n, c.k));
    expect_product_matches(cuda::stream_matvec, c.m, c.n, c.k);
  }
  Buf<bf16> odd(64);
  EXPECT_FALSE(cuda::stream_matvec_fits(odd.p, odd.p, 1, 4, 4104)) << "k not a multiple of 2048";
  EXPECT_FALSE(cuda::stream_matvec_fits(odd.p, odd.p, 3, 4, 14336)) << "rows of x past 64 KB";
  EXPECT_FALSE(cuda::stream_matvec_fits(odd.p, odd.p, 5, 4, 4096)) << "more than 4 rows";
  EXPECT_FALSE(cuda::stream_matvec_fits(odd.p + 1, odd.p, 1, 4, 4096)) << "x not 16-byte aligned";
  EXPECT_THROW(cuda::stream_matvec(odd.p, odd.p, nullptr, 1, 4, 4104, false, 4), ik::Error);
}

// The decode step's norm + product in one kernel against rms_norm then matvec on the same
// inputs (rows of 576, 4104 and an accumulated product with a leading dimension).
TEST_F(CudaOps, MatvecRmsNormMatchesNormThenMatvec) {
  struct Shape {
    int n, k;
  };
  // 4100 x 4096 (32 MiB): the streaming kernel (1-2 rows; the model fuses one).
  for (Shape sh : {Shape{960, 576}, Shape{37, 4104}, Shape{4100, 4096}})
    for (int m = 1; m <= 4; ++m)
      for (bool acc : {false, true}) {
        const int n = sh.n, k = sh.k, ldy = n + 5;
        auto x = random_vec(size_t(m) * k, 60 + m, 3.0f), g = random_vec(k, 61);
        auto w = bf16_round(random_vec(size_t(n) * k, 62));
        auto y0 = random_vec(size_t(m) * ldy, 63);
        Buf<float> dx(x), dg(g), y_ref(y0), y_fused(y0);
        Buf<bf16> dw(to_bf16(w)), xn(size_t(m) * k);
        EXPECT_EQ(cuda::matvec_rms_norm_fits(dx.p, dg.p, dw.p, m, n, k), m == 1);  // the model fuses one row
        cuda::rms_norm(dx.p, dg.p, xn.p, m, k, 1e-5f);
        cuda::matvec(xn.p, dw.p, y_ref.p, m, n, k, acc, ldy);
        cuda::matvec_rms_norm(dx.p, dg.p, 1e-5f, dw.p, y_fused.p, m, n, k, acc, ldy);
        EXPECT_LT(rel_err(y_fused.get(), y_ref.get()), 1e-3) << "n " << n << " k " << k << " m " << m << " acc " << acc;
      }
  Buf<float> f(8192 * 4 + 4);
  Buf<bf16> w(64);
  EXPECT_FALSE(cuda::matvec_rms_norm_fits(f.p, f.p + 1, w.p, 1, 4, 16)) << "norm weight not 16-byte aligned";
  EXPECT_FALSE(cuda::matvec_rms_norm_fits(f.p, f.p, w.p, 1, 8, 32768)) << "64 KB of normalised rows";
  EXPECT_THROW(cuda::matvec_rms_norm(f.p + 1, f.p, 1e-5f, w.p, nullptr, 1, 4, 16, false, 4), ik::Error);
}

// A failed CUDA call is reported by that call only: the next kernel's check does not inherit it
// (it did: a failed cudaFuncSetAttribute once surfaced as "CUDA error in rope_and_store_kv").
TEST_F(CudaOps, FailedCallIsNotBlamedOnTheNextKernel) {
  std::vector<float> host(4, 1.0f);
  EXPECT_THROW(cuda::upload(nullptr, host.data(), host.size() * 4), ik::Error);
  Buf<float> x(host), w(host);
  Buf<bf16> out(4);
  EXPECT_NO_THROW(cuda::rms_norm(x.p, w.p, out.p, 1, 4, 1e-5f));
  EXPECT_NO_THROW(cuda::sync());
}

TEST_F(CudaOps, RopeAndKvStoreMatchCpu) {
  for (auto layout : {ik::backend::RopeLayout::Adjacent, ik::backend::RopeLayout::Half}) {
    const int m = 6, H = 4, KVH = 2, hd = 64, n_ctx = 40, n_seq = 2;
    const int Q = H * hd, KV = KVH * hd, W = Q + 2 * KV;
    auto qkv = random_vec(m * W, 7);
    std::vector<int32_t> pos = {0, 1, 7, 300, 4095, 12}, seq = {0, 1, 1, 0, 1, 0}, row = {0, 3, 39, 5, 6, 7};
    auto rope = ik::backend::Rope::make(hd, 10000.0, 1.0, {}, layout);
    Buf<float> d_qkv(qkv), d_freq(rope.inv_freq);
    Buf<int32_t> d_pos(pos), d_seq(seq), d_row(row);
    Buf<bf16> kc(size_t(n_seq) * n_ctx * KV), vc(size_t(n_seq) * n_ctx * KV);
    cuda::rope_and_store_kv(d_qkv.p, m, H, KVH, hd, d_pos.p, d_seq.p, d_row.p, d_freq.p,
                            layout == ik::backend::RopeLayout::Half, kc.p, vc.p, n_ctx);
    auto got = d_qkv.get();
    auto k_all = to_f32(kc.get()), v_all = to_f32(vc.get());
    for (int i = 0; i < m; ++i) {
      std::vector<float> q(qkv.begin() + i * W, qkv.begin() + i * W + Q);
      std::vector<float> k(qkv.begin() + i * W + Q, qkv.begin() + i * W + Q + KV);
      rope.apply(q.data(), 1, H, hd, &pos[i]);
      rope.apply(k.data(), 1, KVH, hd, &pos[i]);
      std::vector<float> gq(got.begin() + i * W, got.begin() + i * W + Q);
      EXPECT_LT(rel_err(gq, q), 1e-5);
      const size_t base = (size_t(seq[i]) * n_ctx + row[i]) * KV;
      std::vector<float> gk(k_all.begin() + base, k_all.begin() + base + KV);
      std::vector<float> gv(v_all.begin() + base, v_all.begin() + base + KV);
      std::vector<float> v(qkv.begin() + i * W + Q + KV, qkv.begin() + (i + 1) * W);
      EXPECT_LT(rel_err(gk, k), 1e-2);  // stored as bf16
      EXPECT_LT(rel_err(gv, v), 1e-2);
    }
  }
}

TEST_F(CudaOps, SiluMulMatchesCpu) {
  const int m = 3, F = 1536;
  auto gu = random_vec(m * 2 * F, 8, 4.0f);
  std::vector<float> ref(m * F);
  for (int i = 0; i < m; ++i)
    ik::backend::silu_mul(gu.data() + i * 2 * F, gu.data() + i * 2 * F + F, ref.data() + i * F, F);
  Buf<float> d(gu);
  Buf<bf16> out(m * F);
  cuda::silu_mul(d.p, out.p, m, F);
  EXPECT_LT(rel_err(to_f32(out.get()), ref), 1e-2);
}

// Attention: the CPU backend on the same bf16 K/V is the reference.
struct AttnCase {
  int n_past, m, H, KVH, hd;
  bool tree;
};

TEST_F(CudaOps, PrefillAttentionMatchesCpu) {
  for (AttnCase c : {AttnCase{0, 1, 4, 4, 64, false}, AttnCase{0, 37, 4, 2, 64, false}, AttnCase{50, 33, 8, 2, 128, false},
                     AttnCase{130, 65, 9, 3, 64, false}, AttnCase{20, 15, 4, 1, 128, true},
                     AttnCase{7, 100, 8, 2, 64, true}, AttnCase{300, 200, 4, 1, 128, false},
                     AttnCase{700, 16, 9, 3, 64, true}, AttnCase{1000, 64, 32, 8, 128, true},
                     AttnCase{0, 20, 2, 1, 64, true}}) {
    const int Q = c.H * c.hd, KV = c.KVH * c.hd, W = Q + 2 * KV, n = c.n_past + c.m;
    auto q = random_vec(c.m * W, 9, 2.0f);
    auto k = bf16_round(random_vec(n * KV, 10, 2.0f)), v = bf16_round(random_vec(n * KV, 11));
    std::vector<uint8_t> mask;
    if (c.tree) {  // a node sees itself and some earlier nodes: a random tree (parent < child)
      ik::Rng rng(12, 0);
      mask.assign(c.m * c.m, 0);
      for (int i = 0; i < c.m; ++i) {
        mask[i * c.m + i] = 1;
        if (i > 0) {
          const int parent = int(rng.below(i));
          for (int j = 0; j < c.m; ++j) mask[i * c.m + j] |= mask[parent * c.m + j];
        }
      }
    }
    std::vector<float> qd(c.m * Q), ref(c.m * Q);
    for (int i = 0; i < c.m; ++i) std::copy(q.begin() + i * W, q.begin() + i * W + Q, qd.begin() + i * Q);
    ik::backend::attention(qd.data(), k.data(), v.data(), ref.data(), c.m, c.n_past, c.H, c.KVH, c.hd,
                           c.tree ? mask.data() : nullptr);
    Buf<float> dq(q);
    Buf<bf16> dk(to_bf16(k)), dv(to_bf16(v));
    Buf<uint8_t> dm(c.tree ? mask : std::vector<uint8_t>(1));
    // With scratch, few queries split the keys over more blocks (some slices may hold no key).
    for (bool split : {false, true}) {
      Buf<bf16> out(c.m * Q);
      Buf<float> scratch(split ? cuda::attention_decode_scratch_floats(c.m, c.H, c.hd) : 1);
      cuda::attention_prefill(dq.p, W, dk.p, dv.p, out.p, c.m, c.n_past, c.H, c.KVH, c.hd, c.tree ? dm.p : nullptr, 0,
                              nullptr, split ? scratch.p : nullptr);
      EXPECT_LT(rel_err(to_f32(out.get()), ref), 2e-2)
          << "n_past " << c.n_past << " m " << c.m << " tree " << c.tree << " split " << split;
    }
  }
}

// The blocks of ring and striped attention: causal with a shifted diagonal (key j visible to
// query i iff j <= i + diag; -1 is "strictly earlier") and a full block of past rows only.
TEST_F(CudaOps, PrefillAttentionDiagonalBlocksMatchCpu) {
  struct Block {
    int n_past, m, diag;
  };
  for (Block b : {Block{0, 70, -1}, Block{0, 45, 3}, Block{64, 40, -40}, Block{0, 33, 0}}) {
    const int H = 8, KVH = 2, hd = 64, Q = H * hd, KV = KVH * hd, W = Q + 2 * KV, n = b.n_past + b.m;
    auto q = random_vec(b.m * W, 21, 2.0f);
    auto k = bf16_round(random_vec(n * KV, 22, 2.0f)), v = bf16_round(random_vec(n * KV, 23));
    std::vector<uint8_t> mask(b.m * b.m);
    for (int i = 0; i < b.m; ++i)
      for (int j = 0; j < b.m; ++j) mask[i * b.m + j] = j <= i + b.diag;
    std::vector<float> qd(b.m * Q), ref(b.m * Q);
    for (int i = 0; i < b.m; ++i) std::copy(q.begin() + i * W, q.begin() + i * W + Q, qd.begin() + i * Q);
    ik::backend::attention(qd.data(), k.data(), v.data(), ref.data(), b.m, b.n_past, H, KVH, hd, mask.data());
    Buf<float> dq(q);
    Buf<bf16> dk(to_bf16(k)), dv(to_bf16(v)), out(b.m * Q);
    cuda::attention_prefill(dq.p, W, dk.p, dv.p, out.p, b.m, b.n_past, H, KVH, hd, nullptr, b.diag);
    EXPECT_LT(rel_err(to_f32(out.get()), ref), 2e-2) << "n_past " << b.n_past << " m " << b.m << " diag " << b.diag;
  }
}

// Context-parallel pieces: attention over keys split into blocks, each block's f32 output and
// log-sum-exp merged online, equals attention over all keys at once (the CPU reference); a
// query with no visible key in a block (lse = -inf) leaves the accumulator unchanged.
TEST_F(CudaOps, AttentionBlocksMergeToFullAttention) {
  // m = 70: tensor cores; m = 9: the CUDA-core kernel's partial output (context-parallel decode).
  for (auto [hd, m] : {std::pair{64, 70}, std::pair{128, 70}, std::pair{64, 9}, std::pair{128, 1}}) {
    const int H = 8, KVH = 2, Q = H * hd, KV = KVH * hd, n_past = 150, n = n_past + m, split = 90;
    auto q = random_vec(m * Q, 31, 2.0f);
    auto k = bf16_round(random_vec(n * KV, 32, 2.0f)), v = bf16_round(random_vec(n * KV, 33));
    std::vector<float> ref(m * Q);
    ik::backend::attention(q.data(), k.data(), v.data(), ref.data(), m, n_past, H, KVH, hd, nullptr);
    Buf<float> dq(q), acc_o(m * Q), acc_lse(m * H), o(m * Q), lse(m * H);
    Buf<bf16> dk(to_bf16(k)), dv(to_bf16(v));
    cuda::fill_f32(acc_o.p, m * Q, 0.0f);
    cuda::fill_f32(acc_lse.p, m * H, -INFINITY);
    // Three blocks: keys [split, n_past) plus the causal new rows; keys [0, split) (full); and
    // a block with no visible key (no past rows, diag -m: lse -inf everywhere).
    cuda::attention_block(dq.p, Q, dk.p + split * KV, dv.p + split * KV, m, n_past - split, H, KVH, hd, 0, o.p, lse.p);
    cuda::attention_merge(acc_o.p, acc_lse.p, o.p, lse.p, m, H, hd);
    cuda::attention_block(dq.p, Q, dk.p, dv.p, m, split, H, KVH, hd, -m, o.p, lse.p);
    cuda::attention_merge(acc_o.p, acc_lse.p, o.p, lse.p, m, H, hd);
    cuda::attention_block(dq.p, Q, dk.p, dv.p, m, 0, H, KVH, hd, -m, o.p, lse.p);
    const auto empty = lse.get();
    for (float e : empty) EXPECT_EQ(e, -INFINITY);
    cuda::attention_merge(acc_o.p, acc_lse.p, o.p, lse.p, m, H, hd);
    // Passes of >= 16 rows run on tensor cores: q and the probabilities in bf16.
    EXPECT_LT(rel_err(acc_o.get(), ref), 1e-2) << "head_dim " << hd;
    // The merged log-sum-exp is that of all keys: check one (row, head) on the host.
    const int row = std::min(5, m - 1), h = 3, kvh = h / (H / KVH);
    double mx = -1e30, sum = 0;
    std::vector<double> sc;
    for (int j = 0; j <= n_past + row; ++j) {
      double dot = 0;
      for (int d = 0; d < hd; ++d) dot += double(q[row * Q + h * hd + d]) * k[j * KV + kvh * hd + d];
      sc.push_back(dot / std::sqrt(double(hd)));
      mx = std::max(mx, sc.back());
    }
    for (double x : sc) sum += std::exp(x - mx);
    EXPECT_NEAR(acc_lse.get()[row * H + h], mx + std::log(sum), 2e-2) << "head_dim " << hd << " m " << m;
  }
}

// A decode attention over n sequences (one query each, sequence b seeing rows 0..n_past[b] of its
// n_ctx-row cache) against the CPU reference, per sequence. decode(q, k, v, out, n_past, scratch)
// runs the GPU side on device buffers.
template <typename Decode>
static void expect_decode_matches_cpu(const std::vector<int32_t>& n_past, int n_ctx, int H, int KVH, int hd,
                                      uint64_t seed, const std::string& what, Decode decode) {
  const int n = int(n_past.size()), Q = H * hd, KV = KVH * hd, W = Q + 2 * KV;
  auto q = random_vec(size_t(n) * W, seed, 2.0f);
  auto k = bf16_round(random_vec(size_t(n) * n_ctx * KV, seed + 1, 2.0f));
  auto v = bf16_round(random_vec(size_t(n) * n_ctx * KV, seed + 2));
  Buf<float> dq(q), scratch(cuda::attention_decode_scratch_floats(n, H, hd));
  Buf<bf16> dk(to_bf16(k)), dv(to_bf16(v)), out(size_t(n) * Q);
  Buf<int32_t> dn(n_past);
  decode(dq.p, W, dk.p, dv.p, out.p, dn.p, scratch.p);
  const auto got = to_f32(out.get());
  for (int b = 0; b < n; ++b) {
    std::vector<float> ref(Q);
    ik::backend::attention(q.data() + size_t(b) * W, k.data() + size_t(b) * n_ctx * KV,
                           v.data() + size_t(b) * n_ctx * KV, ref.data(), 1, n_past[b], H, KVH, hd);
    std::vector<float> g(got.begin() + size_t(b) * Q, got.begin() + size_t(b + 1) * Q);
    EXPECT_LT(rel_err(g, ref), 2e-2) << what << ", hd " << hd << " heads " << H << "/" << KVH << ", sequence " << b
                                     << " of " << n << " n_past " << n_past[b];
  }
}

// attention_decode as the model calls it, on either kernel: one sequence (keys split over many
// blocks), few sequences, and 150 sequences x 2 KV heads that fill the GPU.
TEST_F(CudaOps, DecodeAttentionMatchesCpuPerSequence) {
  struct Case {
    int n_ctx;
    std::vector<int32_t> n_past;
  };
  std::vector<int32_t> many(150);
  for (int b = 0; b < 150; ++b) many[b] = (b * 37) % 64;
  for (const Case& cs : {Case{3000, {2999}}, Case{3000, {0, 1, 100, 2999, 777}}, Case{64, many}})
    for (int hd : {64, 128})
      for (bool tc : {false, true}) {
        const int n = int(cs.n_past.size()), H = 8, KVH = 2;
        expect_decode_matches_cpu(cs.n_past, cs.n_ctx, H, KVH, hd, 13, tc ? "tensor cores" : "CUDA cores",
                                  [&](const float* q, int W, const bf16* k, const bf16* v, bf16* out,
                                      const int32_t* n_past, float* scratch) {
                                    cuda::attention_decode(q, W, k, v, out, n, n_past, cs.n_ctx, H, KVH, hd, scratch,
                                                           tc);
                                  });
      }
  // The kernel choice: tensor cores from two sequences on, or from kDecodeTensorCoreKeys keys.
  EXPECT_FALSE(cuda::decode_tensor_cores(1, cuda::kDecodeTensorCoreKeys - 1));
  EXPECT_TRUE(cuda::decode_tensor_cores(1, cuda::kDecodeTensorCoreKeys));
  EXPECT_TRUE(cuda::decode_tensor_cores(2, 1));
}

// The tensor-core decode kernel (a GQA group's heads as MMA rows): groups of 4, 3 and 8 query
// heads, 1, 7 and 32 key slices (some empty, the last partial), against the CPU reference.
TEST_F(CudaOps, DecodeAttentionTensorCoresMatchCpu) {
  const std::vector<int32_t> n_past = {0, 1, 100, 2999, 777, 64, 63};
  const int n = int(n_past.size()), n_ctx = 3000;
  for (int hd : {64, 128})
    for (auto [H, KVH] : {std::pair{8, 2}, std::pair{9, 3}, std::pair{32, 4}})
      for (int splits : {1, 7, 32})
        expect_decode_matches_cpu(n_past, n_ctx, H, KVH, hd, 16, "tensor cores, " + std::to_string(splits) + " splits",
                                  [&](const float* q, int W, const bf16* k, const bf16* v, bf16* out,
                                      const int32_t* dn, float* scratch) {
                                    cuda::attention_decode_tc(q, W, k, v, out, n, dn, n_ctx, H, KVH, hd, scratch,
                                                              splits);
                                  });
  Buf<float> dummy(1);
  EXPECT_THROW(cuda::attention_decode_tc(dummy.p, 1, nullptr, nullptr, nullptr, 1, nullptr, 1, 18, 2, 128, dummy.p, 1),
               ik::Error);  // 9 query heads per KV head
}

// The decode step's fused form: RoPE of the new rows and their K/V store inside the attention
// kernel, against rope_and_store_kv followed by attention_decode on the same inputs, on each
// kernel, for both RoPE layouts: one sequence, few sequences and many: same outputs and the same
// cache rows written.
TEST_F(CudaOps, FusedRopeStoreDecodeMatchesSeparateKernels) {
  // 250 sequences x 2 KV heads: more blocks than the two-stage tensor-core kernel keeps resident
  // at head_dim 128, so its one-stage form runs (launch_decode_tc).
  std::vector<int32_t> many(250);
  for (int b = 0; b < 250; ++b) many[b] = (b * 37) % 64;
  for (const std::vector<int32_t>& n_past : {std::vector<int32_t>{2998}, std::vector<int32_t>{0, 1, 100, 2998, 777}, many})
    for (int hd : {64, 128})
      for (auto [half, tc] : {std::pair{false, false}, {true, false}, {false, true}, {true, true}}) {
        const int n = int(n_past.size()), H = 8, KVH = 2, n_ctx = n > 100 ? 64 : 3000, Q = H * hd, KV = KVH * hd;
        const int W = Q + 2 * KV;
        auto qkv = random_vec(size_t(n) * W, 13, 2.0f);
        auto cache = to_bf16(random_vec(size_t(n) * n_ctx * KV, 14, 2.0f));
        auto vcache = to_bf16(random_vec(size_t(n) * n_ctx * KV, 15));
        const auto inv_freq = ik::backend::Rope::make(hd, 10000.0, 1.0, {}, ik::backend::RopeLayout::Adjacent).inv_freq;
        std::vector<int32_t> iota(n);
        for (int b = 0; b < n; ++b) iota[b] = b;
        Buf<float> d_inv(inv_freq), scratch(cuda::attention_decode_scratch_floats(n, H, hd));
        Buf<int32_t> dn(n_past), dseq(iota);
        // Separate kernels (the reference); q is rotated in place, so each path gets its own copy.
        Buf<float> q_ref(qkv), q_fused(qkv);
        Buf<bf16> k_ref(cache), v_ref(vcache), k_fused(cache), v_fused(vcache), out_ref(size_t(n) * Q),
            out_fused(size_t(n) * Q);
        cuda::rope_and_store_kv(q_ref.p, n, H, KVH, hd, dn.p, dseq.p, dn.p, d_inv.p, half, k_ref.p, v_ref.p, n_ctx);
        cuda::attention_decode(q_ref.p, W, k_ref.p, v_ref.p, out_ref.p, n, dn.p, n_ctx, H, KVH, hd, scratch.p, tc);
        cuda::rope_store_attention_decode(q_fused.p, W, k_fused.p, v_fused.p, out_fused.p, n, dn.p, n_ctx, H, KVH, hd,
                                          scratch.p, d_inv.p, half, tc);
        const std::string what = "hd " + std::to_string(hd) + " half " + std::to_string(half) + " n " +
                                 std::to_string(n) + (tc ? " tensor cores" : " CUDA cores");
        EXPECT_LT(rel_err(to_f32(out_fused.get()), to_f32(out_ref.get())), 1e-2) << what;
        EXPECT_LT(rel_err(to_f32(k_fused.get()), to_f32(k_ref.get())), 1e-2) << what;
        EXPECT_EQ(to_f32(v_fused.get()), to_f32(v_ref.get())) << what;
        // No sequence ids: row b is sequence b (the unfused fallback's call).
        Buf<float> q_plain(qkv);
        Buf<bf16> k_plain(cache), v_plain(vcache);
        cuda::rope_and_store_kv(q_plain.p, n, H, KVH, hd, dn.p, nullptr, dn.p, d_inv.p, half, k_plain.p, v_plain.p, n_ctx);
        EXPECT_EQ(to_f32(k_plain.get()), to_f32(k_ref.get())) << what;
        EXPECT_EQ(q_plain.get(), q_ref.get()) << what;
      }
}

// A draft tree's pass through the fused decode kernel against the long way (rope_and_store_kv,
// then attention_prefill with the tree mask) on the same inputs: a chain, a random tree and a
// lone root, both RoPE layouts, head dimensions 64 and 128, a short cache (some key slices
// empty) and a long one. Outputs agree, and the rows' keys and values land in the same cache rows.
TEST_F(CudaOps, TreeDecodeAttentionMatchesPrefillWithMask) {
  struct Case {
    int n_past, m, H, KVH, hd;
    bool chain;
  };
  for (Case c : {Case{5, 16, 9, 3, 64, true}, Case{700, 11, 9, 3, 64, false}, Case{300, 4, 32, 8, 128, false},
                 Case{1, 1, 8, 2, 128, true}, Case{2000, 16, 4, 1, 128, false}})
    for (bool half : {false, true}) {
      const int Q = c.H * c.hd, KV = c.KVH * c.hd, W = Q + 2 * KV, n_ctx = c.n_past + c.m + 3;
      auto qkv = random_vec(size_t(c.m) * W, 41, 2.0f);
      auto kc = to_bf16(random_vec(size_t(n_ctx) * KV, 42, 2.0f)), vc = to_bf16(random_vec(size_t(n_ctx) * KV, 43));
      std::vector<uint8_t> mask(size_t(c.m) * c.m, 0);
      std::vector<int32_t> pos(c.m), rows(c.m), seq(c.m, 0), n_past = {c.n_past};
      ik::Rng rng(44, 0);
      for (int i = 0; i < c.m; ++i) {  // a node sees itself and its parent's ancestors (parent < child)
        const int parent = i == 0 ? -1 : c.chain ? i - 1 : int(rng.below(i));
        mask[size_t(i) * c.m + i] = 1;
        if (parent >= 0)
          for (int j = 0; j < c.m; ++j) mask[size_t(i) * c.m + j] |= mask[size_t(parent) * c.m + j];
        pos[i] = c.n_past + (parent < 0 ? 0 : pos[parent] - c.n_past + 1);  // depth
        rows[i] = c.n_past + i;
      }
      const auto inv_freq = ik::backend::Rope::make(c.hd, 10000.0, 1.0, {}, ik::backend::RopeLayout::Adjacent).inv_freq;
      Buf<float> d_inv(inv_freq), scratch(cuda::attention_decode_scratch_floats(c.m, c.H, c.hd));
      Buf<int32_t> d_pos(pos), d_rows(rows), d_seq(seq), d_n_past(n_past);
      Buf<uint8_t> d_mask(mask);
      Buf<float> q_ref(qkv), q_tree(qkv);
      Buf<bf16> k_ref(kc), v_ref(vc), k_tree(kc), v_tree(vc), out_ref(size_t(c.m) * Q), out_tree(size_t(c.m) * Q);
      cuda::rope_and_store_kv(q_ref.p, c.m, c.H, c.KVH, c.hd, d_pos.p, d_seq.p, d_rows.p, d_inv.p, half, k_ref.p,
                              v_ref.p, n_ctx);
      cuda::attention_prefill(q_ref.p, W, k_ref.p, v_ref.p, out_ref.p, c.m, c.n_past, c.H, c.KVH, c.hd, d_mask.p);
      cuda::rope_store_attention_tree(q_tree.p, W, k_tree.p, v_tree.p, out_tree.p, c.m, d_n_past.p, d_pos.p, d_mask.p,
                                      c.H, c.KVH, c.hd, scratch.p, d_inv.p, half);
      const std::string what = "n_past " + std::to_string(c.n_past) + " m " + std::to_string(c.m) + " hd " +
                               std::to_string(c.hd) + " half " + std::to_string(half);
      EXPECT_LT(rel_err(to_f32(out_tree.get()), to_f32(out_ref.get())), 2e-2) << what;
      EXPECT_LT(rel_err(to_f32(k_tree.get()), to_f32(k_ref.get())), 1e-2) << what;
      EXPECT_EQ(to_f32(v_tree.get()), to_f32(v_ref.get())) << what;
    }
}

// Sampling: greedy is argmax; draws follow the filtered, tempered distribution.
TEST_F(CudaOps, GreedySamplingIsArgmax) {
  const int n = 3, V = 128256;
  auto logits = random_vec(n * V, 16, 5.0f);
  logits[0 * V + 77777] = 9.0f;
  logits[1 * V + 3] = 9.0f;
  logits[2 * V + 128255] = 9.0f;
  Buf<float> dl(logits);
  std::vector<cuda::SamplingParams> p(n);
  Buf<cuda::SamplingParams> dp(p);
  Buf<int32_t> tok(n);
  cuda::sample(dl.p, n, V, dp.p, tok.p);
  EXPECT_EQ(tok.get(), (std::vector<int32_t>{77777, 3, 128255}));
}

// Ties go to the lowest index, across the first pass's chunks and within one; past 1,024 rows
// the sampling kernel scans each row itself, with the same answers.
TEST_F(CudaOps, GreedySamplingTiesTakeLowestIndex) {
  for (int n : {5, 1030}) {
    const int V = 4099;  // not a multiple of the chunk count
    auto logits = random_vec(size_t(n) * V, 17, 5.0f);
    std::vector<int32_t> want(n);
    for (int r = 0; r < n; ++r) {
      float* row = logits.data() + size_t(r) * V;
      const int a = (r * 131) % V, b = (a + 1 + (r * 977) % (V - 1)) % V;  // two distinct places
      row[a] = row[b] = 7.0f;
      want[r] = std::min(a, b);
    }
    for (int j = 0; j < V; ++j) logits[j] = -INFINITY;  // row 0: all masked, token 0
    want[0] = 0;
    Buf<float> dl(logits);
    std::vector<cuda::SamplingParams> p(n);
    Buf<cuda::SamplingParams> dp(p);
    Buf<int32_t> tok(n);
    cuda::sample(dl.p, n, V, dp.p, tok.p);
    EXPECT_EQ(tok.get(), want) << n << " rows";
  }
}

TEST_F(CudaOps, SampledFrequenciesMatchFilteredDistribution) {
  // 6 tokens; logits chosen so top-k=4, then top-p=0.9 keeps 3, and min-p drops none of them.
  const std::vector<float> l = {2.0f, 1.0f, 0.5f, 0.4f, 0.0f, -1.0f};
  const int V = int(l.size()), draws = 20000;
  const float T = 0.7f;
  std::vector<double> p(V, 0.0);
  double z = 0;
  for (int i = 0; i < 4; ++i) z += p[i] = std::exp(double(l[i] - l[0]) / T);
  for (auto& x : p) x /= z;
  // top-p 0.9 over the top-4 probabilities (sorted descending): keep the smallest prefix >= 0.9.
  double cum = 0;
  int keep = 0;
  while (keep < 4 && cum < 0.9) cum += p[keep++];
  std::vector<double> want(V, 0.0);
  for (int i = 0; i < keep; ++i) want[i] = p[i] / cum;

  std::vector<float> rows;
  for (int r = 0; r < 1; ++r) rows.insert(rows.end(), l.begin(), l.end());
  Buf<float> dl(rows);
  cuda::SamplingParams sp;
  sp.temperature = T;
  sp.top_k = 4;
  sp.top_p = 0.9f;
  sp.min_p = 0.01f;
  sp.seed = 42;
  Buf<cuda::SamplingParams> dp(std::vector<cuda::SamplingParams>{sp});
  Buf<int32_t> tok(1);
  std::vector<int> count(V, 0);
  for (int d = 0; d < draws; ++d) {
    cuda::sample(dl.p, 1, V, dp.p, tok.p);
    count[tok.get()[0]]++;
  }
  for (int i = 0; i < V; ++i) {
    const double f = double(count[i]) / draws;
    const double sd = std::sqrt(want[i] * (1 - want[i]) / draws) + 1e-9;
    if (want[i] == 0) EXPECT_EQ(count[i], 0) << "token " << i << " is outside the filters";
    else EXPECT_LT(std::fabs(f - want[i]), 5 * sd) << "token " << i << " frequency " << f << " want " << want[i];
  }
  EXPECT_EQ(dp.get()[0].counter, uint64_t(draws));  // the kernel advances the stream
}

