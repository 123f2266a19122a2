#pragma once
// The Llama forward pass on a GPU through the CUDA backend (backend/cuda/cuda.hpp): weights
// uploaded once, as bf16 or, for lookup-table quantized models, as FLUTE codes multiplied
// without dequantizing (backend/cuda/lut_gemm.hpp); a bf16 KV cache for n_seq sequences, f32
// residual stream. A decode step over a list of sequences (embedding to sampled token) is
// captured as one CUDA graph per list and replayed, so a token costs one graph launch.
//
// Tensor parallelism (docs/tensor_parallel.md): with an NcclComm over P processes, each holds
// the shard of its rank as llm/dist/tensor_parallel.hpp lays it out on the CPU (query and KV
// heads, MLP hidden units, and the LM head's vocabulary split; row-parallel o and down whose
// partial products one all-reduce completes). The block form (standard, Ladder Residual for
// the last k layers, parallel attention + MLP, desync) applies at any P, P = 1 included.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend/cuda/cuda.hpp"
#include "backend/cuda/lut_gemm.hpp"
#include "llm/model/llama.hpp"

namespace ik::dist {
class NcclComm;
}

namespace ik::llm {

struct GpuOptions {
  int device = 0;
  int n_seq = 1;            // sequences with a KV cache slot
  int64_t n_ctx = 4096;     // positions per sequence
  int max_rows = 2048;      // rows per forward pass (longer prompts run in chunks)
  // Rows whose logits one pass keeps (f32, n_vocab each: ~0.5 MB a row for Llama-3): passes
  // that return every row's logits (all_logits, draft trees) run in chunks of this many; a
  // decode batch of n_seq rows always fits.
  int logit_rows = 512;
  // Tensor parallelism: this process is comm->rank() of comm->size() (null: one GPU). The
  // communicator's device is used (device above is ignored).
  dist::NcclComm* comm = nullptr;
  int ladder_last = 0;          // the last k layers use Ladder Residual
  bool parallel_block = false;  // PaLM-style parallel attention + MLP (not with ladder)
  bool desync = false;          // skip the all-reduces (speed upper bound; wrong output)
  // Context parallelism instead: comm spreads sequence 0 over the ranks (striped: token g on
  // rank g mod P, cache row g / P), weights replicated; see prefill_cp / decode_cp.
  bool context_parallel = false;
};

class GpuLlama {
 public:
  // The model's weights on the device: block matrices with lookup-table codes (LUT-quantized
  // GGUF, IQ4_NL) stay codes; everything else becomes bf16.
  static std::unique_ptr<GpuLlama> upload(const LlamaModel& model, const GpuOptions& opt);
  // Seeded random weights generated on the device (for shapes too large to build on the host):
  // bf16, or (lut_bits = 4, 3, 2) NormalFloat codes with G = 128 for the block matrices.
  static std::unique_ptr<GpuLlama> random(const LlamaConfig& cfg, uint64_t seed, const GpuOptions& opt,
                                          int lut_bits = 0);
  ~GpuLlama();
  GpuLlama(const GpuLlama&) = delete;
  GpuLlama& operator=(const GpuLlama&) = delete;

  const LlamaConfig& config() const { return cfg_; }
  const GpuOptions& options() const { return opt_; }
  const backend::cuda::DeviceInfo& device() const { return dev_; }
  size_t weight_bytes() const { return weight_bytes_; }       // bytes a decode step streams
  bool lut_weights() const { return lut_bits_ > 0; }
  int lut_bits() const { return lut_bits_; }
  size_t kv_bytes_per_position() const;                        // all layers, K and V

  int64_t n_past(int seq) const { return n_past_[seq]; }
  void set_n_past(int seq, int64_t n);  // rewind (forget rows >= n)

  // Run m tokens of sequence `seq` at its rows [n_past, n_past + m) (prefill, or a draft tree
  // with tree_mask [m*m] as in backend::attention). logits (host, may be null): [m, n_vocab]
  // when all_logits, else the last row's [n_vocab]. positions: rotary positions (default: rows).
  void forward(int seq, const int32_t* tokens, int64_t m, float* logits, bool all_logits = false,
               const int32_t* positions = nullptr, const uint8_t* tree_mask = nullptr);

  // One decode step for sequences 0..n-1: tokens[i] is appended to sequence i, and next[i]
  // receives the token sampled from its logits with the sequence's sampling parameters.
  void decode(const int32_t* tokens, int n, int32_t* next);
  // The same for any n distinct sequences: tokens[i] is appended to sequence slots[i], next[i]
  // receives its draw (continuous batching: running sequences come and go). The decode
  // kernels address sequence b at row b, so the graph runs them once per run of consecutive
  // slots, and one graph is kept per slot list (the lists 0..n-1 are decode()'s graphs).
  void decode_slots(const int32_t* slots, const int32_t* tokens, int n, int32_t* next);
  // Download the logits of the last decode step ([n, n_vocab], in slot-list order) or the last
  // forward row.
  void last_logits(float* out, int rows) const;
  // Sample from the last forward call's final row on the device (sequence seq's parameters).
  int32_t sample_last(int seq);
  void set_sampling(int seq, float temperature, int top_k, float top_p, float min_p, uint64_t seed);

  // Speculative decoding (llm/spec/gpu.hpp; llama_gpu_spec.cpp). verify_tree: a draft tree's
  // pass over sequence 0 (m tokens at rows [n_past, n_past + m), rotary positions, tree mask
  // [m * m]) as one CUDA graph per tree, replayed; greedy[m] receives every row's argmax and
  // hidden [m, n_embd] (may be null) the final-norm states; the logits stay for last_logits().
  void verify_tree(const int32_t* tokens, int m, const int32_t* positions, const uint8_t* mask, int32_t* greedy,
                   float* hidden);
  // After a forward call: the final-norm hidden states of its last n rows (host, f32 from bf16)
  // and the greedy tokens of its logit rows.
  void final_hidden(int n, float* out);
  void argmax_rows(int rows, int32_t* out);
  // Compaction to an accepted tree path: rows[i] (increasing, >= base + i) of sequence seq move
  // to row base + i in every layer's K and V; n_past becomes base + rows.size().
  void keep_rows(int seq, int64_t base, const std::vector<int64_t>& rows);
  // The token embedding table and the LM head (bf16 [n_vocab, n_embd]; one GPU only).
  const backend::cuda::bf16* embedding_table() const { return embd_; }
  const backend::cuda::bf16* lm_head_weights() const;

  // Context parallelism (GpuOptions::context_parallel; collective: every rank calls with the
  // same arguments). prefill_cp: `T` tokens into the empty sequence 0, striped ring attention
  // over the ranks (dist/cp_attention_gpu.hpp) for the first (T - 1) / P * P of them, the rest
  // through decode_cp. decode_cp: one token at global position cp_tokens(); every rank runs its
  // matmuls, the owner stores its K/V row, each rank attends over its own rows and one
  // all-gather per layer merges the partial softmaxes. Either leaves the last token's logits
  // (bitwise the same on every rank) for last_logits / sample_last, and in `logits` if given.
  void prefill_cp(const int32_t* tokens, int64_t T, float* logits);
  void decode_cp(int32_t token, float* logits);
  int64_t cp_tokens() const { return cp_tokens_; }
  void reset_cp() { cp_tokens_ = 0, set_n_past(0, 0); }  // forget the distributed sequence

 private:
  GpuLlama(const LlamaConfig& cfg, const GpuOptions& opt);
  // One projection: a dense bf16 matrix (cuBLAS) or lookup-table codes (the FLUTE kernel).
  struct Linear {
    int n = 0, k = 0;
    backend::cuda::bf16* dense = nullptr;
    backend::cuda::LutMatrix lut;
    bool is_lut() const { return lut.blocks != nullptr; }
    size_t bytes() const { return is_lut() ? lut.stream_bytes() : size_t(n) * k * 2; }
  };
  struct Layer {
    float *attn_norm = nullptr, *ffn_norm = nullptr;
    std::vector<Linear> qkv;      // one fused matrix, or q, k, v (lookup-table matrices with different tables)
    Linear o;
    std::vector<Linear> gate_up;  // fused, or gate and up
    Linear down;
    backend::cuda::bf16 *k = nullptr, *v = nullptr;  // cache [n_seq, n_ctx, kv_dim]
  };

  // Token ids in range (throws naming the first that is not).
  static void check_tokens(const int32_t* tokens, int64_t m, int64_t n_vocab);
  // Row i of a pass: its token, rotary position and cache row (in sequence `seq`).
  struct RowSpec {
    int32_t token, pos, cache_row;
  };
  // Uploads the rows' ids, positions, sequence and cache rows (one copy) and embeds them into x_.
  void embed_rows(int rows, int seq, const std::function<RowSpec(int)>& row);
  void upload_n_past(int seq);  // n_past_[seq] to the device copy the decode kernels read
  // Everything but the layers' matrices; layer_bytes: what those will take (the memory check).
  void allocate(size_t layer_bytes);
  void* device_alloc(size_t bytes, const char* what);
  Linear dense_linear(int n, int k);
  Linear lut_linear(backend::cuda::LutMatrix m);
  void finish_weights();  // weight_bytes_, the dequantization scratch for long prompts
  void linear(const Linear& w, const backend::cuda::bf16* x, float* y, int ldy, int m, bool accumulate);
  void project(const std::vector<Linear>& parts, const backend::cuda::bf16* x, float* y, int m);
  void normed_project(const std::vector<Linear>& parts, const float* norm, float* y, int m);
  // Decode rows [row, row + count) are sequences [slot, slot + count).
  struct SlotRun {
    int row, slot, count;
  };
  // decode: null for a prefill pass of sequence `seq`.
  void run_layers(int m, const std::vector<SlotRun>* decode, int seq, const uint8_t* mask);
  // q, k, v of the m rows staged by embed_rows (already projected into qkv_): q rotated in
  // place, k rotated and both stored at the rows' cache rows.
  void store_rows_kv(const Layer& L, int m);
  // The attention module into attn_, and the MLP's output into y (added to y when accumulate).
  void attention(const Layer& L, int m, const std::vector<SlotRun>* decode, int seq, const uint8_t* mask);
  void mlp(const Layer& L, int m, float* y, bool accumulate);
  // A module's output y_[b] is all-reduced (on the side stream when async: Ladder Residual),
  // and settle(b) adds it to the residual stream once its reduction is done.
  void reduce(int b, int m, bool async);
  void settle(int b, int m);
  void lm_head(const float* x, int n);  // logits_ [n, n_vocab] for n rows of the stream
  void capture_decode(const std::vector<int32_t>& slots, bool tensor_cores);

  LlamaConfig cfg_;
  LlamaConfig shard_;  // this rank's slice: heads and MLP width divided by the TP size
  GpuOptions opt_;
  int tp_rank_ = 0, tp_size_ = 1;
  int64_t vocab_local_ = 0;  // LM head rows held here (n_vocab unless split by vocabulary)
  backend::cuda::DeviceInfo dev_;
  backend::cuda::DevicePool pool_;
  std::vector<backend::cuda::LutMatrix> luts_;
  std::vector<Layer> layers_;
  int lut_bits_ = 0;
  backend::cuda::bf16* lut_scratch_ = nullptr;  // one dequantized matrix, for passes of many rows
  backend::cuda::bf16 *embd_ = nullptr, *lm_head_ = nullptr;
  float* output_norm_ = nullptr;
  float* inv_freq_ = nullptr;
  size_t weight_bytes_ = 0;
  std::vector<int64_t> n_past_;

  // Activations for up to R = max(max_rows, n_seq) rows; logits (and the tree mask, the
  // attention's key-slice scratch) for up to L = max(min(logit_rows, R), n_seq).
  int rows_cap_ = 0, logits_cap_ = 0;
  float *x_ = nullptr, *qkv_ = nullptr, *gu_ = nullptr, *logits_ = nullptr, *attn_scratch_ = nullptr;
  backend::cuda::bf16 *xn_ = nullptr, *attn_ = nullptr, *h_ = nullptr;
  int32_t *d_tokens_ = nullptr, *d_pos_ = nullptr, *d_seq_ = nullptr, *d_row_ = nullptr, *d_next_ = nullptr;
  int32_t* d_n_past_ = nullptr;
  uint8_t* d_mask_ = nullptr;
  backend::cuda::SamplingParams* d_params_ = nullptr;
  std::vector<backend::cuda::SamplingParams> params_;
  int32_t *pinned_tokens_ = nullptr, *pinned_next_ = nullptr;
  // Decode graphs by slot list and attention kernel (true: tensor cores).
  using DecodeGraphKey = std::pair<std::vector<int32_t>, bool>;
  std::map<DecodeGraphKey, backend::cuda::Graph> decode_graphs_;
  bool decode_tensor_cores_ = false;  // the kernel of the decode graph being captured
  int last_rows_ = 0;  // rows whose logits the last call left in logits_
  int last_forward_rows_ = 0;  // rows of the last forward chunk (in x_)
  // Speculative decoding: graphs of tree verification passes (by mask), their pinned inputs and
  // outputs, the K/V cache pointers for compaction, and whether a tree pass is being captured.
  std::map<std::string, backend::cuda::Graph> tree_graphs_;
  uint8_t* pinned_tree_ = nullptr;
  backend::cuda::bf16** d_cache_ptrs_ = nullptr;
  bool capturing_tree_ = false;
  bool tree_in_decode_kernel_ = false;  // the tree being captured takes the decode attention kernel
  // Module outputs in flight (tensor parallelism, ladder, parallel block), and the events that
  // order their all-reduces on the side stream.
  float* y_[2] = {nullptr, nullptr};
  bool pending_[2] = {false, false}, async_[2] = {false, false};
  backend::cuda::Event ready_[2], reduced_[2];
  float *logits_part_ = nullptr, *logits_gather_ = nullptr;  // vocabulary-parallel LM head
  // Context parallelism: rank, ranks, tokens in the distributed sequence; decode partials.
  int cp_rank_ = 0, cp_size_ = 1;
  int64_t cp_tokens_ = 0;
  float *cp_part_ = nullptr, *cp_gather_ = nullptr, *cp_acc_ = nullptr;  // [o (Q) | lse (H)] per rank
};

}  // namespace ik::llm
