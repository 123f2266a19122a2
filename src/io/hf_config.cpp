#include "io/hf_config.hpp"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.hpp"

namespace ik::io {

namespace {

using nlohmann::json;

struct Reader {
  const json& j;
  const std::string& name;

  [[noreturn]] void bad(const std::string& msg) const { fail("{}: {}", name, msg); }

  bool present(const char* key) const { return j.contains(key) && !j.at(key).is_null(); }

  int64_t integer(const json& v, const char* key) const {
    if (!v.is_number_integer()) bad(fmt::format("'{}' is not an integer", key));
    return v.get<int64_t>();
  }
  int64_t integer(const char* key, std::optional<int64_t> def) const {
    if (!present(key)) {
      if (!def) bad(fmt::format("missing '{}'", key));
      return *def;
    }
    return integer(j.at(key), key);
  }
  int64_t positive(const char* key) const {
    const int64_t v = integer(key, std::nullopt);
    if (v <= 0) bad(fmt::format("'{}' must be positive, got {}", key, v));
    return v;
  }
  double number(const json& obj, const char* key, double def) const {
    if (!obj.contains(key) || obj.at(key).is_null()) return def;
    if (!obj.at(key).is_number()) bad(fmt::format("'{}' is not a number", key));
    return obj.at(key).get<double>();
  }
  std::string string(const char* key) const {
    if (!present(key)) return "";
    if (!j.at(key).is_string()) bad(fmt::format("'{}' is not a string", key));
    return j.at(key).get<std::string>();
  }
};

HfRopeScaling read_rope_scaling(const Reader& r, const json& s) {
  if (!s.is_object()) r.bad("'rope_scaling' is not an object");
  HfRopeScaling out;
  for (const char* key : {"rope_type", "type"}) {
    if (s.contains(key) && s.at(key).is_string()) {
      out.type = s.at(key).get<std::string>();
      break;
    }
  }
  out.factor = r.number(s, "factor", 1.0);
  out.low_freq_factor = r.number(s, "low_freq_factor", 1.0);
  out.high_freq_factor = r.number(s, "high_freq_factor", 4.0);
  if (s.contains("original_max_position_embeddings") && !s.at("original_max_position_embeddings").is_null())
    out.original_max_position_embeddings =
        r.integer(s.at("original_max_position_embeddings"), "original_max_position_embeddings");
  return out;
}

}  // namespace

HfLlamaConfig HfLlamaConfig::parse(const std::string& json_text, const std::string& name) {
  const json j = json::parse(json_text, nullptr, false);
  if (j.is_discarded()) fail("{}: not valid JSON", name);
  if (!j.is_object()) fail("{}: not a JSON object", name);
  const Reader r{j, name};
  HfLlamaConfig c;
  c.model_type = r.string("model_type");
  if (r.present("architectures") && j.at("architectures").is_array() && !j.at("architectures").empty() &&
      j.at("architectures")[0].is_string())
    c.architecture = j.at("architectures")[0].get<std::string>();
  c.hidden_size = r.positive("hidden_size");
  c.intermediate_size = r.positive("intermediate_size");
  c.num_hidden_layers = r.positive("num_hidden_layers");
  c.num_attention_heads = r.positive("num_attention_heads");
  c.num_key_value_heads = r.integer("num_key_value_heads", c.num_attention_heads);
  if (c.num_key_value_heads <= 0 || c.num_attention_heads % c.num_key_value_heads != 0)
    r.bad(fmt::format("num_attention_heads {} is not a multiple of num_key_value_heads {}",
                      c.num_attention_heads, c.num_key_value_heads));
  if (r.present("head_dim")) {
    c.head_dim = r.positive("head_dim");
  } else {
    if (c.hidden_size % c.num_attention_heads != 0)
      r.bad(fmt::format("hidden_size {} is not a multiple of num_attention_heads {}", c.hidden_size,
                        c.num_attention_heads));
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  c.max_position_embeddings = r.integer("max_position_embeddings", 2048);
  c.vocab_size = r.positive("vocab_size");
  c.rms_norm_eps = r.number(j, "rms_norm_eps", 1e-6);
  // transformers 5 moved rope_theta (and the scaling) into "rope_parameters".
  const json* rope = j.contains("rope_parameters") && j.at("rope_parameters").is_object()
                         ? &j.at("rope_parameters")
                         : nullptr;
  c.rope_theta = r.number(j, "rope_theta", rope ? r.number(*rope, "rope_theta", 10000.0) : 10000.0);
  if (r.present("rope_scaling")) {
    c.rope_scaling = read_rope_scaling(r, j.at("rope_scaling"));
  } else if (rope && rope->contains("rope_type") && rope->at("rope_type") != "default") {
    c.rope_scaling = read_rope_scaling(r, *rope);
  }
  if (r.present("tie_word_embeddings")) {
    if (!j.at("tie_word_embeddings").is_boolean()) r.bad("'tie_word_embeddings' is not a bool");
    c.tie_word_embeddings = j.at("tie_word_embeddings").get<bool>();
  }
  c.bos_token_id = r.integer("bos_token_id", -1);
  if (r.present("eos_token_id")) {
    const json& eos = j.at("eos_token_id");
    if (eos.is_array()) {
      for (const json& e : eos) c.eos_token_ids.push_back(r.integer(e, "eos_token_id"));
    } else {
      c.eos_token_ids.push_back(r.integer(eos, "eos_token_id"));
    }
  }
  c.torch_dtype = r.string(r.present("torch_dtype") ? "torch_dtype" : "dtype");
  return c;
}

HfLlamaConfig HfLlamaConfig::load(const std::string& path) {
  std::string file = path;
  if (std::filesystem::is_directory(path)) file = (std::filesystem::path(path) / "config.json").string();
  std::ifstream in(file);
  IK_CHECK(in.good(), "cannot open '{}'", file);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), file);
}

}  // namespace ik::io
