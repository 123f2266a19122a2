// Context-parallel Llama: striped prefill and distributed-KV decode (see the header).
#include "llm/dist/context_parallel.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <limits>

#include "backend/cpu/simd.hpp"
#include "core/error.hpp"
#include "dist/cp_attention.hpp"

namespace ik::llm {

using dist::Layout;

static double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

static double process_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

ContextParallelLlama::ContextParallelLlama(LlamaModel& model, dist::Comm& comm, int64_t capacity)
    : model_(model),
      comm_(comm),
      P_(comm.size()),
      me_(comm.rank()),
      cache_(model.config().n_layer, capacity, model.config().kv_dim()) {
  const LlamaConfig& c = model.config();
  IK_CHECK(capacity > 0, "KV capacity per rank must be positive, got {}", capacity);
  IK_CHECK(c.n_vocab < (1 << 24), "vocabulary of {} too large to broadcast token ids as floats", c.n_vocab);
  rope_ = backend::Rope::make(c.head_dim, c.rope_base, c.rope_linear_factor, c.rope_freq_factors, c.rope_layout);
}

void ContextParallelLlama::mlp(const LlamaLayer& L, float* x, int64_t m) {
  const LlamaConfig& c = model_.config();
  gate_.resize(m * c.n_ff);
  up_.resize(m * c.n_ff);
  backend::rms_norm(x, L.ffn_norm.data(), xn_.data(), m, c.n_embd, c.rms_eps);
  backend::matmul(L.w_gate, xn_.data(), gate_.data(), m);
  backend::matmul(L.w_up, xn_.data(), up_.data(), m);
  backend::silu_mul(gate_.data(), up_.data(), gate_.data(), m * c.n_ff);
  backend::matmul(L.w_down, gate_.data(), hid_.data(), m);
  backend::add_inplace(x, hid_.data(), m * c.n_embd);
}

void ContextParallelLlama::final_logits(const float* x, int64_t m, float* logits) {
  const LlamaConfig& c = model_.config();
  xn_.resize(m * c.n_embd);
  backend::rms_norm(x, model_.output_norm().data(), xn_.data(), m, c.n_embd, c.rms_eps);
  backend::matmul(model_.lm_head(), xn_.data(), logits, m);
}

// ---- prefill: striped attention over the ring -------------------------------------------------

void ContextParallelLlama::prefill(const std::vector<int32_t>& tokens, float* logits, float* all_logits) {
  const auto t0 = std::chrono::steady_clock::now();
  const double cpu0 = process_cpu_seconds();
  const LlamaConfig& c = model_.config();
  const int64_t T = int64_t(tokens.size());
  IK_CHECK(T >= P_, "context parallelism over {} ranks needs a prompt of at least {} tokens, got {}", P_, P_, T);
  const int64_t n = dist::shard_len(Layout::Striped, P_, T);  // slots per rank, the last may be padding
  IK_CHECK(n <= cache_.n_ctx(),
           "a prompt of {} tokens puts {} KV rows on each of the {} ranks, more than the capacity of {} per rank", T,
           n, P_, cache_.n_ctx());
  reset();
  stats_ = {};

  // This rank's tokens r, r+P, ... and their positions (padding slots come last: skipped).
  std::vector<int32_t> mine, pos;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t g = dist::global_index(Layout::Striped, P_, T, me_, i);
    if (g < T) mine.push_back(tokens[g]), pos.push_back(int32_t(g));
  }
  const int64_t m = int64_t(mine.size());
  const int64_t E = c.n_embd, qd = c.q_dim(), kvd = c.kv_dim();
  const dist::AttnShape shape{c.n_head, c.n_head_kv, c.head_dim};
  x_.resize(m * E);
  xn_.resize(m * E);
  hid_.resize(m * E);
  q_.assign(n * qd, 0.0f);
  attn_.assign(n * qd, 0.0f);

  model_.embed(mine.data(), m, x_.data());
  for (int l = 0; l < int(c.n_layer); ++l) {
    const LlamaLayer& L = model_.layer(l);
    // Q for this rank's rows; K and V straight into this rank's cache rows 0..m-1.
    float* k = cache_.k(l);
    float* v = cache_.v(l);
    backend::rms_norm(x_.data(), L.attn_norm.data(), xn_.data(), m, E, c.rms_eps);
    backend::matmul(L.wq, xn_.data(), q_.data(), m);
    backend::matmul(L.wk, xn_.data(), k, m);
    backend::matmul(L.wv, xn_.data(), v, m);
    rope_.apply(q_.data(), m, c.n_head, c.head_dim, pos.data());
    rope_.apply(k, m, c.n_head_kv, c.head_dim, pos.data());
    // Padding slots (rows m..n-1) are never visible as keys; cp_attention skips them as queries.
    dist::CpStats st;
    dist::cp_attention(comm_, Layout::Striped, T, shape, std::span<const float>(q_.data(), n * qd),
                       std::span<const float>(k, n * kvd), std::span<const float>(v, n * kvd),
                       std::span<float>(attn_.data(), n * qd), &st);
    stats_.attn_cpu_s += st.compute_cpu_s;
    stats_.attn_wall_s += st.compute_s;
    stats_.attn_wait_s += st.wait_s;
    backend::matmul(L.wo, attn_.data(), hid_.data(), m);
    backend::add_inplace(x_.data(), hid_.data(), m * E);
    mlp(L, x_.data(), m);
  }
  cache_.n_past = m;
  n_past_ = T;

  if (all_logits) {  // every rank's rows, then un-permute into prompt order
    std::vector<float> local(n * c.n_vocab, 0.0f);
    final_logits(x_.data(), m, local.data());
    const auto full = dist::gather_rows(comm_, Layout::Striped, T, local, c.n_vocab);
    std::copy(full.begin(), full.end(), all_logits);
  }
  if (logits) {  // the last token's rank computes them and broadcasts
    const int owner = int((T - 1) % P_);
    if (me_ == owner) final_logits(x_.data() + (m - 1) * E, 1, logits);
    comm_.broadcast(std::span<float>(logits, c.n_vocab), owner);
  }
  stats_.rows = m;
  stats_.total_s = seconds_since(t0);
  stats_.cpu_s = process_cpu_seconds() - cpu0;
}

// ---- decode: partial softmax on every rank, log-sum-exp merge ---------------------------------

// Unnormalised attention of one query over `n_keys` cache rows, per head: [max, sum, numerator].
static void partial_attention(const float* q, const float* k, const float* v, int64_t n_keys, const LlamaConfig& c,
                              float* part) {
  const int hd = c.head_dim, group = c.n_head / c.n_head_kv;
  const int64_t kvd = c.kv_dim();
  const float scale = 1.0f / std::sqrt(float(hd));
  std::vector<float> scores(std::max<int64_t>(n_keys, 1));
  for (int h = 0; h < c.n_head; ++h) {
    const int g = h / group;
    float* out = part + h * (hd + 2);
    float mx = -std::numeric_limits<float>::infinity(), sum = 0;
    for (int64_t j = 0; j < n_keys; ++j) {
      scores[j] = backend::dot_f32(q + h * hd, k + j * kvd + g * hd, hd) * scale;
      mx = std::max(mx, scores[j]);
    }
    std::fill(out + 2, out + 2 + hd, 0.0f);
    for (int64_t j = 0; j < n_keys; ++j) {
      const float w = std::exp(scores[j] - mx);
      sum += w;
      backend::axpy_f32(w, v + j * kvd + g * hd, out + 2, hd);
    }
    out[0] = mx, out[1] = sum;
  }
}

// Merge P partials [P][n_head][hd+2] into the attention output [n_head * hd].
static void merge_partials(const float* parts, int P, const LlamaConfig& c, float* out) {
  const int hd = c.head_dim;
  const int64_t stride = int64_t(c.n_head) * (hd + 2);
  for (int h = 0; h < c.n_head; ++h) {
    float mx = -std::numeric_limits<float>::infinity();
    for (int r = 0; r < P; ++r) mx = std::max(mx, parts[r * stride + h * (hd + 2)]);
    float* o = out + h * hd;
    std::fill(o, o + hd, 0.0f);
    float sum = 0;
    for (int r = 0; r < P; ++r) {
      const float* p = parts + r * stride + h * (hd + 2);
      if (p[1] == 0) continue;  // a rank with no keys yet
      const float w = std::exp(p[0] - mx);
      sum += w * p[1];
      backend::axpy_f32(w, p + 2, o, hd);
    }
    for (int d = 0; d < hd; ++d) o[d] /= sum;
  }
}

void ContextParallelLlama::decode(int32_t token, float* logits) {
  const LlamaConfig& c = model_.config();
  const int64_t t = n_past_;
  IK_CHECK(t > 0, "decode before prefill");
  IK_CHECK(t < max_tokens(), "context full: {} tokens fill {} ranks of {} KV rows", t, P_, cache_.n_ctx());
  const int owner = int(t % P_);
  const int32_t pos = int32_t(t);
  const int64_t E = c.n_embd, qd = c.q_dim(), kvd = c.kv_dim();
  const int64_t part_len = int64_t(c.n_head) * (c.head_dim + 2);
  x_.resize(E), xn_.resize(E), hid_.resize(E), q_.resize(qd), attn_.resize(qd), k_.resize(kvd), v_.resize(kvd);
  part_.resize(part_len);
  parts_.resize(P_ * part_len);

  model_.embed(&token, 1, x_.data());
  const int64_t rows = cache_.n_past + (me_ == owner ? 1 : 0);  // this rank's keys, new one included
  for (int l = 0; l < int(c.n_layer); ++l) {
    const LlamaLayer& L = model_.layer(l);
    backend::rms_norm(x_.data(), L.attn_norm.data(), xn_.data(), 1, E, c.rms_eps);
    backend::matmul(L.wq, xn_.data(), q_.data(), 1);
    backend::matmul(L.wk, xn_.data(), k_.data(), 1);
    backend::matmul(L.wv, xn_.data(), v_.data(), 1);
    rope_.apply(q_.data(), 1, c.n_head, c.head_dim, &pos);
    rope_.apply(k_.data(), 1, c.n_head_kv, c.head_dim, &pos);
    if (me_ == owner) {
      std::memcpy(cache_.k(l) + cache_.n_past * kvd, k_.data(), kvd * sizeof(float));
      std::memcpy(cache_.v(l) + cache_.n_past * kvd, v_.data(), kvd * sizeof(float));
    }
    partial_attention(q_.data(), cache_.k(l), cache_.v(l), rows, c, part_.data());
    comm_.all_gather(part_, parts_);
    merge_partials(parts_.data(), P_, c, attn_.data());  // same order on every rank: same result
    backend::matmul(L.wo, attn_.data(), hid_.data(), 1);
    backend::add_inplace(x_.data(), hid_.data(), E);
    mlp(L, x_.data(), 1);
  }
  cache_.n_past = rows;
  n_past_ = t + 1;
  if (me_ == 0 && logits) final_logits(x_.data(), 1, logits);
}

// ---- generation ------------------------------------------------------------------------------

CpGenerateResult cp_generate(ContextParallelLlama& engine, const std::vector<int32_t>& prompt,
                             const SamplingParams& sampling, int max_tokens, const std::vector<int32_t>& stop_ids,
                             const std::function<bool(int32_t)>& on_token) {
  const int64_t V = engine.model_config().n_vocab;
  std::vector<float> logits(V);
  CpGenerateResult r;
  auto t0 = std::chrono::steady_clock::now();
  engine.prefill(prompt, logits.data());
  r.prefill_s = seconds_since(t0);

  Sampler sampler(sampling);
  std::vector<int32_t> history = prompt;
  r.stop_reason = "length";
  t0 = std::chrono::steady_clock::now();
  while (max_tokens < 0 || int(r.tokens.size()) < max_tokens) {
    // Rank 0 decides (next token, or -1 with a reason code), everyone follows.
    float msg[2] = {-1, 0};
    if (engine.rank() == 0) {
      const int32_t next = sampler.sample(logits.data(), V, history);
      if (std::find(stop_ids.begin(), stop_ids.end(), next) != stop_ids.end()) msg[1] = 1;          // eos
      else if (on_token && !on_token(next)) msg[0] = float(next), msg[1] = 2;                      // callback
      else if (engine.n_past() >= engine.max_tokens()) msg[0] = float(next), msg[1] = 3;           // context
      else msg[0] = float(next);
    }
    engine.comm().broadcast(msg, 0);
    if (msg[0] >= 0) r.tokens.push_back(int32_t(msg[0]));
    if (msg[1] != 0) {
      r.stop_reason = msg[1] == 1 ? "eos" : msg[1] == 2 ? "callback" : "context";
      break;
    }
    if (int(r.tokens.size()) == max_tokens) break;  // no logits needed after the last token
    history.push_back(r.tokens.back());
    engine.decode(r.tokens.back(), logits.data());
  }
  r.decode_s = seconds_since(t0);
  return r;
}

}  // namespace ik::llm
