#include "llm/train/block.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include "backend/cpu/matmul.hpp"
#include "core/error.hpp"
#include "llm/train/ops.hpp"

namespace ik::llm::train {

std::vector<float> dequantize(const backend::WeightMatrix& w) {
  std::vector<float> out(size_t(w.rows * w.cols));
  for (int64_t r = 0; r < w.rows; ++r) backend::weight_row(w, r, out.data() + r * w.cols);
  return out;
}

namespace {

// The fields of BlockWeights in one order, for loops over all of them.
template <class W>
auto fields(W& w) {
  return std::array{&w.attn_norm, &w.wq, &w.wk, &w.wv, &w.wo, &w.ffn_norm, &w.w_gate, &w.w_up, &w.w_down};
}

float* or_null(std::vector<float>& v) { return v.empty() ? nullptr : v.data(); }
}  // namespace

BlockWeights BlockWeights::zeros(const LlamaConfig& c) {
  BlockWeights w;
  w.attn_norm.assign(c.n_embd, 0.0f);
  w.wq.assign(c.q_dim() * c.n_embd, 0.0f);
  w.wk.assign(c.kv_dim() * c.n_embd, 0.0f);
  w.wv.assign(c.kv_dim() * c.n_embd, 0.0f);
  w.wo.assign(c.n_embd * c.q_dim(), 0.0f);
  w.ffn_norm.assign(c.n_embd, 0.0f);
  w.w_gate.assign(c.n_ff * c.n_embd, 0.0f);
  w.w_up.assign(c.n_ff * c.n_embd, 0.0f);
  w.w_down.assign(c.n_embd * c.n_ff, 0.0f);
  return w;
}

BlockWeights BlockWeights::from_layer(const LlamaLayer& L, const LlamaConfig& c) {
  BlockWeights w;
  w.attn_norm = L.attn_norm;
  w.ffn_norm = L.ffn_norm;
  w.wq = dequantize(L.wq);
  w.wk = dequantize(L.wk);
  w.wv = dequantize(L.wv);
  w.wo = dequantize(L.wo);
  w.w_gate = dequantize(L.w_gate);
  w.w_up = dequantize(L.w_up);
  w.w_down = dequantize(L.w_down);
  IK_CHECK(int64_t(w.wq.size()) == c.q_dim() * c.n_embd && int64_t(w.w_down.size()) == c.n_embd * c.n_ff,
           "BlockWeights::from_layer: layer shapes do not match the config");
  return w;
}

void BlockWeights::set_zero() {
  for (std::vector<float>* f : fields(*this)) std::fill(f->begin(), f->end(), 0.0f);
}

std::vector<ParamRef> BlockWeights::params(BlockWeights& grads) {
  std::vector<ParamRef> out;
  auto values = fields(*this);
  auto gs = fields(grads);
  for (size_t i = 0; i < values.size(); ++i) {
    if (gs[i]->empty()) continue;
    IK_CHECK(gs[i]->size() == values[i]->size(), "BlockWeights::params: gradient {} has {} values, parameter {}", i,
             gs[i]->size(), values[i]->size());
    out.push_back({values[i]->data(), gs[i]->data(), int64_t(values[i]->size())});
  }
  return out;
}

Block::Block(const LlamaConfig& cfg)
    : cfg_(cfg),
      rope_(backend::Rope::make(cfg.head_dim, cfg.rope_base, cfg.rope_linear_factor, cfg.rope_freq_factors,
                                cfg.rope_layout)) {}

// ---- the two modules (pre-norm included, residual excluded) ------------------------------------

void Block::attention_forward(const BlockWeights& w, const float* x, float* y, int64_t m, const int32_t* pos,
                              const uint8_t* mask, BlockActivations& a) const {
  const LlamaConfig& c = cfg_;
  const int64_t d = c.n_embd, qd = c.q_dim(), kvd = c.kv_dim();
  a.m = m;
  a.pos.resize(m);
  for (int64_t i = 0; i < m; ++i) a.pos[i] = pos ? pos[i] : int32_t(i);
  if (mask) a.mask.assign(mask, mask + m * m);
  else a.mask.clear();
  a.x_in.assign(x, x + m * d);
  a.xn1.resize(m * d);
  a.q.resize(m * qd);
  a.k.resize(m * kvd);
  a.v.resize(m * kvd);
  a.probs.resize(size_t(c.n_head) * m * m);
  a.attn.resize(m * qd);
  backend::rms_norm(a.x_in.data(), w.attn_norm.data(), a.xn1.data(), m, d, c.rms_eps);
  linear_forward(a.xn1.data(), w.wq.data(), nullptr, a.q.data(), m, d, qd);
  linear_forward(a.xn1.data(), w.wk.data(), nullptr, a.k.data(), m, d, kvd);
  linear_forward(a.xn1.data(), w.wv.data(), nullptr, a.v.data(), m, d, kvd);
  rope_.apply(a.q.data(), m, c.n_head, c.head_dim, a.pos.data());
  rope_.apply(a.k.data(), m, c.n_head_kv, c.head_dim, a.pos.data());
  const AttentionShape s{m, m, c.n_head, c.n_head_kv, c.head_dim};
  train::attention_forward(s, a.q.data(), a.k.data(), a.v.data(), a.attn.data(), a.probs.data(),
                    a.mask.empty() ? nullptr : a.mask.data());
  linear_forward(a.attn.data(), w.wo.data(), nullptr, y, m, qd, d);
}

void Block::mlp_forward(const BlockWeights& w, const float* x, float* y, int64_t m, BlockActivations& a) const {
  const LlamaConfig& c = cfg_;
  const int64_t d = c.n_embd, ff = c.n_ff;
  if (x != a.x_mid.data()) a.x_mid.assign(x, x + m * d);
  a.xn2.resize(m * d);
  a.gate.resize(m * ff);
  a.up.resize(m * ff);
  a.hid.resize(m * ff);
  backend::rms_norm(a.x_mid.data(), w.ffn_norm.data(), a.xn2.data(), m, d, c.rms_eps);
  linear_forward(a.xn2.data(), w.w_gate.data(), nullptr, a.gate.data(), m, d, ff);
  linear_forward(a.xn2.data(), w.w_up.data(), nullptr, a.up.data(), m, d, ff);
  backend::silu_mul(a.gate.data(), a.up.data(), a.hid.data(), m * ff);
  linear_forward(a.hid.data(), w.w_down.data(), nullptr, y, m, ff, d);
}

void Block::attention_backward(const BlockWeights& w, const BlockActivations& a, const float* dy, float* dx,
                               BlockWeights& g) const {
  const LlamaConfig& c = cfg_;
  const int64_t m = a.m, d = c.n_embd, qd = c.q_dim(), kvd = c.kv_dim();
  IK_CHECK(int64_t(a.x_in.size()) == m * d, "Block: activations are not from a forward of this block");
  std::vector<float> d_attn(m * qd, 0.0f), dq(m * qd, 0.0f), dk(m * kvd, 0.0f), dv(m * kvd, 0.0f), d_xn(m * d, 0.0f);
  linear_backward(a.attn.data(), w.wo.data(), dy, d_attn.data(), or_null(g.wo), nullptr, m, qd, d);
  const AttentionShape s{m, m, c.n_head, c.n_head_kv, c.head_dim};
  train::attention_backward(s, a.q.data(), a.k.data(), a.v.data(), a.probs.data(), d_attn.data(), dq.data(), dk.data(),
                     dv.data());
  rope_backward(rope_, dq.data(), m, c.n_head, c.head_dim, a.pos.data());
  rope_backward(rope_, dk.data(), m, c.n_head_kv, c.head_dim, a.pos.data());
  linear_backward(a.xn1.data(), w.wq.data(), dq.data(), d_xn.data(), or_null(g.wq), nullptr, m, d, qd);
  linear_backward(a.xn1.data(), w.wk.data(), dk.data(), d_xn.data(), or_null(g.wk), nullptr, m, d, kvd);
  linear_backward(a.xn1.data(), w.wv.data(), dv.data(), d_xn.data(), or_null(g.wv), nullptr, m, d, kvd);
  rms_norm_backward(a.x_in.data(), w.attn_norm.data(), d_xn.data(), dx, or_null(g.attn_norm), m, d, c.rms_eps);
}

void Block::mlp_backward(const BlockWeights& w, const BlockActivations& a, const float* dy, float* dx,
                         BlockWeights& g) const {
  const LlamaConfig& c = cfg_;
  const int64_t m = a.m, d = c.n_embd, ff = c.n_ff;
  IK_CHECK(int64_t(a.x_mid.size()) == m * d, "Block: activations are not from a forward of this block");
  std::vector<float> d_hid(m * ff, 0.0f), d_gate(m * ff, 0.0f), d_up(m * ff, 0.0f), d_xn(m * d, 0.0f);
  linear_backward(a.hid.data(), w.w_down.data(), dy, d_hid.data(), or_null(g.w_down), nullptr, m, ff, d);
  silu_mul_backward(a.gate.data(), a.up.data(), d_hid.data(), d_gate.data(), d_up.data(), m * ff);
  linear_backward(a.xn2.data(), w.w_gate.data(), d_gate.data(), d_xn.data(), or_null(g.w_gate), nullptr, m, d, ff);
  linear_backward(a.xn2.data(), w.w_up.data(), d_up.data(), d_xn.data(), or_null(g.w_up), nullptr, m, d, ff);
  rms_norm_backward(a.x_mid.data(), w.ffn_norm.data(), d_xn.data(), dx, or_null(g.ffn_norm), m, d, c.rms_eps);
}

// ---- the standard block: x_mid = x + A(x), x_out = x_mid + M(x_mid) ----------------------------

void Block::forward(const BlockWeights& w, const float* x_in, float* x_out, int64_t m, const int32_t* pos,
                    const uint8_t* mask, BlockActivations& a) const {
  const int64_t d = cfg_.n_embd;
  a.x_mid.resize(m * d);
  attention_forward(w, x_in, a.x_mid.data(), m, pos, mask, a);
  backend::add_inplace(a.x_mid.data(), a.x_in.data(), m * d);
  mlp_forward(w, a.x_mid.data(), x_out, m, a);
  backend::add_inplace(x_out, a.x_mid.data(), m * d);
}

void Block::backward(const BlockWeights& w, const BlockActivations& a, const float* dx_out, float* dx_in,
                     BlockWeights& g) const {
  const int64_t m = a.m, d = cfg_.n_embd;
  std::vector<float> d_mid(dx_out, dx_out + m * d);  // the residual path, then + M's input gradient
  mlp_backward(w, a, dx_out, d_mid.data(), g);
  std::vector<float> d_in = d_mid;
  attention_backward(w, a, d_mid.data(), d_in.data(), g);
  if (dx_in) std::memcpy(dx_in, d_in.data(), sizeof(float) * m * d);
}

}  // namespace ik::llm::train
