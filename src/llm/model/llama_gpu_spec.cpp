// GpuLlama's part in speculative decoding (llm/spec/gpu.hpp): the verification pass of a draft
// tree as a CUDA graph, the final hidden states and greedy tokens of a pass, and the KV-cache
// compaction to the accepted path.
#include <algorithm>
#include <cstring>

#include "core/error.hpp"
#include "io/dtype.hpp"
#include "llm/model/llama_gpu.hpp"

namespace ik::llm {

namespace cuda = backend::cuda;
using cuda::bf16;

// x_ holds the last forward chunk's rows (the verification pass is one chunk).
void GpuLlama::final_hidden(int n, float* out) {
  IK_CHECK(n >= 1 && n <= last_forward_rows_, "final_hidden: {} rows asked, the last forward left {}", n,
           last_forward_rows_);
  const int64_t E = cfg_.n_embd;
  cuda::rms_norm(x_ + size_t(last_forward_rows_ - n) * E, output_norm_, xn_, n, int(E), cfg_.rms_eps);
  std::vector<bf16> h(size_t(n * E));
  cuda::download(h.data(), xn_, h.size() * sizeof(bf16));
  io::dequantize(io::DType::BF16, h.data(), out, n * E);
}

void GpuLlama::argmax_rows(int rows, int32_t* out) {
  IK_CHECK(rows >= 1 && rows <= last_rows_, "argmax_rows: {} rows asked, {} available", rows, last_rows_);
  cuda::top_k_rows(logits_, rows, int(cfg_.n_vocab), 1, d_next_);
  cuda::download(out, d_next_, size_t(rows) * 4);
}

void GpuLlama::keep_rows(int seq, int64_t base, const std::vector<int64_t>& rows) {
  IK_CHECK(seq >= 0 && seq < opt_.n_seq, "sequence {} out of range", seq);
  IK_CHECK(base + int64_t(rows.size()) <= n_past_[seq], "keep_rows: rows past the sequence");
  std::vector<int32_t> src(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    IK_CHECK(rows[i] >= base + int64_t(i) && rows[i] < n_past_[seq] && (i == 0 || rows[i] > rows[i - 1]),
             "keep_rows: row {} out of order", rows[i]);
    src[i] = int32_t(rows[i]);
  }
  if (!d_cache_ptrs_) {  // every sequence's K and V caches, [n_seq][2 n_layer]
    std::vector<bf16*> caches;
    for (int s = 0; s < opt_.n_seq; ++s)
      for (const Layer& L : layers_) {
        const size_t offset = size_t(s) * opt_.n_ctx * shard_.kv_dim();
        caches.push_back(L.k + offset), caches.push_back(L.v + offset);
      }
    d_cache_ptrs_ = static_cast<bf16**>(device_alloc(caches.size() * sizeof(bf16*), "cache pointers"));
    cuda::upload(d_cache_ptrs_, caches.data(), caches.size() * sizeof(bf16*));
  }
  cuda::upload(d_row_, src.data(), src.size() * 4);  // d_row_: free between passes
  const int n_caches = 2 * int(layers_.size());
  cuda::keep_cache_rows(d_cache_ptrs_ + size_t(seq) * n_caches, n_caches, int(shard_.kv_dim()), d_row_,
                        int(src.size()), int(base));
  n_past_[seq] = base + int64_t(rows.size());
  upload_n_past(seq);
}

const backend::cuda::bf16* GpuLlama::lm_head_weights() const {
  IK_CHECK(vocab_local_ == cfg_.n_vocab, "the LM head is split over {} GPUs", tp_size_);
  return lm_head_;
}


// One graph per tree (keyed by its mask): the copy of the rows' ids, positions and mask from
// pinned memory, the layers (attention reads n_past on the device, so the graph stays valid as
// the sequence grows), the LM head over every row, the greedy tokens and the final-norm states
// copied back, and n_past advanced on the device (no upload after the pass). Only the pinned
// inputs change between replays. Trees of up to cuda::tree_decode_max_rows() nodes whose nodes
// each see at most cuda::kTreeDecodeSeen tree rows take the decode step's attention kernel (RoPE
// and the cache store fused), others the prefill path.
void GpuLlama::verify_tree(const int32_t* tokens, int m, const int32_t* positions, const uint8_t* mask,
                           int32_t* greedy, float* hidden) {
  const LlamaConfig& c = cfg_;
  const int64_t R = rows_cap_, L = logits_cap_, E = c.n_embd;
  IK_CHECK(tp_size_ == 1 && !opt_.context_parallel, "verify_tree runs on one GPU");
  IK_CHECK(m >= 1 && m <= L, "a tree of {} nodes exceeds the {} rows of one GPU pass", m, L);
  IK_CHECK(n_past_[0] + m <= opt_.n_ctx, "context full: {} + {} tokens exceed the context of {}", n_past_[0], m,
           opt_.n_ctx);
  check_tokens(tokens, m, c.n_vocab);
  const size_t mask_bytes = (size_t(L) * L + 15) / 16 * 16;  // the states after it stay aligned
  if (!pinned_tree_) {  // [ids | positions | sequences | rows] (4 R int32), mask (L L), states (L E bf16)
    pinned_tree_ = static_cast<uint8_t*>(cuda::alloc_pinned(size_t(R) * 16 + mask_bytes + size_t(L) * 2 * E));
    std::memset(pinned_tree_, 0, size_t(R) * 16);  // sequence ids: 0
  }
  auto* rows = reinterpret_cast<int32_t*>(pinned_tree_);
  uint8_t* pinned_mask = pinned_tree_ + R * 16;
  auto* states = reinterpret_cast<bf16*>(pinned_mask + mask_bytes);
  for (int i = 0; i < m; ++i) {
    rows[i] = tokens[i];
    rows[R + i] = positions[i];
    rows[3 * R + i] = int32_t(n_past_[0] + i);
  }
  std::memcpy(pinned_mask, mask, size_t(m) * m);
  const std::string key(reinterpret_cast<const char*>(mask), size_t(m) * m);
  auto graph = tree_graphs_.find(key);
  if (graph == tree_graphs_.end()) {
    cuda::begin_capture();
    cuda::copy_async(d_tokens_, rows, size_t(4 * R) * 4);
    cuda::copy_async(d_mask_, pinned_mask, size_t(m) * m);
    cuda::embed(embd_, d_tokens_, m, int(E), x_);
    int seen = 0;  // the most tree rows a node sees
    for (int i = 0; i < m; ++i) {
      const uint8_t* row = mask + size_t(i) * m;
      seen = std::max(seen, int(std::count_if(row, row + m, [](uint8_t v) { return v != 0; })));
    }
    tree_in_decode_kernel_ = m <= cuda::tree_decode_max_rows() && seen <= cuda::kTreeDecodeSeen;
    capturing_tree_ = true;
    run_layers(m, nullptr, 0, d_mask_);
    capturing_tree_ = false;
    lm_head(x_, m);  // leaves the final-norm states in xn_
    cuda::top_k_rows(logits_, m, int(c.n_vocab), 1, d_next_);
    cuda::copy_async(pinned_next_, d_next_, size_t(m) * 4);
    cuda::copy_async(states, xn_, size_t(m) * E * sizeof(bf16));
    cuda::increment(d_n_past_, 1, m);  // the nodes join the sequence (keep_rows trims it to the accepted path)
    graph = tree_graphs_.emplace(key, cuda::end_capture()).first;
  }
  cuda::launch(graph->second);
  cuda::sync();
  std::copy(pinned_next_, pinned_next_ + m, greedy);
  if (hidden) io::dequantize(io::DType::BF16, states, hidden, m * E);
  n_past_[0] += m;  // the graph advanced the device's copy
  last_rows_ = last_forward_rows_ = m;
}

}  // namespace ik::llm
