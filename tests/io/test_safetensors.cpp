// safetensors reader and HF config.json on fixtures written by tools/make_tiny_hf_llama.py.
#include <cmath>

#include "core/error.hpp"
#include "io/hf_config.hpp"
#include "io/safetensors.hpp"
#include "io_test_util.hpp"

using namespace ik;
using namespace ik::io;

TEST(Safetensors, MixedDtypesHaveKnownValues) {
  const SafetensorsFile f = SafetensorsFile::open(test::fixture("mixed.safetensors"));
  EXPECT_EQ(f.tensors().size(), 4u);
  EXPECT_EQ(f.metadata().at("note"), "ik");
  const SafeTensor& a = f.tensor("f32");
  EXPECT_EQ(a.type, DType::F32);
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(SafetensorsFile::to_f32(a), (std::vector<float>{0, 0.5f, 1, 1.5f, 2, 2.5f}));
  const SafeTensor& h = f.tensor("f16");
  EXPECT_EQ(h.type, DType::F16);
  const std::vector<float> hv = SafetensorsFile::to_f32(h);
  EXPECT_EQ(hv[0], 1.0f);
  EXPECT_EQ(hv[1], -2.5f);
  EXPECT_EQ(hv[2], 65504.0f);
  EXPECT_EQ(hv[3], 5.9604645e-8f);  // nearest f16 to 6e-8: the smallest subnormal
  const SafeTensor& b = f.tensor("bf16");
  EXPECT_EQ(b.type, DType::BF16);
  EXPECT_EQ(SafetensorsFile::to_f32(b), (std::vector<float>{1.0f, -2.5f, 0.0f, INFINITY}));
  const SafeTensor& i = f.tensor("i64");
  EXPECT_EQ(i.type, DType::I64);
  EXPECT_EQ(i.nbytes, 16u);
  EXPECT_THROW(SafetensorsFile::to_f32(i), Error);
  EXPECT_EQ(f.find("nope"), nullptr);
  EXPECT_THROW(f.tensor("nope"), Error);
}

TEST(Safetensors, TinyLlamaCheckpoint) {
  const std::string dir = test::fixture("tiny_llama");
  const HfLlamaConfig c = HfLlamaConfig::load(dir);
  EXPECT_EQ(c.model_type, "llama");
  EXPECT_EQ(c.architecture, "LlamaForCausalLM");
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.intermediate_size, 96);
  EXPECT_EQ(c.num_hidden_layers, 2);
  EXPECT_EQ(c.num_attention_heads, 4);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.vocab_size, 320);
  EXPECT_EQ(c.max_position_embeddings, 128);
  EXPECT_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_FALSE(c.rope_scaling);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{2}));
  EXPECT_EQ(c.torch_dtype, "bfloat16");

  const SafetensorsFile f = SafetensorsFile::open(dir + "/model.safetensors");
  // embed + final norm + per layer: 2 norms, q, k, v, o, gate, up, down (lm_head is tied).
  EXPECT_EQ(f.tensors().size(), 2u + 9u * 2u);
  const SafeTensor& emb = f.tensor("model.embed_tokens.weight");
  EXPECT_EQ(emb.type, DType::BF16);
  EXPECT_EQ(emb.shape, (std::vector<int64_t>{320, 64}));
  EXPECT_EQ(f.tensor("model.layers.1.self_attn.k_proj.weight").shape, (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(f.tensor("model.layers.0.mlp.down_proj.weight").shape, (std::vector<int64_t>{64, 96}));
  const std::vector<float> norm = SafetensorsFile::to_f32(f.tensor("model.norm.weight"));
  for (float x : norm) EXPECT_EQ(x, 1.0f);  // RMSNorm weights start at one
  const std::vector<float> e = SafetensorsFile::to_f32(emb);
  double sq = 0;
  for (float x : e) sq += double(x) * x;
  const double std = std::sqrt(sq / double(e.size()));
  EXPECT_NEAR(std, 0.02, 0.002);  // initializer_range
  // Tensors lie inside the mapping, without overlaps.
  const uint8_t* end = f.mapping()->data() + f.mapping()->size();
  for (size_t i = 0; i < f.tensors().size(); ++i) {
    EXPECT_LE(f.tensors()[i].data + f.tensors()[i].nbytes, end);
    if (i > 0) {
      EXPECT_LE(f.tensors()[i - 1].data + f.tensors()[i - 1].nbytes, f.tensors()[i].data);
    }
  }
}

TEST(HfConfig, RopeScalingAndDefaults) {
  const HfLlamaConfig c = HfLlamaConfig::parse(R"({
    "model_type": "llama", "hidden_size": 2048, "intermediate_size": 8192,
    "num_hidden_layers": 16, "num_attention_heads": 32, "vocab_size": 128256,
    "rope_theta": 500000.0, "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009],
    "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "torch_dtype": "bfloat16"})");
  EXPECT_EQ(c.num_key_value_heads, 32);  // defaults to the attention heads
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_FALSE(c.tie_word_embeddings);
  ASSERT_TRUE(c.rope_scaling);
  EXPECT_EQ(c.rope_scaling->type, "llama3");
  EXPECT_EQ(c.rope_scaling->factor, 32.0);
  EXPECT_EQ(c.rope_scaling->low_freq_factor, 1.0);
  EXPECT_EQ(c.rope_scaling->high_freq_factor, 4.0);
  EXPECT_EQ(c.rope_scaling->original_max_position_embeddings, 8192);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{128001, 128008, 128009}));
  EXPECT_EQ(c.bos_token_id, 128000);
  // transformers 5 spelling: rope_parameters.
  const HfLlamaConfig d = HfLlamaConfig::parse(R"({"hidden_size": 64, "intermediate_size": 96,
    "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 10, "bos_token_id": null,
    "rope_parameters": {"rope_theta": 1e6, "rope_type": "linear", "factor": 2.0}})");
  EXPECT_EQ(d.rope_theta, 1e6);
  ASSERT_TRUE(d.rope_scaling);
  EXPECT_EQ(d.rope_scaling->type, "linear");
  EXPECT_EQ(d.rope_scaling->factor, 2.0);
  EXPECT_EQ(d.bos_token_id, -1);
}

TEST(HfConfig, BadInput) {
  const auto err = [](const std::string& text) {
    try {
      HfLlamaConfig::parse(text, "config.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(err("{"), "config.json: not valid JSON");
  EXPECT_EQ(err("[]"), "config.json: not a JSON object");
  EXPECT_EQ(err(R"({"hidden_size": 64})"), "config.json: missing 'intermediate_size'");
  EXPECT_EQ(err(R"({"hidden_size": "64"})"), "config.json: 'hidden_size' is not an integer");
  EXPECT_NE(err(R"({"hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 1,
    "num_attention_heads": 4, "num_key_value_heads": 3, "vocab_size": 10})")
                .find("not a multiple of num_key_value_heads 3"),
            std::string::npos);
  EXPECT_THROW(HfLlamaConfig::load("/nonexistent/dir"), Error);
}

namespace {

std::vector<uint8_t> safetensors_bytes(const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> out(8 + header.size() + data_bytes);
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, header.data(), header.size());
  return out;
}

std::string st_error(const std::vector<uint8_t>& bytes) {
  try {
    SafetensorsFile::parse(bytes.data(), bytes.size(), "m.safetensors");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Safetensors, BadInput) {
  const std::string ok = R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";
  EXPECT_EQ(st_error(safetensors_bytes(ok, 16)), "");
  EXPECT_EQ(st_error(safetensors_bytes(ok, 15)),
            "m.safetensors: tensor 'a': data_offsets [0, 16] outside the 15 data bytes (truncated file?)");
  EXPECT_EQ(st_error(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", 16)),
            "m.safetensors: tensor 'a': has 16 bytes, its shape and dtype need 12");
  EXPECT_EQ(st_error(safetensors_bytes(R"({"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}})", 1)),
            "m.safetensors: tensor 'a': unsupported dtype 'F8_E4M3'");
  EXPECT_EQ(st_error(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4)),
            "m.safetensors: tensor 'a': shape has a non-integer or negative dimension");
  EXPECT_EQ(st_error(safetensors_bytes("{not json", 0)), "m.safetensors: header is not valid JSON");
  EXPECT_EQ(st_error({1, 2, 3}), "m.safetensors: not a safetensors file (only 3 bytes)");
  std::vector<uint8_t> huge = safetensors_bytes(ok, 16);
  huge[7] = 0x7f;  // header length far past the end
  EXPECT_NE(st_error(huge).find("not a safetensors file or truncated"), std::string::npos);
  // Every prefix of the real checkpoint's first kilobyte fails cleanly.
  const std::vector<uint8_t> real = test::read_bytes(test::fixture("tiny_llama/model.safetensors"));
  for (size_t n = 0; n < 1024; ++n) {
    const std::vector<uint8_t> prefix(real.begin(), real.begin() + n);
    EXPECT_NE(st_error(prefix), "") << n;
  }
}
