#pragma once
// Context-parallel Llama inference with striped attention (Brandon et al. 2023) over the P
// ranks of a dist::Comm, so that a prompt longer than one rank's KV cache can be served.
//
// Token t (prompt or generated) lives on rank t mod P, at local KV row t / P:
//  - prefill: each rank embeds its tokens r, r+P, r+2P, ... and runs every matmul for those
//    rows only; attention is dist::cp_attention (striped layout: K/V blocks travel the ring,
//    online-softmax merge). The K/V rows stay in the rank's cache: the cache is distributed.
//  - decode: every rank runs the new token's matmuls (weights are replicated, so the hidden
//    state is the same everywhere); rank t mod P appends the token's K/V row; each rank
//    attends over its own rows and returns an unnormalised partial (max, sum, numerator) per
//    head; one all-gather per layer and the same log-sum-exp merge on every rank give the
//    exact attention output. Rank 0 computes the logits (and samples).
// Every rank must make the same calls with the same arguments (collectives inside).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dist/comm.hpp"
#include "llm/model/llama.hpp"
#include "llm/runtime/sampler.hpp"

namespace ik::llm {

// Per-rank measurements of the last prefill.
struct CpPrefillStats {
  int64_t rows = 0;           // prompt tokens held by this rank
  double total_s = 0;         // wall clock of the whole prefill
  double cpu_s = 0;           // CPU time of this process (all its threads) during the prefill
  double attn_cpu_s = 0;      // striped-attention block compute, thread CPU time, all layers
  double attn_wall_s = 0;     // the same, wall clock
  double attn_wait_s = 0;     // blocked waiting for K/V blocks (communication not hidden)
};

class ContextParallelLlama {
 public:
  // capacity: KV rows per rank (so the distributed cache holds P * capacity tokens).
  ContextParallelLlama(LlamaModel& model, dist::Comm& comm, int64_t capacity);

  // Prefill `tokens` into empty caches. logits (optional): [n_vocab] of the last token, on
  // every rank. all_logits (optional): [T, n_vocab] in prompt order, on every rank (tests).
  // Throws before any communication when T < P or a rank's share exceeds its capacity.
  void prefill(const std::vector<int32_t>& tokens, float* logits, float* all_logits = nullptr);
  // Append `token` at global position n_past(). logits: [n_vocab], written on rank 0 only.
  void decode(int32_t token, float* logits);
  void reset() { n_past_ = 0, cache_.n_past = 0; }

  int64_t n_past() const { return n_past_; }          // tokens in the distributed cache
  int64_t local_rows() const { return cache_.n_past; }  // of which on this rank
  int64_t max_tokens() const { return P_ * cache_.n_ctx(); }
  const LlamaConfig& model_config() const { return model_.config(); }
  int ranks() const { return P_; }
  int rank() const { return me_; }
  dist::Comm& comm() { return comm_; }
  const CpPrefillStats& prefill_stats() const { return stats_; }

 private:
  void mlp(const LlamaLayer& L, float* x, int64_t m);
  void final_logits(const float* x, int64_t m, float* logits);

  LlamaModel& model_;
  dist::Comm& comm_;
  int P_, me_;
  KVCache cache_;
  backend::Rope rope_;
  int64_t n_past_ = 0;
  CpPrefillStats stats_;
  std::vector<float> x_, xn_, q_, k_, v_, attn_, hid_, gate_, up_, part_, parts_;
};

struct CpGenerateResult {
  std::vector<int32_t> tokens;  // generated (the same on every rank)
  double prefill_s = 0, decode_s = 0;
  std::string stop_reason;      // "eos", "length", "context", "callback"
};

// Prefill `prompt`, then generate: rank 0 samples each token and broadcasts it (or a stop).
// on_token (rank 0 only) sees each generated token and may return false to stop.
CpGenerateResult cp_generate(ContextParallelLlama& engine, const std::vector<int32_t>& prompt,
                             const SamplingParams& sampling, int max_tokens, const std::vector<int32_t>& stop_ids,
                             const std::function<bool(int32_t)>& on_token = {});

}  // namespace ik::llm
