#pragma once
// Speculative decoding with a draft tree: each step the drafter proposes one token per tree
// node (node 0 = the base model's own next token), one forward of the base model verifies all
// nodes at once (tree mask appended to the causal mask over the KV cache, positions = depth),
// the longest acceptable path is kept, and the KV cache is compacted to that path.
//  - Greedy (temperature 0): a node is accepted when its token is the base argmax at its parent,
//    so the output is exactly plain greedy decoding (given that the batched forward computes the
//    same logits as one-token forwards).
//  - Sampling: typical acceptance (Medusa/Hydra): a node is accepted when its parent's base
//    probability of it exceeds min(epsilon, alpha * exp(-H(parent))); ties in length are broken
//    by summed log-probability. This is NOT the base distribution (it favours likely tokens:
//    see docs/speculative.md).
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "llm/model/llama.hpp"
#include "llm/runtime/sampler.hpp"
#include "llm/spec/heads.hpp"
#include "llm/spec/tree.hpp"

namespace ik::llm::spec {

// The base model's side of speculative decoding, on the CPU (CpuSpecBase) or a GPU
// (GpuSpecBase, spec/gpu.hpp): the KV cache of one sequence, forward passes that keep the
// final-norm hidden states, and compaction to an accepted path.
class SpecBase {
 public:
  virtual ~SpecBase() = default;
  virtual const LlamaConfig& config() const = 0;
  virtual int64_t n_ctx() const = 0;
  virtual int64_t n_past() const = 0;
  virtual void set_n_past(int64_t n) = 0;  // forget the rows >= n
  // m tokens at rows [n_past, n_past + m): rotary positions (null: the rows) and tree mask
  // [m * m] (null: causal). hidden [m, n_embd] (host) receives the final-norm states. Logit rows
  // kept: every row when all_rows, else the last one only.
  virtual void forward(const int32_t* tokens, int64_t m, const int32_t* positions, const uint8_t* mask,
                       bool all_rows, float* hidden) = 0;
  virtual const float* logits(int64_t i) = 0;     // [n_vocab] of the i-th kept row (host)
  virtual void argmax(int64_t n, int32_t* out) = 0;  // greedy tokens of the first n kept rows
  // rows[i] (absolute, increasing, >= base + i) move to row base + i; n_past = base + rows.size().
  virtual void keep(int64_t base, const std::vector<int64_t>& rows) = 0;
};

class CpuSpecBase : public SpecBase {
 public:
  CpuSpecBase(LlamaModel& model, int64_t n_ctx);
  const LlamaConfig& config() const override { return model_.config(); }
  int64_t n_ctx() const override { return cache_.n_ctx(); }
  int64_t n_past() const override { return cache_.n_past; }
  void set_n_past(int64_t n) override { cache_.n_past = n; }
  void forward(const int32_t* tokens, int64_t m, const int32_t* positions, const uint8_t* mask, bool all_rows,
               float* hidden) override;
  const float* logits(int64_t i) override { return logits_.data() + i * model_.config().n_vocab; }
  void argmax(int64_t n, int32_t* out) override;
  void keep(int64_t base, const std::vector<int64_t>& rows) override { cache_.keep(base, rows); }

 private:
  LlamaModel& model_;
  KVCache cache_;
  std::vector<float> logits_;
};

// Proposes the tokens of the tree's nodes. It sees the base hidden state (final norm) of every
// token that enters the accepted sequence, in order.
class Drafter {
 public:
  virtual ~Drafter() = default;
  virtual void reset() = 0;                                   // a new sequence
  // Forget all but the first n observed positions (a chat turn that continues the cache). The
  // default supports only n = 0; drafters with state per position override it.
  virtual void rewind(int64_t n);
  virtual void observe(const float* hidden, int64_t m) = 0;   // [m, n_embd], appended in order
  // tokens[0] is the root (given); fill tokens[1..n_nodes-1].
  virtual void propose(const DraftTree& tree, int32_t* tokens) = 0;
};

// Medusa / Hydra / Hydra++ heads over the base model.
class HeadDrafter : public Drafter {
 public:
  HeadDrafter(const DraftHeads& heads, LlamaModel& model, int64_t n_ctx);
  void reset() override;
  void rewind(int64_t n) override;
  void observe(const float* hidden, int64_t m) override;
  void propose(const DraftTree& tree, int32_t* tokens) override;

 private:
  void propose_medusa(const DraftTree& tree, int32_t* tokens);
  void propose_grounded(const DraftTree& tree, int32_t* tokens);
  void top_k(const float* logits, int k, int32_t* out);
  const DraftHeads& heads_;
  LlamaModel& model_;
  std::unique_ptr<PrefixLayer> prefix_;
  std::vector<float> h_;  // the head input state of the last observed token
  HeadActivations acts_;
  std::vector<float> x_, logits_, embd_;
  std::vector<std::pair<float, int32_t>> cand_;
};

struct SpecOptions {
  int max_tokens = 256;
  bool stop_at_eos = true;
  SamplingParams sampling;  // temperature 0: greedy acceptance; else typical acceptance
  float posterior_threshold = 0.09f;  // epsilon
  float posterior_alpha = 0.3f;       // alpha
};

struct SpecResult {
  std::vector<int32_t> tokens;
  std::string stop_reason;  // "eos", "length", "context", "cancelled"
  int prompt_tokens = 0;    // tokens prefilled for this call (less than the prompt when the cache is reused)
  int steps = 0;            // verification forwards
  double prefill_s = 0, decode_s = 0;
  // Where decode_s went: drafting, the verification forward (with acceptance), and the commit
  // (KV compaction, the drafter observing the accepted states).
  double draft_s = 0, verify_s = 0, commit_s = 0;
  double mean_accepted() const { return steps ? double(tokens.size()) / steps : 0; }
  double decode_tok_s() const { return decode_s > 0 ? tokens.size() / decode_s : 0; }
};

class SpecDecoder {
 public:
  // Over the CPU model (an own cache of n_ctx positions), or any base (not owned).
  SpecDecoder(LlamaModel& model, Drafter& drafter, DraftTree tree, int64_t n_ctx);
  SpecDecoder(SpecBase& base, Drafter& drafter, DraftTree tree);
  // Prefill the prompt (fresh cache), then decode. on_token(token) may return false to stop.
  SpecResult generate(const std::vector<int32_t>& prompt, const SpecOptions& opt, const std::vector<int32_t>& stop_ids,
                      const std::function<bool(int32_t)>& on_token = {});
  // Like generate, but keeps the longest common prefix of `context` with what the cache holds
  // from the previous call and prefills only the rest (the next turn of a chat).
  SpecResult continue_from(const std::vector<int32_t>& context, const SpecOptions& opt,
                           const std::vector<int32_t>& stop_ids, const std::function<bool(int32_t)>& on_token = {});
  // The tokens whose KV rows the cache holds after the last call.
  const std::vector<int32_t>& cached_tokens() const { return cached_; }
  const DraftTree& tree() const { return tree_; }

  // Step-wise use (the server, whose scheduler feeds prompt chunks and applies the stop rules):
  //   reset(); feed(chunk)...; root = draw(last_logits());
  //   loop: path = verify(root, opt); commit(); root = draw(last_logits());
  // verify() drafts a tree under `root` (the next token, not yet in the cache), runs one forward
  // and returns the accepted path's tokens, root first; commit() keeps that path in the cache
  // (then the cache holds the path) and shows it to the drafter.
  void reset();
  void feed(const int32_t* tokens, int64_t m);  // plain forward at the end of the cache
  const std::vector<int32_t>& verify(int32_t root, const SpecOptions& opt);
  void commit();
  const float* last_logits() const;  // after feed() or commit(): the next token's logits
  int32_t greedy_next();              // its argmax (on the device for a GPU base)
  int64_t n_past() const { return base_.n_past(); }

 private:
  std::vector<int> accept_greedy(const int32_t* tokens);
  std::vector<int> accept_typical(const int32_t* tokens, const SpecOptions& opt);
  void prefill(const std::vector<int32_t>& context, SpecResult& r);
  std::unique_ptr<SpecBase> owned_base_;
  SpecBase& base_;
  Drafter& drafter_;
  DraftTree tree_;
  std::vector<int32_t> cached_;  // the tokens of the cache's rows [0, n_past) between calls
  std::vector<float> hidden_;
  // The last verify(): the cache rows before the tree, its tokens, the accepted nodes and tokens.
  int64_t tree_row0_ = 0;
  std::vector<int32_t> tokens_, positions_, path_;
  std::vector<int> accepted_;
  int last_row_ = 0;  // logit row of the next token
  std::vector<int32_t> greedy_;  // argmax of every row of the last verify (greedy acceptance)
  bool greedy_valid_ = false;
  std::vector<float> kept_;
  double draft_s_ = 0, verify_s_ = 0, commit_s_ = 0;  // since the last continue_from began
};

}  // namespace ik::llm::spec
