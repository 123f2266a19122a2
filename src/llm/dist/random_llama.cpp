#include "llm/dist/random_llama.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "backend/cpu/matmul.hpp"
#include "backend/cpu/quant_dot.hpp"
#include "core/error.hpp"
#include "core/fp16.hpp"
#include "core/rng.hpp"
#include "io/gguf.hpp"

namespace ik::llm {

std::vector<uint8_t> quantize_q4_1(const std::vector<float>& x) {
  std::vector<uint8_t> out(x.size() / 32 * sizeof(backend::BlockQ4_1));
  auto* blocks = reinterpret_cast<backend::BlockQ4_1*>(out.data());
  for (size_t b = 0; b < x.size() / 32; ++b) {
    const float* v = x.data() + b * 32;
    const auto [lo, hi] = std::minmax_element(v, v + 32);
    const float d = (*hi - *lo) / 15.0f, id = d ? 1.0f / d : 0.0f;
    blocks[b].d = f32_to_fp16(d);
    blocks[b].m = f32_to_fp16(*lo);
    for (int i = 0; i < 16; ++i) {
      const int q0 = std::min(15, int(std::lround((v[i] - *lo) * id)));
      const int q1 = std::min(15, int(std::lround((v[i + 16] - *lo) * id)));
      blocks[b].qs[i] = uint8_t(q0 | (q1 << 4));
    }
  }
  return out;
}

std::vector<uint8_t> random_llama_gguf(const RandomLlamaDims& d, uint64_t seed, io::DType type) {
  IK_CHECK(type == io::DType::F32 || type == io::DType::Q8_0 || type == io::DType::Q4_1,
           "random model: type {} not supported (F32, Q8_0, Q4_1)", io::dtype_name(type));
  Rng rng(seed, 0);
  io::GgufWriter w;
  const int64_t E = d.embd(), Q = E, KV = int64_t(d.n_kv) * d.head_dim;
  w.set_string("general.architecture", "llama");
  w.set_string("general.name", "random");
  w.set_u32("llama.block_count", d.n_layer);
  w.set_u32("llama.embedding_length", uint32_t(E));
  w.set_u32("llama.feed_forward_length", uint32_t(d.n_ff));
  w.set_u32("llama.attention.head_count", d.n_head);
  w.set_u32("llama.attention.head_count_kv", d.n_kv);
  w.set_u32("llama.context_length", 4096);
  w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  auto add = [&](const std::string& name, int64_t cols, int64_t rows, float sd, bool matrix) {
    std::vector<float> v(cols * rows);
    for (auto& x : v) x = sd * float(rng.normal());
    if (!matrix || type == io::DType::F32) return w.add_tensor(name, {cols, rows}, io::DType::F32, v.data(), v.size() * 4);
    std::vector<uint8_t> q;
    if (type == io::DType::Q4_1) {
      q = quantize_q4_1(v);
    } else {
      q.resize(v.size() / 32 * sizeof(backend::BlockQ8_0));
      backend::quantize_q8_0(v.data(), q.data(), int64_t(v.size()));
    }
    w.add_tensor(name, {cols, rows}, type, q.data(), q.size());
  };
  auto add_norm = [&](const std::string& name, int64_t n) {
    std::vector<float> v(n);
    for (auto& x : v) x = 1.0f + 0.1f * float(rng.normal());
    w.add_tensor(name, {n}, io::DType::F32, v.data(), v.size() * 4);
  };
  add("token_embd.weight", E, d.n_vocab, 1, false);
  add_norm("output_norm.weight", E);
  add("output.weight", E, d.n_vocab, 0.2f, true);
  const float s = 1.0f / std::sqrt(float(E));
  for (int l = 0; l < d.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    add_norm(p + "attn_norm.weight", E);
    add_norm(p + "ffn_norm.weight", E);
    add(p + "attn_q.weight", E, Q, 2 * s, true);
    add(p + "attn_k.weight", E, KV, 2 * s, true);
    add(p + "attn_v.weight", E, KV, s, true);
    add(p + "attn_output.weight", Q, E, s, true);
    add(p + "ffn_gate.weight", E, d.n_ff, s, true);
    add(p + "ffn_up.weight", E, d.n_ff, s, true);
    add(p + "ffn_down.weight", d.n_ff, E, 1.0f / std::sqrt(float(d.n_ff)), true);
  }
  return w.to_bytes();
}

}  // namespace ik::llm
