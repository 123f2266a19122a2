#pragma once
// A random f32 Llama GGUF (4 heads of 16, 2 KV heads) for the quantization tests.
#include <string>
#include <vector>

#include "core/rng.hpp"
#include "io/gguf.hpp"

namespace ik::test {

struct TinyLlamaSpec {
  int64_t embd = 64, ff = 128, vocab = 50, layers = 2;
  uint64_t seed = 42;
  float weight_sd = 0.2f;
  bool separate_output = false;  // an output.weight head instead of tied embeddings
};

inline void add_random_f32(io::GgufWriter& w, Rng& rng, const std::string& name, std::vector<int64_t> shape,
                           float mean, float sd) {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  std::vector<float> v(n);
  for (auto& x : v) x = mean + sd * float(rng.normal());
  w.add_tensor(name, shape, io::DType::F32, v.data(), v.size() * 4);
}

inline std::string write_tiny_llama(const std::string& path, const TinyLlamaSpec& s = {}) {
  Rng rng(s.seed, 0);
  io::GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_u32("llama.block_count", uint32_t(s.layers));
  w.set_u32("llama.embedding_length", uint32_t(s.embd));
  w.set_u32("llama.feed_forward_length", uint32_t(s.ff));
  w.set_u32("llama.attention.head_count", 4);
  w.set_u32("llama.attention.head_count_kv", 2);
  w.set_u32("llama.context_length", 128);
  w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  add_random_f32(w, rng, "token_embd.weight", {s.embd, s.vocab}, 0, 1);
  if (s.separate_output) add_random_f32(w, rng, "output.weight", {s.embd, s.vocab}, 0, 0.3f);
  add_random_f32(w, rng, "output_norm.weight", {s.embd}, 1, 0.1f);
  const int64_t kv = s.embd / 2;  // 2 of 4 heads
  for (int l = 0; l < s.layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    add_random_f32(w, rng, p + "attn_norm.weight", {s.embd}, 1, 0.1f);
    add_random_f32(w, rng, p + "ffn_norm.weight", {s.embd}, 1, 0.1f);
    add_random_f32(w, rng, p + "attn_q.weight", {s.embd, s.embd}, 0, s.weight_sd);
    add_random_f32(w, rng, p + "attn_k.weight", {s.embd, kv}, 0, s.weight_sd);
    add_random_f32(w, rng, p + "attn_v.weight", {s.embd, kv}, 0, s.weight_sd);
    add_random_f32(w, rng, p + "attn_output.weight", {s.embd, s.embd}, 0, s.weight_sd);
    add_random_f32(w, rng, p + "ffn_gate.weight", {s.embd, s.ff}, 0, s.weight_sd);
    add_random_f32(w, rng, p + "ffn_up.weight", {s.embd, s.ff}, 0, s.weight_sd);
    add_random_f32(w, rng, p + "ffn_down.weight", {s.ff, s.embd}, 0, s.weight_sd);
  }
  w.write(path);
  return path;
}

}  // namespace ik::test
