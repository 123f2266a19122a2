// inferkit bench-lut: speed of the LUT matmul kernels (the f32 one and the int8 pshufb one)
// beside OpenBLAS sgemm (f32) and our Q4_1 path, as GB/s of weights streamed and % of a STREAM
// triad measured in the same run.
#include <algorithm>
#include <cblas.h>
#include <chrono>
#include <cmath>
#include <fmt/format.h>
#include <omp.h>

#include "backend/cpu/lut_int8.hpp"
#include "backend/cpu/lut_matmul.hpp"
#include "backend/cpu/matmul.hpp"
#include "backend/cpu/quant_dot.hpp"
#include "command.hpp"
#include "core/error.hpp"
#include "core/fp16.hpp"
#include "core/rng.hpp"
#include "llm/quant/lut_format.hpp"

namespace ik::cli {

namespace {

using Clock = std::chrono::steady_clock;

// Best time of repeated calls within a small time budget.
template <class F>
double best_seconds(F&& f, double budget_s = 0.25) {
  f();  // warm up
  double best = 1e30, total = 0;
  for (int i = 0; i < 200 && (i < 3 || total < budget_s); ++i) {
    const auto t0 = Clock::now();
    f();
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::min(best, s);
    total += s;
  }
  return best;
}

// STREAM triad a = b + s*c over arrays far larger than the caches; bytes = 3 arrays.
double triad_gbs() {
  const int64_t n = int64_t(1) << 24;  // 64 MiB per array
  std::vector<float> a(n), b(n, 1.0f), c(n, 2.0f);
  const double s = best_seconds([&] {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) a[i] = b[i] + 0.5f * c[i];
  }, 1.0);
  return 3.0 * n * sizeof(float) / s / 1e9;
}

// Q4_1 blocks of 32: w = q * d + m with d = (max - min) / 15, m = min (GGML's reference quantizer).
std::vector<uint8_t> quantize_q4_1(const std::vector<float>& w) {
  std::vector<uint8_t> out(w.size() / 32 * sizeof(backend::BlockQ4_1));
  auto* blocks = reinterpret_cast<backend::BlockQ4_1*>(out.data());
  for (size_t b = 0; b < w.size() / 32; ++b) {
    const float* x = w.data() + b * 32;
    const float mn = *std::min_element(x, x + 32), mx = *std::max_element(x, x + 32);
    const float d = (mx - mn) / 15, id = d > 0 ? 1 / d : 0;
    blocks[b].d = f32_to_fp16(d);
    blocks[b].m = f32_to_fp16(mn);
    for (int i = 0; i < 16; ++i) {
      const int q0 = std::min(15, int((x[i] - mn) * id + 0.5f)), q1 = std::min(15, int((x[i + 16] - mn) * id + 0.5f));
      blocks[b].qs[i] = uint8_t(q0 | (q1 << 4));
    }
  }
  return out;
}

struct BenchArgs {
  bool large = false;
  int threads = 0;
};

void run_bench(const BenchArgs& a) {
  if (a.threads > 0) omp_set_num_threads(a.threads);
  const double stream = triad_gbs();
  const char* isa = backend::lut_int8_kernels().front().isa;
  fmt::print("STREAM triad: {:.1f} GB/s ({} threads); int8 LUT kernel: {}\n\n", stream, omp_get_max_threads(), isa);
  std::vector<std::pair<int64_t, int64_t>> shapes = {{576, 1536}, {1536, 576}, {4096, 4096}};
  if (a.large) shapes.push_back({4096, 14336});
  fmt::print("{:>12} {:>3} {:>18} {:>9} {:>8} {:>7} {:>9}\n", "N x K", "M", "kernel", "ms", "GB/s", "%triad",
             "vs sgemm");
  Rng rng(1, 0);
  for (auto [n, k] : shapes) {
    std::vector<float> w(size_t(n * k));
    for (auto& x : w) x = 0.02f * float(rng.normal());
    const auto nf4 = llm::quant::to_kernel_layout(llm::quant::quantize(w.data(), n, k, 4, 128, llm::quant::nf_table(4), true));
    const auto nf3 = llm::quant::to_kernel_layout(llm::quant::quantize(w.data(), n, k, 3, 128, llm::quant::nf_table(3), true));
    auto int8_copy = [](const std::shared_ptr<backend::LutWeights>& f32) {
      auto c = std::make_shared<backend::LutWeights>(*f32);
      backend::lut_prepare_int8(*c);
      IK_CHECK(c->int8, "int8 LUT kernel unavailable (IK_LUT_KERNEL=f32?)");
      return c;
    };
    const auto nf4i = int8_copy(nf4), nf3i = int8_copy(nf3);
    const auto q41 = quantize_q4_1(w);
    const auto wq41 = backend::WeightMatrix::prepare(io::DType::Q4_1, n, k, q41.data(), backend::WeightMatrix::Mode::Fast);
    for (int64_t m : {1, 4, 16}) {
      std::vector<float> x(size_t(m * k)), y(size_t(m * n));
      for (auto& v : x) v = float(rng.normal());
      struct Row { const char* name; double bytes; double s; };
      std::vector<Row> rows;
      rows.push_back({"OpenBLAS sgemm f32", double(n) * k * 4, best_seconds([&] {
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(n), int(k), 1.0f, x.data(),
                                    int(k), w.data(), int(k), 0.0f, y.data(), int(n));
                      })});
      rows.push_back({"Q4_1 (int8 dot)", double(q41.size()), best_seconds([&] { backend::matmul(wq41, x.data(), y.data(), m); })});
      for (auto [name, lut] : {std::pair{"LUT NF4 g128", nf4}, std::pair{"LUT NF3 g128", nf3}}) {
        const double bytes = double(lut->code_row_bytes() * n + lut->scales.size() * sizeof(float));
        rows.push_back({name, bytes, best_seconds([&] { backend::lut_matmul(*lut, x.data(), y.data(), m); })});
      }
      // The int8 kernel streams 4-bit codes (3-bit ones widened at load) and the f32 scales.
      for (auto [name, lut] : {std::pair{"LUT NF4 int8", nf4i}, std::pair{"LUT NF3 int8", nf3i}}) {
        const double bytes = double(size_t(k) / 2 * n + lut->scales.size() * sizeof(float));
        rows.push_back({name, bytes, best_seconds([&] { backend::lut_matmul_int8(*lut, x.data(), y.data(), m); })});
      }
      for (const Row& r : rows) {
        const double gbs = r.bytes / r.s / 1e9;
        fmt::print("{:>12} {:>3} {:>18} {:>9.3f} {:>8.1f} {:>6.0f}% {:>8.2f}x\n", fmt::format("{}x{}", n, k), m, r.name,
                   r.s * 1e3, gbs, 100 * gbs / stream, rows[0].s / r.s);
      }
    }
  }
}

}  // namespace

static void add_bench_lut(CLI::App& app) {
  auto* c = app.add_subcommand("bench-lut",
                               "Benchmark the LUT (NF4/NF3) matmul kernels vs OpenBLAS sgemm and Q4_1, with a STREAM "
                               "triad for the memory-bandwidth reference");
  auto a = std::make_shared<BenchArgs>();
  c->add_flag("--large", a->large, "also 4096x14336 (f32 weights: 235 MB)");
  c->add_option("-t,--threads", a->threads, "CPU threads (0: all cores)")->check(CLI::Range(0, 1024));
  c->callback([a] { run_bench(*a); });
}

static Register reg("bench-lut", add_bench_lut);

}  // namespace ik::cli
