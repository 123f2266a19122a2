// Ladder Residual retraining: the trainer's forward is the engine's ladder forward, its
// gradients are the loss's (finite differences on the largest entries of every field), and
// training steps lower the loss and carry over to the engine through write_back.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "dist/comm.hpp"
#include "llm/dist/tensor_parallel.hpp"
#include "llm/model/llama.hpp"
#include "llm/train/ladder.hpp"
#include "llm/train/ops.hpp"

using namespace ik::llm;
using namespace ik::llm::train;

namespace {

LlamaConfig small_config() {
  LlamaConfig c = preset_config("tiny");  // 2 layers, embd 256, ff 512, 4/2 heads, vocab 512
  c.n_layer = 3;
  return c;
}

std::vector<int32_t> window(int64_t m, int64_t vocab, int salt) {
  std::vector<int32_t> t(m);
  for (int64_t i = 0; i < m; ++i) t[i] = int32_t((i * 97 + salt * 31 + 5) % vocab);
  return t;
}

// Mean next-token cross-entropy of the engine's ladder model (TensorParallelLlama, P = 1).
double engine_loss(LlamaModel& model, int last_k, const std::vector<int32_t>& tokens) {
  ik::dist::LocalComm comm;
  TpOptions opt;
  opt.ladder_last = last_k;
  TensorParallelLlama tp(model, comm, opt);
  const int64_t m = int64_t(tokens.size()), V = model.config().n_vocab;
  auto cache = tp.make_cache(m);
  std::vector<float> logits(m * V);
  tp.forward(tokens.data(), m, cache, logits.data(), true);
  std::vector<int32_t> targets(m, -1);
  for (int64_t t = 0; t + 1 < m; ++t) targets[t] = tokens[t + 1];
  return cross_entropy(logits.data(), targets.data(), m, V, nullptr);
}

}  // namespace

TEST(LadderTrainer, LossEqualsTheEngineLadderForward) {
  LlamaModel model = LlamaModel::random(small_config(), 3, WeightMode::Reference);
  const auto tokens = window(40, model.config().n_vocab, 1);
  for (int k : {1, 2, 3}) {
    LadderTrainer trainer(model, k);
    const double got = trainer.loss(tokens.data(), int64_t(tokens.size()), false);
    EXPECT_NEAR(got, engine_loss(model, k, tokens), 1e-4) << "last " << k;
  }
  // And it is not the standard model's loss (the recurrence really differs).
  LadderTrainer trainer(model, 3);
  EXPECT_GT(std::fabs(trainer.loss(tokens.data(), 40, false) - engine_loss(model, 0, tokens)), 1e-3);
}

TEST(LadderTrainer, GradientsMatchFiniteDifferences) {
  LlamaModel model = LlamaModel::random(small_config(), 4, WeightMode::Reference);
  const auto tokens = window(12, model.config().n_vocab, 2);
  LadderTrainer trainer(model, 2);
  trainer.zero_grads();
  trainer.loss(tokens.data(), 12, true);
  for (int layer = 0; layer < 2; ++layer) {
    BlockWeights& w = trainer.weights(layer);
    const BlockWeights g = trainer.grads(layer);  // a copy: later loss() calls do not touch it
    const std::vector<std::pair<const char*, std::vector<float>*>> fields = {
        {"attn_norm", &w.attn_norm}, {"wq", &w.wq}, {"wk", &w.wk}, {"wv", &w.wv}, {"wo", &w.wo},
        {"ffn_norm", &w.ffn_norm}, {"w_gate", &w.w_gate}, {"w_up", &w.w_up}, {"w_down", &w.w_down}};
    const std::vector<const std::vector<float>*> grads = {&g.attn_norm, &g.wq, &g.wk, &g.wv, &g.wo,
                                                          &g.ffn_norm, &g.w_gate, &g.w_up, &g.w_down};
    for (size_t f = 0; f < fields.size(); ++f) {
      std::vector<float>& x = *fields[f].second;
      const std::vector<float>& an = *grads[f];
      // The 4 largest analytic entries: a wrong gradient there is a large relative error.
      std::vector<size_t> idx(x.size());
      std::iota(idx.begin(), idx.end(), 0);
      std::partial_sort(idx.begin(), idx.begin() + 4, idx.end(),
                        [&](size_t a, size_t b) { return std::fabs(an[a]) > std::fabs(an[b]); });
      for (int e = 0; e < 4; ++e) {
        const size_t i = idx[e];
        const float keep = x[i];
        auto central = [&](double h) {
          x[i] = float(keep + h);
          const double up = trainer.loss(tokens.data(), 12, false);
          x[i] = float(keep - h);
          const double down = trainer.loss(tokens.data(), 12, false);
          x[i] = keep;
          return (up - down) / (2 * h);
        };
        const double fd = (4 * central(5e-3) - central(1e-2)) / 3;
        EXPECT_NEAR(fd, an[i], 3e-2 * std::fabs(an[i]) + 1e-5)
            << "layer " << layer << " " << fields[f].first << "[" << i << "]";
      }
    }
  }
}

TEST(LadderTrainer, StepsLowerTheLossAndWriteBackCarriesIt) {
  LlamaModel model = LlamaModel::random(small_config(), 5, WeightMode::Reference);
  const auto tokens = window(48, model.config().n_vocab, 3);
  LadderTrainer trainer(model, 2);
  const double before = trainer.loss(tokens.data(), 48, false);
  AdamW opt({.lr = 3e-3f});
  const auto params = trainer.params();
  for (int step = 0; step < 20; ++step) {
    trainer.zero_grads();
    trainer.loss(tokens.data(), 48, true);
    opt.step(params);
  }
  const double after = trainer.loss(tokens.data(), 48, false);
  EXPECT_LT(after, 0.8 * before);
  trainer.write_back(model);
  EXPECT_NEAR(engine_loss(model, 2, tokens), after, 1e-4);
}
