// GpuLlama's forward pass: layers, prefill, the captured decode step, sampling (construction
// and weights: llama_gpu_load.cpp; speculative verification: llama_gpu_spec.cpp).
#include "llm/model/llama_gpu.hpp"

#include <algorithm>
#include <numeric>

#include "core/error.hpp"
#ifdef IK_HAVE_NCCL
#include "dist/comm_nccl.hpp"
#endif

namespace ik::llm {

namespace cuda = backend::cuda;
using cuda::bf16;

// Passes longer than this many rows dequantize a lookup-table matrix into scratch and use
// cuBLAS: the fused kernel reads the codes once per 32 rows.
constexpr int kLutFusedMaxRows = 64;

// Whether linear() runs w through the fused lookup-table kernel, which adds into its output.
template <class Linear>
static bool adds_into_output(const Linear& w, int m) {
  return w.is_lut() && m <= kLutFusedMaxRows;
}

// ---- forward --------------------------------------------------------------------------------

void GpuLlama::set_n_past(int seq, int64_t n) {
  IK_CHECK(seq >= 0 && seq < opt_.n_seq && n >= 0 && n <= n_past_[seq], "set_n_past: bad sequence or length");
  n_past_[seq] = n;
  upload_n_past(seq);
}

void GpuLlama::upload_n_past(int seq) {
  const int32_t v = int32_t(n_past_[seq]);
  cuda::upload(d_n_past_ + seq, &v, 4);
}

void GpuLlama::embed_rows(int rows, int seq, const std::function<RowSpec(int)>& row) {
  const int64_t R = rows_cap_;
  std::vector<int32_t> packed(3 * R + rows);  // laid out as d_tokens_, d_pos_, d_seq_, d_row_
  for (int i = 0; i < rows; ++i) {
    const RowSpec r = row(i);
    packed[i] = r.token;
    packed[R + i] = r.pos;
    packed[2 * R + i] = seq;
    packed[3 * R + i] = r.cache_row;
  }
  cuda::upload(d_tokens_, packed.data(), packed.size() * 4);
  cuda::embed(embd_, d_tokens_, rows, int(cfg_.n_embd), x_);
}

void GpuLlama::linear(const Linear& w, const bf16* x, float* y, int ldy, int m, bool accumulate) {
  if (adds_into_output(w, m)) return cuda::lut_matmul(x, true, w.lut, y, ldy, m, accumulate);
  if (!w.is_lut()) return cuda::matmul(x, w.dense, y, m, w.n, w.k, accumulate, ldy);
  cuda::lut_dequantize(w.lut, lut_scratch_);
  cuda::matmul(x, lut_scratch_, y, m, w.n, w.k, accumulate, ldy);
}

// Fused parts side by side in the output columns (q | k | v, gate | up): the row stride of y,
// and product(part, first column, row stride of y) for each.
template <class Parts>
static int stacked_columns(const Parts& parts) {
  int n = 0;
  for (const auto& w : parts) n += w.n;
  return n;
}
template <class Parts, class Product>
static void side_by_side(const Parts& parts, Product product) {
  const int ldy = stacked_columns(parts);
  int col = 0;
  for (const auto& w : parts) {
    product(w, col, ldy);
    col += w.n;
  }
}

void GpuLlama::project(const std::vector<Linear>& parts, const bf16* x, float* y, int m) {
  side_by_side(parts, [&](const Linear& w, int col, int ldy) { linear(w, x, y + col, ldy, m, false); });
}

// project() of rms_norm(x_) * norm. Where every part takes the decode kernel (a few rows, small
// dense matrices) the kernel normalises x_ itself: no separate norm launch.
void GpuLlama::normed_project(const std::vector<Linear>& parts, const float* norm, float* y, int m) {
  const int E = int(shard_.n_embd);
  bool fused = true;
  for (const Linear& w : parts) fused = fused && !w.is_lut() && cuda::matvec_rms_norm_fits(x_, norm, w.dense, m, w.n, w.k);
  if (!fused) {
    // Lookup-table products add into their output: the norm kernel clears it for them.
    bool lut_adds = true;
    for (const Linear& w : parts) lut_adds = lut_adds && adds_into_output(w, m);
    if (!lut_adds) {
      cuda::rms_norm(x_, norm, xn_, m, E, shard_.rms_eps);
      return project(parts, xn_, y, m);
    }
    const int ldy = stacked_columns(parts);
    cuda::rms_norm(x_, norm, xn_, m, E, shard_.rms_eps, y, ldy, ldy);
    return side_by_side(parts, [&](const Linear& w, int col, int ld) { linear(w, xn_, y + col, ld, m, true); });
  }
  side_by_side(parts, [&](const Linear& w, int col, int ldy) {
    cuda::matvec_rms_norm(x_, norm, shard_.rms_eps, w.dense, y + col, m, w.n, w.k, false, ldy);
  });
}

void GpuLlama::store_rows_kv(const Layer& L, int m) {
  const LlamaConfig& c = shard_;
  cuda::rope_and_store_kv(qkv_, m, c.n_head, c.n_head_kv, c.head_dim, d_pos_, d_seq_, d_row_, inv_freq_,
                          c.rope_layout == backend::RopeLayout::Half, L.k, L.v, int(opt_.n_ctx));
}

void GpuLlama::attention(const Layer& L, int m, const std::vector<SlotRun>* decode, int seq, const uint8_t* mask) {
  const LlamaConfig& c = shard_;
  const int QKV = int(c.q_dim() + 2 * c.kv_dim());
  const bool half = c.rope_layout == backend::RopeLayout::Half;
  normed_project(L.qkv, L.attn_norm, qkv_, m);
  if (decode) {
    for (const SlotRun& r : *decode) {
      float* q = qkv_ + size_t(r.row) * QKV;
      int32_t* n_past = d_n_past_ + r.slot;
      const size_t cache = size_t(r.slot) * opt_.n_ctx * c.kv_dim();
      cuda::rope_store_attention_decode(q, QKV, L.k + cache, L.v + cache, attn_ + size_t(r.row) * c.q_dim(), r.count,
                                        n_past, int(opt_.n_ctx), c.n_head, c.n_head_kv, c.head_dim, attn_scratch_,
                                        inv_freq_, half, decode_tensor_cores_);
    }
    return;
  }
  const size_t seq_offset = size_t(seq) * opt_.n_ctx * c.kv_dim();
  if (capturing_tree_ && tree_in_decode_kernel_) {  // a small draft tree: the decode kernel
    cuda::rope_store_attention_tree(qkv_, QKV, L.k + seq_offset, L.v + seq_offset, attn_, m, d_n_past_ + seq, d_pos_,
                                    mask, c.n_head, c.n_head_kv, c.head_dim, attn_scratch_, inv_freq_, half);
    return;
  }
  store_rows_kv(L, m);
  // The key-slice scratch holds logits_cap_ rows: longer passes have blocks enough unsplit.
  cuda::attention_prefill(qkv_, QKV, L.k + seq_offset, L.v + seq_offset, attn_, m, int(n_past_[seq]), c.n_head,
                          c.n_head_kv, c.head_dim, mask, 0, capturing_tree_ ? d_n_past_ + seq : nullptr,
                          m <= logits_cap_ ? attn_scratch_ : nullptr);
}

void GpuLlama::mlp(const Layer& L, int m, float* y, bool accumulate) {
  const LlamaConfig& c = shard_;
  const int E = int(c.n_embd);
  normed_project(L.gate_up, L.ffn_norm, gu_, m);
  cuda::silu_mul(gu_, h_, m, int(c.n_ff));
  linear(L.down, h_, y, E, m, accumulate);
}

void GpuLlama::reduce(int b, int m, bool async) {
  pending_[b] = true;
  if (tp_size_ == 1 || opt_.desync) return;
#ifdef IK_HAVE_NCCL
  const size_t n = size_t(m) * cfg_.n_embd;
  if (!async) return opt_.comm->all_reduce_sum_on(y_[b], n, cuda::main_stream());
  cuda::record(ready_[b], cuda::main_stream());
  cuda::wait(cuda::side_stream(), ready_[b]);
  opt_.comm->all_reduce_sum_on(y_[b], n, cuda::side_stream());
  cuda::record(reduced_[b], cuda::side_stream());
  async_[b] = true;
#endif
}

void GpuLlama::settle(int b, int m) {
  if (!pending_[b]) return;
  if (async_[b]) cuda::wait(cuda::main_stream(), reduced_[b]);
  cuda::add_inplace(x_, y_[b], size_t(m) * cfg_.n_embd);
  pending_[b] = async_[b] = false;
}

// The layers over the m rows already embedded in x_. Decode: each run's rows are its
// sequences at their n_past (device), one query each. Prefill: rows of sequence `seq` from
// n_past_[seq].
//
// Module j (attention 2l, MLP 2l + 1) writes y_j. One GPU, standard block: y_j is added to the
// stream by the module's last matmul (fused). Otherwise y_j goes to y_[j % 2] and is all-reduced;
// standard: waited and added at once; ladder: u_j = u_{j-1} + y_{j-2}, so y_{j-1}'s all-reduce
// runs on the side stream while module j computes (docs/tensor_parallel.md).
void GpuLlama::run_layers(int m, const std::vector<SlotRun>* decode, int seq, const uint8_t* mask) {
  const int E = int(cfg_.n_embd), n_layer = int(layers_.size());
  for (int l = 0; l < n_layer; ++l) {
    const Layer& L = layers_[l];
    if (opt_.parallel_block) {  // u' = u + AllReduce(Attn(norm_a(u)) + MLP(norm_m(u)))
      attention(L, m, decode, seq, mask);
      linear(L.o, attn_, y_[0], E, m, false);
      mlp(L, m, y_[0], true);
      reduce(0, m, false);
      settle(0, m);
      continue;
    }
    const bool ladder = l >= n_layer - opt_.ladder_last;
    const bool fused = tp_size_ == 1 && !ladder;
    for (int b = 0; b < 2; ++b) {  // b = j % 2
      settle(b, m);                // y_{j-2}
      if (!ladder) settle(1 - b, m);  // y_{j-1}
      float* y = fused ? x_ : y_[b];
      if (b == 0) {
        attention(L, m, decode, seq, mask);
        linear(L.o, attn_, y, E, m, fused);
      } else {
        mlp(L, m, y, fused);
      }
      if (fused) continue;
      reduce(b, m, ladder);
      if (!ladder) settle(b, m);
    }
  }
  settle(0, m);  // final hidden = u_{2L-1} + y_{2L-2} + y_{2L-1}
  settle(1, m);
}

// Final norm and LM head into logits_. Split by vocabulary: each rank's columns, all-gathered
// ([P][n][V/P]) and interleaved back into rows of n_vocab.
void GpuLlama::lm_head(const float* x, int n) {
  const LlamaConfig& c = cfg_;
  cuda::rms_norm(x, output_norm_, xn_, n, int(c.n_embd), c.rms_eps);
  const int64_t V = c.n_vocab, Vl = vocab_local_;
  if (Vl == V) return cuda::matmul(xn_, lm_head_, logits_, n, int(V), int(c.n_embd), false);
  cuda::matmul(xn_, lm_head_, logits_part_, n, int(Vl), int(c.n_embd), false);
#ifdef IK_HAVE_NCCL
  opt_.comm->all_gather_on(logits_part_, logits_gather_, size_t(n) * Vl, cuda::main_stream());
#endif
  for (int p = 0; p < tp_size_; ++p)
    cuda::copy_2d_async(logits_ + p * Vl, V * sizeof(float), logits_gather_ + size_t(p) * n * Vl, Vl * sizeof(float),
                        Vl * sizeof(float), n);
}

void GpuLlama::check_tokens(const int32_t* tokens, int64_t m, int64_t n_vocab) {
  for (int64_t i = 0; i < m; ++i)
    IK_CHECK(tokens[i] >= 0 && tokens[i] < n_vocab, "token id {} outside the vocabulary ({})", tokens[i], n_vocab);
}

void GpuLlama::forward(int seq, const int32_t* tokens, int64_t m, float* logits, bool all_logits,
                       const int32_t* positions, const uint8_t* tree_mask) {
  const LlamaConfig& c = cfg_;
  IK_CHECK(seq >= 0 && seq < opt_.n_seq, "sequence {} out of range ({} slots)", seq, opt_.n_seq);
  IK_CHECK(m > 0, "forward: no tokens");
  IK_CHECK(n_past_[seq] + m <= opt_.n_ctx, "context full: {} + {} tokens exceed the context of {}", n_past_[seq], m,
           opt_.n_ctx);
  IK_CHECK(!tree_mask || m <= logits_cap_, "a tree of {} nodes exceeds the {} rows of one GPU pass", m, logits_cap_);
  check_tokens(tokens, m, c.n_vocab);
  // Passes whose every row's logits are kept are as long as the logits buffer.
  const int chunk = all_logits ? logits_cap_ : rows_cap_;
  for (int64_t done = 0; done < m;) {
    const int rows = int(std::min<int64_t>(chunk, m - done));
    embed_rows(rows, seq, [&](int i) {
      const int32_t row = int32_t(n_past_[seq] + i);
      return RowSpec{tokens[done + i], positions ? positions[done + i] : row, row};
    });
    if (tree_mask) cuda::upload(d_mask_, tree_mask, size_t(rows) * rows);
    run_layers(rows, nullptr, seq, tree_mask ? d_mask_ : nullptr);
    n_past_[seq] += rows;
    done += rows;
    // Final norm and LM head over the rows that need logits.
    const bool last_chunk = done == m;
    if (!last_chunk && !all_logits) continue;
    const int first = all_logits ? 0 : rows - 1, n_out = rows - first;
    lm_head(x_ + size_t(first) * c.n_embd, n_out);
    last_rows_ = n_out;
    last_forward_rows_ = rows;
    if (logits) {
      float* dst = all_logits ? logits + size_t(done - rows) * c.n_vocab : logits;
      cuda::download(dst, logits_, size_t(n_out) * c.n_vocab * sizeof(float));
    }
  }
  upload_n_past(seq);
}

// One decode step for a slot list as a graph: the token copy in, the layers, the LM head,
// sampling, the copy out, and the advance of the sequence lengths. The slots are baked into
// the graph (the per-sequence kernels address sequence b at row b): one launch of each per
// run of consecutive slots, so a full or contiguous batch costs what 0..n-1 does. So is the
// attention kernel (tensor_cores: see cuda::decode_tensor_cores).
void GpuLlama::capture_decode(const std::vector<int32_t>& slots, bool tensor_cores) {
  const LlamaConfig& c = cfg_;
  const int n = int(slots.size());
  decode_tensor_cores_ = tensor_cores;
  std::vector<SlotRun> runs;
  for (int i = 0; i < n; ++i) {
    if (!runs.empty() && runs.back().slot + runs.back().count == slots[i]) ++runs.back().count;
    else runs.push_back({i, slots[i], 1});
  }
  cuda::begin_capture();
  cuda::copy_async(d_tokens_, pinned_tokens_, size_t(n) * 4);
  cuda::embed(embd_, d_tokens_, n, int(c.n_embd), x_);
  run_layers(n, &runs, 0, nullptr);
  lm_head(x_, n);
  for (const SlotRun& r : runs)
    cuda::sample(logits_ + size_t(r.row) * c.n_vocab, r.count, int(c.n_vocab), d_params_ + r.slot, d_next_ + r.row);
  cuda::copy_async(pinned_next_, d_next_, size_t(n) * 4);
  for (const SlotRun& r : runs) cuda::increment(d_n_past_ + r.slot, r.count);
  decode_graphs_[{slots, tensor_cores}] = cuda::end_capture();
}

void GpuLlama::decode(const int32_t* tokens, int n, int32_t* next) {
  IK_CHECK(n >= 1 && n <= opt_.n_seq, "decode: {} sequences, {} slots", n, opt_.n_seq);
  std::vector<int32_t> slots(n);
  std::iota(slots.begin(), slots.end(), 0);
  decode_slots(slots.data(), tokens, n, next);
}

// Graphs kept at most (one per slot list and kernel seen; 2^n_seq - 1 lists exist): beyond, start over.
constexpr size_t kMaxDecodeGraphs = 64;

void GpuLlama::decode_slots(const int32_t* slots, const int32_t* tokens, int n, int32_t* next) {
  IK_CHECK(n >= 1 && n <= opt_.n_seq, "decode: {} sequences, {} slots", n, opt_.n_seq);
  check_tokens(tokens, n, cfg_.n_vocab);
  const std::vector<int32_t> list(slots, slots + n);
  std::vector<bool> seen(opt_.n_seq, false);
  int64_t longest = 0;  // keys of the longest sequence after this step
  for (int32_t s : list) {
    IK_CHECK(s >= 0 && s < opt_.n_seq && !seen[s], "decode: slot {} out of range ({} slots) or repeated", s, opt_.n_seq);
    seen[s] = true;
    IK_CHECK(n_past_[s] < opt_.n_ctx, "context full for sequence {} ({} positions)", s, opt_.n_ctx);
    longest = std::max(longest, n_past_[s] + 1);
  }
  const DecodeGraphKey key{list, cuda::decode_tensor_cores(n, longest)};
  auto graph = decode_graphs_.find(key);
  if (graph == decode_graphs_.end()) {
    if (decode_graphs_.size() >= kMaxDecodeGraphs) {
      for (auto& [k, g] : decode_graphs_) cuda::destroy(g);
      decode_graphs_.clear();
    }
    capture_decode(key.first, key.second);
    graph = decode_graphs_.find(key);
  }
  std::copy(tokens, tokens + n, pinned_tokens_);
  cuda::launch(graph->second);
  cuda::sync();
  std::copy(pinned_next_, pinned_next_ + n, next);
  for (int32_t s : list) ++n_past_[s];
  last_rows_ = n;
}

void GpuLlama::last_logits(float* out, int rows) const {
  IK_CHECK(rows >= 1 && rows <= last_rows_, "last_logits: {} rows asked, {} available", rows, last_rows_);
  cuda::download(out, logits_, size_t(rows) * cfg_.n_vocab * sizeof(float));
}

int32_t GpuLlama::sample_last(int seq) {
  IK_CHECK(last_rows_ > 0, "sample_last: no logits yet");
  cuda::sample(logits_ + size_t(last_rows_ - 1) * cfg_.n_vocab, 1, int(cfg_.n_vocab), d_params_ + seq, d_next_);
  int32_t t = 0;
  cuda::download(&t, d_next_, 4);
  return t;
}

void GpuLlama::set_sampling(int seq, float temperature, int top_k, float top_p, float min_p, uint64_t seed) {
  IK_CHECK(seq >= 0 && seq < opt_.n_seq, "sequence {} out of range", seq);
  cuda::SamplingParams& p = params_[seq];
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  p.min_p = min_p;
  p.seed = seed;
  p.counter = 0;
  cuda::upload(d_params_ + seq, &p, sizeof(p));
}

}  // namespace ik::llm
