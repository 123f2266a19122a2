// Loading a Llama-family checkpoint in Hugging Face layout (config.json + safetensors).
// HF keeps Q/K rows unpermuted, so rotary pairs are (i, i + d/2) here.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.hpp"
#include "io/hf_config.hpp"
#include "io/safetensors.hpp"
#include "llm/model/llama.hpp"

namespace ik::llm {

namespace fs = std::filesystem;
using backend::WeightMatrix;

// transformers' "llama3" rope scaling, expressed as per-frequency divisors.
static std::vector<float> llama3_freq_factors(const io::HfRopeScaling& s, int head_dim, double base) {
  const double old_ctx = double(s.original_max_position_embeddings);
  const double low_wavelen = old_ctx / s.low_freq_factor, high_wavelen = old_ctx / s.high_freq_factor;
  std::vector<float> factors(head_dim / 2);
  for (int i = 0; i < head_dim / 2; ++i) {
    const double freq = std::pow(base, -2.0 * i / head_dim), wavelen = 2 * M_PI / freq;
    double scaled = freq;
    if (wavelen > low_wavelen) {
      scaled = freq / s.factor;
    } else if (wavelen >= high_wavelen) {
      const double smooth = (old_ctx / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      scaled = (1 - smooth) * freq / s.factor + smooth * freq;
    }
    factors[i] = float(freq / scaled);
  }
  return factors;
}

static LlamaConfig config_from_hf(const io::HfLlamaConfig& h) {
  LlamaConfig c;
  c.arch = h.model_type.empty() ? "llama" : h.model_type;
  IK_CHECK(c.arch == "llama" || c.arch == "mistral", "unsupported architecture '{}' (supported: llama)", c.arch);
  c.name = h.architecture;
  c.n_vocab = h.vocab_size;
  c.n_embd = h.hidden_size;
  c.n_ff = h.intermediate_size;
  c.n_layer = h.num_hidden_layers;
  c.n_head = int(h.num_attention_heads);
  c.n_head_kv = int(h.num_key_value_heads);
  c.head_dim = int(h.head_dim);
  c.n_ctx_train = h.max_position_embeddings;
  c.rms_eps = float(h.rms_norm_eps);
  c.rope_base = h.rope_theta;
  c.rope_layout = backend::RopeLayout::Half;
  c.tied_embeddings = h.tie_word_embeddings;
  if (h.rope_scaling) {
    const auto& s = *h.rope_scaling;
    if (s.type == "linear") c.rope_linear_factor = s.factor;
    else if (s.type == "llama3") c.rope_freq_factors = llama3_freq_factors(s, c.head_dim, c.rope_base);
    else IK_CHECK(s.type == "default" || s.type.empty(), "unsupported rope scaling '{}'", s.type);
  }
  return c;
}

// The safetensors files of a checkpoint: one file, or the shards an index names.
static std::vector<std::shared_ptr<io::SafetensorsFile>> open_shards(const fs::path& dir) {
  std::vector<std::shared_ptr<io::SafetensorsFile>> shards;
  if (fs::exists(dir / "model.safetensors")) {
    shards.push_back(std::make_shared<io::SafetensorsFile>(io::SafetensorsFile::open(dir / "model.safetensors")));
    return shards;
  }
  const fs::path index = dir / "model.safetensors.index.json";
  IK_CHECK(fs::exists(index), "'{}' has neither model.safetensors nor model.safetensors.index.json", dir.string());
  nlohmann::json j;
  try {
    std::ifstream(index) >> j;
  } catch (const std::exception& e) {
    fail("malformed '{}': {}", index.string(), e.what());
  }
  std::set<std::string> files;
  for (auto& [name, file] : j.at("weight_map").items()) files.insert(file.get<std::string>());
  for (const auto& f : files)
    shards.push_back(std::make_shared<io::SafetensorsFile>(io::SafetensorsFile::open(dir / f)));
  return shards;
}

LlamaModel LlamaModel::from_hf_dir(const std::string& dir, WeightMode mode) {
  const io::HfLlamaConfig hf = io::HfLlamaConfig::load(dir);
  LlamaModel m;
  m.mode_ = mode;
  LlamaConfig& c = m.cfg_;
  c = config_from_hf(hf);
  auto shards = open_shards(dir);
  for (auto& s : shards) m.storage_.push_back(s);
  auto find = [&](const std::string& name) -> const io::SafeTensor& {
    for (auto& s : shards)
      if (const auto* t = s->find(name)) return *t;
    fail("checkpoint '{}' has no tensor '{}'", dir, name);
  };
  auto matrix = [&](const std::string& name, int64_t rows, int64_t cols, WeightMode md) {
    const auto& t = find(name);
    IK_CHECK(t.shape.size() == 2 && t.shape[0] == rows && t.shape[1] == cols,
             "tensor '{}' has shape [{}], expected [{}, {}]", name, fmt::join(t.shape, ", "), rows, cols);
    return WeightMatrix::prepare(t.type, rows, cols, t.data, md);
  };
  auto vec = [&](const std::string& name, int64_t n) {
    const auto& t = find(name);
    IK_CHECK(t.n_elements() == n, "tensor '{}' has {} elements, expected {}", name, t.n_elements(), n);
    return io::SafetensorsFile::to_f32(t);
  };

  // Embedding rows are read one at a time in their stored format.
  const auto& embd = find("model.embed_tokens.weight");
  IK_CHECK(embd.shape.size() == 2 && embd.shape[1] == c.n_embd, "model.embed_tokens.weight has the wrong shape");
  c.n_vocab = embd.shape[0];
  m.token_embd_ = WeightMatrix{embd.type, c.n_vocab, c.n_embd, embd.data, io::row_bytes(embd.type, c.n_embd), nullptr};
  const bool has_head = [&] {
    for (auto& s : shards)
      if (s->find("lm_head.weight")) return true;
    return false;
  }();
  m.lm_head_ = matrix(has_head ? "lm_head.weight" : "model.embed_tokens.weight", c.n_vocab, c.n_embd, mode);
  c.tied_embeddings = !has_head;
  m.output_norm_ = vec("model.norm.weight", c.n_embd);
  m.rope_ = backend::Rope::make(c.head_dim, c.rope_base, c.rope_linear_factor, c.rope_freq_factors, c.rope_layout);
  m.layers_.resize(c.n_layer);
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    LlamaLayer& L = m.layers_[l];
    L.attn_norm = vec(p + "input_layernorm.weight", c.n_embd);
    L.ffn_norm = vec(p + "post_attention_layernorm.weight", c.n_embd);
    L.wq = matrix(p + "self_attn.q_proj.weight", c.q_dim(), c.n_embd, mode);
    L.wk = matrix(p + "self_attn.k_proj.weight", c.kv_dim(), c.n_embd, mode);
    L.wv = matrix(p + "self_attn.v_proj.weight", c.kv_dim(), c.n_embd, mode);
    L.wo = matrix(p + "self_attn.o_proj.weight", c.n_embd, c.q_dim(), mode);
    L.w_gate = matrix(p + "mlp.gate_proj.weight", c.n_ff, c.n_embd, mode);
    L.w_up = matrix(p + "mlp.up_proj.weight", c.n_ff, c.n_embd, mode);
    L.w_down = matrix(p + "mlp.down_proj.weight", c.n_embd, c.n_ff, mode);
  }
  return m;
}

}  // namespace ik::llm
