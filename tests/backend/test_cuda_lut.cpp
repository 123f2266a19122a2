// The lookup-table GEMM against dequantize-then-cuBLAS (label gpu: skipped without a GPU).
//  - Host-packed weights: the reference W_hat is computed on the host from the codes, scales
//    and table directly (not through the GPU layout), rounded to the input format, and
//    multiplied by cuBLAS. The dequantize kernel must reproduce that W_hat bit for bit.
//  - Every Llama-3-8B/70B shape (reference section 1c) x bits x group x m, with device-random
//    codes: the reference is the dequantize kernel (checked above) + cuBLAS f16.
// Bound: max |ours - ref| / max |ref| < 2e-3 (f16; both sides round W_hat or the output to
// 11 bits) and < 1e-2 (bf16, 8 bits). Outputs are poisoned (NaN) before each run; the columns
// between n and the output stride must stay poisoned.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "backend/cuda/cuda.hpp"
#include "cuda_test.hpp"
#include "backend/cuda/lut_gemm.hpp"
#include "core/fp16.hpp"
#include "core/rng.hpp"

namespace cuda = ik::backend::cuda;

namespace {

using CudaLut = CudaTest;

uint16_t to_half(float v, bool f16) { return f16 ? ik::f32_to_fp16(v) : ik::f32_to_bf16(v); }

std::vector<uint16_t> random_x(size_t n, uint64_t seed, bool f16) {
  ik::Rng rng(seed, 5);
  std::vector<uint16_t> x(n);
  for (auto& v : x) v = to_half(float(rng.uniform(-1.0, 1.0)), f16);
  return x;
}

// Compares y [m, ldy] (first n columns) to ref [m, n]; the columns n..ldy-1 must be NaN.
double rel_err(const std::vector<float>& y, int ldy, const std::vector<float>& ref, int m, int n) {
  double d = 0, mx = 1e-30;
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      const float a = y[size_t(i) * ldy + j], b = ref[size_t(i) * n + j];
      if (std::isnan(a)) return INFINITY;  // unwritten
      d = std::max(d, double(std::fabs(a - b)));
      mx = std::max(mx, double(std::fabs(b)));
    }
    for (int j = n; j < ldy; ++j)
      if (!std::isnan(y[size_t(i) * ldy + j])) return INFINITY;  // written outside the matrix
  }
  return d / mx;
}

// ref[m, n] = x W_hat^T through cuBLAS, W_hat in the input format on the device.
std::vector<float> cublas_reference(const Buf<uint16_t>& x, const Buf<uint16_t>& w_hat, int m, int n, int k, bool f16) {
  if (f16) {
    Buf<uint16_t> y(size_t(m) * n);
    cuda::matmul_f16(x.p, w_hat.p, y.p, m, n, k);
    auto h = y.get();
    std::vector<float> out(h.size());
    for (size_t i = 0; i < h.size(); ++i) out[i] = ik::fp16_to_f32(h[i]);
    return out;
  }
  Buf<float> y(size_t(m) * n);
  cuda::matmul(x.p, w_hat.p, y.p, m, n, k, false);
  return y.get();
}

double run_ours(const Buf<uint16_t>& x, const cuda::LutMatrix& w, int m, bool f16, const std::vector<float>& ref,
                const cuda::LutKernelConfig* config = nullptr) {
  const int ldy = w.n + 8;
  Buf<float> y(size_t(m) * ldy);
  cuda::lut_matmul(x.p, !f16, w, y.p, ldy, m, false, config);
  return rel_err(y.get(), ldy, ref, m, w.n);
}

}  // namespace

TEST_F(CudaLut, HostPackedMatchesHostDequantizedCublas) {
  struct Shape {
    int n, k;
  };
  for (Shape s : {Shape{80, 576}, Shape{256, 1024}, Shape{1000, 4096}})
    for (int bits : {2, 3, 4})
      for (int group : {32, 64, 128, 256}) {
        ik::Rng rng(s.n * 7 + bits * 100 + group, 1);
        std::vector<uint8_t> codes(size_t(s.n) * s.k);
        for (auto& c : codes) c = uint8_t(rng.next_u64() % (1u << bits));
        const int groups = (s.k + group - 1) / group;
        std::vector<uint16_t> scales(size_t(s.n) * groups);
        for (auto& v : scales) v = ik::f32_to_fp16(float(rng.uniform(0.01, 0.1)));
        std::vector<float> table;
        for (int i = 0; i < (1 << bits); ++i) table.push_back(float(rng.uniform(-1.0, 1.0)));
        auto w = cuda::upload_lut(cuda::pack_lut(codes.data(), scales.data(), table.data(), s.n, s.k, bits, group));
        for (bool f16 : {true, false}) {
          std::vector<uint16_t> w_hat(size_t(s.n) * s.k);
          for (int i = 0; i < s.n; ++i)
            for (int j = 0; j < s.k; ++j)
              w_hat[size_t(i) * s.k + j] =
                  to_half(table[codes[size_t(i) * s.k + j]] * ik::fp16_to_f32(scales[size_t(i) * groups + j / group]), f16);
          Buf<uint16_t> d_hat(w_hat), d_deq(w_hat.size());
          cuda::lut_dequantize(w, d_deq.p, f16);
          ASSERT_EQ(d_deq.get(), w_hat) << "dequantize kernel, bits " << bits << " group " << group << " n " << s.n;
          for (int m : {1, 3, 16, 32, 53}) {
            Buf<uint16_t> x(random_x(size_t(m) * s.k, m + bits, f16));
            const auto ref = cublas_reference(x, d_hat, m, s.n, s.k, f16);
            EXPECT_LT(run_ours(x, w, m, f16, ref), f16 ? 2e-3 : 1e-2)
                << (f16 ? "f16" : "bf16") << " bits " << bits << " group " << group << " " << s.n << "x" << s.k
                << " m " << m;
            // Two row blocks per warp (an odd number of row blocks here: the last warp has one), in
            // small blocks and in the one-block-per-SM kernel (11 warps: a row group of 22 blocks).
            for (const cuda::LutKernelConfig two : {cuda::LutKernelConfig{4, 2, 3, 0, 2}, cuda::LutKernelConfig{11, 2, 2, 0, 2}})
              EXPECT_LT(run_ours(x, w, m, f16, ref, &two), f16 ? 2e-3 : 1e-2)
                  << "2 row blocks per warp, " << two.warps << " warps, " << (f16 ? "f16" : "bf16") << " bits " << bits
                  << " group " << group << " " << s.n << "x" << s.k << " m " << m;
          }
        }
        cuda::free_lut(w);
      }
}

TEST_F(CudaLut, AccumulateAddsToOutput) {
  const int n = 512, k = 1024, m = 5;
  auto w = cuda::random_lut(n, k, 4, 128, {-1, -.7f, -.5f, -.4f, -.3f, -.2f, -.1f, 0, .1f, .2f, .3f, .4f, .5f, .6f, .7f, 1},
                            11, 0.05f);
  Buf<uint16_t> x(random_x(size_t(m) * k, 3, true));
  Buf<float> y0(size_t(m) * n), y1(size_t(m) * n);
  cuda::lut_matmul(x.p, false, w, y0.p, n, m, false);
  std::vector<float> base(size_t(m) * n);
  for (size_t i = 0; i < base.size(); ++i) base[i] = float(i % 7) - 3.0f;
  cuda::upload(y1.p, base.data(), base.size() * 4);
  cuda::lut_matmul(x.p, false, w, y1.p, n, m, true);
  auto a = y0.get(), b = y1.get();
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(b[i], a[i] + base[i], 1e-4 * (1 + std::fabs(a[i]))) << i;
  cuda::free_lut(w);
}

TEST_F(CudaLut, EveryLlama3ShapeBitsGroupAndBatch) {
  struct Shape {
    int n, k;
  };
  const Shape shapes[] = {{1024, 4096}, {4096, 4096},  {4096, 14336}, {6144, 4096},   {14336, 4096},
                          {1024, 8192}, {8192, 8192}, {8192, 28672}, {10240, 8192}, {28672, 8192}};
  int cases = 0;
  for (Shape s : shapes)
    for (int bits : {2, 3, 4})
      for (int group : {32, 64, 128, 256}) {
        std::vector<float> table;
        for (int i = 0; i < (1 << bits); ++i) table.push_back(-1.0f + 2.0f * i / ((1 << bits) - 1));
        auto w = cuda::random_lut(s.n, s.k, bits, group, table, uint64_t(s.n) * 31 + s.k + bits * 7 + group, 0.02f);
        Buf<uint16_t> w_hat(size_t(s.n) * s.k);
        cuda::lut_dequantize(w, w_hat.p, true);
        for (int m : {1, 3, 16, 32, 53, 64, 1024}) {
          Buf<uint16_t> x(random_x(size_t(m) * s.k, m * 3 + bits, true));
          const auto ref = cublas_reference(x, w_hat, m, s.n, s.k, true);
          EXPECT_LT(run_ours(x, w, m, true, ref), 2e-3)
              << "bits " << bits << " group " << group << " " << s.n << "x" << s.k << " m " << m;
          ++cases;
        }
        cuda::free_lut(w);
      }
  EXPECT_EQ(cases, 10 * 3 * 4 * 7);
}
