#pragma once
// Speculative decoding on a GPU (docs/speculative.md): the base model is a GpuLlama (its
// sequence 0), and the draft heads (Medusa, Hydra, Hydra++ with its prefix layer) run on the same
// device in bf16, sharing the base model's embedding table and LM head. What crosses to the host
// per step: the drafted token ids (one small copy per tree level), the greedy token of every
// tree node, and the accepted rows' hidden states.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "llm/model/llama_gpu.hpp"
#include "llm/spec/decode.hpp"

namespace ik::llm::spec {

class GpuSpecBase : public SpecBase {
 public:
  explicit GpuSpecBase(GpuLlama& gpu) : gpu_(gpu) {}
  // A tree pass (mask and positions given, all rows) runs as GpuLlama::verify_tree's graph.
  const LlamaConfig& config() const override { return gpu_.config(); }
  int64_t n_ctx() const override { return gpu_.options().n_ctx; }
  int64_t n_past() const override { return gpu_.n_past(0); }
  void set_n_past(int64_t n) override { gpu_.set_n_past(0, n); }
  void forward(const int32_t* tokens, int64_t m, const int32_t* positions, const uint8_t* mask, bool all_rows,
               float* hidden) override;
  // Downloads the kept rows on first use after a forward (typical acceptance only: greedy
  // acceptance reads argmax()).
  const float* logits(int64_t i) override;
  void argmax(int64_t n, int32_t* out) override;
  void keep(int64_t base, const std::vector<int64_t>& rows) override { gpu_.keep_rows(0, base, rows); }

 private:
  GpuLlama& gpu_;
  int64_t kept_rows_ = 0;
  bool downloaded_ = false, tree_pass_ = false;
  std::vector<int32_t> greedy_;  // the tree pass's argmax per row
  std::vector<float> logits_;
};

class GpuHeadDrafter : public Drafter {
 public:
  // max_rows: rows observed at once (prefill chunks) and tree nodes per level.
  GpuHeadDrafter(const DraftHeads& heads, GpuLlama& base, int max_rows = 256);
  ~GpuHeadDrafter() override;
  GpuHeadDrafter(const GpuHeadDrafter&) = delete;
  GpuHeadDrafter& operator=(const GpuHeadDrafter&) = delete;
  void reset() override;
  void rewind(int64_t n) override;
  void observe(const float* hidden, int64_t m) override;
  void propose(const DraftTree& tree, int32_t* tokens) override;

 private:
  using bf16 = backend::cuda::bf16;
  struct DenseW {
    int n_in = 0, n_out = 0;
    bf16* w = nullptr;
    float* b = nullptr;
  };
  struct BlockW {
    DenseW fc, proj;  // proj.w null: identity residual
  };
  void* get(size_t bytes, const char* what);
  bf16* upload_bf16(const float* v, size_t n);
  float* upload_f32(const std::vector<float>& v);
  DenseW upload_dense(const Dense& d);
  void upload_prefix();
  void prefix_append(int m);  // Hydra++: x_ rows [m, d] through the prefix layer; h_ = last output
  void run_head(int i, int rows);  // x_ [rows, input width] -> y_ [rows, d]
  void lm_head(int rows);          // y_ [rows, d] -> logits_ [rows, n_vocab]
  void top_k(int rows, int k);     // lm_head, then the top-k ids into d_topk_ [rows, k]
  // A tree's drafting as one graph, captured on first use: every level's head, LM head, top-k
  // and scatter into d_tree_ (the nodes' tokens); the root comes in from, and the nodes go out
  // to, pinned_tree_. Levels: rows (parents drafted for), candidates k, and the device plans
  // (chains: [rows, L] nodes from the root to each parent; scatter: see scatter_candidates).
  struct Level {
    int rows, k, n_children;
    int32_t *chains, *scatter;
  };
  std::vector<Level> plan_levels(const DraftTree& tree);
  void profile_levels(const std::vector<Level>& levels);
  backend::cuda::Graph capture(const DraftTree& tree);

  const DraftHeads& heads_;
  GpuLlama& base_;
  LlamaConfig cfg_;
  int rows_cap_ = 0;
  backend::cuda::DevicePool pool_;
  std::vector<std::vector<BlockW>> head_w_;
  // Hydra++ prefix layer: fused q|k|v and gate|up, its own KV cache.
  struct Prefix {
    float *attn_norm = nullptr, *ffn_norm = nullptr, *out_norm = nullptr, *inv_freq = nullptr;
    bf16 *wqkv = nullptr, *wo = nullptr, *wgu = nullptr, *wdown = nullptr, *k = nullptr, *v = nullptr;
    int32_t *pos = nullptr, *zeros = nullptr;  // rotary positions (= cache rows), sequence ids
    int64_t n_past = 0;
  } prefix_;
  // Scratch on the device.
  float *x_ = nullptr, *y_ = nullptr, *pre_ = nullptr, *logits_ = nullptr, *h_ = nullptr, *qkv_ = nullptr,
        *gu_ = nullptr;
  bf16 *xb_ = nullptr, *attn_ = nullptr, *hid_ = nullptr;
  int32_t *d_tree_ = nullptr, *d_topk_ = nullptr, *pinned_tree_ = nullptr;
  bool have_h_ = false;
  std::map<std::string, backend::cuda::Graph> graphs_;  // by the tree's paths
};

}  // namespace ik::llm::spec
