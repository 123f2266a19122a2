#pragma once
// The Llama-family model: configuration, weights in their stored formats, KV cache and the
// forward pass, written top to bottom so a reader can follow one token through it.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/matmul.hpp"
#include "backend/cpu/ops.hpp"

namespace ik::io {
class GgufFile;
}

namespace ik::llm {

struct LlamaConfig {
  std::string arch = "llama";
  std::string name;
  int64_t n_vocab = 0, n_embd = 0, n_ff = 0, n_layer = 0;
  int n_head = 0, n_head_kv = 0, head_dim = 0;
  int64_t n_ctx_train = 0;
  float rms_eps = 1e-5f;
  double rope_base = 10000.0;
  double rope_linear_factor = 1.0;
  std::vector<float> rope_freq_factors;  // llama3-style scaling (GGUF tensor rope_freqs.weight)
  backend::RopeLayout rope_layout = backend::RopeLayout::Adjacent;
  bool tied_embeddings = false;
  int64_t kv_dim() const { return int64_t(n_head_kv) * head_dim; }
  int64_t q_dim() const { return int64_t(n_head) * head_dim; }
};

// Named shapes for synthetic-weight benchmarks: llama3-8b, llama3-70b-8layers (the 70B layer
// shape, 8 of its 80 layers), smollm2-135m, tiny (tests). Throws listing the names.
LlamaConfig preset_config(const std::string& name);

struct LlamaLayer {
  std::vector<float> attn_norm, ffn_norm;
  backend::WeightMatrix wq, wk, wv, wo, w_gate, w_up, w_down;
};

// Per-sequence attention memory: K and V for every layer and position. Allocated with calloc
// so untouched positions cost no resident memory.
class KVCache {
 public:
  KVCache(int64_t n_layer, int64_t n_ctx, int64_t kv_dim);
  ~KVCache();
  KVCache(const KVCache&) = delete;
  KVCache& operator=(const KVCache&) = delete;
  float* k(int64_t layer) { return k_ + layer * n_ctx_ * kv_dim_; }
  float* v(int64_t layer) { return v_ + layer * n_ctx_ * kv_dim_; }
  int64_t n_ctx() const { return n_ctx_; }
  int64_t kv_dim() const { return kv_dim_; }
  int64_t n_past = 0;  // rows filled
  // Keep rows [0, n) and move the listed rows to n, n+1, ... (speculative-decoding compaction).
  void keep(int64_t n, const std::vector<int64_t>& rows_to_append = {});

 private:
  int64_t n_layer_, n_ctx_, kv_dim_;
  float* k_ = nullptr;
  float* v_ = nullptr;
};

using WeightMode = backend::WeightMatrix::Mode;

class LlamaModel {
 public:
  // Throws ik::Error for an unsupported architecture (named), missing or mis-shaped tensors.
  static LlamaModel from_gguf(std::shared_ptr<const io::GgufFile> file, WeightMode mode = WeightMode::Fast);
  // A Hugging Face checkpoint directory: config.json + model.safetensors (or sharded with
  // model.safetensors.index.json). F32/F16/BF16 weights.
  static LlamaModel from_hf_dir(const std::string& dir, WeightMode mode = WeightMode::Fast);
  // Seeded random weights of a given shape (llama_random.cpp), stored as bf16 values so that a
  // bf16 device copy holds exactly the same weights: for benchmarks at real sizes and for
  // comparing backends. Fast mode converts them to Q8_0 like any other stored type.
  static LlamaModel random(const LlamaConfig& cfg, uint64_t seed, WeightMode mode = WeightMode::Fast);

  const LlamaConfig& config() const { return cfg_; }
  WeightMode mode() const { return mode_; }
  size_t weight_bytes() const;  // bytes the matmuls stream per token

  // Run m tokens at cache rows [cache.n_past, cache.n_past + m) and advance n_past.
  // logits: [m, n_vocab] when all_logits, else [n_vocab] for the last token only.
  // positions: rotary positions (default: the cache rows). tree_mask: see backend::attention.
  // hidden (optional): final-norm hidden states [m, n_embd].
  void forward(const int32_t* tokens, int64_t m, KVCache& cache, float* logits, bool all_logits = false,
               const int32_t* positions = nullptr, const uint8_t* tree_mask = nullptr,
               float* hidden = nullptr);

  // One decode step for n independent sequences: token i is appended to caches[i] (at its
  // n_past, which advances). The matmuls run once over all n rows; attention per sequence.
  // logits: [n, n_vocab].
  void forward_batch(const int32_t* tokens, int64_t n, KVCache* const* caches, float* logits);

  // Several sequences in one pass, each with a run of tokens (a prompt chunk, or one decode
  // token): the next rows[i] tokens are appended to caches[i] (n_past advances). The matmuls
  // run once over all rows, attention per sequence (causal within its run). logits:
  // [k, n_vocab] for the last token of each of the k sequences with wants_logits[i] (null:
  // every sequence), in order. Serving mixes prompt prefill with decoding through this.
  void forward_ragged(const int32_t* tokens, const int64_t* rows, int64_t n_seq, KVCache* const* caches,
                      float* logits, const uint8_t* wants_logits = nullptr);

  void embed(const int32_t* tokens, int64_t m, float* out) const;
  const backend::WeightMatrix& lm_head() const { return lm_head_; }
  const backend::WeightMatrix& token_embd() const { return token_embd_; }
  LlamaLayer& layer(int64_t l) { return layers_[l]; }  // mutable: pruning swaps weights

  // Calibration hook for pruning: when set, called with the input x [m, k] of each group of
  // matmuls that share it (which: "qkv", "o", "gate_up", "down"). Unset: no cost.
  std::function<void(int layer, const char* which, const float* x, int64_t m, int64_t k)> on_matmul_input;
  const std::vector<float>& output_norm() const { return output_norm_; }

 private:
  // caches: one cache for all m rows (one_sequence) or one per row.
  void attention_block(int layer, float* x, int64_t m, KVCache* const* caches, bool one_sequence, const int32_t* pos,
                       const uint8_t* tree_mask);
  void mlp_block(int layer, float* x, int64_t m);
  // attention_block for forward_ragged: m rows in n_seq runs, run i going to caches[i].
  void attention_ragged(int layer, float* x, int64_t m, const int64_t* rows, int64_t n_seq, KVCache* const* caches);

  LlamaConfig cfg_;
  WeightMode mode_ = WeightMode::Fast;
  std::vector<std::shared_ptr<const void>> storage_;  // keeps the mapped files alive
  backend::WeightMatrix token_embd_, lm_head_;
  std::vector<float> output_norm_;
  std::vector<LlamaLayer> layers_;
  backend::Rope rope_;
  struct Scratch {
    std::vector<float> x, xn, q, k, v, attn, gate, up, hid;
    std::vector<int32_t> pos;
  } s_;
};

}  // namespace ik::llm
