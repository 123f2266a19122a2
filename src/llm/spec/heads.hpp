#pragma once
// Draft heads for speculative decoding, on the base model's final-norm hidden state h_t:
//  - Medusa: head i (0-based) = lm_head(ResBlock^L(h_t)), predicts x_{t+i+2}; independent heads.
//  - Hydra: head i reads concat(h_t, E(x_{t+1}), ..., E(x_{t+i+1})) (the tokens already
//    speculated on its path, E = the base input embeddings): its first block maps (i+2)d -> d
//    with a learned linear residual projection, later blocks are d -> d ResBlocks.
//  - Hydra++: as Hydra, but h_t is first passed through a one-layer Llama decoder "prefix" over
//    the base hidden states (own KV cache, own output norm), and heads have 4 blocks.
// ResBlock(x) = x + SiLU(W x + b), W zero-initialised so that an untrained head predicts what the
// base LM head predicts from h_t. The LM head is the base model's (frozen, shared by all heads).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "llm/model/llama.hpp"
#include "llm/train/block.hpp"

namespace ik::llm::spec {

enum class HeadArch { Medusa, Hydra, HydraPlusPlus };
HeadArch parse_head_arch(const std::string& s);  // "medusa", "hydra", "hydra++"
const char* head_arch_name(HeadArch a);

// A dense layer y = x W^T (+ b), f32, W [n_out, n_in].
struct Dense {
  int64_t n_in = 0, n_out = 0;
  std::vector<float> w, b;  // b empty: no bias
};

// One block of a head: y = proj(x) + SiLU(W x + b), proj = identity when n_in == n_out and
// no projection is stored (ResBlock), else the learned linear residual projection.
struct HeadBlock {
  Dense fc;    // [d, n_in] + bias
  Dense proj;  // empty (n_out == 0) for a ResBlock
};

struct Head {
  std::vector<HeadBlock> blocks;
  int64_t n_in() const { return blocks.front().fc.n_in; }
};

// What the heads file records about the base model; a mismatch with the loaded model is an error.
struct BaseInfo {
  std::string name;
  int64_t n_embd = 0, n_vocab = 0, n_layer = 0;
  static BaseInfo of(const LlamaModel& m);
};

// Saved activations of one head forward over m rows (for the backward; also inference scratch).
struct HeadActivations {
  int64_t m = 0;
  std::vector<std::vector<float>> x, pre, act;  // per block: input [m, n_in], fc output, silu
  std::vector<float> out;                       // [m, d]
};

struct DraftHeads {
  HeadArch arch = HeadArch::Medusa;
  BaseInfo base;
  std::vector<Head> heads;
  // Hydra++ only: the prefix decoder layer and its output norm.
  bool has_prefix() const { return arch == HeadArch::HydraPlusPlus; }
  train::BlockWeights prefix;
  std::vector<float> prefix_norm;

  int n_heads() const { return int(heads.size()); }
  int64_t d() const { return base.n_embd; }
  // Width of head i's input: d (Medusa) or (i + 2) d (Hydra, Hydra++).
  int64_t input_width(int i) const;

  // Fresh heads for `model`: zero-initialised fc weights, projections = [I 0 ...] (read h only),
  // Hydra++ prefix = a copy of the base model's last layer and output norm.
  static DraftHeads init(HeadArch arch, int n_heads, int n_blocks, LlamaModel& model);

  // One head over m rows: x [m, input_width(i)] -> acts.out [m, d].
  void forward(int i, const float* x, int64_t m, HeadActivations& acts) const;
  // Given dout [m, d]: grads += dL/dweights (grads: same shapes as *this). dx not needed
  // (inputs are frozen base states), except through the Hydra++ prefix: dx [m, width] +=.
  void backward(int i, const HeadActivations& acts, const float* dout, Head& grads, float* dx) const;

  // The heads file: GGUF, f32 tensors, metadata naming the base model.
  void save(const std::string& path) const;
  static DraftHeads load(const std::string& path);
  // Throws ik::Error naming the mismatch (hidden size, vocabulary, layers, name).
  void check_base(const LlamaModel& m) const;
};

// Zero-valued copy of the heads' shapes (gradients).
std::vector<Head> zero_like(const std::vector<Head>& heads);

// Hydra++ prefix layer at inference: a one-layer decoder over base hidden states with its own
// KV cache. The cache mirrors the accepted sequence (rows 0..n_past), so rolling it back with
// the base cache is truncating n_past.
class PrefixLayer {
 public:
  PrefixLayer(const DraftHeads& heads, const LlamaConfig& base_cfg, int64_t n_ctx);
  // Append m hidden states [m, d] at the next positions; out [m, d] = norm(layer(h)).
  void append(const float* h, int64_t m, float* out);
  void truncate(int64_t n) { cache_.n_past = n; }
  int64_t n_past() const { return cache_.n_past; }

 private:
  LlamaConfig cfg_;
  backend::Rope rope_;
  const DraftHeads& heads_;
  backend::WeightMatrix wq_, wk_, wv_, wo_, w_gate_, w_up_, w_down_;
  KVCache cache_;
  std::vector<float> x_, xn_, q_, attn_, gate_, up_, hid_;
  std::vector<int32_t> pos_;
};

}  // namespace ik::llm::spec
