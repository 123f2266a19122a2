#include "backend/cpu/ops.hpp"

#include <algorithm>
#include <cmath>
#include <omp.h>

#include "backend/cpu/simd.hpp"

namespace ik::backend {

void rms_norm(const float* x, const float* weight, float* out, int64_t rows, int64_t n, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* o = out + r * n;
    double ss = 0;  // double: the sum of squares of a few thousand values
    for (int64_t i = 0; i < n; ++i) ss += double(xr[i]) * xr[i];
    const float scale = float(1.0 / std::sqrt(ss / double(n) + eps));
    for (int64_t i = 0; i < n; ++i) o[i] = xr[i] * scale * weight[i];
  }
}

Rope Rope::make(int head_dim, double base, double linear_factor, const std::vector<float>& freq_factors,
                RopeLayout layout) {
  Rope r;
  r.layout = layout;
  r.inv_freq.resize(head_dim / 2);
  for (int i = 0; i < head_dim / 2; ++i) {
    double f = std::pow(base, -2.0 * i / head_dim) / linear_factor;
    if (!freq_factors.empty()) f /= freq_factors[i];
    r.inv_freq[i] = float(f);
  }
  return r;
}

void Rope::apply(float* x, int64_t rows, int n_heads, int head_dim, const int32_t* pos) const {
  const int half = head_dim / 2;
  for (int64_t r = 0; r < rows; ++r) {
    for (int i = 0; i < half; ++i) {
      // The angle in double, then rounded: matches float32 reference implementations closely.
      const double theta = double(pos[r]) * double(inv_freq[i]);
      const float c = float(std::cos(theta)), s = float(std::sin(theta));
      for (int h = 0; h < n_heads; ++h) {
        float* v = x + r * int64_t(n_heads) * head_dim + int64_t(h) * head_dim;
        const int a = layout == RopeLayout::Adjacent ? 2 * i : i;
        const int b = layout == RopeLayout::Adjacent ? 2 * i + 1 : i + half;
        const float x0 = v[a], x1 = v[b];
        v[a] = x0 * c - x1 * s;
        v[b] = x0 * s + x1 * c;
      }
    }
  }
}

void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void add_inplace(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

void softmax(float* x, int64_t n) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = float(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void attention(const float* q, const float* k_cache, const float* v_cache, float* out, int64_t m, int64_t n_past,
               int n_head, int n_kv, int head_dim, const uint8_t* tree_mask) {
  const int group = n_head / n_kv;
  const int64_t kv_stride = int64_t(n_kv) * head_dim;
  const int64_t q_stride = int64_t(n_head) * head_dim;
  const float scale = 1.0f / std::sqrt(float(head_dim));
  const int64_t n_keys = n_past + m;
#pragma omp parallel
  {
    std::vector<float> score(n_keys);
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int64_t i = 0; i < m; ++i) {
      for (int h = 0; h < n_head; ++h) {
        const float* qi = q + i * q_stride + int64_t(h) * head_dim;
        const int kvh = h / group;
        const int64_t visible_end = tree_mask ? n_keys : n_past + i + 1;
        float mx = -INFINITY;
        for (int64_t j = 0; j < visible_end; ++j) {
          if (tree_mask && j >= n_past && !tree_mask[i * m + (j - n_past)]) {
            score[j] = -INFINITY;
            continue;
          }
          score[j] = dot_f32(qi, k_cache + j * kv_stride + int64_t(kvh) * head_dim, head_dim) * scale;
          mx = std::max(mx, score[j]);
        }
        float sum = 0;
        for (int64_t j = 0; j < visible_end; ++j) {
          score[j] = score[j] == -INFINITY ? 0.0f : std::exp(score[j] - mx);
          sum += score[j];
        }
        float* o = out + i * q_stride + int64_t(h) * head_dim;
        std::fill(o, o + head_dim, 0.0f);
        for (int64_t j = 0; j < visible_end; ++j) {
          if (score[j] == 0.0f) continue;
          axpy_f32(score[j] / sum, v_cache + j * kv_stride + int64_t(kvh) * head_dim, o, head_dim);
        }
      }
    }
  }
}

}  // namespace ik::backend
