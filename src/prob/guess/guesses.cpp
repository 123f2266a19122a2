#include "prob/guess/guesses.hpp"

#include <algorithm>
#include <cblas.h>

#include <cmath>
#include <cstdint>

#include "core/error.hpp"

namespace ik::guess {

const std::vector<Family>& all_families() {
  static const std::vector<Family> all = {Family::directional, Family::act_pert, Family::wt,
                                          Family::downstream, Family::act_mix};
  return all;
}

std::string family_name(Family f) {
  switch (f) {
    case Family::directional: return "directional";
    case Family::act_pert: return "act-pert";
    case Family::wt: return "wt";
    case Family::downstream: return "downstream";
    case Family::act_mix: return "act-mix";
  }
  return "?";
}

Family parse_family(const std::string& name) {
  for (Family f : all_families())
    if (family_name(f) == name) return f;
  fail("unknown guess family '{}' (valid: directional, act-pert, wt, downstream, act-mix)", name);
}

// How many layers above layer i the family pulls its noise back through.
static int pull_back_depth(Family family, const Mlp& net, int i) {
  const int wanted = family == Family::wt ? 1 : family == Family::downstream ? 2 : 0;
  return std::min(wanted, net.layers() - 1 - i);
}

// Standard normals in float: Box-Muller on the two 32-bit halves of one 64-bit draw
// (directional guesses need P of them per guess, so this is the hot loop there).
static void fill_normal(Rng& rng, float* p, size_t n) {
  constexpr float two_pi = 6.28318530717958647692f, inv_2_32 = 0x1.0p-32f;
  for (size_t j = 0; j < n; j += 2) {
    const uint64_t bits = rng.next_u64();
    const float u1 = (float(uint32_t(bits >> 32)) + 0.5f) * inv_2_32;  // in (0, 1)
    const float u2 = float(uint32_t(bits)) * inv_2_32;
    const float r = std::sqrt(-2.0f * std::log(u1));
    p[j] = r * std::cos(two_pi * u2);
    if (j + 1 < n) p[j + 1] = r * std::sin(two_pi * u2);
  }
}

// A guess of dL/ds_i for every example: noise at s_{i+depth}, pulled back through
// W_{i+depth}^T ... W_{i+1}^T and the ReLU masks in between. Returns [batch x out(i)].
static std::vector<float> guessed_delta(const Mlp& net, const Forward& f, int i, int depth, Rng& rng) {
  const int B = f.batch;
  std::vector<float> e(size_t(B) * net.out(i + depth));
  fill_normal(rng, e.data(), e.size());
  for (int j = i + depth; j > i; --j) {
    std::vector<float> pulled(size_t(B) * net.in(j));
    gemm(false, false, B, net.in(j), net.out(j), 1.0f, e.data(), net.W(j), 0.0f, pulled.data());
    const std::vector<float>& s_below = f.s[j - 1];
    for (size_t t = 0; t < pulled.size(); ++t) pulled[t] = s_below[t] > 0 ? pulled[t] : 0.0f;
    e = std::move(pulled);
  }
  return e;
}

void draw_guess(Family family, const Mlp& net, const Forward& f, Rng& rng, std::vector<float>& y) {
  y.assign(net.size(), 0.0f);
  if (family == Family::directional) {
    fill_normal(rng, y.data(), y.size());
    return;
  }
  const int B = f.batch;
  for (int i = 0; i < net.layers(); ++i) {
    float* dW = y.data() + net.offset(i);
    float* db = dW + size_t(net.out(i)) * net.in(i);
    const float* x = f.x[i].data();
    if (family == Family::act_mix) {
      // Rank one: a random output vector times a random mix of the batch's inputs.
      std::vector<float> mix(B), e(net.out(i)), a(net.in(i), 0.0f);
      fill_normal(rng, mix.data(), B);
      fill_normal(rng, e.data(), e.size());
      float mix_sum = 0;
      for (int r = 0; r < B; ++r) {
        mix_sum += mix[r];
        for (int c = 0; c < net.in(i); ++c) a[c] += mix[r] * x[size_t(r) * net.in(i) + c];
      }
      for (int o = 0; o < net.out(i); ++o) {
        for (int c = 0; c < net.in(i); ++c) dW[size_t(o) * net.in(i) + c] = e[o] * a[c];
        db[o] = e[o] * mix_sum;
      }
      continue;
    }
    const std::vector<float> delta = guessed_delta(net, f, i, pull_back_depth(family, net, i), rng);
    gemm(true, false, net.out(i), net.in(i), B, 1.0f, delta.data(), x, 0.0f, dW);
    for (int r = 0; r < B; ++r)
      for (int o = 0; o < net.out(i); ++o) db[o] += delta[size_t(r) * net.out(i) + o];
  }
}

// v <- J^T v (push up through W_{i+1} .. W_{i+depth}) or v <- J v (pull back down), one example r.
static std::vector<float> push_up(const Mlp& net, const Forward& f, int i, int depth, int r,
                                  std::vector<float> v) {
  for (int j = i + 1; j <= i + depth; ++j) {
    const float* s_below = f.s[j - 1].data() + size_t(r) * net.in(j);
    std::vector<float> up(net.out(j), 0.0f);
    for (int o = 0; o < net.out(j); ++o) {
      double acc = 0;
      for (int c = 0; c < net.in(j); ++c)
        if (s_below[c] > 0) acc += double(net.W(j)[size_t(o) * net.in(j) + c]) * v[c];
      up[o] = static_cast<float>(acc);
    }
    v = std::move(up);
  }
  return v;
}

static std::vector<float> pull_down(const Mlp& net, const Forward& f, int i, int depth, int r,
                                    std::vector<float> v) {
  for (int j = i + depth; j > i; --j) {
    const float* s_below = f.s[j - 1].data() + size_t(r) * net.in(j);
    std::vector<float> down(net.in(j), 0.0f);
    for (int c = 0; c < net.in(j); ++c) {
      if (s_below[c] <= 0) continue;
      double acc = 0;
      for (int o = 0; o < net.out(j); ++o) acc += double(net.W(j)[size_t(o) * net.in(j) + c]) * v[o];
      down[c] = static_cast<float>(acc);
    }
    v = std::move(down);
  }
  return v;
}

std::vector<float> expected_estimate(Family family, const Mlp& net, const Forward& f,
                                     const std::vector<float>& g) {
  IK_CHECK(g.size() == net.size(), "gradient has {} entries, the network {}", g.size(), net.size());
  if (family == Family::directional) return g;
  std::vector<float> out(net.size(), 0.0f);
  for (int i = 0; i < net.layers(); ++i) {
    const int depth = family == Family::act_mix ? 0 : pull_back_depth(family, net, i);
    const int n_in = net.in(i), n_out = net.out(i);
    const float* G = g.data() + net.offset(i);
    const float* Gb = G + size_t(n_out) * n_in;
    float* oW = out.data() + net.offset(i);
    float* ob = oW + size_t(n_out) * n_in;
    for (int r = 0; r < f.batch; ++r) {
      const float* x = f.x[i].data() + size_t(r) * n_in;
      std::vector<float> v(n_out);  // G~ x~_r
      for (int o = 0; o < n_out; ++o) {
        double acc = Gb[o];
        for (int c = 0; c < n_in; ++c) acc += double(G[size_t(o) * n_in + c]) * x[c];
        v[o] = static_cast<float>(acc);
      }
      // J J^T v: J^T pushes v up to s_{i+depth} (mask, then W), J pulls it back (W^T, then mask).
      if (depth > 0) {
        std::vector<float> masked = v;
        const float* s_i = f.s[i].data() + size_t(r) * n_out;
        for (int o = 0; o < n_out; ++o) masked[o] = s_i[o] > 0 ? masked[o] : 0.0f;
        v = pull_down(net, f, i, depth, r, push_up(net, f, i, depth, r, masked));
        for (int o = 0; o < n_out; ++o) v[o] = s_i[o] > 0 ? v[o] : 0.0f;
      }
      for (int o = 0; o < n_out; ++o) {
        for (int c = 0; c < n_in; ++c) oW[size_t(o) * n_in + c] += v[o] * x[c];
        ob[o] += v[o];
      }
    }
  }
  return out;
}

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  IK_CHECK(a.size() == b.size(), "dot of vectors of sizes {} and {}", a.size(), b.size());
  return cblas_dsdot(int(a.size()), a.data(), 1, b.data(), 1);  // accumulates in double
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  const double na = std::sqrt(dot(a, a)), nb = std::sqrt(dot(b, b));
  return na > 0 && nb > 0 ? dot(a, b) / (na * nb) : 0.0;
}

}  // namespace ik::guess
