#pragma once
// One Llama decoder layer for training: a forward that saves its activations and a backward,
// built from the ops in train/ops.hpp. It computes what LlamaModel's attention_block +
// mlp_block compute for one sequence (tested equal to LlamaModel::forward):
//
//   xn1 = rms_norm(x_in, attn_norm)
//   q = rope(xn1 Wq^T), k = rope(xn1 Wk^T), v = xn1 Wv^T
//   x_mid = x_in + attention(q, k, v) Wo^T
//   xn2 = rms_norm(x_mid, ffn_norm)
//   x_out = x_mid + (silu(xn2 Wgate^T) * (xn2 Wup^T)) Wdown^T
//
// Usage (one sequence of m tokens, positions 0..m-1):
//   Block block(model.config());
//   BlockWeights w = BlockWeights::from_layer(model.layer(l), model.config());
//   BlockWeights g = BlockWeights::zeros(model.config());   // or only the fields you train
//   BlockActivations acts;
//   block.forward(w, x, y, m, nullptr, nullptr, acts);
//   ... loss, dL/dy ...
//   block.backward(w, acts, dy, dx, g);                      // g accumulates, dx overwritten
//   AdamW opt; opt.step(w.params(g));
#include <cstdint>
#include <vector>

#include "backend/cpu/ops.hpp"
#include "llm/model/llama.hpp"
#include "llm/train/adamw.hpp"

namespace ik::llm::train {

// Every row of an engine matrix as f32, row-major [rows, cols] (quantized types dequantized).
std::vector<float> dequantize(const backend::WeightMatrix& w);

// f32 parameters of one layer, row-major [n_out, n_in] matrices as in LlamaLayer.
// The same struct holds gradients: a field left empty is "not trained" (its gradient is not
// computed, which also saves the dW gemm).
struct BlockWeights {
  std::vector<float> attn_norm, wq, wk, wv, wo;  // [n_embd], [q_dim, n_embd], [kv_dim, n_embd] x2, [n_embd, q_dim]
  std::vector<float> ffn_norm, w_gate, w_up, w_down;  // [n_embd], [n_ff, n_embd] x2, [n_embd, n_ff]

  // Every field sized for cfg and zero.
  static BlockWeights zeros(const LlamaConfig& cfg);
  // An f32 copy of an engine layer (quantized weights dequantized with backend::weight_row).
  static BlockWeights from_layer(const LlamaLayer& layer, const LlamaConfig& cfg);
  // Fill every non-empty field with 0 (e.g. gradients before a step).
  void set_zero();
  // (value, gradient) pairs for AdamW: one per field that is non-empty in grads (and must then
  // have the same size here). The pointers stay valid while neither struct is resized.
  std::vector<ParamRef> params(BlockWeights& grads);
};

// What forward saves for backward (also reusable as scratch for forward-only layers).
struct BlockActivations {
  int64_t m = 0;
  std::vector<int32_t> pos;
  std::vector<uint8_t> mask;  // empty = causal
  std::vector<float> x_in, xn1, q, k, v, probs, attn, x_mid, xn2, gate, up, hid;
};

class Block {
 public:
  // Shapes, eps and the rotary embedding (backend::Rope::make with cfg's rope settings).
  explicit Block(const LlamaConfig& cfg);
  const LlamaConfig& config() const { return cfg_; }
  const backend::Rope& rope() const { return rope_; }

  // x_in, x_out: [m, n_embd] (x_out may equal x_in). pos: m rotary positions (nullptr =
  // 0..m-1). mask: nullptr = causal, else [m, m] as in attention_forward (query i sees token
  // j when mask[i*m + j] != 0). Saves what backward needs in acts.
  void forward(const BlockWeights& w, const float* x_in, float* x_out, int64_t m, const int32_t* pos,
               const uint8_t* mask, BlockActivations& acts) const;

  // Given dx_out = dL/dx_out [m, n_embd] and the acts of the matching forward:
  // dx_in = dL/dx_in is OVERWRITTEN (may equal dx_out, so layers chain in place; nullptr to
  // skip), and grads ACCUMULATES dL/dweights into its non-empty fields.
  void backward(const BlockWeights& w, const BlockActivations& acts, const float* dx_out, float* dx_in,
                BlockWeights& grads) const;

  // The two modules alone, pre-norm included and residual excluded (Ladder Residual feeds each
  // its own stream): y = attention(rms_norm(x)) Wo^T and y = mlp(rms_norm(x)). They save into
  // disjoint fields of acts (x_in .. attn, and x_mid .. hid), so one acts serves a layer's
  // pair. The backwards ACCUMULATE dL/dx into dx and dL/dweights into grads.
  void attention_forward(const BlockWeights& w, const float* x, float* y, int64_t m, const int32_t* pos,
                         const uint8_t* mask, BlockActivations& acts) const;
  void mlp_forward(const BlockWeights& w, const float* x, float* y, int64_t m, BlockActivations& acts) const;
  void attention_backward(const BlockWeights& w, const BlockActivations& acts, const float* dy, float* dx,
                          BlockWeights& grads) const;
  void mlp_backward(const BlockWeights& w, const BlockActivations& acts, const float* dy, float* dx,
                    BlockWeights& grads) const;

 private:
  LlamaConfig cfg_;
  backend::Rope rope_;
};

}  // namespace ik::llm::train
