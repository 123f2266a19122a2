// A tiny random Llama in Hugging Face layout (bf16 safetensors, made by
// tools/make_tiny_hf_llama.py with transformers) against transformers' logits; and the
// batched decode step against one sequence at a time.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "llm/model/llama.hpp"
#include "llm/runtime/sampler.hpp"

using namespace ik;

namespace {
const std::string kDir = IK_SOURCE_DIR "/tests/io/fixtures/tiny_llama";

nlohmann::json reference() {
  nlohmann::json j;
  std::ifstream(kDir + "/reference.json") >> j;
  return j;
}
}  // namespace

TEST(TinyHfLlama, MatchesTransformers) {
  const auto ref = reference();
  const auto ids = ref["input_ids"].get<std::vector<int32_t>>();
  for (auto mode : {llm::WeightMode::Reference, llm::WeightMode::Fast}) {
    auto model = llm::LlamaModel::from_hf_dir(kDir, mode);
    const auto& c = model.config();
    EXPECT_EQ(c.rope_layout, backend::RopeLayout::Half);
    llm::KVCache cache(c.n_layer, 64, c.kv_dim());
    std::vector<float> logits(ids.size() * c.n_vocab);
    model.forward(ids.data(), int64_t(ids.size()), cache, logits.data(), true);
    const float* last = logits.data() + (ids.size() - 1) * c.n_vocab;
    double max_rel = 0;
    for (int64_t v = 0; v < c.n_vocab; ++v) {
      const double r = ref["last_logits"][v];
      max_rel = std::max(max_rel, std::fabs(last[v] - r) / std::max(1.0, std::fabs(r)));
    }
    // bf16 weights are exact in f32; the fast path re-quantizes them to Q8_0 and rounds activations.
    EXPECT_LT(max_rel, mode == llm::WeightMode::Reference ? 1e-4 : 5e-2);
    if (mode == llm::WeightMode::Reference) {
      for (size_t p = 0; p < ids.size(); ++p)
        EXPECT_EQ(llm::argmax(logits.data() + p * c.n_vocab, c.n_vocab), int(ref["argmax_per_position"][p])) << p;
    }
  }
}

TEST(TinyHfLlama, BatchedDecodeEqualsSequential) {
  auto model = llm::LlamaModel::from_hf_dir(kDir, llm::WeightMode::Reference);
  const auto& c = model.config();
  const std::vector<std::vector<int32_t>> prompts{{5, 9, 13}, {7}, {100, 3, 200, 41, 8}};
  const std::vector<int32_t> next{17, 23, 42};
  // Sequential: each sequence alone.
  std::vector<std::vector<float>> expect;
  for (size_t s = 0; s < prompts.size(); ++s) {
    llm::KVCache cache(c.n_layer, 16, c.kv_dim());
    std::vector<float> logits(c.n_vocab);
    model.forward(prompts[s].data(), int64_t(prompts[s].size()), cache, logits.data());
    model.forward(&next[s], 1, cache, logits.data());
    expect.push_back(logits);
  }
  // Batched: prefill each, then one shared decode step.
  std::vector<std::unique_ptr<llm::KVCache>> caches;
  std::vector<llm::KVCache*> ptrs;
  std::vector<float> scratch(c.n_vocab);
  for (const auto& p : prompts) {
    caches.push_back(std::make_unique<llm::KVCache>(c.n_layer, 16, c.kv_dim()));
    model.forward(p.data(), int64_t(p.size()), *caches.back(), scratch.data());
    ptrs.push_back(caches.back().get());
  }
  std::vector<float> logits(prompts.size() * c.n_vocab);
  model.forward_batch(next.data(), int64_t(next.size()), ptrs.data(), logits.data());
  for (size_t s = 0; s < prompts.size(); ++s) {
    EXPECT_EQ(caches[s]->n_past, int64_t(prompts[s].size() + 1));
    for (int64_t v = 0; v < c.n_vocab; ++v) ASSERT_NEAR(logits[s * c.n_vocab + v], expect[s][v], 1e-4) << s << " " << v;
  }
}
