// inferkit cp-attention: context-parallel attention over MPI ranks.
//   --table   : per-round work (max over ranks) of ring vs striped vs zig-zag, no MPI needed.
//   --virtual : all shards computed in this one process, round time = slowest shard (CPU time;
//               with --device cuda, device time of each shard's block on one GPU).
//   --time    : run under mpirun; times the sharded attention prefill for each layout.
//               With --device cuda --gpus P: one forked process per GPU, NCCL ring (--check:
//               compare with single-GPU causal attention instead of timing).
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>

#include "backend/cuda/cuda.hpp"
#include "command.hpp"
#include "core/error.hpp"
#include "core/fp16.hpp"
#include "core/rng.hpp"
#include "dist/cp_attention.hpp"
#include "dist/launch.hpp"
#include "llm_common.hpp"
#ifdef IK_HAVE_NCCL
#include "dist/cp_attention_gpu.hpp"
#endif

namespace ik::cli {

namespace {

struct CpOptions {
  bool table = false, time = false, virt = false;
  std::vector<int> ranks = {2, 4, 8};
  std::vector<int64_t> seqs = {4096};
  std::vector<std::string> layouts = {"ring", "striped", "zigzag"};
  int n_head = 8, n_kv = 2, head_dim = 64, repeat = 1;
  double timeout_s = 120;
  std::string device = "cpu";  // --virtual on the CPU or one GPU; --time over MPI ranks or GPUs
  int gpu = 0;
  int gpus = 1;        // --time --device cuda: ranks, one GPU each
  bool check = false;  // --time --device cuda: correctness against one GPU, no timing
};

// Sum over rounds of the busiest rank's work: the attention time of a synchronous ring.
int64_t critical_work(dist::Layout layout, int P, int64_t T, std::vector<int64_t>* per_round) {
  int64_t total = 0;
  for (int r = 0; r < P; ++r) {
    const auto w = dist::round_work(layout, P, T, r);
    const int64_t mx = *std::max_element(w.begin(), w.end());
    if (per_round) per_round->push_back(mx);
    total += mx;
  }
  return total;
}

void print_table(const CpOptions& o) {
  fmt::print("Per-round attention work, max over ranks, in (query, key) pairs; a round lasts as long as\n"
             "its busiest rank. Speedup = ring total / layout total; ideal attention-only speedup of a\n"
             "balanced layout over ring = (2P-1)/P (large T).\n\n");
  for (int64_t T : o.seqs)
    for (int P : o.ranks) {
      const int64_t ring = critical_work(dist::Layout::Ring, P, T, nullptr);
      fmt::print("T={} P={}  (whole causal triangle {} pairs, perfect split {} per rank)  ideal (2P-1)/P = {:.3f}\n", T,
                 P, T * (T + 1) / 2, (T * (T + 1) / 2 + P - 1) / P, (2.0 * P - 1) / P);
      for (const auto& name : o.layouts) {
        const auto layout = dist::parse_layout(name);
        std::vector<int64_t> rounds;
        const int64_t total = critical_work(layout, P, T, &rounds);
        std::string shown = rounds.size() <= 8 ? fmt::format("{}", fmt::join(rounds, " ")) : "(" + std::to_string(P) + " rounds)";
        fmt::print("  {:<8} total {:>12}  speedup vs ring {:.3f}  rounds: {}\n", name, total, double(ring) / total,
                   shown);
      }
    }
}

std::vector<float> random_floats(size_t count, uint64_t seed) {
  Rng rng(seed, 3);
  std::vector<float> x(count);
  for (auto& e : x) e = float(rng.normal());
  return x;
}

// One process computes every shard's block of every round; round time = max over ranks.
void virtual_ring(const CpOptions& o) {
  const dist::AttnShape shape{o.n_head, o.n_kv, o.head_dim};
  fmt::print("virtual ring (one process, one thread): sum over rounds of the slowest shard's block CPU time\n");
  fmt::print("{:>7} {:>3} {:<8} {:>10} {:>10} {:>10}\n", "T", "P", "layout", "time_s", "vs_ring", "ideal");
  for (int64_t T : o.seqs) {
    const auto q = random_floats(size_t(T) * o.n_head * o.head_dim, 1);
    const auto k = random_floats(size_t(T) * o.n_kv * o.head_dim, 2), v = random_floats(k.size(), 3);
    for (int P : o.ranks) {
      double ring_time = 0;
      for (const auto& name : o.layouts) {
        const auto secs = dist::virtual_ring_seconds(dist::parse_layout(name), P, T, shape, q, k, v);
        double total = 0;
        for (const auto& round : secs) total += *std::max_element(round.begin(), round.end());
        if (name == "ring") ring_time = total;
        fmt::print("{:>7} {:>3} {:<8} {:>10.4f} {:>10} {:>10.3f}\n", T, P, name, total,
                   ring_time > 0 ? fmt::format("{:.3f}x", ring_time / total) : "-", (2.0 * P - 1) / P);
      }
    }
  }
}

// The virtual ring on one GPU. Every block of ring and striped attention is one of three
// kernels over a shard of n = T/P queries and keys (backend/cuda attention_prefill): full (the
// key shard precedes the query shard), causal (same shard; striped: key rank <= query rank) and
// strictly causal (striped: key rank > query rank); ring's other blocks are empty. Each is timed
// on the device; a round lasts as long as its slowest shard.
void virtual_ring_gpu(const CpOptions& o) {
  namespace cuda = backend::cuda;
  const auto dev = cuda::init(o.gpu);
  const int H = o.n_head, KVH = o.n_kv, hd = o.head_dim, Q = H * hd, KV = KVH * hd;
  fmt::print("virtual ring on {} (device time per block, CUDA graphs; round = slowest shard), heads {}/{}, head_dim {}\n",
             dev.name, H, KVH, hd);
  fmt::print("{:>7} {:>3} {:>10} {:>10} {:>10} {:>11} {:>11} {:>9} {:>7}\n", "T", "P", "full_ms", "causal_ms", "strict_ms",
             "ring_ms", "striped_ms", "vs_ring", "ideal");
  for (int64_t T : o.seqs)
    for (int P : o.ranks) {
      IK_CHECK(T % P == 0, "--seq {} is not a multiple of P = {}", T, P);
      const int n = int(T / P);
      const cuda::DeviceArray<float> q(size_t(n) * Q, "queries");
      const cuda::DeviceArray<cuda::bf16> k(size_t(n) * KV, "keys"), v(size_t(n) * KV, "values"), out(size_t(n) * Q, "outputs");
      cuda::fill_f32(q.get(), q.size(), 0.01f);
      cuda::fill_uniform_bf16(k.get(), k.size(), 1, 1.0f);
      cuda::fill_uniform_bf16(v.get(), v.size(), 2, 1.0f);
      auto block_ms = [&](int n_past, int diag) {
        return cuda::time_ms(
            [&] { cuda::attention_prefill(q.get(), Q, k.get(), v.get(), out.get(), n, n_past, H, KVH, hd, nullptr, diag); },
            o.repeat);
      };
      const double full = block_ms(n, -n), causal = block_ms(0, 0), strict = block_ms(0, -1);
      const double ring = causal + (P - 1) * full, striped = causal + (P - 1) * std::max(causal, strict);
      fmt::print("{:>7} {:>3} {:>10.3f} {:>10.3f} {:>10.3f} {:>11.2f} {:>11.2f} {:>8.3f}x {:>7.3f}\n", T, P, full, causal,
                 strict, ring, striped, ring / striped, (2.0 * P - 1) / P);
    }
}

void time_layouts(const CpOptions& o) {
  dist::MpiSession session;
  dist::MpiComm comm;
  comm.set_timeout(o.timeout_s);
  const int P = comm.size(), me = comm.rank();
  const dist::AttnShape shape{o.n_head, o.n_kv, o.head_dim};
  if (me == 0)
    fmt::print("cp-attention prefill, {} MPI ranks, heads {}/{} (query/kv), head_dim {}, best of {}\n", P, o.n_head,
               o.n_kv, o.head_dim, o.repeat);
  if (me == 0)
    fmt::print("{:>7} {:<8} {:>10} {:>12} {:>12} {:>12} {:>10}\n", "T", "layout", "time_s", "compute_max", "cpu_max",
               "wait_max", "vs_ring");
  for (int64_t T : o.seqs) {
    IK_CHECK(T >= P, "--seq {} is smaller than the {} MPI ranks", T, P);
    double ring_time = 0;
    for (const auto& name : o.layouts) {
      const auto layout = dist::parse_layout(name);
      const int64_t len = dist::shard_len(layout, P, T);
      const uint64_t seed = uint64_t(T) * 31 + me;
      const auto q = random_floats(size_t(len) * o.n_head * o.head_dim, seed);
      const auto k = random_floats(size_t(len) * o.n_kv * o.head_dim, seed + 1);
      const auto v = random_floats(k.size(), seed + 2);
      std::vector<float> out(q.size());
      double best = 1e30, best_compute = 0, best_cpu = 0, best_wait = 0;
      for (int rep = 0; rep < o.repeat; ++rep) {
        comm.barrier();
        const auto t0 = std::chrono::steady_clock::now();
        dist::CpStats st;
        dist::cp_attention(comm, layout, T, shape, q, k, v, out, &st);
        const double mine = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        // Max over ranks of: total, compute wall, compute CPU, wait.
        std::vector<float> mine4 = {float(mine), float(st.compute_s), float(st.compute_cpu_s), float(st.wait_s)};
        std::vector<float> all(4 * P), mx(4, 0.0f);
        comm.all_gather(mine4, all);
        for (int r = 0; r < P; ++r)
          for (int e = 0; e < 4; ++e) mx[e] = std::max(mx[e], all[4 * r + e]);
        if (mx[0] < best) best = mx[0], best_compute = mx[1], best_cpu = mx[2], best_wait = mx[3];
      }
      if (name == "ring") ring_time = best;
      if (me == 0)
        fmt::print("{:>7} {:<8} {:>10.4f} {:>12.4f} {:>12.4f} {:>12.4f} {:>10}\n", T, name, best, best_compute, best_cpu,
                   best_wait,
                   ring_time > 0 ? fmt::format("{:.3f}x", ring_time / best) : "-");
    }
  }
}

#ifdef IK_HAVE_NCCL
// Every rank's f32 rows gathered to all, back in global token order: [T][width].
std::vector<float> gather_global(dist::NcclComm& comm, dist::Layout layout, int64_t T, const float* local, int64_t n,
                                 int64_t width) {
  namespace cuda = backend::cuda;
  const int P = comm.size();
  const cuda::DeviceArray<float> all(size_t(P) * n * width, "gathered outputs");
  comm.all_gather_on(local, all.get(), size_t(n) * width, cuda::main_stream());
  std::vector<float> host(all.size()), out(size_t(T) * width);
  cuda::download(host.data(), all.get(), host.size() * 4);
  for (int r = 0; r < P; ++r)
    for (int64_t i = 0; i < n; ++i) {
      const int64_t g = dist::global_index(layout, P, T, r, i);
      std::copy_n(host.begin() + (size_t(r) * n + i) * width, width, out.begin() + g * width);
    }
  return out;
}

// --check: seeded full Q/K/V on every rank, each rank's shard through the ring, the gathered
// output against single-GPU causal attention on rank 0 (both f32 with log-sum-exp).
void check_ring_gpu(dist::NcclComm& comm, const CpOptions& o, dist::Layout layout, int64_t T) {
  namespace cuda = backend::cuda;
  const int P = comm.size(), r = comm.rank(), H = o.n_head, KVH = o.n_kv, hd = o.head_dim;
  const int64_t Qd = int64_t(H) * hd, KVd = int64_t(KVH) * hd;
  const auto q = random_floats(size_t(T) * Qd, 41);
  const auto k = random_floats(size_t(T) * KVd, 42), v = random_floats(size_t(T) * KVd, 43);
  dist::CpGpuRing ring(comm, layout, T, dist::AttnShape{H, KVH, hd});
  const int64_t n = ring.shard();
  std::vector<float> q_local(size_t(n) * Qd);
  std::vector<uint16_t> kv_local(2 * size_t(n) * KVd);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t g = dist::global_index(layout, P, T, r, i);
    std::copy_n(q.begin() + g * Qd, Qd, q_local.begin() + i * Qd);
    for (int64_t e = 0; e < KVd; ++e) {
      kv_local[i * KVd + e] = f32_to_bf16(k[g * KVd + e]);
      kv_local[(n + i) * KVd + e] = f32_to_bf16(v[g * KVd + e]);
    }
  }
  {
    const cuda::DeviceArray<float> dq(q_local.data(), q_local.size(), "queries");
    const cuda::DeviceArray<cuda::bf16> dkv(kv_local.data(), kv_local.size(), "keys and values");
    ring.run(dq.get(), int(Qd), dkv.get(), dkv.get() + size_t(n) * KVd);
  }
  const auto got = gather_global(comm, layout, T, ring.out(), n, Qd);
  if (r != 0) return;
  // Reference: the whole sequence on this GPU, same kernel, one causal block.
  std::vector<uint16_t> kv_all(2 * size_t(T) * KVd);
  for (size_t e = 0; e < k.size(); ++e) kv_all[e] = f32_to_bf16(k[e]), kv_all[k.size() + e] = f32_to_bf16(v[e]);
  const cuda::DeviceArray<float> fq(q.data(), q.size(), "queries"), fo(q.size(), "output"), flse(size_t(T) * H, "log-sum-exp");
  const cuda::DeviceArray<cuda::bf16> fkv(kv_all.data(), kv_all.size(), "keys and values");
  cuda::attention_block(fq.get(), int(Qd), fkv.get(), fkv.get() + size_t(T) * KVd, int(T), 0, H, KVH, hd, 0, fo.get(),
                        flse.get());
  std::vector<float> ref(q.size());
  cuda::download(ref.data(), fo.get(), ref.size() * 4);
  const double rel = max_rel_diff(got.data(), ref.data(), ref.size());
  fmt::print("check {:<8} P = {} T = {}: max rel diff vs one GPU {:.2e} (bound 1e-2)\n", dist::layout_name(layout), P, T,
             rel);
  // Blocks of >= 16 queries run on tensor cores with bf16 probabilities, rounded per block.
  IK_CHECK(rel < 1e-2, "{} attention over {} GPUs differs from one GPU", dist::layout_name(layout), P);
}

// --time on GPUs: every layout at every T, time per run = slowest rank (host clock around a
// barrier and the device sync), best of --repeat.
void time_layouts_gpu_rank(dist::NcclComm& comm, const CpOptions& o) {
  namespace cuda = backend::cuda;
  const int P = comm.size(), r = comm.rank();
  const bool root = r == 0;
  const dist::AttnShape shape{o.n_head, o.n_kv, o.head_dim};
  if (o.check) {
    for (int64_t T : o.seqs)
      for (const auto& name : o.layouts) check_ring_gpu(comm, o, dist::parse_layout(name), T);
    return;
  }
  if (root)
    fmt::print("cp-attention on {} GPU(s) (NCCL ring, one process each), heads {}/{}, head_dim {}, best of {}\n"
               "{:>8} {:<8} {:>10} {:>9} {:>7}\n",
               P, o.n_head, o.n_kv, o.head_dim, o.repeat, "T", "layout", "time_ms", "vs_ring", "ideal");
  const cuda::DeviceArray<float> slot(P, "timings");
  for (int64_t T : o.seqs) {
    double ring_ms = 0;
    for (const auto& name : o.layouts) {
      const auto layout = dist::parse_layout(name);
      dist::CpGpuRing ring(comm, layout, T, shape);
      const int64_t n = ring.shard();
      const cuda::DeviceArray<float> q(size_t(n) * shape.n_head * shape.head_dim, "queries");
      const cuda::DeviceArray<cuda::bf16> kv(2 * size_t(n) * shape.n_kv * shape.head_dim, "keys and values");
      cuda::fill_f32(q.get(), q.size(), 0.01f);
      cuda::fill_uniform_bf16(kv.get(), kv.size(), 7 + r, 1.0f);
      double best = 1e30;
      for (int rep = 0; rep < o.repeat + 1; ++rep) {  // the first run warms up
        comm.barrier();
        cuda::sync();
        const auto t0 = std::chrono::steady_clock::now();
        ring.run(q.get(), shape.n_head * shape.head_dim, kv.get(), kv.get() + kv.size() / 2);
        cuda::sync();
        const float mine = float(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() * 1e3);
        std::vector<float> times(P, 0.0f);
        times[r] = mine;
        cuda::upload(slot.get(), times.data(), P * 4);
        comm.all_reduce_sum_on(slot.get(), P, cuda::main_stream());
        cuda::download(times.data(), slot.get(), P * 4);
        if (rep > 0) best = std::min(best, double(*std::max_element(times.begin(), times.end())));
      }
      if (name == "ring") ring_ms = best;
      if (root)
        fmt::print("{:>8} {:<8} {:>10.2f} {:>9} {:>7.3f}\n", T, name, best,
                   ring_ms > 0 ? fmt::format("{:.3f}x", ring_ms / best) : "-", (2.0 * P - 1) / P);
      std::fflush(stdout);
    }
  }
}
#endif

void time_layouts_gpu(const CpOptions& o) {
#ifdef IK_HAVE_NCCL
  dist::LocalRanks ranks = dist::spawn_local_ranks(o.gpus);  // before any CUDA call
  {
    dist::NcclComm comm(ranks);
    comm.set_timeout(o.timeout_s);
    backend::cuda::init(comm.device());
    time_layouts_gpu_rank(comm, o);
  }
  dist::join_local_ranks(ranks);
#else
  fail("cp-attention --device cuda --time needs NCCL, which this build lacks");
#endif
}

void add_cp_attention(CLI::App& app) {
  auto o = std::make_shared<CpOptions>();
  auto* c = app.add_subcommand("cp-attention",
                               "Context-parallel (ring / striped / zig-zag) causal attention: work table, or MPI timing "
                               "(mpirun -np P inferkit cp-attention --time)");
  c->add_flag("--table", o->table, "print the per-round work table (max over ranks) for each P in --P");
  c->add_flag("--virtual", o->virt, "time a virtual ring of each P in --P in this one process (no MPI)");
  c->add_flag("--time", o->time, "time the sharded attention prefill over the MPI ranks of this launch");
  c->add_option("--P", o->ranks, "rank counts for --table and --virtual (comma separated)")
      ->delimiter(',')
      ->check(CLI::Range(1, 4096));
  c->add_option("--seq", o->seqs, "sequence lengths (comma separated)")->delimiter(',')->check(CLI::PositiveNumber);
  c->add_option("--layouts", o->layouts, "layouts: ring, striped, zigzag (comma separated)")
      ->delimiter(',')
      ->check(CLI::IsMember({"ring", "striped", "zigzag"}));
  c->add_option("--heads", o->n_head, "query heads (--time, --virtual)")->check(CLI::PositiveNumber);
  c->add_option("--kv-heads", o->n_kv, "key/value heads, dividing --heads (--time, --virtual)")->check(CLI::PositiveNumber);
  c->add_option("--head-dim", o->head_dim, "head dimension (--time, --virtual)")->check(CLI::PositiveNumber);
  c->add_option("--repeat", o->repeat, "timed repetitions, best kept (--time; averaged graph replays for --virtual "
                "--device cuda)")->check(CLI::PositiveNumber);
  c->add_option("--device", o->device, "--virtual on the CPU or one CUDA GPU")->check(CLI::IsMember({"cpu", "cuda"}));
  c->add_option("--gpu", o->gpu, "CUDA device ordinal (--virtual --device cuda)")->check(CLI::Range(0, 64));
  c->add_option("--gpus", o->gpus, "--time --device cuda: GPUs, one forked process each (NCCL)")->check(CLI::Range(1, 64));
  c->add_flag("--check", o->check, "--time --device cuda: compare with one GPU's causal attention instead of timing");
  c->add_option("--timeout", o->timeout_s, "seconds before a stuck communication is an error")
      ->check(CLI::PositiveNumber);
  c->callback([o] {
    IK_CHECK(o->table || o->time || o->virt, "cp-attention: give --table, --virtual and/or --time");
    IK_CHECK(o->n_head % o->n_kv == 0, "--heads {} is not a multiple of --kv-heads {}", o->n_head, o->n_kv);
    if (o->table || o->virt)
      for (int P : o->ranks)
        for (int64_t T : o->seqs) IK_CHECK(T >= P, "--seq {} is smaller than --P {}", T, P);
    if (o->table) print_table(*o);
    if (o->virt) o->device == "cuda" ? virtual_ring_gpu(*o) : virtual_ring(*o);
    if (o->time) o->device == "cuda" ? time_layouts_gpu(*o) : time_layouts(*o);
  });
}

}  // namespace

static Register reg("cp-attention", add_cp_attention);

}  // namespace ik::cli
