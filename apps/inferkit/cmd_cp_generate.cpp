// inferkit generate --context-parallel P (under mpirun -np P): the prompt is prefilled with
// striped attention over the P ranks, the KV cache stays distributed (token t on rank t mod
// P, --kv-capacity rows per rank) and decoding continues on it. Rank 0 samples and prints.
// Called from cmd_generate.cpp; the engine is llm/dist/context_parallel.hpp. With --device cuda:
// one forked process per GPU, NCCL, GpuLlama's prefill_cp / decode_cp (run_cp_generate_gpu).
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "core/error.hpp"
#include "dist/comm.hpp"
#include "dist/cp_attention.hpp"
#include "dist/launch.hpp"
#include "llm/model/llama_gpu.hpp"
#ifdef IK_HAVE_NCCL
#include "dist/comm_nccl.hpp"
#endif
#include "llm/dist/context_parallel.hpp"
#include "llm_common.hpp"

namespace ik::cli {

namespace {

// Per-rank prefill figures gathered on rank 0, and the striped layout's per-round work
// (query-key pairs; a synchronous ring round lasts as long as its busiest rank).
void print_balance(dist::Comm& comm, const llm::ContextParallelLlama& cp, int64_t T) {
  const int P = comm.size();
  const auto& s = cp.prefill_stats();
  constexpr int F = 5;
  std::vector<float> mine = {float(s.rows), float(s.total_s), float(s.cpu_s), float(s.attn_cpu_s), float(s.attn_wait_s)};
  std::vector<float> all(F * P);
  comm.all_gather(mine, all);
  if (comm.rank() != 0) return;
  fmt::print(stderr, "[context-parallel prefill, {} ranks, striped layout]\n[cp] {:>4} {:>7} {:>10} {:>10} {:>12} {:>12}\n",
             P, "rank", "tokens", "prefill_s", "cpu_s", "attn_cpu_s", "attn_wait_s");
  for (int r = 0; r < P; ++r) {
    const float* a = all.data() + F * r;
    fmt::print(stderr, "[cp] {:>4} {:>7} {:>10.3f} {:>10.3f} {:>12.3f} {:>12.3f}\n", r, int64_t(a[0]), a[1], a[2], a[3],
               a[4]);
  }
  int64_t striped = 0, ring = 0;
  std::string rounds;
  for (int r = 0; r < P; ++r) {
    const auto w = dist::round_work(dist::Layout::Striped, P, T, r);
    const auto wr = dist::round_work(dist::Layout::Ring, P, T, r);
    const auto [lo, hi] = std::minmax_element(w.begin(), w.end());
    striped += *hi;
    ring += *std::max_element(wr.begin(), wr.end());
    if (r < 8) rounds += fmt::format(" {}-{}", *lo, *hi);
  }
  fmt::print(stderr, "[cp] striped attention pairs per round (min-max over ranks):{}{}\n", rounds, P > 8 ? " ..." : "");
  fmt::print(stderr, "[cp] sum of per-round maxima: striped {}, contiguous ring {} (ring / striped = {:.3f})\n", striped, ring,
             double(ring) / double(striped));
}

}  // namespace

void run_cp_generate(LoadedModel& lm, const std::vector<int32_t>& ids, const llm::GenerateOptions& opt, int ranks,
                     int64_t kv_capacity, int threads, bool quiet, const std::string& echo) {
  dist::MpiSession session;
  dist::MpiComm comm;
  const int P = comm.size(), me = comm.rank();
  IK_CHECK(P == ranks, "--context-parallel {} needs {} MPI ranks (mpirun -np {} inferkit generate ...), this launch has {}",
           ranks, ranks, ranks, P);
  if (threads == 0) omp_set_num_threads(std::max(1, omp_get_num_procs() / P));  // the ranks share the cores
  const int64_t T = int64_t(ids.size());
  const int64_t capacity = kv_capacity > 0 ? kv_capacity : (lm.ctx + P - 1) / P;
  IK_CHECK(T <= P * capacity, "prompt is {} tokens; {} ranks of {} KV rows hold {} (raise --kv-capacity or the ranks)",
           T, P, capacity, P * capacity);
  llm::ContextParallelLlama cp(*lm.model, comm, capacity);

  // Rank 0 streams the text; stop strings cut it like Session does.
  llm::TokenTextStream stream(lm.tokenizer, opt.stop, print_text);
  auto on_token = [&](int32_t id) { return stream.push(id); };
  if (me == 0 && !quiet && !echo.empty()) fmt::print("{}", echo);
  const std::vector<int32_t> no_stop;
  const auto r = llm::cp_generate(cp, ids, opt.sampling, opt.max_tokens, opt.stop_at_eos ? lm.tokenizer.stop_ids() : no_stop,
                                  on_token);
  if (me == 0) {
    stream.finish();
    fmt::print("\n");
    std::fflush(stdout);
  }
  if (quiet) return;
  print_balance(comm, cp, T);
  if (me == 0)
    fmt::print(stderr, "[prompt {} tokens, {:.1f} tok/s | generated {} tokens, {:.1f} tok/s | stop: {} | KV rows per rank {} of {}]\n",
               T, T / r.prefill_s, r.tokens.size(), r.decode_s > 0 ? r.tokens.size() / r.decode_s : 0.0,
               r.stop_reason == "callback" ? "stop" : r.stop_reason, (cp.n_past() + P - 1) / P, capacity);
}

// ranks: this process's place among the forked GPU processes (dist::spawn_local_ranks, called
// before the model was loaded); rank 0 waits for the others at the end.
void run_cp_generate_gpu(LoadedModel& lm, const std::vector<int32_t>& ids, const llm::GenerateOptions& opt,
                         dist::LocalRanks& lr, int64_t kv_capacity, bool quiet, const std::string& echo) {
#ifdef IK_HAVE_NCCL
  const int P = lr.size;
  const int64_t T = int64_t(ids.size());
  const int64_t new_tokens = opt.max_tokens < 0 ? lm.ctx - T : opt.max_tokens;
  const int64_t capacity = kv_capacity > 0 ? kv_capacity : (T + std::max<int64_t>(new_tokens, 0) + P - 1) / P + 2;
  IK_CHECK((T + P - 1) / P < capacity, "prompt is {} tokens; {} GPUs of {} KV rows (one kept free) hold {} (raise "
           "--kv-capacity or the GPUs)", T, P, capacity, P * (capacity - 1));
  opt.sampling.validate();
  const bool root = lr.rank == 0;
  {
    dist::NcclComm comm(lr);
    llm::GpuOptions g_opt;
    g_opt.comm = &comm;
    g_opt.context_parallel = true;
    g_opt.n_seq = 1;
    g_opt.n_ctx = capacity;
    g_opt.max_rows = int(std::max<int64_t>(1, (T - 1) / P));
    auto g = llm::GpuLlama::upload(*lm.model, g_opt);
    const auto& s = opt.sampling;
    g->set_sampling(0, s.temperature, s.top_k, s.top_p, s.min_p, s.seed);
    if (root && !quiet && !echo.empty()) fmt::print("{}", echo), std::fflush(stdout);
    const auto t0 = std::chrono::steady_clock::now();
    g->prefill_cp(ids.data(), T, nullptr);
    backend::cuda::sync();
    const double prefill_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // Every rank samples from bitwise the same logits and runs the same stop rules, so they stay
    // in step without messages; rank 0 prints.
    llm::TokenTextStream stream(lm.tokenizer, opt.stop, [root](const std::string& piece) {
      return root ? print_text(piece) : true;
    });
    std::string stop_reason = "length";
    int64_t generated = 0;
    const auto t1 = std::chrono::steady_clock::now();
    for (; generated < new_tokens; ++generated) {
      const int32_t tok = g->sample_last(0);
      if (opt.stop_at_eos && std::find(lm.tokenizer.stop_ids().begin(), lm.tokenizer.stop_ids().end(), tok) !=
                                 lm.tokenizer.stop_ids().end()) {
        stop_reason = "eos";
        break;
      }
      if (!stream.push(tok)) {
        stop_reason = "stop", ++generated;
        break;
      }
      if ((g->cp_tokens() + P) / P >= capacity) {
        stop_reason = "context", ++generated;
        break;
      }
      g->decode_cp(tok, nullptr);
    }
    const double decode_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    stream.finish();
    if (root) {
      fmt::print("\n");
      if (!quiet)
        fmt::print(stderr, "[prompt {} tokens, {:.1f} tok/s | generated {} tokens, {:.1f} tok/s | stop: {} | {} GPUs, "
                   "striped, KV rows per GPU {} of {}]\n",
                   T, T / prefill_s, generated, decode_s > 0 ? generated / decode_s : 0.0, stop_reason, P,
                   (g->cp_tokens() + P - 1) / P, capacity);
      std::fflush(stdout);
    }
  }
  dist::join_local_ranks(lr);
#else
  fail("--context-parallel with --device cuda needs NCCL, which this build lacks");
#endif
}

}  // namespace ik::cli
