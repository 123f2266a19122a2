#pragma once
// A Llama with random weights (seeded), written as GGUF bytes: tests use tiny ones, the
// tensor-parallel benchmark uses large layers (e.g. Llama-3-8B shapes) without a download.
#include <cstdint>
#include <vector>

#include "io/dtype.hpp"

namespace ik::llm {

struct RandomLlamaDims {
  int n_head = 12, n_kv = 6, head_dim = 16, n_layer = 4;
  int64_t n_ff = 384, n_vocab = 70;
  int64_t embd() const { return int64_t(n_head) * head_dim; }
};

// Matrices stored as `type` (F32, Q8_0 or Q4_1), norms and the embedding as F32. Weights are
// normal with standard deviation ~1/sqrt(fan-in) so activations stay O(1) through the layers.
std::vector<uint8_t> random_llama_gguf(const RandomLlamaDims& d, uint64_t seed, io::DType type);

// Q4_1 blocks as llama.cpp's reference quantizer makes them (offset = min, scale = (max - min) / 15).
std::vector<uint8_t> quantize_q4_1(const std::vector<float>& x);

}  // namespace ik::llm
