#pragma once
// Test-only: single-rank causal attention computed directly (double precision, two-pass
// softmax), the independent reference for the sharded kernels, and random inputs.
#include <cmath>
#include <vector>

#include "core/rng.hpp"
#include "dist/cp_attention.hpp"

namespace ik::dist::testing {

inline std::vector<float> random_rows(int64_t rows, int64_t width, uint64_t seed) {
  Rng rng(seed, 7);
  std::vector<float> x(size_t(rows * width));
  for (auto& e : x) e = float(rng.normal());
  return x;
}

// q, out: [T][n_head][hd]; k, v: [T][n_kv][hd]; query t sees keys 0..t.
inline std::vector<float> causal_attention(const std::vector<float>& q, const std::vector<float>& k,
                                           const std::vector<float>& v, int64_t T, const AttnShape& s) {
  const int hd = s.head_dim, group = s.n_head / s.n_kv;
  std::vector<float> out(q.size());
  std::vector<double> w(T);
  for (int64_t t = 0; t < T; ++t)
    for (int h = 0; h < s.n_head; ++h) {
      const int g = h / group;
      const float* qv = &q[(t * s.n_head + h) * hd];
      double mx = -1e300;
      for (int64_t j = 0; j <= t; ++j) {
        double d = 0;
        for (int e = 0; e < hd; ++e) d += double(qv[e]) * k[(j * s.n_kv + g) * hd + e];
        w[j] = d / std::sqrt(double(hd));
        mx = std::max(mx, w[j]);
      }
      double z = 0;
      for (int64_t j = 0; j <= t; ++j) z += (w[j] = std::exp(w[j] - mx));
      for (int e = 0; e < hd; ++e) {
        double acc = 0;
        for (int64_t j = 0; j <= t; ++j) acc += w[j] * v[(j * s.n_kv + g) * hd + e];
        out[(t * s.n_head + h) * hd + e] = float(acc / z);
      }
    }
  return out;
}

// Shards the full inputs for this rank, runs cp_attention, gathers the output back.
inline std::vector<float> sharded_attention(Comm& comm, Layout layout, int64_t T, const AttnShape& s,
                                            const std::vector<float>& q, const std::vector<float>& k,
                                            const std::vector<float>& v) {
  const int P = comm.size(), me = comm.rank();
  const int64_t qw = int64_t(s.n_head) * s.head_dim, kw = int64_t(s.n_kv) * s.head_dim;
  const auto ql = shard_rows(layout, P, me, T, q, qw);
  const auto kl = shard_rows(layout, P, me, T, k, kw);
  const auto vl = shard_rows(layout, P, me, T, v, kw);
  std::vector<float> out(ql.size());
  cp_attention(comm, layout, T, s, ql, kl, vl, out);
  return gather_rows(comm, layout, T, out, qw);
}

}  // namespace ik::dist::testing
