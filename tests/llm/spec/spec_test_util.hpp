#pragma once
// Shared by the spec tests: the tiny random Llama fixture, random heads, plain greedy decoding.
#include <cmath>
#include <memory>
#include <omp.h>
#include <vector>

#include "core/rng.hpp"
#include "llm/model/llama.hpp"
#include "llm/runtime/sampler.hpp"
#include "llm/spec/decode.hpp"
#include "llm/spec/heads.hpp"

namespace spec_test {

// The CI machine is small and shared: one thread avoids OpenMP spin-wait contention, which
// slows these many small forwards by 5-10x when other jobs run.
inline const bool kOneThread = (omp_set_num_threads(1), true);

inline const std::string kTinyDir = IK_SOURCE_DIR "/tests/io/fixtures/tiny_llama";
inline const std::string kSmol = IK_SOURCE_DIR "/.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf";

// Untrained heads with random (not zero) weights, so proposals depend on the inputs.
inline ik::llm::spec::DraftHeads random_heads(ik::llm::spec::HeadArch arch, int n_heads, int n_blocks,
                                              ik::llm::LlamaModel& model, uint64_t seed, float scale = 0.3f) {
  auto h = ik::llm::spec::DraftHeads::init(arch, n_heads, n_blocks, model);
  ik::Rng rng(seed, 1);
  for (auto& head : h.heads)
    for (auto& blk : head.blocks) {
      const float s = scale / std::sqrt(float(blk.fc.n_in));
      for (float& w : blk.fc.w) w = s * float(rng.normal());
      for (float& b : blk.fc.b) b = 0.1f * float(rng.normal());
      for (float& w : blk.proj.w) w += s * float(rng.normal());
    }
  return h;
}

// Plain greedy decoding, one token per forward: the reference the speculative decoder must match.
inline std::vector<int32_t> plain_greedy(ik::llm::LlamaModel& model, const std::vector<int32_t>& prompt, int n,
                                         int64_t n_ctx) {
  const auto& c = model.config();
  ik::llm::KVCache cache(c.n_layer, n_ctx, c.kv_dim());
  std::vector<float> logits(c.n_vocab);
  model.forward(prompt.data(), int64_t(prompt.size()), cache, logits.data());
  std::vector<int32_t> out;
  while (int(out.size()) < n) {
    const int32_t t = ik::llm::argmax(logits.data(), c.n_vocab);
    out.push_back(t);
    model.forward(&t, 1, cache, logits.data());
  }
  return out;
}

// Knows the true greedy continuation; puts it at rank-0 children (except at every `miss`-th
// depth step) and random tokens elsewhere.
class OracleDrafter : public ik::llm::spec::Drafter {
 public:
  OracleDrafter(std::vector<int32_t> truth, int64_t vocab, int miss) : truth_(std::move(truth)), vocab_(vocab), miss_(miss) {}
  void reset() override { seen_ = 0; }
  void observe(const float*, int64_t m) override { seen_ += m; }
  void set_prompt_len(int64_t n) { prompt_len_ = n; }
  void propose(const ik::llm::spec::DraftTree& tree, int32_t* tokens) override {
    // The root is truth_[k] for k = seen_ - prompt_len_; node at depth j on the all-zero path
    // should be truth_[k + j].
    const int64_t k = seen_ - prompt_len_;
    ++calls_;
    for (int n = 1; n < tree.n_nodes(); ++n) {
      const int64_t idx = k + tree.depth[n];
      bool on_zero_path = true;
      for (int a = n; a > 0; a = tree.parent[a]) on_zero_path &= tree.rank[a] == 0;
      const bool hit = on_zero_path && idx < int64_t(truth_.size()) && (calls_ + tree.depth[n]) % miss_ != 0;
      tokens[n] = hit ? truth_[idx] : int32_t(rng_.below(uint64_t(vocab_)));
    }
  }

 private:
  std::vector<int32_t> truth_;
  int64_t vocab_, seen_ = 0, prompt_len_ = 0;
  int miss_, calls_ = 0;
  ik::Rng rng_{99, 0};
};

}  // namespace spec_test
