#include "llm/train/ops.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.hpp"

namespace ik::llm::train {

// Below this many elements a loop runs on one thread (thread start-up would cost more).
constexpr int64_t kParallelMin = 1 << 14;

// ---- linear ----------------------------------------------------------------------------------

void linear_forward(const float* x, const float* w, const float* b, float* y, int64_t m, int64_t k, int64_t n) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(n), int(k), 1.0f, x, int(k), w, int(k), 0.0f, y,
              int(n));
  if (!b) return;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) y[i * n + j] += b[j];
}

void linear_backward(const float* x, const float* w, const float* dy, float* dx, float* dw, float* db, int64_t m,
                     int64_t k, int64_t n) {
  if (dx)  // dx[m,k] += dy[m,n] W[n,k]
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(m), int(k), int(n), 1.0f, dy, int(n), w, int(k), 1.0f,
                dx, int(k));
  if (dw)  // dW[n,k] += dy^T[n,m] x[m,k]
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(n), int(k), int(m), 1.0f, dy, int(n), x, int(k), 1.0f,
                dw, int(k));
  if (db)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) db[j] += dy[i * n + j];
}

// ---- RMSNorm ---------------------------------------------------------------------------------

// y_j = x_j r w_j with r = (mean(x^2) + eps)^(-1/2), dr/dx_j = -r^3 x_j / n, so
// dx_j = r w_j dy_j - (r^3 / n) x_j sum_i dy_i w_i x_i.
void rms_norm_backward(const float* x, const float* weight, const float* dy, float* dx, float* dweight, int64_t m,
                       int64_t n, float eps) {
  for (int64_t row = 0; row < m; ++row) {
    const float* xr = x + row * n;
    const float* dyr = dy + row * n;
    double ss = 0, dot = 0;
    for (int64_t i = 0; i < n; ++i) {
      ss += double(xr[i]) * xr[i];
      dot += double(dyr[i]) * weight[i] * xr[i];
    }
    const double r = 1.0 / std::sqrt(ss / double(n) + eps);
    if (dx) {
      float* dxr = dx + row * n;
      const double c = r * r * r / double(n) * dot;
      for (int64_t i = 0; i < n; ++i) dxr[i] += float(r * weight[i] * dyr[i] - c * xr[i]);
    }
    if (dweight)
      for (int64_t i = 0; i < n; ++i) dweight[i] += float(dyr[i] * xr[i] * r);
  }
}

// ---- RoPE ------------------------------------------------------------------------------------

// Forward per pair: (a, b) -> (a c - b s, a s + b c). Its transpose rotates by -theta:
// (da, db) <- (dy0 c + dy1 s, -dy0 s + dy1 c). Angles as in backend::Rope::apply.
void rope_backward(const backend::Rope& rope, float* d, int64_t m, int n_heads, int head_dim, const int32_t* pos) {
  const int half = head_dim / 2;
  const bool adjacent = rope.layout == backend::RopeLayout::Adjacent;
  for (int64_t r = 0; r < m; ++r) {
    for (int i = 0; i < half; ++i) {
      const double theta = double(pos[r]) * double(rope.inv_freq[i]);
      const float c = float(std::cos(theta)), s = float(std::sin(theta));
      const int a = adjacent ? 2 * i : i;
      const int b = adjacent ? 2 * i + 1 : i + half;
      for (int h = 0; h < n_heads; ++h) {
        float* v = d + r * int64_t(n_heads) * head_dim + int64_t(h) * head_dim;
        const float d0 = v[a], d1 = v[b];
        v[a] = d0 * c + d1 * s;
        v[b] = -d0 * s + d1 * c;
      }
    }
  }
}

// ---- attention -------------------------------------------------------------------------------
// Per query head, as gemms over strided views: S = Q_h K_g^T / sqrt(d), P = masked softmax(S),
// O_h = P V_g (g = the head's kv group). The causal waste (half of S) is cheaper than
// per-row dot products at these sizes.

namespace {
bool visible(const AttentionShape& s, const uint8_t* mask, int64_t i, int64_t j) {
  return mask ? mask[i * s.n_keys + j] != 0 : j <= s.n_keys - s.m + i;
}
}  // namespace

void attention_forward(const AttentionShape& s, const float* q, const float* k, const float* v, float* out,
                       float* probs, const uint8_t* mask) {
  IK_CHECK(s.n_kv > 0 && s.n_head % s.n_kv == 0, "attention: {} heads not a multiple of {} kv heads", s.n_head, s.n_kv);
  IK_CHECK(s.n_keys >= s.m, "attention: {} queries but only {} keys", s.m, s.n_keys);
  const int64_t qs = int64_t(s.n_head) * s.head_dim, ks = int64_t(s.n_kv) * s.head_dim;
  const int group = s.n_head / s.n_kv;
  const float scale = 1.0f / std::sqrt(float(s.head_dim));
  std::vector<float> local;
  if (!probs) local.resize(s.m * s.n_keys);
  for (int h = 0; h < s.n_head; ++h) {
    const float* qh = q + int64_t(h) * s.head_dim;
    const float* kg = k + int64_t(h / group) * s.head_dim;
    const float* vg = v + int64_t(h / group) * s.head_dim;
    float* p = probs ? probs + int64_t(h) * s.m * s.n_keys : local.data();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(s.m), int(s.n_keys), s.head_dim, scale, qh, int(qs), kg,
                int(ks), 0.0f, p, int(s.n_keys));
#pragma omp parallel for schedule(static) if (s.m * s.n_keys >= kParallelMin)
    for (int64_t i = 0; i < s.m; ++i) {
      float* row = p + i * s.n_keys;
      float mx = -INFINITY;
      for (int64_t j = 0; j < s.n_keys; ++j)
        if (visible(s, mask, i, j)) mx = std::max(mx, row[j]);
      double sum = 0;
      for (int64_t j = 0; j < s.n_keys; ++j) {
        row[j] = visible(s, mask, i, j) ? std::exp(row[j] - mx) : 0.0f;
        sum += row[j];
      }
      const float inv = sum > 0 ? float(1.0 / sum) : 0.0f;
      for (int64_t j = 0; j < s.n_keys; ++j) row[j] *= inv;
    }
    float* oh = out + int64_t(h) * s.head_dim;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(s.m), s.head_dim, int(s.n_keys), 1.0f, p,
                int(s.n_keys), vg, int(ks), 0.0f, oh, int(qs));
  }
}

// dP = dO V^T; dS = P * (dP - rowsum(P * dP)); dQ += scale dS K; dK += scale dS^T Q; dV += P^T dO.
void attention_backward(const AttentionShape& s, const float* q, const float* k, const float* v, const float* probs,
                        const float* dout, float* dq, float* dk, float* dv) {
  const int64_t qs = int64_t(s.n_head) * s.head_dim, ks = int64_t(s.n_kv) * s.head_dim;
  const int group = s.n_head / s.n_kv;
  const float scale = 1.0f / std::sqrt(float(s.head_dim));
  std::vector<float> ds(s.m * s.n_keys);
  for (int h = 0; h < s.n_head; ++h) {
    const int64_t qo = int64_t(h) * s.head_dim, ko = int64_t(h / group) * s.head_dim;
    const float* p = probs + int64_t(h) * s.m * s.n_keys;
    if (dv)
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(s.n_keys), s.head_dim, int(s.m), 1.0f, p,
                  int(s.n_keys), dout + qo, int(qs), 1.0f, dv + ko, int(ks));
    if (!dq && !dk) continue;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(s.m), int(s.n_keys), s.head_dim, 1.0f, dout + qo,
                int(qs), v + ko, int(ks), 0.0f, ds.data(), int(s.n_keys));
#pragma omp parallel for schedule(static) if (s.m * s.n_keys >= kParallelMin)
    for (int64_t i = 0; i < s.m; ++i) {
      const float* pr = p + i * s.n_keys;
      float* dr = ds.data() + i * s.n_keys;
      double dot = 0;
      for (int64_t j = 0; j < s.n_keys; ++j) dot += double(pr[j]) * dr[j];
      for (int64_t j = 0; j < s.n_keys; ++j) dr[j] = pr[j] * (dr[j] - float(dot));
    }
    if (dq)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(s.m), s.head_dim, int(s.n_keys), scale, ds.data(),
                  int(s.n_keys), k + ko, int(ks), 1.0f, dq + qo, int(qs));
    if (dk)
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(s.n_keys), s.head_dim, int(s.m), scale, ds.data(),
                  int(s.n_keys), q + qo, int(qs), 1.0f, dk + ko, int(ks));
  }
}

// ---- element-wise ----------------------------------------------------------------------------

// silu(g) = g sigma(g); silu'(g) = sigma(g) (1 + g (1 - sigma(g))).
void silu_mul_backward(const float* gate, const float* up, const float* dout, float* dgate, float* dup, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    const float sig = 1.0f / (1.0f + std::exp(-g));
    if (dgate) dgate[i] += dout[i] * up[i] * sig * (1.0f + g * (1.0f - sig));
    if (dup) dup[i] += dout[i] * g * sig;
  }
}

void embedding_forward(const float* table, int64_t n_vocab, const int32_t* tokens, int64_t m, int64_t dim,
                       float* out) {
  for (int64_t i = 0; i < m; ++i) {
    IK_CHECK(tokens[i] >= 0 && tokens[i] < n_vocab, "token id {} outside the vocabulary ({})", tokens[i], n_vocab);
    std::memcpy(out + i * dim, table + int64_t(tokens[i]) * dim, sizeof(float) * dim);
  }
}

void embedding_backward(const int32_t* tokens, int64_t m, int64_t dim, const float* dout, float* dtable) {
  for (int64_t i = 0; i < m; ++i) {
    float* row = dtable + int64_t(tokens[i]) * dim;
    for (int64_t j = 0; j < dim; ++j) row[j] += dout[i * dim + j];
  }
}

void residual_backward(const float* dy, float* da, float* db, int64_t n) {
  if (da)
    for (int64_t i = 0; i < n; ++i) da[i] += dy[i];
  if (db)
    for (int64_t i = 0; i < n; ++i) db[i] += dy[i];
}

// ---- losses ----------------------------------------------------------------------------------

void softmax_rows(const float* logits, float* probs, int64_t m, int64_t vocab, float temperature) {
  const float inv_t = 1.0f / temperature;
#pragma omp parallel for schedule(static) if (m * vocab >= kParallelMin)
  for (int64_t i = 0; i < m; ++i) {
    float* p = probs + i * vocab;
    for (int64_t j = 0; j < vocab; ++j) p[j] = logits[i * vocab + j] * inv_t;
    backend::softmax(p, vocab);
  }
}

namespace {
// log sum_j exp(z_j), stable.
double log_sum_exp(const float* z, int64_t n) {
  float mx = -INFINITY;
  for (int64_t j = 0; j < n; ++j) mx = std::max(mx, z[j]);
  double sum = 0;
  for (int64_t j = 0; j < n; ++j) sum += std::exp(double(z[j]) - mx);
  return mx + std::log(sum);
}
}  // namespace

double cross_entropy(const float* logits, const int32_t* targets, int64_t m, int64_t vocab, float* dlogits) {
  int64_t scored = 0;
  for (int64_t i = 0; i < m; ++i) {
    IK_CHECK(targets[i] < vocab, "cross_entropy: target {} outside the vocabulary ({})", targets[i], vocab);
    scored += targets[i] >= 0;
  }
  double total = 0;
  const double inv = scored ? 1.0 / double(scored) : 0.0;
#pragma omp parallel for schedule(static) reduction(+ : total) if (m * vocab >= kParallelMin)
  for (int64_t i = 0; i < m; ++i) {
    const float* z = logits + i * vocab;
    float* d = dlogits ? dlogits + i * vocab : nullptr;
    if (targets[i] < 0) {
      if (d) std::fill(d, d + vocab, 0.0f);
      continue;
    }
    const double lse = log_sum_exp(z, vocab);
    total += lse - z[targets[i]];
    if (!d) continue;
    for (int64_t j = 0; j < vocab; ++j) d[j] = float(std::exp(double(z[j]) - lse) * inv);
    d[targets[i]] -= float(inv);
  }
  return total * inv;
}

double soft_cross_entropy(const float* logits, const float* target_probs, int64_t m, int64_t vocab, float* dlogits) {
  double total = 0;
  const double inv = m ? 1.0 / double(m) : 0.0;
#pragma omp parallel for schedule(static) reduction(+ : total) if (m * vocab >= kParallelMin)
  for (int64_t i = 0; i < m; ++i) {
    const float* z = logits + i * vocab;
    const float* p = target_probs + i * vocab;
    const double lse = log_sum_exp(z, vocab);
    double row = 0, mass = 0;
    for (int64_t j = 0; j < vocab; ++j) {
      row += double(p[j]) * (lse - z[j]);
      mass += p[j];
    }
    total += row;
    if (!dlogits) continue;
    // d/dz_j of sum_k p_k (lse - z_k) = mass softmax_j - p_j (mass = 1 for a distribution).
    float* d = dlogits + i * vocab;
    for (int64_t j = 0; j < vocab; ++j) d[j] = float((mass * std::exp(double(z[j]) - lse) - p[j]) * inv);
  }
  return total * inv;
}

}  // namespace ik::llm::train
