// inferkit bench-flute: the lookup-table GEMM on the GPU beside cuBLAS f16 on the same shape,
// with the memory-bandwidth floor (packed code + scale bytes over the device-to-device copy
// bandwidth measured in the same run). Weight sets rotate so that L2 holds none of them.
// --tune times the kernel configurations per shape and writes the table the backend compiles in.
#include <fmt/format.h>
#include <fmt/os.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cuda/cuda.hpp"
#include "backend/cuda/lut_gemm.hpp"
#include "command.hpp"
#include "kernel_bench.hpp"
#include "core/error.hpp"
#include "llm/quant/lut_format.hpp"

namespace ik::cli {

namespace {

namespace cuda = backend::cuda;

struct FluteArgs {
  std::vector<std::string> shapes = {"4096x4096", "14336x4096", "4096x14336", "8192x8192", "28672x8192", "8192x28672"};
  std::vector<int> ms = {1, 2, 4, 8, 16, 32};
  std::vector<int> bits = {4, 3};
  int group = 128;
  int reps = 20;
  bool tune = false;
  std::string tune_out = "lut_tuned.inc";
  int device = 0;
};

std::vector<float> table_for(int bits) { return llm::quant::nf_table(bits); }

struct Buffers {
  uint16_t* x = nullptr;
  float* y = nullptr;
  uint16_t* y16 = nullptr;
  Buffers(int m_max, int n, int k) {
    x = static_cast<uint16_t*>(cuda::alloc(size_t(m_max) * k * 2, "activations"));
    y = static_cast<float*>(cuda::alloc(size_t(m_max) * n * 4, "outputs"));
    y16 = static_cast<uint16_t*>(cuda::alloc(size_t(m_max) * n * 2, "outputs"));
    cuda::fill_uniform_bf16(x, size_t(m_max) * k, 1, 0.0f);  // zeros: valid in f16 and bf16
  }
  ~Buffers() {
    cuda::release(x);
    cuda::release(y);
    cuda::release(y16);
  }
};

void run_bench(const FluteArgs& a) {
  const auto shapes = parse_shapes(a.shapes, 32);
  const auto dev = cuda::init(a.device);
  const double bw = cuda::measure_copy_bandwidth(size_t(1) << 30);
  fmt::print("{} ({} SMs); device-to-device copy: {:.0f} GB/s (read + write): the floor below is bytes / this\n",
             dev.name, dev.sm_count, bw / 1e9);
  fmt::print("weights rotate over sets of >= 256 MiB in total; times are per call, from CUDA graphs of {} replays\n\n",
             a.reps);
  fmt::print("{:>11} {:>4} {:>3} {:>11} {:>10} {:>9} {:>10} {:>7} {:>9}\n", "N x K", "bits", "M", "cuBLAS f16",
             "LUT", "speedup", "LUT floor", "%floor", "ideal x");
  const int m_max = *std::max_element(a.ms.begin(), a.ms.end());
  for (const Shape& sh : shapes) {
    Buffers buf(m_max, sh.n, sh.k);
    // cuBLAS f16 on dense copies (dequantized from random NF4 so the values are realistic).
    std::vector<double> t_cublas;
    {
      const size_t bytes = size_t(sh.n) * sh.k * 2;
      const int sets = sets_for(bytes);
      std::vector<uint16_t*> dense(sets);
      auto seed_w = cuda::random_lut(sh.n, sh.k, 4, a.group, table_for(4), 7, 0.02f);
      for (auto& d : dense) {
        d = static_cast<uint16_t*>(cuda::alloc(bytes, "f16 weights"));
        cuda::lut_dequantize(seed_w, d, true);
      }
      cuda::free_lut(seed_w);
      for (int m : a.ms)
        t_cublas.push_back(time_us(sets, a.reps, [&](int i) { cuda::matmul_f16(buf.x, dense[i], buf.y16, m, sh.n, sh.k); }));
      for (auto* d : dense) cuda::release(d);
    }
    for (int bits : a.bits) {
      auto probe = cuda::random_lut(sh.n, sh.k, bits, a.group, table_for(bits), 1, 0.02f);
      const size_t bytes = probe.stream_bytes();
      cuda::free_lut(probe);
      const int sets = sets_for(bytes);
      std::vector<cuda::LutMatrix> ws;
      for (int i = 0; i < sets; ++i) ws.push_back(cuda::random_lut(sh.n, sh.k, bits, a.group, table_for(bits), 100 + i, 0.02f));
      const double floor_us = double(bytes) / bw * 1e6;
      const double ideal = double(size_t(sh.n) * sh.k * 2) / double(bytes);
      for (size_t j = 0; j < a.ms.size(); ++j) {
        const int m = a.ms[j];
        const double t = time_us(sets, a.reps, [&](int i) { cuda::lut_matmul(buf.x, false, ws[i], buf.y, sh.n, m, true); });
        fmt::print("{:>11} {:>4} {:>3} {:>9.1f}us {:>8.1f}us {:>8.2f}x {:>8.1f}us {:>6.0f}% {:>8.2f}x\n", sh.text, bits, m,
                   t_cublas[j], t, t_cublas[j] / t, floor_us, 100 * floor_us / t, ideal);
      }
      for (auto& w : ws) cuda::free_lut(w);
    }
  }
}

// The RMSNorm that precedes a product in the decode step (m rows of k), on its own buffers.
struct NormBefore {
  float *x = nullptr, *w = nullptr;
  cuda::bf16* out = nullptr;
  int k;
  NormBefore(int m_max, int k_) : k(k_) {
    x = static_cast<float*>(cuda::alloc(size_t(m_max) * k * 4, "norm input"));
    w = static_cast<float*>(cuda::alloc(size_t(k) * 4, "norm weight"));
    out = static_cast<cuda::bf16*>(cuda::alloc(size_t(m_max) * k * 2, "norm output"));
    cuda::fill_f32(x, size_t(m_max) * k, 1.0f);
    cuda::fill_f32(w, k, 1.0f);
  }
  ~NormBefore() {
    cuda::release(x);
    cuda::release(w);
    cuda::release(out);
  }
  void run(int m) const { cuda::rms_norm(x, w, out, m, k, 1e-5f); }
};

// For each shape and bit width: every configuration at m = 8 * nt (nt = 1: m = 1), the fastest
// few confirmed against the table in effect, and write the table (one line per shape, bits and
// nt). Each product is timed as it runs in the decode step: after an RMSNorm (a short kernel its
// chained launch overlaps), less the norm's own time. Timed back to back instead, the kernel
// overlaps with itself, and the winners were slower in the model
// (bench/flute/results/retune_dropped_h200.txt).
void run_tune(const FluteArgs& a) {
  const auto shapes = parse_shapes(a.shapes, 32);
  const auto dev = cuda::init(a.device);
  fmt::print("tuning on {}; writing {}\n", dev.name, a.tune_out);
  std::vector<std::string> lines;
  for (const Shape& sh : shapes) {
    Buffers buf(32, sh.n, sh.k);
    const NormBefore norm(32, sh.k);
    for (int bits : a.bits) {
      auto probe = cuda::random_lut(sh.n, sh.k, bits, a.group, table_for(bits), 1, 0.02f);
      const int sets = sets_for(probe.stream_bytes());
      cuda::free_lut(probe);
      std::vector<cuda::LutMatrix> ws;
      for (int i = 0; i < sets; ++i) ws.push_back(cuda::random_lut(sh.n, sh.k, bits, a.group, table_for(bits), 100 + i, 0.02f));
      for (int nt : {1, 2, 4}) {
        const int m = nt == 1 ? 1 : 8 * nt;
        // Whether a configuration launches at m rows (tried outside any graph capture: one that
        // does not fit throws here).
        auto fits = [&](const cuda::LutKernelConfig& c) {
          try {
            cuda::lut_matmul(buf.x, false, ws[0], buf.y, sh.n, m, true, &c);
            cuda::sync();
            return true;
          } catch (const Error&) {
            return false;
          }
        };
        const double norm_us = time_us(sets, a.reps, [&](int) { norm.run(m); });
        auto timed = [&](const cuda::LutKernelConfig& c, int reps) {
          return time_us(sets, reps, [&](int i) {
                   norm.run(m);
                   cuda::lut_matmul(buf.x, false, ws[i], buf.y, sh.n, m, true, &c);
                 }) -
                 norm_us;
        };
        std::vector<std::pair<double, cuda::LutKernelConfig>> results;
        double default_us = 0;
        for (int rb : {1, 2})
          for (int warps : {4, 8, 11, 12, 15, 16})  // 11 and 15: the largest blocks of 2 row blocks per warp
            for (int unit : {1, 2, 4})
              for (int stages : {2, 3, 4, 6})
                for (int bps : {1, 2, 3, 0}) {
                  if (rb == 2 && nt > 2) continue;  // launched with one row block per warp (too many warps: throws)
                  const cuda::LutKernelConfig c{warps, unit, stages, bps, rb};
                  if (!fits(c)) continue;
                  results.push_back({timed(c, a.reps), c});
                  if (rb == 1 && warps == 8 && unit == 2 && stages == 4 && bps == 0) default_us = results.back().first;
                }
        // The minimum of ~1,000 noisy timings favours luck: the fastest few and the configuration
        // in effect now are timed again with 4x the repetitions, and the fastest of those wins.
        std::sort(results.begin(), results.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
        results.resize(std::min<size_t>(results.size(), 5));
        const cuda::LutKernelConfig current = cuda::tuned_lut_config(sh.n, sh.k, bits, a.group, nt);
        if (fits(current)) results.push_back({0.0, current});
        cuda::LutKernelConfig best;
        double best_us = 1e30;
        for (const auto& [t0, c] : results) {
          const double t = timed(c, 4 * a.reps);
          if (t < best_us) best_us = t, best = c;
        }
        fmt::print("{:>11} {} bits m={:<2}: warps {} chunks/stage {} stages {} blocks/SM {} row blocks/warp {} -> "
                   "{:.1f} us (default {:.1f} us)\n",
                   sh.text, bits, m, best.warps, best.unit_chunks, best.stages, best.blocks_per_sm,
                   best.row_blocks_per_warp, best_us, default_us);
        lines.push_back(fmt::format("{{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}}},", sh.n, sh.k, bits, a.group, nt,
                                    best.warps, best.unit_chunks, best.stages, best.blocks_per_sm,
                                    best.row_blocks_per_warp));
      }
      for (auto& w : ws) cuda::free_lut(w);
    }
  }
  auto out = fmt::output_file(a.tune_out);
  out.print("// Written by `inferkit bench-flute --tune` on {} (do not edit by hand): the fastest lookup-table GEMM\n"
            "// configuration per shape. {{n, k, bits, group, nt (8-token tiles), warps, unit_chunks, stages, blocks_per_sm,\n"
            "// row_blocks_per_warp}}\n",
            dev.name);
  for (const auto& l : lines) out.print("{}\n", l);
}

}  // namespace

static void add_bench_flute(CLI::App& app) {
  auto* c = app.add_subcommand("bench-flute",
                               "Benchmark the GPU lookup-table GEMM (FLUTE) against cuBLAS f16 and the memory-bandwidth "
                               "floor; --tune writes the per-shape kernel configuration table");
  auto a = std::make_shared<FluteArgs>();
  c->add_option("--shapes", a->shapes, "N x K weight shapes")->delimiter(',')->capture_default_str();
  c->add_option("-m,--m", a->ms, "rows of activations (tokens)")->delimiter(',')->check(CLI::Range(1, 4096))->capture_default_str();
  c->add_option("--bits", a->bits, "code widths")->delimiter(',')->check(CLI::IsMember({2, 3, 4}))->capture_default_str();
  c->add_option("--group", a->group, "group size")->check(CLI::IsMember({32, 64, 128, 256}))->capture_default_str();
  c->add_option("--reps", a->reps, "graph replays per timing")->check(CLI::Range(1, 10000))->capture_default_str();
  c->add_flag("--tune", a->tune, "time every kernel configuration and write the fastest per shape");
  c->add_option("--tune-out", a->tune_out, "where --tune writes the table")->capture_default_str();
  c->add_option("--gpu", a->device, "CUDA device ordinal")->check(CLI::Range(0, 64));
  c->callback([a] { a->tune ? run_tune(*a) : run_bench(*a); });
}

static Register reg("bench-flute", add_bench_flute);

}  // namespace ik::cli
