// inferkit bench: prefill and decode throughput of the engine on a model, best of N runs.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <fmt/format.h>
#include <omp.h>
#include <sys/resource.h>

#include "backend/cpu/cpu_features.hpp"
#include "command.hpp"
#include "core/error.hpp"
#include "dist/launch.hpp"
#include "llm/model/llama_gpu.hpp"
#include "llm/runtime/sampler.hpp"
#ifdef IK_HAVE_NCCL
#include "dist/comm_nccl.hpp"
#endif
#include "llm_common.hpp"

namespace ik::cli {

struct EngineBenchArgs {
  ModelFlags model;
  DeviceFlag device;
  std::string config = "smollm2-135m";  // shape for --random-weights
  std::string weights = "bf16";          // --random-weights on the GPU: bf16, nf4, nf3, nf2
  bool random_weights = false;
  uint64_t seed = 1;
  std::vector<int> batches = {1, 4, 16, 64};  // GPU decode batch sizes
  std::vector<int> tree_nodes;                // GPU: time a draft tree's verification pass
  int prefill_tokens = 2048;                  // GPU prefill measurement
  int max_rows = llm::GpuOptions{}.max_rows;  // GPU rows per forward call (prefill chunks)
  int prompt_tokens = 512;
  int gen_tokens = 128;
  int reps = 3;
  bool json = false;
  int context_parallel = 0;  // GPUs: striped prefill over forked ranks (run_cp_bench_gpu)
  bool check = false;        // with context_parallel: compare with one GPU instead of timing
};

// ---- GPU ------------------------------------------------------------------------------------

static void run_gpu_bench(const EngineBenchArgs& a) {
  llm::GpuOptions opt;
  opt.device = a.device.ordinal;
  opt.n_seq = *std::max_element(a.batches.begin(), a.batches.end());
  const int max_nodes = a.tree_nodes.empty() ? 0 : *std::max_element(a.tree_nodes.begin(), a.tree_nodes.end());
  opt.n_ctx = std::max(a.prompt_tokens + a.gen_tokens + 2 + max_nodes, a.prefill_tokens + 1);
  opt.max_rows = a.max_rows;
  std::unique_ptr<llm::GpuLlama> g;
  double load_s = 0;
  {
    const double t0 = now_s();
    if (a.random_weights) {
      const int bits = a.weights == "bf16" ? 0 : a.weights[2] - '0';
      g = llm::GpuLlama::random(llm::preset_config(a.config), a.seed, opt, bits);
    } else {
      LoadedModel lm = load_model(a.model);
      g = llm::GpuLlama::upload(*lm.model, opt);
    }
    load_s = now_s() - t0;
  }
  const auto& cfg = g->config();
  const auto dev = g->device();
  const double bw = backend::cuda::measure_copy_bandwidth(size_t(2) << 30);
  const auto prompt = bench_prompt(a.prompt_tokens, cfg.n_vocab);
  const double prefill_s = gpu_prefill_s(*g, bench_prompt(a.prefill_tokens, cfg.n_vocab), a.reps);
  // The floor for one decode step at batch 1: weights once plus the KV cache at this context,
  // read at the copy bandwidth (which counts bytes read plus written: the memory's total rate).
  const double ctx_mid = a.prompt_tokens + a.gen_tokens / 2.0;
  const double floor_s = (double(g->weight_bytes()) + g->kv_bytes_per_position() * ctx_mid) / bw;
  fmt::print("device {} ({} SMs, {:.0f} GiB), copy bandwidth {:.0f} GB/s (read + write)\n", dev.name, dev.sm_count,
             dev.total_bytes / 1073741824.0, bw / 1e9);
  fmt::print("model {}: {} layers, {} embd, {} heads / {} KV, vocab {}; {} weights {:.2f} GB, loaded in {:.1f} s\n",
             cfg.name, cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.n_head_kv, cfg.n_vocab,
             g->lut_weights() ? fmt::format("NF{} (lookup-table) block", g->lut_bits()) : std::string("bf16"),
             g->weight_bytes() / 1e9, load_s);
  fmt::print("prefill ({} tokens): {:10.1f} tok/s\n", a.prefill_tokens, a.prefill_tokens / prefill_s);
  std::string json_batches;
  double step_1 = 0;  // batch-1 decode step, the yardstick of a verification pass
  for (int n : a.batches) {
    const double step = gpu_decode_step_s(*g, prompt, n, a.gen_tokens, a.reps);
    if (n == 1) {
      step_1 = step;
      fmt::print("decode batch {:3d} (context {}): {:7.3f} ms/token = {:8.1f} tok/s; floor {:.3f} ms ({:.0f}% of the bandwidth limit)\n",
                 n, a.prompt_tokens, step * 1e3, 1.0 / step, floor_s * 1e3, 100.0 * floor_s / step);
    } else {
      fmt::print("decode batch {:3d} (context {}): {:7.3f} ms/step = {:8.1f} tok/s\n", n, a.prompt_tokens, step * 1e3,
                 n / step);
    }
    json_batches += fmt::format("{}\"{}\":{:.2f}", json_batches.empty() ? "" : ",", n, n / step);
    if (n == 1) json_batches += fmt::format(",\"ms_per_token\":{:.4f},\"floor_ms\":{:.4f}", step * 1e3, floor_s * 1e3);
  }
  for (int nodes : a.tree_nodes) {
    const double pass = gpu_verify_pass_s(*g, prompt, nodes, a.gen_tokens, a.reps);
    fmt::print("verification pass, tree of {:3d} nodes (context {}): {:7.3f} ms{}\n", nodes, a.prompt_tokens, pass * 1e3,
               step_1 > 0 ? fmt::format(" = {:.2f} batch-1 decode steps", pass / step_1) : std::string());
  }
  if (a.json)
    fmt::print("{{\"engine\":\"inferkit-cuda\",\"model\":\"{}\",\"prefill_tok_s\":{:.1f},\"decode_tok_s\":{{{}}},"
               "\"copy_gb_s\":{:.1f}}}\n",
               cfg.name, a.prefill_tokens / prefill_s, json_batches, bw / 1e9);
}

// ---- GPU, context parallel -----------------------------------------------------------------

#ifdef IK_HAVE_NCCL
// --check: the last prompt token's logits and 8 greedy tokens, striped over the ranks vs the
// plain forward on one GPU (rank 0), same random weights.
static void check_cp(llm::GpuLlama& cp, const EngineBenchArgs& a, const llm::LlamaConfig& cfg, bool root) {
  const auto prompt = bench_prompt(a.prefill_tokens, cfg.n_vocab);
  const int64_t V = cfg.n_vocab;
  std::vector<float> got(V);
  std::vector<int32_t> got_tokens;
  cp.prefill_cp(prompt.data(), a.prefill_tokens, got.data());
  for (int i = 0; i < 8; ++i) {
    got_tokens.push_back(cp.sample_last(0));
    cp.decode_cp(got_tokens.back(), nullptr);
  }
  if (!root) return;
  llm::GpuOptions one;
  one.device = cp.device().ordinal;
  one.n_ctx = a.prefill_tokens + 16;
  auto g = llm::GpuLlama::random(cfg, a.seed, one);
  const GreedyTrace trace = greedy_trace(*g, prompt, 8, false);
  const std::vector<float>& ref = trace.logits;
  const std::vector<int32_t>& ref_tokens = trace.tokens;
  const double rel = max_rel_diff(got.data(), ref.data(), size_t(V));
  double d = 0;  // the largest absolute difference, against which a near-tie is judged
  for (int64_t i = 0; i < V; ++i) d = std::max(d, double(std::fabs(got[i] - ref[i])));
  int same = 0;
  while (same < 8 && got_tokens[same] == ref_tokens[same]) ++same;
  // A different first token is a near-tie when the reference's margin between its choice and
  // ours is within twice the largest logit difference (rounding, not a wrong result).
  const double margin = ref[ref_tokens[0]] - ref[got_tokens[0]];
  const bool near_tie = same == 0 && margin <= 2 * d;
  fmt::print("check context-parallel P = {}, {} prompt tokens: last-token logits max rel diff {:.2e} (bound 3e-2), "
             "greedy tokens {}/8 identical{}\n", a.context_parallel, a.prefill_tokens, rel, same,
             same == 0 ? fmt::format(" (first-token margin {:.2e} vs max diff {:.2e}: {})", margin, d,
                                     near_tie ? "a near-tie" : "NOT a near-tie")
                       : "");
  IK_CHECK(rel < 3e-2 && (same >= 4 || near_tie), "context-parallel prefill on {} GPUs differs from one GPU",
           a.context_parallel);
}
#endif

// Prefill of --prefill-tokens random tokens striped over --context-parallel GPUs (the same code
// at P = 1 is the one-GPU baseline: one ring round, one causal block).
static void run_cp_bench_gpu(const EngineBenchArgs& a) {
#ifdef IK_HAVE_NCCL
  IK_CHECK(a.random_weights, "bench --context-parallel runs on --random-weights");
  const int P = a.context_parallel;
  const llm::LlamaConfig cfg = llm::preset_config(a.config);
  dist::LocalRanks ranks = dist::spawn_local_ranks(P);  // before any CUDA call
  const bool root = ranks.rank == 0;
  {
    dist::NcclComm comm(ranks);
    comm.set_timeout(600);
    llm::GpuOptions opt;
    opt.comm = &comm;
    opt.context_parallel = true;
    opt.n_ctx = (a.prefill_tokens + P - 1) / P + 16;
    opt.max_rows = std::max(1, (a.prefill_tokens - 1) / P);
    auto g = llm::GpuLlama::random(cfg, a.seed, opt);
    g->set_sampling(0, 0.0f, 0, 1.0f, 0.0f, 0);
    if (a.check) {
      check_cp(*g, a, cfg, root);
    } else {
      const auto prompt = bench_prompt(a.prefill_tokens, cfg.n_vocab);
      double best = 1e30;
      for (int rep = 0; rep < a.reps; ++rep) {
        g->reset_cp();
        comm.barrier();
        const double t0 = now_s();
        g->prefill_cp(prompt.data(), a.prefill_tokens, nullptr);
        backend::cuda::sync();
        best = std::min(best, now_s() - t0);
      }
      if (root)
        fmt::print("context-parallel prefill: {} | {} GPU(s), striped, NCCL | {} tokens ({} per GPU): {:.3f} s = {:.0f} "
                   "tok/s (best of {})\n",
                   cfg.name, P, a.prefill_tokens, (a.prefill_tokens + P - 1) / P, best, a.prefill_tokens / best, a.reps);
    }
    std::fflush(stdout);
  }
  dist::join_local_ranks(ranks);
#else
  fail("bench --context-parallel needs NCCL, which this build lacks");
#endif
}

// ---- CPU ------------------------------------------------------------------------------------

static void run_bench(const EngineBenchArgs& a) {
  if (a.context_parallel > 0) {
    IK_CHECK(a.device.name == "cuda", "bench --context-parallel runs on GPUs: add --device cuda");
    return run_cp_bench_gpu(a);
  }
  if (a.device.use_cuda()) return run_gpu_bench(a);
  IK_CHECK(a.tree_nodes.empty(), "--tree-nodes times the GPU verification pass: add --device cuda");
  LoadedModel lm;
  if (a.random_weights) {
    lm.model = std::make_unique<llm::LlamaModel>(llm::LlamaModel::random(
        llm::preset_config(a.config), a.seed, a.model.reference ? llm::WeightMode::Reference : llm::WeightMode::Fast));
    lm.ctx = a.prompt_tokens + a.gen_tokens + 1;
    if (a.model.threads > 0) omp_set_num_threads(a.model.threads);
  } else {
    lm = load_model(a.model);
  }
  const auto& cfg = lm.model->config();
  IK_CHECK(a.prompt_tokens + a.gen_tokens < lm.ctx, "prompt + generated tokens ({}) exceed the context {}",
           a.prompt_tokens + a.gen_tokens, lm.ctx);
  const auto prompt = bench_prompt(a.prompt_tokens, cfg.n_vocab);
  double best_prefill = 1e30, best_decode = 1e30;
  std::vector<float> logits(cfg.n_vocab);
  for (int rep = 0; rep < a.reps; ++rep) {
    llm::KVCache cache(cfg.n_layer, lm.ctx, cfg.kv_dim());
    double t0 = now_s();
    for (int i = 0; i < a.prompt_tokens; i += 256) {
      const int m = std::min(256, a.prompt_tokens - i);
      lm.model->forward(prompt.data() + i, m, cache, logits.data());
    }
    double t1 = now_s();
    int32_t tok = llm::argmax(logits.data(), cfg.n_vocab);
    for (int i = 0; i < a.gen_tokens; ++i) {
      lm.model->forward(&tok, 1, cache, logits.data());
      tok = llm::argmax(logits.data(), cfg.n_vocab);
    }
    double t2 = now_s();
    best_prefill = std::min(best_prefill, t1 - t0);
    best_decode = std::min(best_decode, t2 - t1);
  }
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  const double rss_mb = ru.ru_maxrss / 1024.0, model_mb = lm.file_bytes / 1048576.0;
  const double prefill = a.prompt_tokens / best_prefill, decode = a.gen_tokens / best_decode;
  if (a.json) {
    fmt::print(
        "{{\"engine\":\"inferkit\",\"prefill_tok_s\":{:.2f},\"decode_tok_s\":{:.2f},\"peak_rss_mb\":{:.1f},"
        "\"model_mb\":{:.1f},\"threads\":{},\"prompt_tokens\":{},\"gen_tokens\":{},\"reference\":{}}}\n",
        prefill, decode, rss_mb, model_mb, omp_get_max_threads(), a.prompt_tokens, a.gen_tokens, a.model.reference);
    return;
  }
  const double gbs = lm.model->weight_bytes() * decode / 1e9;
  fmt::print("model {} ({:.1f} MiB), {} threads, CPU: {}\n", cfg.name, model_mb, omp_get_max_threads(),
             backend::cpu_features().describe());
  fmt::print("prefill ({} tokens): {:8.1f} tok/s\n", a.prompt_tokens, prefill);
  fmt::print("decode  ({} tokens): {:8.1f} tok/s  ({:.1f} GB/s of weights)\n", a.gen_tokens, decode, gbs);
  fmt::print("peak RSS: {:.1f} MiB (model file {:.1f} MiB)\n", rss_mb, model_mb);
}

static void add_bench(CLI::App& app) {
  auto a = std::make_shared<EngineBenchArgs>();
  auto* c = app.add_subcommand("bench", "Measure prefill and decode tokens/s (best of --reps runs)");
  a->model.add(c);
  a->device.add(c);
  c->add_flag("--random-weights", a->random_weights, "seeded random weights of the --config shape instead of a model file");
  c->add_option("--config", a->config, "shape for --random-weights: llama3-8b, llama3-70b-8layers, smollm2-135m, tiny");
  c->add_option("--seed", a->seed, "seed for --random-weights");
  c->add_option("--weights", a->weights, "--random-weights on the GPU: bf16, or NormalFloat codes nf4, nf3, nf2 (G = 128) "
                "for the block matrices, run by the lookup-table kernel")
      ->check(CLI::IsMember({"bf16", "nf4", "nf3", "nf2"}));
  c->add_option("--batch", a->batches, "GPU decode batch sizes (repeatable / comma list)")
      ->delimiter(',')
      ->check(CLI::Range(1, 1024));
  c->add_option("--tree-nodes", a->tree_nodes,
                 "GPU: also time a speculative draft tree's verification pass of this many nodes (repeatable / comma list)")
      ->delimiter(',')
      ->check(CLI::Range(1, 256));
  c->add_option("--prefill-tokens", a->prefill_tokens, "GPU prefill measurement length")->check(CLI::Range(1, 1 << 20));
  c->add_option("--max-rows", a->max_rows, "GPU rows per forward call (longer prefills run in chunks of this many)")
      ->check(CLI::Range(1, 1 << 16))
      ->capture_default_str();
  c->add_option("--prompt-tokens", a->prompt_tokens, "prompt length")->check(CLI::Range(1, 1 << 20));
  c->add_option("--gen-tokens", a->gen_tokens, "tokens to decode")->check(CLI::Range(1, 1 << 20));
  c->add_option("--reps", a->reps, "repetitions (the best is reported)")->check(CLI::Range(1, 100));
  c->add_flag("--json", a->json, "print one JSON line");
  c->add_option("--context-parallel", a->context_parallel,
                "GPUs: prefill --prefill-tokens striped over P GPUs (forked processes, NCCL); P = 1 is the baseline")
      ->check(CLI::Range(1, 64));
  c->add_flag("--check", a->check, "with --context-parallel: compare logits and greedy tokens with one GPU");
  c->callback([a] { run_bench(*a); });
}

static Register reg("bench", add_bench);

}  // namespace ik::cli
