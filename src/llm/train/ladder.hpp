#pragma once
// Retraining the Ladder Residual layers of a converted model (tensor_parallel.md): the last k
// layers are trainable f32 copies computed with the ladder recurrence, the others are frozen
// standard layers, the loss is next-token cross-entropy over one window of text. The forward
// equals TensorParallelLlama at P = 1 with ladder_last = k (tested).
//
// Modules j = 0 .. 2k-1 of the ladder part (attention 2i, MLP 2i+1 of ladder layer i) read
//   u_j = u_0 + y_0 + ... + y_{j-2}      (u_0: the stream after the frozen layers)
// and the final hidden state is u_0 + y_0 + ... + y_{2k-1}. Backward: with g = dL/d(final),
// dL/dy_j = g + sum_{i >= j+2} dL/du_i, accumulated from the top down with two running sums.
#include <cstdint>
#include <vector>

#include "llm/model/llama.hpp"
#include "llm/train/adamw.hpp"
#include "llm/train/block.hpp"

namespace ik::llm::train {

class LadderTrainer {
 public:
  // The model must outlive the trainer; its weights are read (f32 copies), not changed until
  // write_back.
  LadderTrainer(const LlamaModel& model, int last_k);

  int last_k() const { return int(w_.size()); }
  // Mean cross-entropy of tokens[1..m-1] predicted from positions 0..m-2; with backward, adds
  // the gradients of the trained layers into grads (zero_grads() first for a fresh step).
  double loss(const int32_t* tokens, int64_t m, bool backward);
  void zero_grads();
  std::vector<ParamRef> params();  // every trained layer's weights with their gradients
  BlockWeights& weights(int i) { return w_[i]; }  // trained layer i (model layer n_layer - k + i)
  BlockWeights& grads(int i) { return g_[i]; }
  // The trained weights into the model's last k layers (as f32 matrices).
  void write_back(LlamaModel& model) const;

 private:
  const LlamaModel& model_;
  LlamaConfig cfg_;
  Block block_;
  int first_ = 0;  // first trained layer
  std::vector<BlockWeights> frozen_, w_, g_;
  std::vector<BlockActivations> acts_;
  BlockActivations scratch_;
  std::vector<float> embd_, head_;  // f32 token embedding and LM head [n_vocab, n_embd]
};

}  // namespace ik::llm::train
