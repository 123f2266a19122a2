#pragma once
// Perplexity with llama.cpp's definition (tools/perplexity/perplexity.cpp): the token stream
// is cut into non-overlapping windows of `ctx` tokens; each window is evaluated from an empty
// cache and only its second half is scored (positions ctx/2 .. ctx-2 predict the next token),
// so every scored token sees at least ctx/2 tokens of context. When the model adds a BOS token,
// the first token of every window is replaced by BOS, as llama.cpp does.
#include <cstdint>
#include <functional>
#include <vector>

#include "llm/model/llama.hpp"

namespace ik::llm {

struct PerplexityOptions {
  int32_t bos = -1;           // >= 0: replace the first token of each window with this id
  int64_t max_windows = 0;    // 0: all complete windows
  bool progress = true;       // ik::Progress bar with ETA on stderr
  int64_t batch = 128;        // tokens per forward call inside a window (logits: batch x n_vocab floats)
  // Called after each window with (windows done, running perplexity); may be empty.
  std::function<void(int64_t, double)> on_window;
};

struct PerplexityResult {
  double ppl = 0;          // exp(nll / n_scored)
  double nll = 0;          // summed negative log-likelihood (nats)
  double ppl_stderr = 0;   // standard error of ppl (delta method, as llama.cpp prints "+/-")
  int64_t n_scored = 0;    // tokens scored
  int64_t n_windows = 0;   // windows evaluated
  double seconds = 0;
};

// Throws ik::Error when the stream has fewer than `ctx` tokens or ctx < 4 / exceeds the
// model's trained context.
PerplexityResult perplexity(LlamaModel& model, const std::vector<int32_t>& tokens, int ctx,
                            const PerplexityOptions& opt = {});

}  // namespace ik::llm
