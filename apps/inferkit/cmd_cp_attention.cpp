// inferkit cp-attention: context-parallel attention over MPI ranks.
//   --table   : per-round work (max over ranks) of ring vs striped vs zig-zag, no MPI needed.
//   --virtual : all shards computed in this one process, round time = slowest shard (CPU time;
//               with --device cuda, device time of each shard's block on one GPU).
//   --time    : run under mpirun; times the sharded attention prefill for each layout.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <memory>

#include "backend/cuda/cuda.hpp"
#include "command.hpp"
#include "core/error.hpp"
#include "core/rng.hpp"
#include "dist/cp_attention.hpp"

namespace ik::cli {

namespace {

struct CpOptions {
  bool table = false, time = false, virt = false;
  std::vector<int> ranks = {2, 4, 8};
  std::vector<int64_t> seqs = {4096};
  std::vector<std::string> layouts = {"ring", "striped", "zigzag"};
  int n_head = 8, n_kv = 2, head_dim = 64, repeat = 1;
  double timeout_s = 120;
  std::string device = "cpu";  // --virtual on the CPU or one GPU
  int gpu = 0;
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
      auto* q = static_cast<float*>(cuda::alloc(size_t(n) * Q * 4, "queries"));
      auto* k = static_cast<cuda::bf16*>(cuda::alloc(size_t(n) * KV * 2, "keys"));
      auto* v = static_cast<cuda::bf16*>(cuda::alloc(size_t(n) * KV * 2, "values"));
      auto* out = static_cast<cuda::bf16*>(cuda::alloc(size_t(n) * Q * 2, "outputs"));
      cuda::fill_f32(q, size_t(n) * Q, 0.01f);
      cuda::fill_uniform_bf16(k, size_t(n) * KV, 1, 1.0f);
      cuda::fill_uniform_bf16(v, size_t(n) * KV, 2, 1.0f);
      auto block_ms = [&](int n_past, int diag) {
        return cuda::time_ms([&] { cuda::attention_prefill(q, Q, k, v, out, n, n_past, H, KVH, hd, nullptr, diag); },
                             o.repeat);
      };
      const double full = block_ms(n, -n), causal = block_ms(0, 0), strict = block_ms(0, -1);
      const double ring = causal + (P - 1) * full, striped = causal + (P - 1) * std::max(causal, strict);
      fmt::print("{:>7} {:>3} {:>10.3f} {:>10.3f} {:>10.3f} {:>11.2f} {:>11.2f} {:>8.3f}x {:>7.3f}\n", T, P, full, causal,
                 strict, ring, striped, ring / striped, (2.0 * P - 1) / P);
      for (void* p : {static_cast<void*>(q), static_cast<void*>(k), static_cast<void*>(v), static_cast<void*>(out)})
        cuda::release(p);
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
  c->add_option("--gpu", o->gpu, "CUDA device ordinal (--device cuda)")->check(CLI::Range(0, 64));
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
    if (o->time) time_layouts(*o);
  });
}

}  // namespace

static Register reg("cp-attention", add_cp_attention);

}  // namespace ik::cli
