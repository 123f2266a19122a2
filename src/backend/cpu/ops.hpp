#pragma once
// The element-wise and attention operations of a Llama block, on f32 activations.
#include <cstdint>
#include <vector>

namespace ik::backend {

// out[i] = x[i] / rms(x) * weight[i] over rows of n (x and out may alias).
void rms_norm(const float* x, const float* weight, float* out, int64_t rows, int64_t n, float eps);

// Rotary embedding. Pairs are (2i, 2i+1) for GGUF Llama weights (llama.cpp "norm" layout,
// the converter permuted Q/K for it) and (i, i + d/2) for Hugging Face weights ("neox").
enum class RopeLayout { Adjacent, Half };
struct Rope {
  RopeLayout layout = RopeLayout::Adjacent;
  std::vector<float> inv_freq;  // head_dim/2 frequencies, scaling already applied
  // theta_i = base^(-2i/d) / freq_factor_i / linear_factor
  static Rope make(int head_dim, double base, double linear_factor,
                   const std::vector<float>& freq_factors, RopeLayout layout);
  // Rotate n_heads heads of head_dim in x[rows, n_heads*head_dim]; row r has position pos[r].
  void apply(float* x, int64_t rows, int n_heads, int head_dim, const int32_t* pos) const;
};

// out = silu(gate) * up, element-wise over n (out may alias gate).
void silu_mul(const float* gate, const float* up, float* out, int64_t n);

// y += x over n.
void add_inplace(float* y, const float* x, int64_t n);

// Grouped-query attention for m new queries whose keys/values are already in the cache.
// q, out: [m, n_head*head_dim]. k_cache, v_cache: [n_keys, n_kv*head_dim] for one layer,
// rows 0..n_keys-1 valid; query i sits at cache row n_past + i.
// Mask: query i sees all rows < n_past; among the m new rows it sees row j when
// tree_mask[i*m + j] != 0, or j <= i when tree_mask is null (causal).
void attention(const float* q, const float* k_cache, const float* v_cache, float* out, int64_t m,
               int64_t n_past, int n_head, int n_kv, int head_dim, const uint8_t* tree_mask = nullptr);

// In-place softmax over n.
void softmax(float* x, int64_t n);

}  // namespace ik::backend
