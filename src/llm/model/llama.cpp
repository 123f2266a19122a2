#include "llm/model/llama.hpp"

#include <cstdlib>
#include <cstring>

#include "core/error.hpp"
#include "core/mmap.hpp"
#include "io/gguf.hpp"
#include "llm/quant/lut_format.hpp"

namespace ik::llm {

using backend::WeightMatrix;

// ---- KV cache -----------------------------------------------------------------------------

KVCache::KVCache(int64_t n_layer, int64_t n_ctx, int64_t kv_dim) : n_layer_(n_layer), n_ctx_(n_ctx), kv_dim_(kv_dim) {
  const size_t n = size_t(n_layer) * n_ctx * kv_dim;
  k_ = static_cast<float*>(std::calloc(n, sizeof(float)));
  v_ = static_cast<float*>(std::calloc(n, sizeof(float)));
  if (!k_ || !v_) {
    std::free(k_);
    std::free(v_);
    fail("cannot allocate the KV cache ({} MiB for {} positions)", 2 * n * sizeof(float) >> 20, n_ctx);
  }
}

KVCache::~KVCache() {
  std::free(k_);
  std::free(v_);
}

void KVCache::keep(int64_t n, const std::vector<int64_t>& rows) {
  IK_CHECK(n + int64_t(rows.size()) <= n_ctx_, "KV cache compaction past the context");
  for (int64_t l = 0; l < n_layer_; ++l) {
    for (size_t i = 0; i < rows.size(); ++i) {
      if (rows[i] == n + int64_t(i)) continue;
      std::memmove(k(l) + (n + i) * kv_dim_, k(l) + rows[i] * kv_dim_, kv_dim_ * sizeof(float));
      std::memmove(v(l) + (n + i) * kv_dim_, v(l) + rows[i] * kv_dim_, kv_dim_ * sizeof(float));
    }
  }
  n_past = n + int64_t(rows.size());
}

// ---- loading ------------------------------------------------------------------------------

static std::vector<float> load_vector(const io::GgufFile& f, const std::string& name, int64_t n) {
  const auto& t = f.tensor(name);
  IK_CHECK(t.n_elements() == n, "tensor '{}' has {} elements, expected {}", name, t.n_elements(), n);
  std::vector<float> out(n);
  io::dequantize(t.type, t.data, out.data(), n);
  return out;
}

static WeightMatrix load_matrix(const io::GgufFile& f, const std::string& name, int64_t rows, int64_t cols,
                                WeightMode mode) {
  // Lookup-table quantized weights are stored as <name>.lut_q/.lut_s/.lut_table (llm/quant).
  if (quant::has_lut_tensor(f, name)) return quant::load_lut_matrix(f, name, rows, cols, mode);
  const auto& t = f.tensor(name);
  IK_CHECK(t.shape.size() == 2 && t.shape[0] == cols && t.shape[1] == rows,
           "tensor '{}' has shape [{}], expected [{}, {}]", name, fmt::join(t.shape, ", "), cols, rows);
  WeightMatrix w = WeightMatrix::prepare(t.type, rows, cols, t.data, mode);
  // Converted at load: the stored bytes need not stay resident.
  if (w.owned && f.mapping()) MappedFile::drop_pages(t.data, t.nbytes);
  return w;
}

static LlamaConfig read_config(const io::GgufFile& f) {
  LlamaConfig c;
  c.arch = f.get_string("general.architecture");
  IK_CHECK(c.arch == "llama" || c.arch == "mistral",
           "unsupported architecture '{}' (supported: llama and its variants)", c.arch);
  const std::string a = c.arch + ".";
  c.name = f.get_string("general.name", "");
  c.n_layer = f.get_int(a + "block_count");
  c.n_embd = f.get_int(a + "embedding_length");
  c.n_ff = f.get_int(a + "feed_forward_length");
  c.n_head = int(f.get_int(a + "attention.head_count"));
  c.n_head_kv = int(f.get_int(a + "attention.head_count_kv", c.n_head));
  c.n_ctx_train = f.get_int(a + "context_length", 2048);
  c.rms_eps = float(f.get_float(a + "attention.layer_norm_rms_epsilon", 1e-5));
  c.rope_base = f.get_float(a + "rope.freq_base", 10000.0);
  IK_CHECK(c.n_layer > 0 && c.n_embd > 0 && c.n_ff > 0 && c.n_head > 0 && c.n_head_kv > 0 &&
               c.n_head % c.n_head_kv == 0 && c.n_embd % c.n_head == 0,
           "inconsistent model dimensions (layers {}, embd {}, heads {}/{})", c.n_layer, c.n_embd, c.n_head,
           c.n_head_kv);
  c.head_dim = int(f.get_int(a + "attention.key_length", c.n_embd / c.n_head));
  IK_CHECK(c.head_dim % 2 == 0 && c.head_dim <= 1024, "unsupported head dimension {}", c.head_dim);
  const std::string scaling = f.get_string(a + "rope.scaling.type", "none");
  if (scaling == "linear") {
    c.rope_linear_factor = f.get_float(a + "rope.scaling.factor", 1.0);
  } else {
    IK_CHECK(scaling == "none" || scaling == "llama3", "unsupported rope scaling '{}'", scaling);
  }
  c.rope_layout = backend::RopeLayout::Adjacent;  // GGUF llama weights are permuted for it
  return c;
}

LlamaModel LlamaModel::from_gguf(std::shared_ptr<const io::GgufFile> file, WeightMode mode) {
  const io::GgufFile& f = *file;
  LlamaModel m;
  m.storage_.push_back(file);
  m.mode_ = mode;
  LlamaConfig& c = m.cfg_;
  c = read_config(f);
  const auto& embd = f.tensor("token_embd.weight");
  IK_CHECK(embd.shape.size() == 2 && embd.shape[0] == c.n_embd, "token_embd.weight has the wrong shape");
  c.n_vocab = embd.shape[1];
  // The embedding table is read a row at a time in its stored format.
  m.token_embd_ = WeightMatrix{embd.type, c.n_vocab, c.n_embd, embd.data, io::row_bytes(embd.type, c.n_embd), nullptr};
  c.tied_embeddings = f.find_tensor("output.weight") == nullptr;
  m.lm_head_ = load_matrix(f, c.tied_embeddings ? "token_embd.weight" : "output.weight", c.n_vocab, c.n_embd, mode);
  m.output_norm_ = load_vector(f, "output_norm.weight", c.n_embd);
  if (f.find_tensor("rope_freqs.weight")) c.rope_freq_factors = load_vector(f, "rope_freqs.weight", c.head_dim / 2);
  m.rope_ = backend::Rope::make(c.head_dim, c.rope_base, c.rope_linear_factor, c.rope_freq_factors, c.rope_layout);

  m.layers_.resize(c.n_layer);
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    LlamaLayer& L = m.layers_[l];
    L.attn_norm = load_vector(f, p + "attn_norm.weight", c.n_embd);
    L.ffn_norm = load_vector(f, p + "ffn_norm.weight", c.n_embd);
    L.wq = load_matrix(f, p + "attn_q.weight", c.q_dim(), c.n_embd, mode);
    L.wk = load_matrix(f, p + "attn_k.weight", c.kv_dim(), c.n_embd, mode);
    L.wv = load_matrix(f, p + "attn_v.weight", c.kv_dim(), c.n_embd, mode);
    L.wo = load_matrix(f, p + "attn_output.weight", c.n_embd, c.q_dim(), mode);
    L.w_gate = load_matrix(f, p + "ffn_gate.weight", c.n_ff, c.n_embd, mode);
    L.w_up = load_matrix(f, p + "ffn_up.weight", c.n_ff, c.n_embd, mode);
    L.w_down = load_matrix(f, p + "ffn_down.weight", c.n_embd, c.n_ff, mode);
  }
  return m;
}

size_t LlamaModel::weight_bytes() const {
  size_t n = lm_head_.nbytes();
  for (const auto& L : layers_)
    n += L.wq.nbytes() + L.wk.nbytes() + L.wv.nbytes() + L.wo.nbytes() + L.w_gate.nbytes() + L.w_up.nbytes() +
         L.w_down.nbytes();
  return n;
}

// ---- forward ------------------------------------------------------------------------------

void LlamaModel::embed(const int32_t* tokens, int64_t m, float* out) const {
  for (int64_t i = 0; i < m; ++i) {
    IK_CHECK(tokens[i] >= 0 && tokens[i] < cfg_.n_vocab, "token id {} outside the vocabulary ({})", tokens[i],
             cfg_.n_vocab);
    backend::weight_row(token_embd_, tokens[i], out + i * cfg_.n_embd);
  }
}

void LlamaModel::forward(const int32_t* tokens, int64_t m, KVCache& cache, float* logits, bool all_logits,
                         const int32_t* positions, const uint8_t* tree_mask, float* hidden) {
  const LlamaConfig& c = cfg_;
  IK_CHECK(m > 0, "forward: no tokens");
  IK_CHECK(cache.n_past + m <= cache.n_ctx(), "context full: {} + {} tokens exceed the context of {}",
           cache.n_past, m, cache.n_ctx());
  s_.x.resize(m * c.n_embd);
  s_.pos.resize(m);
  for (int64_t i = 0; i < m; ++i) s_.pos[i] = positions ? positions[i] : int32_t(cache.n_past + i);

  embed(tokens, m, s_.x.data());
  for (int l = 0; l < int(c.n_layer); ++l) {
    KVCache* one = &cache;
    attention_block(l, s_.x.data(), m, &one, true, s_.pos.data(), tree_mask);
    mlp_block(l, s_.x.data(), m);
  }
  cache.n_past += m;

  // Final norm, then the LM head over the rows that need logits.
  const int64_t first = all_logits ? 0 : m - 1;
  const int64_t rows = m - first;
  s_.xn.resize(m * c.n_embd);
  backend::rms_norm(s_.x.data() + first * c.n_embd, output_norm_.data(), s_.xn.data(), rows, c.n_embd, c.rms_eps);
  if (hidden) {
    if (!all_logits) backend::rms_norm(s_.x.data(), output_norm_.data(), hidden, m, c.n_embd, c.rms_eps);
    else std::memcpy(hidden, s_.xn.data(), sizeof(float) * m * c.n_embd);
  }
  if (logits) backend::matmul(lm_head_, s_.xn.data(), logits, rows);
}

void LlamaModel::forward_batch(const int32_t* tokens, int64_t n, KVCache* const* caches, float* logits) {
  const LlamaConfig& c = cfg_;
  IK_CHECK(n > 0, "forward_batch: no sequences");
  s_.x.resize(n * c.n_embd);
  s_.pos.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    IK_CHECK(caches[i]->n_past < caches[i]->n_ctx(), "context full for sequence {}", i);
    s_.pos[i] = int32_t(caches[i]->n_past);
  }
  embed(tokens, n, s_.x.data());
  for (int l = 0; l < int(c.n_layer); ++l) {
    attention_block(l, s_.x.data(), n, caches, false, s_.pos.data(), nullptr);
    mlp_block(l, s_.x.data(), n);
  }
  for (int64_t i = 0; i < n; ++i) caches[i]->n_past++;
  s_.xn.resize(n * c.n_embd);
  backend::rms_norm(s_.x.data(), output_norm_.data(), s_.xn.data(), n, c.n_embd, c.rms_eps);
  backend::matmul(lm_head_, s_.xn.data(), logits, n);
}

void LlamaModel::forward_ragged(const int32_t* tokens, const int64_t* rows, int64_t n_seq, KVCache* const* caches,
                                float* logits, const uint8_t* wants_logits) {
  const LlamaConfig& c = cfg_;
  IK_CHECK(n_seq > 0, "forward_ragged: no sequences");
  int64_t m = 0;
  for (int64_t i = 0; i < n_seq; ++i) {
    IK_CHECK(rows[i] > 0, "forward_ragged: sequence {} has no tokens", i);
    IK_CHECK(caches[i]->n_past + rows[i] <= caches[i]->n_ctx(), "context full for sequence {}", i);
    m += rows[i];
  }
  s_.x.resize(m * c.n_embd);
  s_.pos.resize(m);
  for (int64_t i = 0, r = 0; i < n_seq; ++i)
    for (int64_t j = 0; j < rows[i]; ++j) s_.pos[r++] = int32_t(caches[i]->n_past + j);
  embed(tokens, m, s_.x.data());
  for (int l = 0; l < int(c.n_layer); ++l) {
    attention_ragged(l, s_.x.data(), m, rows, n_seq, caches);
    mlp_block(l, s_.x.data(), m);
  }
  // The last row of each sequence that wants logits, gathered, then the final norm and LM head.
  s_.hid.resize(m * c.n_embd);
  int64_t k = 0;
  for (int64_t i = 0, end = 0; i < n_seq; ++i) {
    caches[i]->n_past += rows[i];
    end += rows[i];
    if (wants_logits && !wants_logits[i]) continue;
    std::memcpy(s_.hid.data() + k++ * c.n_embd, s_.x.data() + (end - 1) * c.n_embd, sizeof(float) * c.n_embd);
  }
  if (k == 0) return;
  s_.xn.resize(k * c.n_embd);
  backend::rms_norm(s_.hid.data(), output_norm_.data(), s_.xn.data(), k, c.n_embd, c.rms_eps);
  backend::matmul(lm_head_, s_.xn.data(), logits, k);
}

void LlamaModel::attention_ragged(int l, float* x, int64_t m, const int64_t* rows, int64_t n_seq,
                                  KVCache* const* caches) {
  const LlamaConfig& c = cfg_;
  const LlamaLayer& L = layers_[l];
  const int64_t kvd = c.kv_dim(), qd = c.q_dim();
  s_.xn.resize(m * c.n_embd);
  s_.q.resize(m * qd);
  s_.k.resize(m * kvd);
  s_.v.resize(m * kvd);
  s_.attn.resize(m * qd);
  s_.hid.resize(m * c.n_embd);
  backend::rms_norm(x, L.attn_norm.data(), s_.xn.data(), m, c.n_embd, c.rms_eps);
  if (on_matmul_input) on_matmul_input(l, "qkv", s_.xn.data(), m, c.n_embd);
  backend::matmul(L.wq, s_.xn.data(), s_.q.data(), m);
  backend::matmul(L.wk, s_.xn.data(), s_.k.data(), m);
  backend::matmul(L.wv, s_.xn.data(), s_.v.data(), m);
  rope_.apply(s_.q.data(), m, c.n_head, c.head_dim, s_.pos.data());
  rope_.apply(s_.k.data(), m, c.n_head_kv, c.head_dim, s_.pos.data());
  for (int64_t i = 0, r = 0; i < n_seq; r += rows[i++]) {  // each run into its cache, then its attention
    KVCache& cache = *caches[i];
    std::memcpy(cache.k(l) + cache.n_past * kvd, s_.k.data() + r * kvd, rows[i] * kvd * sizeof(float));
    std::memcpy(cache.v(l) + cache.n_past * kvd, s_.v.data() + r * kvd, rows[i] * kvd * sizeof(float));
    backend::attention(s_.q.data() + r * qd, cache.k(l), cache.v(l), s_.attn.data() + r * qd, rows[i], cache.n_past,
                       c.n_head, c.n_head_kv, c.head_dim);
  }
  if (on_matmul_input) on_matmul_input(l, "o", s_.attn.data(), m, qd);
  backend::matmul(L.wo, s_.attn.data(), s_.hid.data(), m);
  backend::add_inplace(x, s_.hid.data(), m * c.n_embd);
}

void LlamaModel::attention_block(int l, float* x, int64_t m, KVCache* const* caches, bool one_sequence,
                                 const int32_t* pos, const uint8_t* tree_mask) {
  const LlamaConfig& c = cfg_;
  const LlamaLayer& L = layers_[l];
  const int64_t kvd = c.kv_dim(), qd = c.q_dim();
  s_.xn.resize(m * c.n_embd);
  s_.q.resize(m * qd);
  s_.attn.resize(m * qd);
  s_.hid.resize(m * c.n_embd);

  backend::rms_norm(x, L.attn_norm.data(), s_.xn.data(), m, c.n_embd, c.rms_eps);
  // One sequence: K and V go straight into their cache rows. Several: into scratch, then
  // each row to its own cache.
  KVCache& first = *caches[0];
  if (!one_sequence) {
    s_.k.resize(m * kvd);
    s_.v.resize(m * kvd);
  }
  float* k = one_sequence ? first.k(l) + first.n_past * kvd : s_.k.data();
  float* v = one_sequence ? first.v(l) + first.n_past * kvd : s_.v.data();
  if (on_matmul_input) on_matmul_input(l, "qkv", s_.xn.data(), m, c.n_embd);
  backend::matmul(L.wq, s_.xn.data(), s_.q.data(), m);
  backend::matmul(L.wk, s_.xn.data(), k, m);
  backend::matmul(L.wv, s_.xn.data(), v, m);
  rope_.apply(s_.q.data(), m, c.n_head, c.head_dim, pos);
  rope_.apply(k, m, c.n_head_kv, c.head_dim, pos);
  if (one_sequence) {
    backend::attention(s_.q.data(), first.k(l), first.v(l), s_.attn.data(), m, first.n_past, c.n_head, c.n_head_kv,
                       c.head_dim, tree_mask);
  } else {
    for (int64_t i = 0; i < m; ++i) {
      KVCache& cache = *caches[i];
      std::memcpy(cache.k(l) + cache.n_past * kvd, k + i * kvd, kvd * sizeof(float));
      std::memcpy(cache.v(l) + cache.n_past * kvd, v + i * kvd, kvd * sizeof(float));
      backend::attention(s_.q.data() + i * qd, cache.k(l), cache.v(l), s_.attn.data() + i * qd, 1, cache.n_past,
                         c.n_head, c.n_head_kv, c.head_dim);
    }
  }
  if (on_matmul_input) on_matmul_input(l, "o", s_.attn.data(), m, qd);
  backend::matmul(L.wo, s_.attn.data(), s_.hid.data(), m);
  backend::add_inplace(x, s_.hid.data(), m * c.n_embd);
}

void LlamaModel::mlp_block(int l, float* x, int64_t m) {
  const LlamaConfig& c = cfg_;
  const LlamaLayer& L = layers_[l];
  s_.gate.resize(m * c.n_ff);
  s_.up.resize(m * c.n_ff);
  backend::rms_norm(x, L.ffn_norm.data(), s_.xn.data(), m, c.n_embd, c.rms_eps);
  if (on_matmul_input) on_matmul_input(l, "gate_up", s_.xn.data(), m, c.n_embd);
  backend::matmul(L.w_gate, s_.xn.data(), s_.gate.data(), m);
  backend::matmul(L.w_up, s_.xn.data(), s_.up.data(), m);
  backend::silu_mul(s_.gate.data(), s_.up.data(), s_.gate.data(), m * c.n_ff);
  if (on_matmul_input) on_matmul_input(l, "down", s_.gate.data(), m, c.n_ff);
  backend::matmul(L.w_down, s_.gate.data(), s_.hid.data(), m);
  backend::add_inplace(x, s_.hid.data(), m * c.n_embd);
}

}  // namespace ik::llm
