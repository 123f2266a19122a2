#pragma once
// Token sampling: repetition penalty, then top-k, top-p, min-p and temperature, then a draw
// from a seeded stream (same seed, same text). Temperature 0 is greedy (argmax).
#include <cstdint>
#include <vector>

#include "core/rng.hpp"

namespace ik::llm {

struct SamplingParams {
  float temperature = 0.8f;
  int top_k = 40;            // 0: off
  float top_p = 0.95f;       // 1: off
  float min_p = 0.05f;       // 0: off
  float repeat_penalty = 1.0f;  // 1: off (llama.cpp's rule: divide positive logits, multiply negative)
  int repeat_last_n = 64;
  uint64_t seed = 0;
  void validate() const;  // throws ik::Error for out-of-range values
  // Whether draws depend on the recent tokens (the samplers that run on the GPU or verify a
  // draft tree have no history and support only this being false).
  bool penalizes_repeats() const { return repeat_penalty != 1.0f && repeat_last_n > 0; }
};

class Sampler {
 public:
  explicit Sampler(SamplingParams p) : p_(p), rng_(p.seed) { p_.validate(); }
  // logits: n_vocab values (not modified). history: tokens so far (for the penalty).
  int32_t sample(const float* logits, int64_t n_vocab, const std::vector<int32_t>& history);
  const SamplingParams& params() const { return p_; }

 private:
  SamplingParams p_;
  Rng rng_;
  std::vector<std::pair<float, int32_t>> cand_;
  std::vector<float> penalised_;
};

int32_t argmax(const float* x, int64_t n);

}  // namespace ik::llm
