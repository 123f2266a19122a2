// Synthetic models: named shapes and seeded random weights.
#include <cmath>
#include <memory>

#include "core/error.hpp"
#include "core/fp16.hpp"
#include "core/rng.hpp"
#include "llm/model/llama.hpp"

namespace ik::llm {

LlamaConfig preset_config(const std::string& name) {
  LlamaConfig c;
  c.name = name + " (random weights)";
  c.rms_eps = 1e-5f;
  c.n_ctx_train = 8192;
  if (name == "llama3-8b" || name == "llama3-70b-8layers") {
    const bool big = name != "llama3-8b";
    c.n_vocab = 128256;
    c.n_embd = big ? 8192 : 4096;
    c.n_ff = big ? 28672 : 14336;
    c.n_layer = big ? 8 : 32;
    c.n_head = big ? 64 : 32;
    c.n_head_kv = 8;
    c.head_dim = 128;
    c.rope_base = 500000.0;
  } else if (name == "smollm2-135m") {
    c.n_vocab = 49152;
    c.n_embd = 576;
    c.n_ff = 1536;
    c.n_layer = 30;
    c.n_head = 9;
    c.n_head_kv = 3;
    c.head_dim = 64;
    c.rope_base = 100000.0;
    c.tied_embeddings = true;
  } else if (name == "tiny") {
    c.n_vocab = 512;
    c.n_embd = 256;
    c.n_ff = 512;
    c.n_layer = 2;
    c.n_head = 4;
    c.n_head_kv = 2;
    c.head_dim = 64;
    c.n_ctx_train = 2048;
  } else {
    fail("unknown model shape '{}' (known: llama3-8b, llama3-70b-8layers, smollm2-135m, tiny)", name);
  }
  return c;
}

// Uniform values in [-scale, scale], rounded to bf16, kept alive by the returned matrix.
static backend::WeightMatrix random_matrix(int64_t rows, int64_t cols, float scale, Rng& rng, WeightMode mode) {
  auto bytes = std::make_shared<std::vector<uint8_t>>(size_t(rows) * cols * 2);
  auto* v = reinterpret_cast<uint16_t*>(bytes->data());
  for (int64_t i = 0; i < rows * cols; ++i) v[i] = f32_to_bf16(float(rng.uniform(-scale, scale)));
  backend::WeightMatrix w = backend::WeightMatrix::prepare(io::DType::BF16, rows, cols, bytes->data(), mode);
  if (!w.owned) w.owned = bytes;  // a view of the bf16 bytes: keep them
  return w;
}

LlamaModel LlamaModel::random(const LlamaConfig& cfg, uint64_t seed, WeightMode mode) {
  IK_CHECK(cfg.n_layer > 0 && cfg.n_embd > 0 && cfg.n_head > 0 && cfg.n_head_kv > 0 && cfg.n_head % cfg.n_head_kv == 0,
           "inconsistent model shape");
  LlamaModel m;
  m.cfg_ = cfg;
  m.mode_ = mode;
  Rng rng(seed, 0);
  const LlamaConfig& c = m.cfg_;
  // Scale sqrt(3/K): unit-variance inputs give unit-variance outputs.
  auto scale = [](int64_t k) { return float(std::sqrt(3.0 / double(k))); };
  // The embedding is read a row at a time in its stored format (bf16).
  auto embd = std::make_shared<std::vector<uint8_t>>(size_t(c.n_vocab) * c.n_embd * 2);
  auto* e = reinterpret_cast<uint16_t*>(embd->data());
  for (int64_t i = 0; i < c.n_vocab * c.n_embd; ++i) e[i] = f32_to_bf16(float(rng.uniform(-1.0, 1.0)));
  m.storage_.push_back(embd);
  m.token_embd_ = backend::WeightMatrix{io::DType::BF16, c.n_vocab, c.n_embd, embd->data(), size_t(c.n_embd) * 2, nullptr};
  m.lm_head_ = c.tied_embeddings ? backend::WeightMatrix::prepare(io::DType::BF16, c.n_vocab, c.n_embd, embd->data(), mode)
                                 : random_matrix(c.n_vocab, c.n_embd, scale(c.n_embd), rng, mode);
  m.output_norm_.assign(c.n_embd, 1.0f);
  m.rope_ = backend::Rope::make(c.head_dim, c.rope_base, c.rope_linear_factor, c.rope_freq_factors, c.rope_layout);
  m.layers_.resize(c.n_layer);
  for (auto& L : m.layers_) {
    L.attn_norm.assign(c.n_embd, 1.0f);
    L.ffn_norm.assign(c.n_embd, 1.0f);
    L.wq = random_matrix(c.q_dim(), c.n_embd, scale(c.n_embd), rng, mode);
    L.wk = random_matrix(c.kv_dim(), c.n_embd, scale(c.n_embd), rng, mode);
    L.wv = random_matrix(c.kv_dim(), c.n_embd, scale(c.n_embd), rng, mode);
    L.wo = random_matrix(c.n_embd, c.q_dim(), scale(c.q_dim()), rng, mode);
    L.w_gate = random_matrix(c.n_ff, c.n_embd, scale(c.n_embd), rng, mode);
    L.w_up = random_matrix(c.n_ff, c.n_embd, scale(c.n_embd), rng, mode);
    L.w_down = random_matrix(c.n_embd, c.n_ff, scale(c.n_ff), rng, mode);
  }
  return m;
}

}  // namespace ik::llm
