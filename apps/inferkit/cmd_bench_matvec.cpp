// inferkit bench-matvec: our decode matrix-vector kernels (bf16 weights, a few rows of
// activations: matvec(), which streams 1-2 rows of a large matrix) beside cuBLAS on the same
// shapes, with the memory-bandwidth floor (weight bytes over the device-to-device copy bandwidth
// measured in the same run), and which kernel matmul uses for the shape.
#include <fmt/format.h>

#include <memory>
#include <string>
#include <vector>

#include "backend/cuda/cuda.hpp"
#include "command.hpp"
#include "core/error.hpp"
#include "kernel_bench.hpp"

namespace ik::cli {

namespace {

namespace cuda = backend::cuda;

struct MatvecArgs {
  // SmolLM2-135M then Llama-3-8B decode: q|k|v, o, gate|up, down, LM head.
  std::vector<std::string> shapes = {"960x576",   "576x576",   "3072x576",   "576x1536",   "49152x576",
                                     "6144x4096", "4096x4096", "28672x4096", "4096x14336", "128256x4096"};
  std::vector<int> ms = {1, 2, 4};
  int reps = 20;
  int device = 0;
};

void run(const MatvecArgs& a) {
  const auto shapes = parse_shapes(a.shapes, 8);
  const auto dev = cuda::init(a.device);
  const double bw = cuda::measure_copy_bandwidth(size_t(1) << 30);
  fmt::print("{} ({} SMs); device-to-device copy: {:.0f} GB/s: the floor is weight bytes / this\n", dev.name,
             dev.sm_count, bw / 1e9);
  fmt::print("weights rotate over sets of >= 256 MiB in total; times are per call, from CUDA graphs of {} replays\n\n",
             a.reps);
  fmt::print("{:>12} {:>2} {:>10} {:>7} {:>10} {:>7} {:>8} {:>9}  {}\n", "N x K", "M", "cuBLAS", "%floor", "ours",
             "%floor", "speedup", "floor", "matmul uses");
  for (const Shape& sh : shapes) {
    const size_t bytes = size_t(sh.n) * sh.k * 2;
    const int sets = sets_for(bytes);
    const int m_max = *std::max_element(a.ms.begin(), a.ms.end());
    std::vector<cuda::bf16*> w(sets);
    for (int i = 0; i < sets; ++i) {
      w[i] = static_cast<cuda::bf16*>(cuda::alloc(bytes, "weights"));
      cuda::fill_uniform_bf16(w[i], size_t(sh.n) * sh.k, 10 + i, 0.02f);
    }
    auto* x = static_cast<cuda::bf16*>(cuda::alloc(size_t(m_max) * sh.k * 2, "activations"));
    auto* y = static_cast<float*>(cuda::alloc(size_t(m_max) * sh.n * 4, "outputs"));
    cuda::fill_uniform_bf16(x, size_t(m_max) * sh.k, 1, 1.0f);
    const double floor_us = double(bytes) / bw * 1e6;
    for (int m : a.ms) {
      const double t_blas = time_us(sets, a.reps, [&](int i) { cuda::matmul_cublas(x, w[i], y, m, sh.n, sh.k, false); });
      const double t_ours = time_us(sets, a.reps, [&](int i) { cuda::matvec(x, w[i], y, m, sh.n, sh.k, false, sh.n); });
      fmt::print("{:>12} {:>2} {:>8.1f}us {:>6.0f}% {:>8.1f}us {:>6.0f}% {:>7.2f}x {:>7.1f}us  {}\n", sh.text, m, t_blas,
                 100 * floor_us / t_blas, t_ours, 100 * floor_us / t_ours, t_blas / t_ours, floor_us,
                 cuda::matvec_streams(x, w[0], m, sh.n, sh.k) ? "stream"
                 : cuda::matvec_fits(x, w[0], m, sh.n, sh.k)  ? "matvec"
                                                              : "cuBLAS");
    }
    for (auto* p : w) cuda::release(p);
    cuda::release(x);
    cuda::release(y);
  }
}

}  // namespace

static void add_bench_matvec(CLI::App& app) {
  auto* c = app.add_subcommand("bench-matvec",
                               "Benchmark the GPU decode matrix-vector kernel (bf16 weights) against cuBLAS and the "
                               "memory-bandwidth floor");
  auto a = std::make_shared<MatvecArgs>();
  c->add_option("--shapes", a->shapes, "N x K weight shapes")->delimiter(',')->capture_default_str();
  c->add_option("-m,--m", a->ms, "rows of activations (tokens)")->delimiter(',')->check(CLI::Range(1, 4))->capture_default_str();
  c->add_option("--reps", a->reps, "graph replays per timing")->check(CLI::Range(1, 10000))->capture_default_str();
  c->add_option("--gpu", a->device, "CUDA device ordinal")->check(CLI::Range(0, 64));
  c->callback([a] { run(*a); });
}

static Register reg("bench-matvec", add_bench_matvec);

}  // namespace ik::cli
