// The training Block: its backward end to end against finite differences, and its forward
// equal to the engine's own forward (LlamaModel::forward on the tiny random HF Llama), so
// training and inference compute the same model.
#include <gtest/gtest.h>

#include <cmath>

#include "backend/cpu/matmul.hpp"
#include "gradcheck.hpp"
#include "llm/model/llama.hpp"
#include "llm/train/block.hpp"
#include "llm/train/ops.hpp"

using namespace ik;
using namespace ik::llm::train;
using train_test::dot;
using train_test::expect_grad;
using train_test::random_vec;

namespace {
llm::LlamaConfig small_config(backend::RopeLayout layout) {
  llm::LlamaConfig c;
  c.n_embd = 12;
  c.n_ff = 20;
  c.n_head = 4;
  c.n_head_kv = 2;
  c.head_dim = 4;
  c.rms_eps = 1e-5f;
  c.rope_layout = layout;
  return c;
}

BlockWeights random_weights(Rng& rng, const llm::LlamaConfig& c) {
  BlockWeights w = BlockWeights::zeros(c);
  w.attn_norm = random_vec(rng, w.attn_norm.size(), 0.2f, 1.0f);
  w.ffn_norm = random_vec(rng, w.ffn_norm.size(), 0.2f, 1.0f);
  for (auto* f : {&w.wq, &w.wk, &w.wv, &w.wo, &w.w_gate, &w.w_up, &w.w_down}) *f = random_vec(rng, f->size(), 0.4f);
  return w;
}
}  // namespace

TEST(TrainBlock, BackwardMatchesFiniteDifferences) {
  for (auto layout : {backend::RopeLayout::Adjacent, backend::RopeLayout::Half}) {
    SCOPED_TRACE(layout == backend::RopeLayout::Adjacent ? "adjacent" : "half");
    Rng rng(11, int(layout));
    const auto c = small_config(layout);
    const int64_t m = 5;
    const std::vector<int32_t> pos = {3, 4, 5, 6, 7};
    Block block(c);
    BlockWeights w = random_weights(rng, c);
    auto x = random_vec(rng, m * c.n_embd), r = random_vec(rng, m * c.n_embd);
    BlockActivations acts;
    std::vector<float> y(m * c.n_embd);
    auto loss = [&] {
      block.forward(w, x.data(), y.data(), m, pos.data(), nullptr, acts);
      return dot(r, y.data());
    };
    loss();
    BlockWeights g = BlockWeights::zeros(c);
    std::vector<float> dx(m * c.n_embd);
    block.backward(w, acts, r.data(), dx.data(), g);
    expect_grad("dx_in", x, dx, loss);
    expect_grad("attn_norm", w.attn_norm, g.attn_norm, loss);
    expect_grad("wq", w.wq, g.wq, loss);
    expect_grad("wk", w.wk, g.wk, loss);
    expect_grad("wv", w.wv, g.wv, loss);
    expect_grad("wo", w.wo, g.wo, loss);
    expect_grad("ffn_norm", w.ffn_norm, g.ffn_norm, loss);
    expect_grad("w_gate", w.w_gate, g.w_gate, loss);
    expect_grad("w_up", w.w_up, g.w_up, loss);
    expect_grad("w_down", w.w_down, g.w_down, loss);

    // Frozen fields (empty in g) are skipped; dx is the same.
    BlockWeights only_norms;
    only_norms.ffn_norm.assign(c.n_embd, 0.0f);
    std::vector<float> dx2(m * c.n_embd);
    block.backward(w, acts, r.data(), dx2.data(), only_norms);
    EXPECT_EQ(dx, dx2);
    EXPECT_EQ(only_norms.ffn_norm, g.ffn_norm);
    EXPECT_EQ(w.params(only_norms).size(), 1u);
    EXPECT_EQ(w.params(g).size(), 9u);
  }
}

TEST(TrainBlock, BackwardWithMaskAndInPlaceChain) {
  Rng rng(12, 0);
  const auto c = small_config(backend::RopeLayout::Half);
  const int64_t m = 4;
  // A tree mask: token 3 sees 0 and itself, not 1, 2.
  const std::vector<uint8_t> mask = {1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 0, 0, 1};
  Block block(c);
  BlockWeights w1 = random_weights(rng, c), w2 = random_weights(rng, c);
  auto x = random_vec(rng, m * c.n_embd), r = random_vec(rng, m * c.n_embd);
  BlockActivations a1, a2;
  std::vector<float> y(m * c.n_embd);
  auto loss = [&] {  // two layers in place on one buffer
    y = x;
    block.forward(w1, y.data(), y.data(), m, nullptr, mask.data(), a1);
    block.forward(w2, y.data(), y.data(), m, nullptr, mask.data(), a2);
    return dot(r, y.data());
  };
  loss();
  BlockWeights g1 = BlockWeights::zeros(c), g2;
  std::vector<float> d = r;
  block.backward(w2, a2, d.data(), d.data(), g2);  // in place, nothing trained in layer 2
  block.backward(w1, a1, d.data(), d.data(), g1);
  expect_grad("dx_in", x, d, loss);
  expect_grad("wk layer 1", w1.wk, g1.wk, loss);
  // The mask is honoured: token 3's output does not depend on tokens 1 and 2 (layer 1 only).
  std::vector<float> y1(m * c.n_embd), y1b(m * c.n_embd);
  block.forward(w1, x.data(), y1.data(), m, nullptr, mask.data(), a1);
  auto x2 = x;
  for (int64_t j = 0; j < c.n_embd; ++j) x2[1 * c.n_embd + j] += 1.0f, x2[2 * c.n_embd + j] -= 1.0f;
  block.forward(w1, x2.data(), y1b.data(), m, nullptr, mask.data(), a1);
  for (int64_t j = 0; j < c.n_embd; ++j) EXPECT_EQ(y1[3 * c.n_embd + j], y1b[3 * c.n_embd + j]);
}

TEST(TrainBlock, ForwardEqualsEngineForward) {
  auto model = llm::LlamaModel::from_hf_dir(IK_SOURCE_DIR "/tests/io/fixtures/tiny_llama", llm::WeightMode::Reference);
  const auto& c = model.config();
  const std::vector<int32_t> toks = {1, 15, 27, 300, 4, 99, 123, 7, 7, 7, 250, 31};
  const int64_t m = int64_t(toks.size());
  llm::KVCache cache(c.n_layer, 32, c.kv_dim());
  std::vector<float> logits(m * c.n_vocab), hidden(m * c.n_embd);
  model.forward(toks.data(), m, cache, logits.data(), true, nullptr, nullptr, hidden.data());

  // The same model through the train library: embed, blocks, final norm, LM head.
  std::vector<float> x(m * c.n_embd), xn(m * c.n_embd), mine(m * c.n_vocab);
  model.embed(toks.data(), m, x.data());
  Block block(c);
  BlockActivations acts;
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const BlockWeights w = BlockWeights::from_layer(model.layer(l), c);
    block.forward(w, x.data(), x.data(), m, nullptr, nullptr, acts);
  }
  backend::rms_norm(x.data(), model.output_norm().data(), xn.data(), m, c.n_embd, c.rms_eps);
  std::vector<float> head(c.n_vocab * c.n_embd);
  for (int64_t v = 0; v < c.n_vocab; ++v) backend::weight_row(model.lm_head(), v, head.data() + v * c.n_embd);
  linear_forward(xn.data(), head.data(), nullptr, mine.data(), m, c.n_embd, c.n_vocab);

  double max_h = 0, max_l = 0;
  for (size_t i = 0; i < hidden.size(); ++i) max_h = std::max(max_h, double(std::fabs(hidden[i] - xn[i])));
  for (size_t i = 0; i < logits.size(); ++i) max_l = std::max(max_l, double(std::fabs(logits[i] - mine[i])));
  // Same operations in f32; only summation order differs (sgemm vs the engine's dot products).
  EXPECT_LT(max_h, 1e-4);
  EXPECT_LT(max_l, 1e-4);
  EXPECT_GT(std::fabs(logits[5]), 1e-3);  // not trivially zero
}
