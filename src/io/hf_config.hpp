#pragma once
// Hugging Face config.json of a Llama-family checkpoint (llama, mistral, qwen2, smollm, ...),
// as a plain struct with the defaults transformers' LlamaConfig uses for absent keys.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ik::io {

struct HfRopeScaling {
  std::string type;          // "llama3", "linear", "dynamic", "yarn", ... ("rope_type" or "type")
  double factor = 1.0;
  double low_freq_factor = 1.0;    // llama3
  double high_freq_factor = 4.0;   // llama3
  int64_t original_max_position_embeddings = 0;  // 0 if absent
};

struct HfLlamaConfig {
  std::string model_type;    // "llama", ...
  std::string architecture;  // first of "architectures", e.g. "LlamaForCausalLM"
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // defaults to num_attention_heads
  int64_t head_dim = 0;             // defaults to hidden_size / num_attention_heads
  int64_t max_position_embeddings = 2048;
  int64_t vocab_size = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  std::optional<HfRopeScaling> rope_scaling;
  bool tie_word_embeddings = false;
  int64_t bos_token_id = -1;             // -1 if absent or null
  std::vector<int64_t> eos_token_ids;    // eos_token_id may be a number or a list
  std::string torch_dtype;               // "bfloat16", ... ("" if absent)

  // path: a config.json file or a checkpoint directory containing one.
  static HfLlamaConfig load(const std::string& path);
  static HfLlamaConfig parse(const std::string& json_text, const std::string& name = "config.json");
};

}  // namespace ik::io
