// inferkit bench: prefill and decode throughput of the engine on a model, best of N runs.
#include <algorithm>
#include <chrono>
#include <fmt/format.h>
#include <omp.h>
#include <sys/resource.h>

#include "backend/cpu/cpu_features.hpp"
#include "command.hpp"
#include "core/error.hpp"
#include "llm_common.hpp"

namespace ik::cli {

struct BenchArgs {
  ModelFlags model;
  int prompt_tokens = 512;
  int gen_tokens = 128;
  int reps = 3;
  bool json = false;
};

static double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

static void run_bench(const BenchArgs& a) {
  LoadedModel lm = load_model(a.model);
  const auto& cfg = lm.model->config();
  IK_CHECK(a.prompt_tokens + a.gen_tokens < lm.ctx, "prompt + generated tokens ({}) exceed the context {}",
           a.prompt_tokens + a.gen_tokens, lm.ctx);
  // A fixed, reproducible prompt: token ids 100, 101, ... cycling through the vocabulary.
  std::vector<int32_t> prompt(a.prompt_tokens);
  for (int i = 0; i < a.prompt_tokens; ++i) prompt[i] = int32_t(100 + (i * 37) % (cfg.n_vocab - 100));
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
  auto a = std::make_shared<BenchArgs>();
  auto* c = app.add_subcommand("bench", "Measure prefill and decode tokens/s (best of --reps runs)");
  a->model.add(c);
  c->add_option("--prompt-tokens", a->prompt_tokens, "prompt length")->check(CLI::Range(1, 1 << 20));
  c->add_option("--gen-tokens", a->gen_tokens, "tokens to decode")->check(CLI::Range(1, 1 << 20));
  c->add_option("--reps", a->reps, "repetitions (the best is reported)")->check(CLI::Range(1, 100));
  c->add_flag("--json", a->json, "print one JSON line");
  c->callback([a] { run_bench(*a); });
}

static Register reg("bench", add_bench);

}  // namespace ik::cli
