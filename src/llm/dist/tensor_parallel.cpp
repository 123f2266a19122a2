#include "llm/dist/tensor_parallel.hpp"

#include <chrono>
#include <cmath>
#include <cstring>

#include "core/error.hpp"
#include "backend/cpu/quant_dot.hpp"
#include "io/gguf.hpp"

namespace ik::llm {

using Clock = std::chrono::steady_clock;

int ladder_layers_of(const io::GgufFile& f) {
  const io::GgufValue* v = f.find(kLadderLayersKey);
  if (!v) return 0;
  const int64_t k = v->as_int();
  const int64_t n_layer = f.get_int(f.get_string("general.architecture") + ".block_count");
  IK_CHECK(k >= 0 && k <= n_layer, "{} = {} is outside [0, {}]", kLadderLayersKey, k, n_layer);
  return int(k);
}

TensorParallelLlama::TensorParallelLlama(LlamaModel& full, dist::Comm& comm, TpOptions opt)
    : full_(full), comm_(comm), opt_(opt) {
  const LlamaConfig& c = full.config();
  const int P = comm.size(), r = comm.rank();
  check_same_everywhere();  // first: the checks below must then fail alike on every rank
  IK_CHECK(c.n_head % P == 0 && c.n_head_kv % P == 0,
           "tensor parallelism over {} ranks needs {} to divide the attention heads ({}) and the KV heads ({})", P, P,
           c.n_head, c.n_head_kv);
  IK_CHECK(opt.ladder_last >= 0 && opt.ladder_last <= c.n_layer, "ladder layers {} outside [0, {}]", opt.ladder_last,
           c.n_layer);
  IK_CHECK(!(opt.parallel_block && opt.ladder_last > 0), "the parallel block and ladder layers cannot be combined");
  n_head_ = c.n_head / P;
  n_kv_ = c.n_head_kv / P;
  // Hidden units split on quantization-block boundaries when the width allows (row-parallel
  // w_down then keeps whole blocks), otherwise as evenly as possible.
  ff_ = split_range(c.n_ff, P, r, backend::kQBlock);
  IK_CHECK(ff_.size() > 0, "the MLP width {} is too small for {} ranks", c.n_ff, P);
  const Range q_cols{int64_t(r) * n_head_ * c.head_dim, int64_t(r + 1) * n_head_ * c.head_dim};
  const Range kv_rows{int64_t(r) * n_kv_ * c.head_dim, int64_t(r + 1) * n_kv_ * c.head_dim};
  const WeightMode mode = full.mode();

  shards_.resize(c.n_layer);
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const LlamaLayer& L = full.layer(l);
    Shard& S = shards_[l];
    S.wq = slice_rows(L.wq, q_cols, mode);
    S.wk = slice_rows(L.wk, kv_rows, mode);
    S.wv = slice_rows(L.wv, kv_rows, mode);
    S.wo = slice_cols(L.wo, q_cols, mode);
    S.w_gate = slice_rows(L.w_gate, ff_, mode);
    S.w_up = slice_rows(L.w_up, ff_, mode);
    S.w_down = slice_cols(L.w_down, ff_, mode);
  }
  ladder_.assign(c.n_layer, false);
  for (int64_t l = c.n_layer - opt.ladder_last; l < c.n_layer; ++l) ladder_[l] = true;

  // Vocabulary slices padded to one size, so a plain all-gather collects them.
  vocab_shard_ = (c.n_vocab + P - 1) / P;
  vocab_ = {std::min<int64_t>(c.n_vocab, r * vocab_shard_), std::min<int64_t>(c.n_vocab, (r + 1) * vocab_shard_)};
  if (opt.vocab_parallel && P > 1 && vocab_.size() > 0) lm_head_ = slice_rows(full.lm_head(), vocab_, mode);
  rope_ = backend::Rope::make(c.head_dim, c.rope_base, c.rope_linear_factor, c.rope_freq_factors, c.rope_layout);
}

// Every rank must run the same model with the same options: compare a few numbers that
// differ between models (dimensions, norm weights, two embedding rows) and the options.
void TensorParallelLlama::check_same_everywhere() {
  const LlamaConfig& c = full_.config();
  auto sum = [](const std::vector<float>& v) {
    double s = 0;
    for (size_t i = 0; i < v.size(); ++i) s += v[i] * double(i % 7 + 1);
    return float(s);
  };
  std::vector<float> row(c.n_embd);
  const int32_t ends[2] = {0, int32_t(c.n_vocab - 1)};
  std::vector<float> mine = {float(c.n_layer), float(c.n_embd), float(c.n_ff), float(c.n_head), float(c.n_head_kv),
                             float(c.n_vocab), float(opt_.ladder_last), float(opt_.parallel_block),
                             float(opt_.desync), float(opt_.vocab_parallel), float(full_.mode() == WeightMode::Fast),
                             sum(full_.output_norm()), sum(full_.layer(c.n_layer - 1).ffn_norm)};
  for (int32_t t : ends) {
    full_.embed(&t, 1, row.data());
    mine.push_back(sum(row));
  }
  const int P = comm_.size();
  std::vector<float> all(mine.size() * P);
  comm_.all_gather(mine, all);
  for (int p = 1; p < P; ++p)
    IK_CHECK(std::memcmp(all.data(), all.data() + p * mine.size(), mine.size() * sizeof(float)) == 0,
             "tensor-parallel rank {} has a different model or different options than rank 0", p);
}

KVCache TensorParallelLlama::make_cache(int64_t n_ctx) const {
  return KVCache(config().n_layer, n_ctx, int64_t(n_kv_) * config().head_dim);
}

void TensorParallelLlama::progress() {
  if (in_flight_) in_flight_->test();
}

void TensorParallelLlama::wait(dist::Request& r) {
  const auto t0 = Clock::now();
  r.wait();
  wait_s_ += std::chrono::duration<double>(Clock::now() - t0).count();
}

// ---- forward ------------------------------------------------------------------------------

void TensorParallelLlama::forward(const int32_t* tokens, int64_t m, KVCache& cache, float* logits, bool all_logits) {
  const LlamaConfig& c = config();
  const int64_t d = c.n_embd;
  IK_CHECK(m > 0, "forward: no tokens");
  IK_CHECK(cache.kv_dim() == int64_t(n_kv_) * c.head_dim, "forward: the KV cache is not this rank's shard");
  IK_CHECK(cache.n_past + m <= cache.n_ctx(), "context full: {} + {} tokens exceed the context of {}", cache.n_past,
           m, cache.n_ctx());
  s_.x.resize(m * d);
  s_.y[0].resize(m * d);
  s_.y[1].resize(m * d);
  s_.pos.resize(m);
  for (int64_t i = 0; i < m; ++i) s_.pos[i] = int32_t(cache.n_past + i);
  float* x = s_.x.data();
  full_.embed(tokens, m, x);

  // Two module outputs can be in flight (y_{j-2} and y_{j-1} when module j starts); module j
  // writes buffer j % 2. reduce() starts the all-reduce, add() waits for it and adds to x.
  dist::Request req[2];
  bool pending[2] = {false, false};
  auto reduce = [&](int b) {
    req[b] = opt_.desync ? dist::Request{} : comm_.iall_reduce_sum(s_.y[b]);
    pending[b] = true;
  };
  auto add = [&](int b) {
    if (!pending[b]) return;
    wait(req[b]);
    backend::add_inplace(x, s_.y[b].data(), m * d);
    pending[b] = false;
  };

  for (int l = 0; l < int(c.n_layer); ++l) {
    if (opt_.parallel_block) {  // u' = u + AllReduce(Attn(norm_a(u)) + MLP(norm_m(u)))
      attention_partial(l, x, m, cache, s_.pos.data(), s_.y[0].data());
      s_.y_mlp.resize(m * d);
      mlp_partial(l, x, m, s_.y_mlp.data());
      backend::add_inplace(s_.y[0].data(), s_.y_mlp.data(), m * d);
      reduce(0);
      add(0);
      continue;
    }
    for (int part = 0; part < 2; ++part) {
      const int j = 2 * l + part, b = j % 2;
      // Ladder: the stream lacks only y_{j-1}, whose all-reduce runs while this module computes.
      // Standard: everything is added first.
      add(b);  // y_{j-2}
      if (!ladder_[l]) add(1 - b);
      in_flight_ = pending[1 - b] ? &req[1 - b] : nullptr;
      if (part == 0) attention_partial(l, x, m, cache, s_.pos.data(), s_.y[b].data());
      else mlp_partial(l, x, m, s_.y[b].data());
      in_flight_ = nullptr;
      reduce(b);
      if (!ladder_[l]) add(b);
    }
  }
  // Final hidden = u_{2L-1} + y_{2L-2} + y_{2L-1} (buffer 0 holds the older one).
  add(0);
  add(1);
  cache.n_past += m;

  const int64_t first = all_logits ? 0 : m - 1, rows = m - first;
  s_.xn.resize(m * d);
  backend::rms_norm(x + first * d, full_.output_norm().data(), s_.xn.data(), rows, d, c.rms_eps);
  if (!opt_.vocab_parallel || comm_.size() == 1) {
    backend::matmul(full_.lm_head(), s_.xn.data(), logits, rows);
    return;
  }
  // Vocab-parallel head: each rank's slice, padded to vocab_shard_ columns, then all-gathered.
  const int P = comm_.size();
  const int64_t V = c.n_vocab, vs = vocab_shard_;
  s_.logits_local.assign(rows * vs, 0.0f);
  if (vocab_.size() > 0) {
    std::vector<float> mine(rows * vocab_.size());
    backend::matmul(lm_head_, s_.xn.data(), mine.data(), rows);
    for (int64_t i = 0; i < rows; ++i)
      std::memcpy(s_.logits_local.data() + i * vs, mine.data() + i * vocab_.size(), vocab_.size() * sizeof(float));
  }
  s_.logits_all.resize(size_t(P) * rows * vs);
  dist::Request g = comm_.iall_gather(s_.logits_local, s_.logits_all);
  wait(g);
  for (int p = 0; p < P; ++p) {
    const int64_t v0 = std::min(V, p * vs), n = std::min(V, (p + 1) * vs) - v0;
    for (int64_t i = 0; i < rows; ++i)
      std::memcpy(logits + i * V + v0, s_.logits_all.data() + (p * rows + i) * vs, n * sizeof(float));
  }
}

void TensorParallelLlama::attention_partial(int l, const float* x, int64_t m, KVCache& cache, const int32_t* pos,
                                            float* y) {
  const LlamaConfig& c = config();
  const Shard& S = shards_[l];
  const int hd = c.head_dim;
  const int64_t qd = int64_t(n_head_) * hd, kvd = int64_t(n_kv_) * hd;
  s_.xn.resize(m * c.n_embd);
  s_.q.resize(m * qd);
  s_.attn.resize(m * qd);
  backend::rms_norm(x, full_.layer(l).attn_norm.data(), s_.xn.data(), m, c.n_embd, c.rms_eps);
  float* k = cache.k(l) + cache.n_past * kvd;
  float* v = cache.v(l) + cache.n_past * kvd;
  backend::matmul(S.wq, s_.xn.data(), s_.q.data(), m);
  backend::matmul(S.wk, s_.xn.data(), k, m);
  backend::matmul(S.wv, s_.xn.data(), v, m);
  progress();
  rope_.apply(s_.q.data(), m, n_head_, hd, pos);
  rope_.apply(k, m, n_kv_, hd, pos);
  // Local query head i is global head r*n_head_ + i; its KV head stays local (i / group).
  backend::attention(s_.q.data(), cache.k(l), cache.v(l), s_.attn.data(), m, cache.n_past, n_head_, n_kv_, hd);
  progress();
  backend::matmul(S.wo, s_.attn.data(), y, m);
}

void TensorParallelLlama::mlp_partial(int l, const float* x, int64_t m, float* y) {
  const LlamaConfig& c = config();
  const Shard& S = shards_[l];
  const int64_t ff = ff_.size();
  s_.xn.resize(m * c.n_embd);
  s_.gate.resize(m * ff);
  s_.up.resize(m * ff);
  backend::rms_norm(x, full_.layer(l).ffn_norm.data(), s_.xn.data(), m, c.n_embd, c.rms_eps);
  backend::matmul(S.w_gate, s_.xn.data(), s_.gate.data(), m);
  progress();
  backend::matmul(S.w_up, s_.xn.data(), s_.up.data(), m);
  backend::silu_mul(s_.gate.data(), s_.up.data(), s_.gate.data(), m * ff);
  progress();
  backend::matmul(S.w_down, s_.gate.data(), y, m);
}

// ---- conversion ---------------------------------------------------------------------------

void convert_to_ladder(const std::string& in_path, const std::string& out_path, int last_k) {
  IK_CHECK(in_path != out_path, "convert: the output must be a different file than the input");
  const io::GgufFile f = io::GgufFile::open(in_path);
  const std::string arch = f.get_string("general.architecture");
  const int64_t n_layer = f.get_int(arch + ".block_count");
  IK_CHECK(last_k >= 0 && last_k <= n_layer, "--ladder-last {} is outside [0, {}] (the model has {} layers)", last_k,
           n_layer, n_layer);
  io::GgufWriter w;
  w.copy_metadata_from(f);
  w.set_u32(kLadderLayersKey, uint32_t(last_k));
  for (const auto& t : f.tensors()) w.add_tensor(t.name, t.shape, t.type, t.data, t.nbytes);
  w.write(out_path);
}

}  // namespace ik::llm
