#include "llm/spec/gpu.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>

#include "core/error.hpp"

namespace ik::llm::spec {

namespace cuda = backend::cuda;

// ---- the base model -------------------------------------------------------------------------

void GpuSpecBase::forward(const int32_t* tokens, int64_t m, const int32_t* positions, const uint8_t* mask,
                          bool all_rows, float* hidden) {
  kept_rows_ = all_rows ? m : 1;
  downloaded_ = false;
  tree_pass_ = mask && positions && all_rows;
  if (tree_pass_) {  // a verification pass: one graph launch
    greedy_.resize(size_t(m));
    return gpu_.verify_tree(tokens, int(m), positions, mask, greedy_.data(), hidden);
  }
  gpu_.forward(0, tokens, m, nullptr, all_rows, positions, mask);
  gpu_.final_hidden(int(m), hidden);
}

void GpuSpecBase::argmax(int64_t n, int32_t* out) {
  if (!tree_pass_) return gpu_.argmax_rows(int(n), out);
  IK_CHECK(n <= int64_t(greedy_.size()), "argmax: {} rows of {}", n, greedy_.size());
  std::copy(greedy_.begin(), greedy_.begin() + n, out);
}

const float* GpuSpecBase::logits(int64_t i) {
  const int64_t V = gpu_.config().n_vocab;
  IK_CHECK(i >= 0 && i < kept_rows_, "logits: row {} of {}", i, kept_rows_);
  if (!downloaded_) {
    logits_.resize(size_t(kept_rows_ * V));
    gpu_.last_logits(logits_.data(), int(kept_rows_));
    downloaded_ = true;
  }
  return logits_.data() + i * V;
}

// ---- the draft heads ------------------------------------------------------------------------


GpuHeadDrafter::GpuHeadDrafter(const DraftHeads& heads, GpuLlama& base, int max_rows)
    : heads_(heads), base_(base), cfg_(base.config()), rows_cap_(max_rows) {
  IK_CHECK(heads.d() == cfg_.n_embd && heads.base.n_vocab == cfg_.n_vocab,
           "the heads were made for hidden size {} and {} tokens, the model has {} and {}", heads.d(),
           heads.base.n_vocab, cfg_.n_embd, cfg_.n_vocab);
  const int64_t E = cfg_.n_embd, V = cfg_.n_vocab, R = rows_cap_;
  int64_t width = E;
  for (int i = 0; i < heads.n_heads(); ++i) width = std::max(width, heads.input_width(i));
  try {
    for (const Head& h : heads.heads) {
      head_w_.emplace_back();
      for (const HeadBlock& b : h.blocks) head_w_.back().push_back({upload_dense(b.fc), upload_dense(b.proj)});
    }
    const int64_t Q = cfg_.q_dim(), QKV = Q + 2 * cfg_.kv_dim(), F = cfg_.n_ff;
    x_ = static_cast<float*>(get(R * width * 4, "head inputs"));
    y_ = static_cast<float*>(get(R * E * 4, "head activations"));
    pre_ = static_cast<float*>(get(R * E * 4, "head activations"));
    logits_ = static_cast<float*>(get(R * V * 4, "head logits"));
    h_ = static_cast<float*>(get(E * 4, "the head state"));
    xb_ = static_cast<bf16*>(get(R * std::max(width, Q) * 2, "head inputs"));
    d_tree_ = static_cast<int32_t*>(get(R * 4, "tree tokens"));
    d_topk_ = static_cast<int32_t*>(get(R * cuda::kMaxTopK * 4, "top-k ids"));
    pinned_tree_ = static_cast<int32_t*>(cuda::alloc_pinned(size_t(R) * 4));
    if (heads.has_prefix()) {
      qkv_ = static_cast<float*>(get(R * QKV * 4, "prefix activations"));
      gu_ = static_cast<float*>(get(R * 2 * F * 4, "prefix activations"));
      attn_ = static_cast<bf16*>(get(R * Q * 2, "prefix activations"));
      hid_ = static_cast<bf16*>(get(R * F * 2, "prefix activations"));
      upload_prefix();
    }
  } catch (...) {  // pool_ releases the device memory
    cuda::release_pinned(pinned_tree_);
    throw;
  }
}

GpuHeadDrafter::~GpuHeadDrafter() {
  for (auto& [key, g] : graphs_) cuda::destroy(g);
  cuda::release_pinned(pinned_tree_);
}

void* GpuHeadDrafter::get(size_t bytes, const char* what) {
  return pool_.allocate(std::max<size_t>(bytes, 4), what);
}

cuda::bf16* GpuHeadDrafter::upload_bf16(const float* v, size_t n) {
  cuda::DeviceArray<float> tmp(v, n, "weights being converted");
  bf16* w = static_cast<bf16*>(get(n * 2, "draft-head weights"));
  cuda::convert_to_bf16(tmp.get(), w, n);
  cuda::sync();
  return w;
}

float* GpuHeadDrafter::upload_f32(const std::vector<float>& v) {
  float* p = static_cast<float*>(get(v.size() * 4, "draft-head weights"));
  cuda::upload(p, v.data(), v.size() * 4);
  return p;
}

GpuHeadDrafter::DenseW GpuHeadDrafter::upload_dense(const Dense& d) {
  DenseW w{int(d.n_in), int(d.n_out)};
  if (d.n_out == 0) return w;
  w.w = upload_bf16(d.w.data(), d.w.size());
  if (!d.b.empty()) w.b = upload_f32(d.b);
  return w;
}

void GpuHeadDrafter::upload_prefix() {
  const train::BlockWeights& w = heads_.prefix;
  Prefix& p = prefix_;
  p.attn_norm = upload_f32(w.attn_norm);
  p.ffn_norm = upload_f32(w.ffn_norm);
  p.out_norm = upload_f32(heads_.prefix_norm);
  std::vector<float> qkv = w.wq;
  qkv.insert(qkv.end(), w.wk.begin(), w.wk.end());
  qkv.insert(qkv.end(), w.wv.begin(), w.wv.end());
  p.wqkv = upload_bf16(qkv.data(), qkv.size());
  p.wo = upload_bf16(w.wo.data(), w.wo.size());
  std::vector<float> gu = w.w_gate;
  gu.insert(gu.end(), w.w_up.begin(), w.w_up.end());
  p.wgu = upload_bf16(gu.data(), gu.size());
  p.wdown = upload_bf16(w.w_down.data(), w.w_down.size());
  const size_t cache = size_t(base_.options().n_ctx) * cfg_.kv_dim() * 2;
  p.k = static_cast<bf16*>(get(cache, "the prefix layer's KV cache"));
  p.v = static_cast<bf16*>(get(cache, "the prefix layer's KV cache"));
  const auto rope = backend::Rope::make(cfg_.head_dim, cfg_.rope_base, cfg_.rope_linear_factor, cfg_.rope_freq_factors,
                                        cfg_.rope_layout);
  p.inv_freq = upload_f32(rope.inv_freq);
  p.pos = static_cast<int32_t*>(get(size_t(rows_cap_) * 4, "prefix positions"));
  p.zeros = static_cast<int32_t*>(get(size_t(rows_cap_) * 4, "prefix positions"));
  const std::vector<int32_t> zeros(size_t(rows_cap_), 0);
  cuda::upload(p.zeros, zeros.data(), zeros.size() * 4);
}

void GpuHeadDrafter::reset() {
  prefix_.n_past = 0;
  have_h_ = false;
}

void GpuHeadDrafter::rewind(int64_t n) {
  prefix_.n_past = std::min(n, prefix_.n_past);
  have_h_ = false;  // the caller observes at least one position again
}

// The prefix layer (as PrefixLayer::append) over x_ rows [m, d] at positions n_past...
void GpuHeadDrafter::prefix_append(int m) {
  const LlamaConfig& c = cfg_;
  Prefix& p = prefix_;
  const int E = int(c.n_embd), Q = int(c.q_dim()), QKV = Q + 2 * int(c.kv_dim()), F = int(c.n_ff);
  const int n_ctx = int(base_.options().n_ctx);
  IK_CHECK(p.n_past + m <= n_ctx, "prefix layer: context of {} full", n_ctx);
  std::vector<int32_t> pos(static_cast<size_t>(m));
  for (int i = 0; i < m; ++i) pos[i] = int32_t(p.n_past + i);
  cuda::upload(p.pos, pos.data(), pos.size() * 4);
  cuda::rms_norm(x_, p.attn_norm, xb_, m, E, c.rms_eps);
  cuda::matmul(xb_, p.wqkv, qkv_, m, QKV, E, false);
  cuda::rope_and_store_kv(qkv_, m, c.n_head, c.n_head_kv, c.head_dim, p.pos, p.zeros, p.pos, p.inv_freq,
                          c.rope_layout == backend::RopeLayout::Half, p.k, p.v, n_ctx);
  cuda::attention_prefill(qkv_, QKV, p.k, p.v, attn_, m, int(p.n_past), c.n_head, c.n_head_kv, c.head_dim, nullptr);
  cuda::matmul(attn_, p.wo, x_, m, E, Q, true);
  cuda::rms_norm(x_, p.ffn_norm, xb_, m, E, c.rms_eps);
  cuda::matmul(xb_, p.wgu, gu_, m, 2 * F, E, false);
  cuda::silu_mul(gu_, hid_, m, F);
  cuda::matmul(hid_, p.wdown, x_, m, E, F, true);
  p.n_past += m;
  cuda::rms_norm(x_ + size_t(m - 1) * E, p.out_norm, xb_, 1, E, c.rms_eps);
  cuda::convert_to_f32(xb_, h_, size_t(E));
}

void GpuHeadDrafter::observe(const float* hidden, int64_t m) {
  const int64_t E = cfg_.n_embd;
  if (!heads_.has_prefix()) {
    cuda::upload(h_, hidden + (m - 1) * E, size_t(E) * 4);
  } else {
    for (int64_t done = 0; done < m;) {
      const int rows = int(std::min<int64_t>(rows_cap_, m - done));
      cuda::upload(x_, hidden + done * E, size_t(rows * E) * 4);
      prefix_append(rows);
      done += rows;
    }
  }
  have_h_ = true;
}

// Head i over x_'s rows (ResBlocks: y = residual(x) + SiLU(W x + b); residual = x, or the
// learned projection of the first block of a Hydra head).
void GpuHeadDrafter::run_head(int i, int rows) {
  const int E = int(cfg_.n_embd);
  const float* in = x_;
  for (const BlockW& b : head_w_[size_t(i)]) {
    cuda::convert_to_bf16(in, xb_, size_t(rows) * b.fc.n_in);
    cuda::matmul(xb_, b.fc.w, pre_, rows, E, b.fc.n_in, false);
    if (b.proj.w) cuda::matmul(xb_, b.proj.w, y_, rows, E, b.proj.n_in, false);
    else if (in != y_) cuda::copy_async(y_, in, size_t(rows) * E * 4);
    cuda::bias_silu_add(pre_, b.fc.b, y_, rows, E);
    in = y_;
  }
}

void GpuHeadDrafter::lm_head(int rows) {
  const int E = int(cfg_.n_embd);
  cuda::convert_to_bf16(y_, xb_, size_t(rows) * E);
  cuda::matmul(xb_, base_.lm_head_weights(), logits_, rows, int(cfg_.n_vocab), E, false);
}

void GpuHeadDrafter::top_k(int rows, int k) {
  lm_head(rows);
  cuda::top_k_rows(logits_, rows, int(cfg_.n_vocab), k, d_topk_);
}

void GpuHeadDrafter::propose(const DraftTree& tree, int32_t* tokens) {
  IK_CHECK(have_h_, "draft heads: no hidden state observed yet");
  IK_CHECK(tree.max_depth <= heads_.n_heads(), "the draft tree is {} deep, but the heads file has only {} heads",
           tree.max_depth, heads_.n_heads());
  IK_CHECK(tree.n_nodes() <= rows_cap_, "a tree of {} nodes exceeds the drafter's {} rows", tree.n_nodes(), rows_cap_);
  std::string key;
  for (const auto& p : tree.paths) key += format_path(p);
  auto it = graphs_.find(key);
  if (it == graphs_.end()) it = graphs_.emplace(key, capture(tree)).first;
  pinned_tree_[0] = tokens[0];
  cuda::launch(it->second);
  cuda::sync();
  std::copy(pinned_tree_ + 1, pinned_tree_ + tree.n_nodes(), tokens + 1);
}

// The tree's levels (Medusa: one pseudo-level of D rows, one per head) with their device plans,
// uploaded before the capture (no synchronous copies while capturing).
std::vector<GpuHeadDrafter::Level> GpuHeadDrafter::plan_levels(const DraftTree& tree) {
  std::vector<Level> levels;
  auto upload = [&](const std::vector<int32_t>& v) {
    auto* p = static_cast<int32_t*>(get(v.size() * 4, "draft-tree plan"));
    cuda::upload(p, v.data(), v.size() * 4);
    return p;
  };
  if (heads_.arch == HeadArch::Medusa) {  // node n takes candidate rank[n] of head depth[n] - 1
    const int n = tree.n_nodes() - 1;
    std::vector<int32_t> plan(size_t(3 * n));
    for (int i = 0; i < n; ++i) plan[i] = i + 1, plan[n + i] = tree.depth[i + 1] - 1, plan[2 * n + i] = tree.rank[i + 1];
    levels.push_back({tree.max_depth, *std::max_element(tree.top_k.begin(), tree.top_k.end()), n, nullptr,
                      upload(plan)});
    return levels;
  }
  for (int L = 1; L <= tree.max_depth; ++L) {
    std::vector<int32_t> chains, nodes, rows_of, ranks;
    Level lv{0, 1, 0, nullptr, nullptr};
    for (int n = 0; n < tree.n_nodes(); ++n) {
      if (tree.depth[n] != L - 1 || tree.children[n].empty()) continue;
      std::vector<int32_t> chain;
      for (int a = n; a >= 0; a = tree.parent[a]) chain.push_back(a);
      chains.insert(chains.end(), chain.rbegin(), chain.rend());  // root first: L nodes
      for (int c : tree.children[n]) nodes.push_back(c), rows_of.push_back(lv.rows), ranks.push_back(tree.rank[c]);
      lv.k = std::max(lv.k, tree.rank[tree.children[n].back()] + 1);
      ++lv.rows;
    }
    std::vector<int32_t> plan = nodes;
    plan.insert(plan.end(), rows_of.begin(), rows_of.end());
    plan.insert(plan.end(), ranks.begin(), ranks.end());
    lv.n_children = int(nodes.size());
    lv.chains = upload(chains);
    lv.scatter = upload(plan);
    levels.push_back(lv);
  }
  return levels;
}

// IK_SPEC_PROFILE=1: device time of each level's parts, once per tree (where drafting goes).
void GpuHeadDrafter::profile_levels(const std::vector<Level>& levels) {
  const int E = int(cfg_.n_embd);
  for (size_t L = 1; L <= levels.size(); ++L) {
    const Level& lv = levels[L - 1];
    const bool medusa = heads_.arch == HeadArch::Medusa;
    const double input = medusa ? 0.0 : cuda::time_ms([&] {
      cuda::hydra_input(h_, base_.embedding_table(), d_tree_, lv.chains, lv.rows, int(L), E, x_);
    }, 20);
    const double head = cuda::time_ms([&] { run_head(medusa ? 0 : int(L) - 1, medusa ? 1 : lv.rows); }, 20);
    const double lm = cuda::time_ms([&] { lm_head(lv.rows); }, 20);
    const double topk = cuda::time_ms([&] { cuda::top_k_rows(logits_, lv.rows, int(cfg_.n_vocab), lv.k, d_topk_); }, 20);
    fmt::print(stderr, "[drafting] level {}: {} rows, k {}: input {:.3f} ms, head {:.3f}, LM head {:.3f}, top-k {:.3f}\n",
               L, lv.rows, lv.k, input, head, lm, topk);
  }
}

// Medusa: head i reads h; the heads' outputs become the rows of one LM head pass. Each head runs
// through y_'s first row, so the outputs are staged in logits_ (free until that pass).
// Hydra, Hydra++: level by level, head L - 1 reads [h | E(path from the root to the parent)] for
// every node at depth L - 1 that has children; its top candidates become those children.
cuda::Graph GpuHeadDrafter::capture(const DraftTree& tree) {
  const int E = int(cfg_.n_embd);
  const std::vector<Level> levels = plan_levels(tree);
  for (const Level& lv : levels)
    IK_CHECK(lv.k <= cuda::kMaxTopK, "the draft tree asks for {} candidates of one node; at most {} are supported", lv.k,
             cuda::kMaxTopK);
  if (std::getenv("IK_SPEC_PROFILE")) profile_levels(levels);
  cuda::begin_capture();
  cuda::copy_async(d_tree_, pinned_tree_, 4);
  if (heads_.arch == HeadArch::Medusa) {
    const Level& lv = levels[0];
    float* outs = logits_;
    for (int i = 0; i < lv.rows; ++i) {
      cuda::copy_async(x_, h_, size_t(E) * 4);
      run_head(i, 1);
      cuda::copy_async(outs + size_t(i) * E, y_, size_t(E) * 4);
    }
    cuda::copy_async(y_, outs, size_t(lv.rows) * E * 4);
    top_k(lv.rows, lv.k);
    cuda::scatter_candidates(d_topk_, lv.k, lv.scatter, lv.n_children, d_tree_);
  } else {
    for (size_t L = 1; L <= levels.size(); ++L) {
      const Level& lv = levels[L - 1];
      cuda::hydra_input(h_, base_.embedding_table(), d_tree_, lv.chains, lv.rows, int(L), E, x_);
      run_head(int(L) - 1, lv.rows);
      top_k(lv.rows, lv.k);
      cuda::scatter_candidates(d_topk_, lv.k, lv.scatter, lv.n_children, d_tree_);
    }
  }
  cuda::copy_async(pinned_tree_, d_tree_, size_t(tree.n_nodes()) * 4);
  return cuda::end_capture();
}

}  // namespace ik::llm::spec
