// tp-bench --device cuda --gpus P: the tensor-parallel block variants on P GPUs (one forked
// process per GPU, NCCL), random weights of a named shape; or --check: every variant's output
// on P GPUs against the same model on one GPU.
#include <algorithm>
#include <fmt/format.h>
#include <memory>

#include "backend/cuda/cuda.hpp"
#include "core/error.hpp"
#include "dist/launch.hpp"
#include "llm/model/llama_gpu.hpp"
#include "llm_common.hpp"
#include "tp_gpu.hpp"
#ifdef IK_HAVE_NCCL
#include "dist/comm_nccl.hpp"
#endif

namespace ik::cli {

namespace {

struct GpuVariantResult {
  std::string name;
  double prefill_tok_s = 0;
  std::vector<double> step_s;  // per batch size
};

llm::GpuOptions variant_options(const std::string& name, int n_layer) {
  llm::GpuOptions o;
  if (name == "ladder") o.ladder_last = n_layer;
  else if (name == "parallel") o.parallel_block = true;
  else if (name == "desync") o.desync = true;
  else IK_CHECK(name == "standard", "unknown variant '{}' (standard, ladder, parallel, desync)", name);
  return o;
}

}  // namespace

void run_tp_bench_gpu(const TpGpuBench& a) {
#ifndef IK_HAVE_NCCL
  IK_CHECK(a.gpus == 1, "tensor parallelism over GPUs needs NCCL, which this build lacks");
#endif
  IK_CHECK(a.gpus >= 1 && a.gpus <= 64, "--gpus {} outside [1, 64]", a.gpus);
  dist::LocalRanks ranks = dist::spawn_local_ranks(a.gpus);  // before any CUDA call
  const bool root = ranks.rank == 0;
  {
#ifdef IK_HAVE_NCCL
    std::unique_ptr<dist::NcclComm> comm;
    if (a.gpus > 1) comm = std::make_unique<dist::NcclComm>(ranks);
    if (comm) comm->set_timeout(a.timeout);
#endif
    llm::LlamaConfig cfg = llm::preset_config(a.config);
    if (a.layers > 0) cfg.n_layer = a.layers, cfg.name = fmt::format("{}, {} layers", cfg.name, a.layers);
    const int max_batch = *std::max_element(a.batches.begin(), a.batches.end());
    std::vector<GpuVariantResult> results;
    double bandwidth = 0;
    size_t weight_bytes = 0;
    for (const auto& name : a.variants) {
      llm::GpuOptions opt = variant_options(name, int(cfg.n_layer));
#ifdef IK_HAVE_NCCL
      opt.comm = comm.get();
#endif
      opt.device = ranks.rank;
      opt.n_seq = a.check ? 1 : max_batch;
      opt.n_ctx = a.check ? 64 : std::max(a.prompt_tokens + a.gen_tokens + 2, a.prefill_tokens + 1);
      opt.max_rows = 512;
      if (a.check) {
        if (name == "desync") continue;  // wrong output by design
        GreedyTrace tp;
        {
          auto g = llm::GpuLlama::random(cfg, a.seed, opt);
          tp = greedy_trace(*g, bench_prompt(37, cfg.n_vocab), 12, true);
        }
        if (!root) continue;
        llm::GpuOptions one = opt;
        one.comm = nullptr;
        auto g1 = llm::GpuLlama::random(cfg, a.seed, one);
        const GreedyTrace ref = greedy_trace(*g1, bench_prompt(37, cfg.n_vocab), 12, true);
        const double rel = max_rel_diff(tp.logits.data(), ref.logits.data(), ref.logits.size());
        int same = 0;
        while (same < int(ref.tokens.size()) && tp.tokens[same] == ref.tokens[same]) ++same;
        fmt::print("check {:<9} P = {}: logits max rel diff {:.2e} (bound 3e-2), greedy tokens {}/{} identical\n", name,
                   a.gpus, rel, same, ref.tokens.size());
        IK_CHECK(rel < 3e-2 && same >= 4, "tensor-parallel {} on {} GPUs differs from one GPU", name, a.gpus);
        continue;
      }
      auto g = llm::GpuLlama::random(cfg, a.seed, opt);
      if (bandwidth == 0) bandwidth = backend::cuda::measure_copy_bandwidth(size_t(2) << 30);
      weight_bytes = g->weight_bytes();
      GpuVariantResult r{name, 0, {}};
      r.prefill_tok_s = a.prefill_tokens / gpu_prefill_s(*g, bench_prompt(a.prefill_tokens, cfg.n_vocab), a.repeat);
      const auto prompt = bench_prompt(a.prompt_tokens, cfg.n_vocab);
      for (int n : a.batches) {
        r.step_s.push_back(gpu_decode_step_s(*g, prompt, n, a.gen_tokens, a.repeat));
        if (root) fmt::print("  {} batch {}: {:.3f} ms/step\n", name, n, r.step_s.back() * 1e3), std::fflush(stdout);
      }
      results.push_back(r);
    }
    if (root && !a.check) {
      const GpuVariantResult* standard = nullptr;
      const GpuVariantResult* desync = nullptr;
      for (const auto& r : results) {
        if (r.name == "standard") standard = &r;
        if (r.name == "desync") desync = &r;
      }
      fmt::print("tp-bench (CUDA): {} | TP = {} GPU(s), NCCL | per-rank weights {:.2f} GB, copy bandwidth {:.0f} GB/s | "
                 "prompt {} + decode {} tokens | prefill {} tokens | best of {}\n",
                 cfg.name, a.gpus, weight_bytes / 1e9, bandwidth / 1e9, a.prompt_tokens, a.gen_tokens, a.prefill_tokens,
                 a.repeat);
      fmt::print("{:<9} {:>6} {:>10} {:>10} {:>13} {:>13}\n", "variant", "batch", "ms/step", "tok/s", "vs standard",
                 "this/desync");
      for (const auto& r : results)
        for (size_t i = 0; i < a.batches.size(); ++i)
          fmt::print("{:<9} {:>6} {:>10.3f} {:>10.1f} {:>13} {:>13}\n", r.name, a.batches[i], r.step_s[i] * 1e3,
                     a.batches[i] / r.step_s[i],
                     standard ? fmt::format("{:.3f}x", standard->step_s[i] / r.step_s[i]) : "-",
                     desync ? fmt::format("{:.3f}", r.step_s[i] / desync->step_s[i]) : "-");
      fmt::print("{:<9} {:>16}\n", "variant", "prefill tok/s");
      for (const auto& r : results) fmt::print("{:<9} {:>16.0f}\n", r.name, r.prefill_tok_s);
      std::fflush(stdout);
    }
  }
  dist::join_local_ranks(ranks);
}

}  // namespace ik::cli
