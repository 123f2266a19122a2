#pragma once
// Training draft heads on self-distillation data with the base model frozen: for head i at
// position t the loss is the soft cross-entropy between the head's distribution and the
// teacher's next-token distribution at position t + i + 1 (the token t + i + 2), Hydra++'s
// teacher-only recipe. AdamW, linear warm-up then cosine decay, dropout on the head inputs.
#include <cstdint>
#include <functional>
#include <vector>

#include "llm/spec/distill.hpp"
#include "llm/spec/heads.hpp"

namespace ik::llm::spec {

struct TrainOptions {
  int steps = 200;
  int seqs_per_step = 4;       // sequences per step
  int positions_per_seq = 16;  // scored positions sampled per sequence (all heads at each)
  float lr = 1e-3f, final_lr_ratio = 0.33f;
  int warmup = 20;
  float weight_decay = 0.1f, dropout = 0.2f;
  uint64_t seed = 0;
  // > 0: the loss of a step is computed over the teacher's top-k tokens of its rows plus this
  // many random tokens (a sampled softmax, ~20x cheaper than the 49k-token LM head on CPU);
  // 0: over the whole vocabulary (exact).
  int sampled_vocab = 0;
};

// The frozen base pieces the heads need: the input embeddings (through the model) and an f32
// copy of the LM head for the backward.
struct FrozenBase {
  explicit FrozenBase(LlamaModel& model);
  LlamaModel& model;
  std::vector<float> lm_head;  // [n_vocab, n_embd]
};

// on_step(step, total, mean loss over heads) after every step.
void train_heads(DraftHeads& heads, FrozenBase& base, const DistillData& data, const TrainOptions& opt,
                 const std::function<void(int, int, double)>& on_step = {});

// Per head i and rank r < ranks: the fraction of positions where the teacher's top token is the
// head's r-th most likely token ([n_heads][ranks]; teacher forcing on the data's tokens, so a
// Hydra head sees the true tokens before it), over at most max_positions positions taken evenly
// from the answers. Column 0 is top-1 accuracy; DraftTree::optimal builds trees from it.
std::vector<std::vector<double>> head_rank_accuracy(const DraftHeads& heads, FrozenBase& base, const DistillData& data,
                                                    int max_positions, int ranks);
std::vector<double> head_top1(const DraftHeads& heads, FrozenBase& base, const DistillData& data, int max_positions);

}  // namespace ik::llm::spec
