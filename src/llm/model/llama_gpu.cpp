#include "llm/model/llama_gpu.hpp"

#include <algorithm>
#include <numeric>

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
  IK_CHECK(opt.n_seq >= 1 && opt.n_ctx >= 1 && opt.max_rows >= 1, "GPU options out of range");
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
  const int64_t Vl = vocab_local_, V_split = Vl < V ? V : 0;  // gather buffers when split
  rows_cap_ = std::max(opt_.max_rows, opt_.n_seq);
  const int64_t R = rows_cap_;
  const size_t head = c.tied_embeddings ? 0 : size_t(Vl * E) * sizeof(bf16);
  const size_t weights = size_t(V * E) * sizeof(bf16) + head + c.n_layer * layer_bytes;
  const size_t kv = kv_bytes_per_position() * opt_.n_seq * opt_.n_ctx;
  const size_t scratch_floats = cuda::attention_decode_scratch_floats(int(R), c.n_head, c.head_dim);
  const size_t acts = size_t(R) * (3 * E + QKV + 2 * F + V + Vl + V_split) * sizeof(float) +
                      size_t(R) * (std::max(E, Q) + Q + F) * 2 + scratch_floats * sizeof(float) + size_t(R) * R;
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
  logits_ = static_cast<float*>(get(R * V * sizeof(float), "logits"));
  for (auto& y : y_) y = static_cast<float*>(get(R * E * sizeof(float), "activations"));
  if (Vl < V) {
    logits_part_ = static_cast<float*>(get(R * Vl * sizeof(float), "logits"));
    logits_gather_ = static_cast<float*>(get(R * V * sizeof(float), "logits"));
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
  d_mask_ = static_cast<uint8_t*>(get(size_t(R) * R, "the tree mask"));
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

// Passes longer than this many rows dequantize a lookup-table matrix into scratch and use
// cuBLAS: the fused kernel reads the codes once per 32 rows.
constexpr int kLutFusedMaxRows = 64;

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
  if (!w.is_lut()) return cuda::matmul(x, w.dense, y, m, w.n, w.k, accumulate, ldy);
  if (m <= kLutFusedMaxRows) return cuda::lut_matmul(x, true, w.lut, y, ldy, m, accumulate);
  cuda::lut_dequantize(w.lut, lut_scratch_);
  cuda::matmul(x, lut_scratch_, y, m, w.n, w.k, accumulate, ldy);
}

// Fused parts side by side in the output columns (q | k | v, gate | up).
void GpuLlama::project(const std::vector<Linear>& parts, const bf16* x, float* y, int m) {
  int ldy = 0;
  for (const Linear& w : parts) ldy += w.n;
  int col = 0;
  for (const Linear& w : parts) {
    linear(w, x, y + col, ldy, m, false);
    col += w.n;
  }
}

// project() of rms_norm(x_) * norm. Where every part takes the decode kernel (a few rows, small
// dense matrices) the kernel normalises x_ itself: no separate norm launch.
void GpuLlama::normed_project(const std::vector<Linear>& parts, const float* norm, float* y, int m) {
  const int E = int(shard_.n_embd);
  bool fused = true;
  for (const Linear& w : parts) fused = fused && !w.is_lut() && cuda::matvec_rms_norm_fits(x_, norm, w.dense, m, w.n, w.k);
  if (!fused) {
    cuda::rms_norm(x_, norm, xn_, m, E, shard_.rms_eps);
    return project(parts, xn_, y, m);
  }
  int ldy = 0;
  for (const Linear& w : parts) ldy += w.n;
  int col = 0;
  for (const Linear& w : parts) {
    cuda::matvec_rms_norm(x_, norm, shard_.rms_eps, w.dense, y + col, m, w.n, w.k, false, ldy);
    col += w.n;
  }
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
                                        inv_freq_, half);
    }
    return;
  }
  store_rows_kv(L, m);
  const size_t seq_offset = size_t(seq) * opt_.n_ctx * c.kv_dim();
  cuda::attention_prefill(qkv_, QKV, L.k + seq_offset, L.v + seq_offset, attn_, m, int(n_past_[seq]), c.n_head,
                          c.n_head_kv, c.head_dim, mask, 0, capturing_tree_ ? d_n_past_ + seq : nullptr, attn_scratch_);
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
  IK_CHECK(!tree_mask || m <= rows_cap_, "a tree of {} nodes exceeds the {} rows of one GPU pass", m, rows_cap_);
  IK_CHECK(!all_logits || m <= rows_cap_ || !logits, "all logits of {} rows: run at most {} rows per call", m, rows_cap_);
  check_tokens(tokens, m, c.n_vocab);
  for (int64_t done = 0; done < m;) {
    const int rows = int(std::min<int64_t>(rows_cap_, m - done));
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
// run of consecutive slots, so a full or contiguous batch costs what 0..n-1 does.
void GpuLlama::capture_decode(const std::vector<int32_t>& slots) {
  const LlamaConfig& c = cfg_;
  const int n = int(slots.size());
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
  decode_graphs_[slots] = cuda::end_capture();
}

void GpuLlama::decode(const int32_t* tokens, int n, int32_t* next) {
  IK_CHECK(n >= 1 && n <= opt_.n_seq, "decode: {} sequences, {} slots", n, opt_.n_seq);
  std::vector<int32_t> slots(n);
  std::iota(slots.begin(), slots.end(), 0);
  decode_slots(slots.data(), tokens, n, next);
}

// Graphs kept at most (one per slot list seen; 2^n_seq - 1 lists exist): beyond, start over.
constexpr size_t kMaxDecodeGraphs = 64;

void GpuLlama::decode_slots(const int32_t* slots, const int32_t* tokens, int n, int32_t* next) {
  IK_CHECK(n >= 1 && n <= opt_.n_seq, "decode: {} sequences, {} slots", n, opt_.n_seq);
  check_tokens(tokens, n, cfg_.n_vocab);
  std::vector<int32_t> key(slots, slots + n);
  std::vector<bool> seen(opt_.n_seq, false);
  for (int32_t s : key) {
    IK_CHECK(s >= 0 && s < opt_.n_seq && !seen[s], "decode: slot {} out of range ({} slots) or repeated", s, opt_.n_seq);
    seen[s] = true;
    IK_CHECK(n_past_[s] < opt_.n_ctx, "context full for sequence {} ({} positions)", s, opt_.n_ctx);
  }
  auto graph = decode_graphs_.find(key);
  if (graph == decode_graphs_.end()) {
    if (decode_graphs_.size() >= kMaxDecodeGraphs) {
      for (auto& [list, g] : decode_graphs_) cuda::destroy(g);
      decode_graphs_.clear();
    }
    capture_decode(key);
    graph = decode_graphs_.find(key);
  }
  std::copy(tokens, tokens + n, pinned_tokens_);
  cuda::launch(graph->second);
  cuda::sync();
  std::copy(pinned_next_, pinned_next_ + n, next);
  for (int32_t s : key) ++n_past_[s];
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
