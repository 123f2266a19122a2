// GpuLlama's construction: options and device checks, device memory, and the weights uploaded
// from a model or made at random (the forward pass is in llama_gpu.cpp).
#include "llm/model/llama_gpu.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "core/fp16.hpp"
#include "backend/cpu/lut_matmul.hpp"
#include "llm/quant/lut_format.hpp"
#ifdef IK_HAVE_NCCL
#include "dist/comm_nccl.hpp"
#endif

namespace ik::llm {

namespace cuda = backend::cuda;
using cuda::bf16;

GpuLlama::GpuLlama(const LlamaConfig& cfg, const GpuOptions& opt) : cfg_(cfg), opt_(opt) {
  IK_CHECK(opt.n_seq >= 1 && opt.n_ctx >= 1 && opt.max_rows >= 1 && opt.logit_rows >= 1, "GPU options out of range");
  IK_CHECK(cfg.head_dim == 64 || cfg.head_dim == 128, "the CUDA backend supports head dimensions 64 and 128, not {}",
           cfg.head_dim);
  IK_CHECK(!(opt.parallel_block && opt.ladder_last > 0), "the parallel block and Ladder Residual do not combine");
  IK_CHECK(opt.ladder_last >= 0 && opt.ladder_last <= cfg.n_layer, "ladder layers {} outside [0, {}]", opt.ladder_last,
           cfg.n_layer);
  IK_CHECK(!opt.context_parallel || (opt.comm && !opt.ladder_last && !opt.parallel_block && !opt.desync),
           "context parallelism needs a communicator and the standard block");
  shard_ = cfg;
  int ordinal = opt.device;
  if (opt.comm) {
#ifdef IK_HAVE_NCCL
    ordinal = opt.comm->device();
    if (opt.context_parallel) cp_rank_ = opt.comm->rank(), cp_size_ = opt.comm->size();
    else tp_rank_ = opt.comm->rank(), tp_size_ = opt.comm->size();
#else
    fail("tensor parallelism on GPUs needs NCCL, which this build lacks");
#endif
  }
  const int P = tp_size_;
  IK_CHECK(cfg.n_head % P == 0 && cfg.n_head_kv % P == 0 && cfg.n_ff % P == 0,
           "tensor parallelism over {} GPUs needs {} to divide the query heads ({}), KV heads ({}) and MLP width ({})", P,
           P, cfg.n_head, cfg.n_head_kv, cfg.n_ff);
  shard_.n_head /= P, shard_.n_head_kv /= P, shard_.n_ff /= P;
  vocab_local_ = P > 1 && cfg.n_vocab % P == 0 ? cfg.n_vocab / P : cfg.n_vocab;
  dev_ = cuda::init(ordinal);
  n_past_.assign(opt.n_seq, 0);
  params_.assign(opt.n_seq, cuda::SamplingParams{});
}

GpuLlama::~GpuLlama() {
  for (auto& [n, g] : decode_graphs_) cuda::destroy(g);
  for (int b = 0; b < 2; ++b) cuda::destroy_event(ready_[b]), cuda::destroy_event(reduced_[b]);
  for (auto& m : luts_) cuda::free_lut(m);
  for (auto& [mask, g] : tree_graphs_) cuda::destroy(g);
  cuda::release_pinned(pinned_tokens_);
  cuda::release_pinned(pinned_next_);
  cuda::release_pinned(pinned_tree_);
}

size_t GpuLlama::kv_bytes_per_position() const { return size_t(shard_.n_layer) * 2 * shard_.kv_dim() * sizeof(bf16); }

// ---- memory ---------------------------------------------------------------------------------

void GpuLlama::allocate(size_t layer_bytes) {
  const LlamaConfig& c = shard_;
  const int64_t E = c.n_embd, F = c.n_ff, V = c.n_vocab, Q = c.q_dim(), KV = c.kv_dim(), QKV = Q + 2 * KV;
  const int64_t Vl = vocab_local_, V_split = Vl < V ? Vl + V : 0;  // the part and gather buffers when split
  rows_cap_ = std::max(opt_.max_rows, opt_.n_seq);
  logits_cap_ = std::max(std::min(opt_.logit_rows, rows_cap_), opt_.n_seq);
  const int64_t R = rows_cap_, L = logits_cap_;
  const size_t head = c.tied_embeddings ? 0 : size_t(Vl * E) * sizeof(bf16);
  const size_t weights = size_t(V * E) * sizeof(bf16) + head + c.n_layer * layer_bytes;
  const size_t kv = kv_bytes_per_position() * opt_.n_seq * opt_.n_ctx;
  const size_t scratch_floats = cuda::attention_decode_scratch_floats(int(L), c.n_head, c.head_dim);
  const size_t acts = size_t(R) * (3 * E + QKV + 2 * F) * sizeof(float) + size_t(L) * (V + V_split) * sizeof(float) +
                      size_t(R) * (std::max(E, Q) + Q + F) * 2 + scratch_floats * sizeof(float) + size_t(L) * L;
  const size_t need = weights + kv + acts;
  if (need > dev_.free_bytes)
    fail("out of device memory on {}: the model needs {} MiB (weights {} MiB, KV cache {} MiB for {} x {} positions, "
         "activations {} MiB), {} MiB free",
         dev_.name, need >> 20, weights >> 20, kv >> 20, opt_.n_seq, opt_.n_ctx, acts >> 20, dev_.free_bytes >> 20);

  auto get = [&](size_t bytes, const char* what) { return device_alloc(bytes, what); };
  embd_ = static_cast<bf16*>(get(V * E * sizeof(bf16), "the token embedding"));
  // This rank's vocabulary rows [rank * Vl, (rank + 1) * Vl) of the head (all of it when not split).
  lm_head_ = c.tied_embeddings ? embd_ + size_t(tp_rank_) * (Vl < V ? Vl : 0) * E
                               : static_cast<bf16*>(get(Vl * E * sizeof(bf16), "the LM head"));
  output_norm_ = static_cast<float*>(get(E * sizeof(float), "the output norm"));
  inv_freq_ = static_cast<float*>(get(c.head_dim / 2 * sizeof(float), "rotary frequencies"));
  layers_.resize(c.n_layer);
  const size_t cache = size_t(opt_.n_seq) * opt_.n_ctx * KV * sizeof(bf16);
  for (auto& L : layers_) {
    L.attn_norm = static_cast<float*>(get(E * sizeof(float), "norm weights"));
    L.ffn_norm = static_cast<float*>(get(E * sizeof(float), "norm weights"));
    L.k = static_cast<bf16*>(get(cache, "the KV cache"));
    L.v = static_cast<bf16*>(get(cache, "the KV cache"));
  }

  x_ = static_cast<float*>(get(R * E * sizeof(float), "activations"));
  qkv_ = static_cast<float*>(get(R * QKV * sizeof(float), "activations"));
  gu_ = static_cast<float*>(get(R * 2 * F * sizeof(float), "activations"));
  logits_ = static_cast<float*>(get(L * V * sizeof(float), "logits"));
  for (auto& y : y_) y = static_cast<float*>(get(R * E * sizeof(float), "activations"));
  if (Vl < V) {
    logits_part_ = static_cast<float*>(get(L * Vl * sizeof(float), "logits"));
    logits_gather_ = static_cast<float*>(get(L * V * sizeof(float), "logits"));
  }
  for (int b = 0; b < 2; ++b) ready_[b] = cuda::create_event(), reduced_[b] = cuda::create_event();
  if (opt_.context_parallel) {
    const size_t part = size_t(Q + c.n_head);
    cp_part_ = static_cast<float*>(get(part * sizeof(float), "attention partials"));
    cp_acc_ = static_cast<float*>(get(part * sizeof(float), "attention partials"));
    cp_gather_ = static_cast<float*>(get(cp_size_ * part * sizeof(float), "attention partials"));
  }
  attn_scratch_ = static_cast<float*>(get(scratch_floats * sizeof(float), "attention scratch"));
  xn_ = static_cast<bf16*>(get(R * std::max(E, Q) * sizeof(bf16), "activations"));
  attn_ = static_cast<bf16*>(get(R * Q * sizeof(bf16), "activations"));
  h_ = static_cast<bf16*>(get(R * F * sizeof(bf16), "activations"));
  // Token ids, positions, sequence ids and cache rows side by side: one upload per forward chunk.
  d_tokens_ = static_cast<int32_t*>(get(4 * R * 4, "token ids and positions"));
  d_pos_ = d_tokens_ + R;
  d_seq_ = d_tokens_ + 2 * R;
  d_row_ = d_tokens_ + 3 * R;
  d_next_ = static_cast<int32_t*>(get(R * 4, "sampled tokens"));
  d_n_past_ = static_cast<int32_t*>(get(opt_.n_seq * 4, "sequence lengths"));
  d_mask_ = static_cast<uint8_t*>(get(size_t(L) * L, "the tree mask"));
  d_params_ = static_cast<cuda::SamplingParams*>(get(opt_.n_seq * sizeof(cuda::SamplingParams), "sampling parameters"));
  pinned_tokens_ = static_cast<int32_t*>(cuda::alloc_pinned(R * 4));
  pinned_next_ = static_cast<int32_t*>(cuda::alloc_pinned(R * 4));
  std::vector<int32_t> zeros(opt_.n_seq, 0);
  cuda::upload(d_n_past_, zeros.data(), zeros.size() * 4);
  cuda::upload(d_params_, params_.data(), params_.size() * sizeof(cuda::SamplingParams));
  const auto rope = backend::Rope::make(c.head_dim, c.rope_base, c.rope_linear_factor, c.rope_freq_factors, c.rope_layout);
  cuda::upload(inv_freq_, rope.inv_freq.data(), rope.inv_freq.size() * sizeof(float));
}

// ---- weights --------------------------------------------------------------------------------

void* GpuLlama::device_alloc(size_t bytes, const char* what) { return pool_.allocate(bytes, what); }

GpuLlama::Linear GpuLlama::dense_linear(int n, int k) {
  Linear w;
  w.n = n, w.k = k;
  w.dense = static_cast<bf16*>(device_alloc(size_t(n) * k * sizeof(bf16), "weights"));
  return w;
}

GpuLlama::Linear GpuLlama::lut_linear(cuda::LutMatrix m) {
  luts_.push_back(m);
  Linear w;
  w.n = m.n, w.k = m.k, w.lut = m;
  return w;
}

void GpuLlama::finish_weights() {
  weight_bytes_ = size_t(vocab_local_) * cfg_.n_embd * sizeof(bf16);  // the LM head (this rank's rows)
  size_t scratch = 0;
  for (const Layer& L : layers_) {
    for (const auto* parts : {&L.qkv, &L.gate_up})
      for (const Linear& w : *parts) weight_bytes_ += w.bytes(), scratch = std::max(scratch, w.is_lut() ? size_t(w.n) * w.k : 0);
    for (const Linear* w : {&L.o, &L.down})
      weight_bytes_ += w->bytes(), scratch = std::max(scratch, w->is_lut() ? size_t(w->n) * w->k : 0);
  }
  if (scratch) lut_scratch_ = static_cast<bf16*>(device_alloc(scratch * sizeof(bf16), "the dequantization scratch"));
}

// Rows of a stored matrix, dequantized and rounded to bf16, into dst (row-major).
static void to_bf16_rows(const backend::WeightMatrix& w, bf16* dst) {
#pragma omp parallel
  {
    std::vector<float> row(w.cols);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < w.rows; ++r) {
      backend::weight_row(w, r, row.data());
      for (int64_t i = 0; i < w.cols; ++i) dst[r * w.cols + i] = f32_to_bf16(row[i]);
    }
  }
}

// Several matrices stacked by rows into one device matrix (fused projections).
static void upload_stacked(bf16* dst, std::initializer_list<const backend::WeightMatrix*> parts) {
  size_t total = 0;
  for (const auto* w : parts) total += size_t(w->rows) * w->cols;
  std::vector<bf16> host(total);
  size_t off = 0;
  for (const auto* w : parts) {
    to_bf16_rows(*w, host.data() + off);
    off += size_t(w->rows) * w->cols;
  }
  cuda::upload(dst, host.data(), total * sizeof(bf16));
}

// The CPU form of lookup-table weights (packed bit streams, f32 scales) in the GPU layout,
// several matrices stacked by rows (they share bits, group and table).
static cuda::LutPacked to_gpu_layout(const std::vector<const backend::LutWeights*>& parts) {
  const backend::LutWeights& first = *parts.front();
  int64_t rows = 0;
  for (const auto* w : parts) rows += w->rows;
  std::vector<uint8_t> codes(size_t(rows) * first.cols);
  std::vector<uint16_t> scales;
  int64_t r0 = 0;
  for (const auto* w : parts) {
    for (int64_t r = 0; r < w->rows; ++r)
      for (int64_t i = 0; i < w->cols; ++i)
        codes[size_t(r0 + r) * w->cols + i] = uint8_t(backend::lut_code(w->row_codes(r), w->bits, i));
    for (float v : w->scales) scales.push_back(f32_to_fp16(v));  // stored as f16: exact
    r0 += w->rows;
  }
  return cuda::pack_lut(codes.data(), scales.data(), first.table.data(), rows, first.cols, first.bits, first.group);
}

std::unique_ptr<GpuLlama> GpuLlama::upload(const LlamaModel& model, const GpuOptions& opt) {
  std::unique_ptr<GpuLlama> g(new GpuLlama(model.config(), opt));
  IK_CHECK(g->tp_size_ == 1, "tensor parallelism on GPUs runs on random weights for now (tp-bench), not model files");
  const LlamaConfig& c = g->cfg_;
  auto& m = const_cast<LlamaModel&>(model);  // layer() is non-const for pruning; read only here
  // Block matrices keep their codes when all of a fused group are lookup-table weights; the
  // group becomes one matrix when the parts share bits, group size and table and their rows
  // fill whole row blocks (q | k | v, gate | up: one launch instead of several).
  auto all_lut = [](std::initializer_list<const backend::WeightMatrix*> ws) {
    for (const auto* w : ws)
      if (!w->lut || w->cols % 32) return false;
    return true;
  };
  auto stackable = [](std::initializer_list<const backend::WeightMatrix*> ws) {
    const auto& a = *ws.begin()[0]->lut;
    for (const auto* w : ws)
      if (w->lut->bits != a.bits || w->lut->group != a.group || w->lut->table != a.table || w->rows % 16) return false;
    return true;
  };
  size_t layer_bytes = 0;
  {
    const LlamaLayer& L = m.layer(0);
    for (auto group : {std::initializer_list<const backend::WeightMatrix*>{&L.wq, &L.wk, &L.wv},
                       std::initializer_list<const backend::WeightMatrix*>{&L.wo},
                       std::initializer_list<const backend::WeightMatrix*>{&L.w_gate, &L.w_up},
                       std::initializer_list<const backend::WeightMatrix*>{&L.w_down}})
      for (const auto* w : group) layer_bytes += all_lut(group) ? cuda::lut_packed_bytes(w->rows, w->cols, w->lut->bits, w->lut->group) : size_t(w->rows) * w->cols * 2;
  }
  g->allocate(layer_bytes);
  upload_stacked(g->embd_, {&model.token_embd()});
  if (!c.tied_embeddings) upload_stacked(g->lm_head_, {&model.lm_head()});
  cuda::upload(g->output_norm_, model.output_norm().data(), c.n_embd * sizeof(float));
  auto fused = [&](std::initializer_list<const backend::WeightMatrix*> ws) {
    std::vector<Linear> parts;
    if (all_lut(ws)) {
      g->lut_bits_ = ws.begin()[0]->lut->bits;
      if (stackable(ws)) {
        std::vector<const backend::LutWeights*> luts;
        for (const auto* w : ws) luts.push_back(w->lut.get());
        return std::vector<Linear>{g->lut_linear(cuda::upload_lut(to_gpu_layout(luts)))};
      }
      for (const auto* w : ws) parts.push_back(g->lut_linear(cuda::upload_lut(to_gpu_layout({w->lut.get()}))));
      return parts;
    }
    int rows = 0;
    for (const auto* w : ws) rows += int(w->rows);
    parts.push_back(g->dense_linear(rows, int(ws.begin()[0]->cols)));
    upload_stacked(parts[0].dense, ws);
    return parts;
  };
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const LlamaLayer& L = m.layer(l);
    Layer& D = g->layers_[l];
    cuda::upload(D.attn_norm, L.attn_norm.data(), c.n_embd * sizeof(float));
    cuda::upload(D.ffn_norm, L.ffn_norm.data(), c.n_embd * sizeof(float));
    D.qkv = fused({&L.wq, &L.wk, &L.wv});
    D.o = fused({&L.wo})[0];
    D.gate_up = fused({&L.w_gate, &L.w_up});
    D.down = fused({&L.w_down})[0];
  }
  g->finish_weights();
  return g;
}

std::unique_ptr<GpuLlama> GpuLlama::random(const LlamaConfig& cfg, uint64_t seed, const GpuOptions& opt, int lut_bits) {
  IK_CHECK(lut_bits == 0 || lut_bits == 2 || lut_bits == 3 || lut_bits == 4,
           "random weights: {} bits unsupported (0 for bf16, or 2, 3, 4)", lut_bits);
  std::unique_ptr<GpuLlama> g(new GpuLlama(cfg, opt));
  IK_CHECK(lut_bits == 0 || g->tp_size_ == 1, "random lookup-table weights run on one GPU (no tensor parallelism)");
  const LlamaConfig& c = g->cfg_;
  const int E = int(c.n_embd), F = int(c.n_ff), Q = int(c.q_dim()), KV = int(c.kv_dim());
  const int r = g->tp_rank_, Fl = int(g->shard_.n_ff), Ql = int(g->shard_.q_dim()), KVl = int(g->shard_.kv_dim());
  const int64_t V = c.n_vocab, Vl = g->vocab_local_;
  const int group = 128;
  auto bytes = [&](int n, int k) {
    return lut_bits ? cuda::lut_packed_bytes(n, k, lut_bits, group) : size_t(n) * k * 2;
  };
  g->allocate(bytes(Ql + 2 * KVl, E) + bytes(E, Ql) + bytes(2 * Fl, E) + bytes(E, Fl));
  g->lut_bits_ = lut_bits;
  uint64_t stream = seed * 1000003;
  const auto table = lut_bits ? quant::nf_table(lut_bits) : std::vector<float>{};
  // Each full matrix (n x k, about uniform(+-sqrt(3/k))) has its own seed; a rank stores the
  // blocks of it that its shard holds, so every P computes the same model.
  struct Block {
    int64_t row0, rows, col0, cols;
  };
  auto make = [&](int n, int k, std::initializer_list<Block> blocks) {
    const float scale = float(std::sqrt(3.0 / double(k)));
    ++stream;
    if (lut_bits) return g->lut_linear(cuda::random_lut(n, k, lut_bits, group, table, stream, scale));
    int rows = 0;
    for (const Block& b : blocks) rows += int(b.rows);
    Linear w = g->dense_linear(rows, int(blocks.begin()->cols));
    size_t at = 0;
    for (const Block& b : blocks) {
      cuda::fill_uniform_bf16_block(w.dense + at, int(b.rows), int(b.cols), stream, scale, b.row0, b.col0, k);
      at += size_t(b.rows) * b.cols;
    }
    return w;
  };
  cuda::fill_uniform_bf16(g->embd_, size_t(V) * E, ++stream, 1.0f);
  if (!c.tied_embeddings) {
    ++stream;
    cuda::fill_uniform_bf16_block(g->lm_head_, int(Vl), E, stream, float(std::sqrt(3.0 / E)), r * (Vl < V ? Vl : 0), 0, E);
  }
  cuda::fill_f32(g->output_norm_, E, 1.0f);
  for (Layer& L : g->layers_) {
    cuda::fill_f32(L.attn_norm, E, 1.0f);
    cuda::fill_f32(L.ffn_norm, E, 1.0f);
    // Fused as upload() stacks shared-table matrices: q | k | v and gate | up, each part's rows
    // of this rank; o and down: this rank's input columns.
    L.qkv = {make(Q + 2 * KV, E, {{int64_t(r) * Ql, Ql, 0, E}, {Q + int64_t(r) * KVl, KVl, 0, E},
                                  {Q + KV + int64_t(r) * KVl, KVl, 0, E}})};
    L.gate_up = {make(2 * F, E, {{int64_t(r) * Fl, Fl, 0, E}, {F + int64_t(r) * Fl, Fl, 0, E}})};
    L.o = make(E, Q, {{0, E, int64_t(r) * Ql, Ql}});
    L.down = make(E, F, {{0, E, int64_t(r) * Fl, Fl}});
  }
  g->finish_weights();
  cuda::sync();
  return g;
}

}  // namespace ik::llm
