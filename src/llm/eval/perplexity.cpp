#include "llm/eval/perplexity.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/error.hpp"
#include "core/progress.hpp"

namespace ik::llm {

// -log softmax(logits)[target], in double for the sum.
static double token_nll(const float* logits, int64_t n_vocab, int32_t target) {
  float mx = logits[0];
  for (int64_t i = 1; i < n_vocab; ++i) mx = std::max(mx, logits[i]);
  double sum = 0;
  for (int64_t i = 0; i < n_vocab; ++i) sum += std::exp(double(logits[i] - mx));
  return std::log(sum) + mx - logits[target];
}

PerplexityResult perplexity(LlamaModel& model, const std::vector<int32_t>& tokens, int ctx,
                            const PerplexityOptions& opt) {
  const LlamaConfig& c = model.config();
  IK_CHECK(ctx >= 4, "perplexity: context {} is too small (at least 4)", ctx);
  IK_CHECK(c.n_ctx_train <= 0 || ctx <= c.n_ctx_train, "perplexity: context {} exceeds the model's {}", ctx,
           c.n_ctx_train);
  IK_CHECK(int64_t(tokens.size()) >= ctx, "perplexity: the text has {} tokens, fewer than one window of {}",
           tokens.size(), ctx);
  IK_CHECK(opt.batch > 0, "perplexity: batch must be positive");
  int64_t n_windows = int64_t(tokens.size()) / ctx;
  if (opt.max_windows > 0) n_windows = std::min(n_windows, opt.max_windows);

  const auto t0 = std::chrono::steady_clock::now();
  const int64_t first = ctx / 2;  // positions [first, ctx - 2] are scored, as in llama.cpp
  KVCache cache(c.n_layer, ctx, c.kv_dim());
  std::vector<float> logits;
  std::vector<int32_t> window(ctx);
  double nll = 0, nll2 = 0;
  int64_t count = 0;
  Progress bar("perplexity", uint64_t(n_windows), opt.progress);
  for (int64_t w = 0; w < n_windows; ++w) {
    std::copy(tokens.begin() + w * ctx, tokens.begin() + (w + 1) * ctx, window.begin());
    if (opt.bos >= 0) window[0] = opt.bos;
    cache.n_past = 0;
    for (int64_t p0 = 0; p0 < ctx; p0 += opt.batch) {
      const int64_t m = std::min<int64_t>(opt.batch, ctx - p0);
      const bool scored = p0 + m - 1 >= first;  // the first half needs no logits
      if (scored) logits.resize(size_t(m * c.n_vocab));
      model.forward(window.data() + p0, m, cache, scored ? logits.data() : nullptr, true);
      if (!scored) continue;
      for (int64_t i = std::max(p0, first); i < p0 + m && i <= ctx - 2; ++i) {
        // The target is the original next token (BOS only replaces a window's input).
        const double v = token_nll(logits.data() + (i - p0) * c.n_vocab, c.n_vocab, tokens[w * ctx + i + 1]);
        nll += v;
        nll2 += v * v;
        count++;
      }
    }
    bar.set_note(fmt::format("ppl {:.4f}", std::exp(nll / count)));
    bar.advance();
    if (opt.on_window) opt.on_window(w + 1, std::exp(nll / count));
  }
  bar.finish();

  PerplexityResult r;
  r.nll = nll;
  r.n_scored = count;
  r.n_windows = n_windows;
  r.ppl = std::exp(nll / count);
  // llama.cpp's uncertainty: the standard error of the mean NLL, carried through exp.
  const double mean = nll / count, var = nll2 / count - mean * mean;
  r.ppl_stderr = count > 1 ? r.ppl * std::sqrt(std::max(0.0, var) / (count - 1)) : 0;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace ik::llm
