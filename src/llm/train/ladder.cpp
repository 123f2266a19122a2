#include "llm/train/ladder.hpp"

#include <cstring>

#include "backend/cpu/matmul.hpp"
#include "backend/cpu/ops.hpp"
#include "core/error.hpp"
#include "llm/train/ops.hpp"

namespace ik::llm::train {

namespace {
// An f32 matrix owning its values (exact f32 math in the engine).
backend::WeightMatrix f32_matrix(const std::vector<float>& v, int64_t rows, int64_t cols) {
  auto bytes = std::make_shared<std::vector<uint8_t>>(v.size() * sizeof(float));
  std::memcpy(bytes->data(), v.data(), bytes->size());
  backend::WeightMatrix w =
      backend::WeightMatrix::prepare(io::DType::F32, rows, cols, bytes->data(), backend::WeightMatrix::Mode::Reference);
  if (!w.owned) w.owned = bytes;
  return w;
}
}  // namespace

LadderTrainer::LadderTrainer(const LlamaModel& model, int last_k)
    : model_(model), cfg_(model.config()), block_(model.config()) {
  const int L = int(cfg_.n_layer);
  IK_CHECK(last_k >= 1 && last_k <= L, "ladder retraining: --ladder-last {} outside [1, {}]", last_k, L);
  first_ = L - last_k;
  auto& m = const_cast<LlamaModel&>(model);  // layer() is non-const for pruning; read only here
  for (int l = 0; l < L; ++l) {
    BlockWeights w = BlockWeights::from_layer(m.layer(l), cfg_);
    if (l < first_) frozen_.push_back(std::move(w));
    else w_.push_back(std::move(w)), g_.push_back(BlockWeights::zeros(cfg_));
  }
  acts_.resize(last_k);
  embd_ = dequantize(model.token_embd());
  head_ = cfg_.tied_embeddings ? embd_ : dequantize(model.lm_head());
}

void LadderTrainer::zero_grads() {
  for (auto& g : g_) g.set_zero();
}

std::vector<ParamRef> LadderTrainer::params() {
  std::vector<ParamRef> all;
  for (size_t i = 0; i < w_.size(); ++i)
    for (const ParamRef& p : w_[i].params(g_[i])) all.push_back(p);
  return all;
}

double LadderTrainer::loss(const int32_t* tokens, int64_t m, bool backward) {
  IK_CHECK(m >= 2, "ladder retraining: a window needs at least 2 tokens");
  const int64_t d = cfg_.n_embd, V = cfg_.n_vocab;
  const int K = last_k(), J = 2 * K;
  std::vector<float> u(m * d);
  embedding_forward(embd_.data(), V, tokens, m, d, u.data());
  for (const BlockWeights& w : frozen_) block_.forward(w, u.data(), u.data(), m, nullptr, nullptr, scratch_);

  // The ladder part: module j reads u_j = u_0 + y_0 + ... + y_{j-2}.
  std::vector<std::vector<float>> y(J, std::vector<float>(m * d));
  for (int j = 0; j < J; ++j) {
    if (j >= 2) backend::add_inplace(u.data(), y[j - 2].data(), m * d);
    const int i = j / 2;
    if (j % 2 == 0) block_.attention_forward(w_[i], u.data(), y[j].data(), m, nullptr, nullptr, acts_[i]);
    else block_.mlp_forward(w_[i], u.data(), y[j].data(), m, acts_[i]);
  }
  std::vector<float>& h = u;  // final hidden: + y_{J-2} + y_{J-1}
  backend::add_inplace(h.data(), y[J - 2].data(), m * d);
  backend::add_inplace(h.data(), y[J - 1].data(), m * d);

  std::vector<float> hn(m * d), logits(m * V);
  backend::rms_norm(h.data(), model_.output_norm().data(), hn.data(), m, d, cfg_.rms_eps);
  linear_forward(hn.data(), head_.data(), nullptr, logits.data(), m, d, V);
  std::vector<int32_t> targets(m, -1);
  for (int64_t t = 0; t + 1 < m; ++t) targets[t] = tokens[t + 1];
  std::vector<float> dlogits(backward ? m * V : 0);
  const double mean = cross_entropy(logits.data(), targets.data(), m, V, backward ? dlogits.data() : nullptr);
  if (!backward) return mean;

  std::vector<float> dhn(m * d, 0.0f), dh(m * d, 0.0f);
  linear_backward(hn.data(), head_.data(), dlogits.data(), dhn.data(), nullptr, nullptr, m, d, V);
  rms_norm_backward(h.data(), model_.output_norm().data(), dhn.data(), dh.data(), nullptr, m, d, cfg_.rms_eps);
  // a = acc_{j+2}, b = acc_{j+1}, acc_j = g + sum_{i >= j} dL/du_i; dL/dy_j = acc_{j+2}.
  std::vector<float> a = dh, b = dh;
  for (int j = J - 1; j >= 0; --j) {
    std::vector<float> acc = b;  // + dL/du_j, accumulated by the module's backward
    const int i = j / 2;
    if (j % 2 == 0) block_.attention_backward(w_[i], acts_[i], a.data(), acc.data(), g_[i]);
    else block_.mlp_backward(w_[i], acts_[i], a.data(), acc.data(), g_[i]);
    a = std::move(b);
    b = std::move(acc);
  }
  return mean;
}

void LadderTrainer::write_back(LlamaModel& model) const {
  const int64_t d = cfg_.n_embd, qd = cfg_.q_dim(), kvd = cfg_.kv_dim(), ff = cfg_.n_ff;
  for (int i = 0; i < last_k(); ++i) {
    LlamaLayer& L = model.layer(first_ + i);
    const BlockWeights& w = w_[i];
    L.attn_norm = w.attn_norm;
    L.ffn_norm = w.ffn_norm;
    L.wq = f32_matrix(w.wq, qd, d);
    L.wk = f32_matrix(w.wk, kvd, d);
    L.wv = f32_matrix(w.wv, kvd, d);
    L.wo = f32_matrix(w.wo, d, qd);
    L.w_gate = f32_matrix(w.w_gate, ff, d);
    L.w_up = f32_matrix(w.w_up, ff, d);
    L.w_down = f32_matrix(w.w_down, d, ff);
  }
}

}  // namespace ik::llm::train
