#pragma once
// Tensor-parallel Llama (Megatron-style) with Ladder Residual, over a dist::Comm.
//
// Rank r of P holds: the query heads [r*H/P, (r+1)*H/P) and their KV heads (column-parallel
// wq/wk/wv rows), a slice of the MLP's hidden units (column-parallel w_gate/w_up rows), the
// matching input columns of wo and w_down (row-parallel: each rank's product is a partial sum
// that one all-reduce completes), its own KV-cache shard, and either a vocabulary slice of the
// LM head (all-gathered) or the whole head. Embedding and norms are replicated.
//
// The residual stream follows one of three block forms per layer (docs/tensor_parallel.md):
//  - standard:  u_{j+1} = u_j + y_j, every module's all-reduce waited before the add;
//  - ladder:    u_j = u_{j-1} + y_{j-2}: module j's all-reduce is launched asynchronously and
//               waited one module later, while module j+1 computes (the last k layers);
//  - parallel:  PaLM-style u' = u + AllReduce(Attn(norm_a(u)) + MLP(norm_m(u))), one all-reduce
//               per layer (a benchmark variant; it changes the function).
// desync skips every all-reduce (wrong output: the benchmark's communication-free upper bound).
#include <cstdint>
#include <vector>

#include "dist/comm.hpp"
#include "llm/dist/shard.hpp"
#include "llm/model/llama.hpp"

namespace ik::io {
class GgufFile;
}

namespace ik::llm {

// GGUF metadata key of a Ladder-Residual-converted model: the number k of last layers that are
// ladder layers (absent: 0, a standard model).
inline constexpr const char* kLadderLayersKey = "inferkit.ladder_layers";
int ladder_layers_of(const io::GgufFile& f);

struct TpOptions {
  int ladder_last = 0;          // the last k layers use the ladder recurrence
  bool parallel_block = false;  // PaLM-style parallel attention + MLP (cannot combine with ladder)
  bool desync = false;          // no all-reduce at all (speed upper bound; wrong output)
  bool vocab_parallel = true;   // LM head split by vocabulary + all-gather (else replicated)
};

class TensorParallelLlama {
 public:
  // Shards `full` (which must outlive this object) for comm.rank() of comm.size(). Throws
  // ik::Error when P does not divide the head counts. Collective: every rank must construct
  // it (the ranks compare a fingerprint of their model and options, so different model files
  // across ranks are a clear error on every rank).
  TensorParallelLlama(LlamaModel& full, dist::Comm& comm, TpOptions opt);

  const LlamaConfig& config() const { return full_.config(); }
  const TpOptions& options() const { return opt_; }
  int rank() const { return comm_.rank(); }
  int size() const { return comm_.size(); }
  int local_heads() const { return n_head_; }
  int local_kv_heads() const { return n_kv_; }
  int64_t local_ff() const { return ff_.size(); }
  // A KV cache for this rank's KV heads.
  KVCache make_cache(int64_t n_ctx) const;

  // Same contract as LlamaModel::forward: run m tokens at cache rows [n_past, n_past + m),
  // logits [m, n_vocab] when all_logits else [n_vocab] (the same on every rank). Collective.
  void forward(const int32_t* tokens, int64_t m, KVCache& cache, float* logits, bool all_logits = false);

  // Time spent blocked in Request::wait during forward calls so far (the exposed communication).
  double wait_seconds() const { return wait_s_; }

 private:
  struct Shard {  // one layer's slices
    backend::WeightMatrix wq, wk, wv, wo, w_gate, w_up, w_down;
  };
  void attention_partial(int l, const float* x, int64_t m, KVCache& cache, const int32_t* pos, float* y);
  void mlp_partial(int l, const float* x, int64_t m, float* y);
  void check_same_everywhere();
  void progress();  // drives the in-flight all-reduce (MPI has no progress thread)
  void wait(dist::Request& r);

  LlamaModel& full_;
  dist::Comm& comm_;
  TpOptions opt_;
  int n_head_ = 0, n_kv_ = 0;  // local head counts
  Range ff_, vocab_;
  int64_t vocab_shard_ = 0;    // padded rows per rank for the all-gather
  std::vector<Shard> shards_;
  std::vector<bool> ladder_;
  backend::WeightMatrix lm_head_;
  backend::Rope rope_;
  double wait_s_ = 0;
  dist::Request* in_flight_ = nullptr;  // the pending all-reduce that progress() drives
  struct Scratch {
    std::vector<float> x, xn, q, k, v, attn, gate, up, y[2], y_mlp, logits_local, logits_all;
    std::vector<int32_t> pos;
  } s_;
};

// Writes a copy of the GGUF `in_path` with the last k layers marked as ladder layers.
void convert_to_ladder(const std::string& in_path, const std::string& out_path, int last_k);

}  // namespace ik::llm
