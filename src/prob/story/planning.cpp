#include "prob/story/planning.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <immintrin.h>
#include <unistd.h>

#include "core/error.hpp"

namespace ik::story {

namespace {

constexpr int rhos[4] = {-3, -1, 1, 3};

double cost(const PlanSettings& ps, int a) { return a == stay ? ps.cost_stay : ps.cost_move; }
bool a_at(const State& s, Goal g) { return s.ax == g.x && s.ay == g.y; }

void softmax(const double* q, double beta, double* p) {
  const double m = *std::max_element(q, q + num_actions);
  double z = 0;
  for (int a = 0; a < num_actions; ++a) z += p[a] = std::exp(beta * (q[a] - m));
  for (int a = 0; a < num_actions; ++a) p[a] /= z;
}

// A float array whose rows of L values start on cache lines.
template <int L>
struct Rows {
  std::vector<float> data;
  size_t offset = 0;
  explicit Rows(int n) : data(size_t(n) * L + 16, 0.f) {
    offset = (64 - reinterpret_cast<uintptr_t>(data.data()) % 64) % 64 / sizeof(float);
  }
  float* row(int s) { return data.data() + offset + size_t(s) * L; }
  const float* row(int s) const { return data.data() + offset + size_t(s) * L; }
  __m256* vec(int s) { return reinterpret_cast<__m256*>(row(s)); }
  const __m256* vec(int s) const { return reinterpret_cast<const __m256*>(row(s)); }
  void swap(Rows& o) { data.swap(o.data), std::swap(offset, o.offset); }
};

// One agent's planning problem for L reward variants ("lanes", a multiple of 8) at once. Each
// sweep first takes the expectation over the other agent's reply at every state (the state
// after one's own move), then backs up one's own moves through it. Values are floats in AVX
// registers: the tables are compared only within a state, and float halves the traffic.
template <int L>
struct Problem {
  static_assert(L % 8 == 0);
  static constexpr int V = L / 8;
  const World& w;
  const PlanSettings& ps;
  bool for_a = true;                // A plans (B replies by Q_null); else B plans (A by pi_A)
  Rows<L> reward_at;                // per cell: +1 in the lanes whose goal it is
  std::array<float, L> rho{};       // B only
  std::vector<float> reply_stay;    // B only: P(A ends where it was | state), [s]
  std::vector<float> reply_move;    // B only: 0.6 * pi_A(a | s) for moves that can succeed, [s][4]
  std::vector<float> reply_reward;  // B only: E[r_A] of A's reply, [s]

  Problem(const World& w_, const PlanSettings& ps_, bool a, const std::vector<Goal>& goals)
      : w(w_), ps(ps_), for_a(a), reward_at(num_cells) {
    for (int k = 0; k < int(goals.size()); ++k)
      if (is_floor(goals[k].x, goals[k].y)) reward_at.row(goals[k].y * width + goals[k].x)[k] = 1.f;
  }

  // reply[s][k] = E over the other agent's reply from s of V[next][k] (+ rho_k r_other).
  void reply_values(const Rows<L>& v, Rows<L>& reply) const {
    const int n = w.num_states();
    double pi_null[num_actions];
    const double q_null[num_actions] = {ps.cost_move, ps.cost_move, ps.cost_move, ps.cost_move, ps.cost_stay};
    softmax(q_null, ps.beta, pi_null);
#pragma omp parallel for schedule(static)
    for (int s = 0; s < n; ++s) {
      __m256 acc[V];
      if (for_a) {
        for (int j = 0; j < V; ++j) acc[j] = _mm256_setzero_ps();
        for (int b = 0; b < num_actions; ++b) {
          const __m256* vn = v.vec(w.b_next(s, b));
          const __m256 p = _mm256_set1_ps(float(pi_null[b]));
          for (int j = 0; j < V; ++j) acc[j] = _mm256_fmadd_ps(p, vn[j], acc[j]);
        }
      } else {
        const __m256* vs = v.vec(s);
        const __m256 stay_p = _mm256_set1_ps(reply_stay[s]), r = _mm256_set1_ps(reply_reward[s]);
        for (int j = 0; j < V; ++j) acc[j] = _mm256_fmadd_ps(stay_p, vs[j], _mm256_mul_ps(_mm256_loadu_ps(&rho[8 * j]), r));
        for (int a = 0; a < 4; ++a) {
          const float c = reply_move[size_t(s) * 4 + a];
          if (c == 0) continue;
          const __m256* vn = v.vec(w.a_target(s, a));
          const __m256 cv = _mm256_set1_ps(c);
          for (int j = 0; j < V; ++j) acc[j] = _mm256_fmadd_ps(cv, vn[j], acc[j]);
        }
      }
      __m256* out = reply.vec(s);
      for (int j = 0; j < V; ++j) out[j] = acc[j];
    }
  }

  // One Jacobi sweep: v_new = max(0, max_a Q(v)); on_q(s, q) sees each state's q[action][lane].
  // Returns max |v_new - v| when asked (else 0).
  template <class OnQ>
  double sweep(const Rows<L>& v, Rows<L>& v_new, Rows<L>& reply, bool residual_wanted, OnQ&& on_q) const {
    reply_values(v, reply);
    const int n = w.num_states();
    const __m256 gamma = _mm256_set1_ps(float(ps.gamma)), p_ok = _mm256_set1_ps(0.6f), p_fail = _mm256_set1_ps(0.4f);
    double residual = 0;
#pragma omp parallel for schedule(static) reduction(max : residual)
    for (int s = 0; s < n; ++s) {
      const State& st = w.state(s);
      const __m256* r = reward_at.vec(for_a ? st.ay * width + st.ax : st.by * width + st.bx);
      alignas(32) float q[num_actions][L];
      __m256 best[V];
      for (int j = 0; j < V; ++j) best[j] = _mm256_setzero_ps();  // the reference starts its max at 0
      for (int a = 0; a < num_actions; ++a) {
        __m256* qa = reinterpret_cast<__m256*>(q[a]);
        const __m256 c = _mm256_set1_ps(float(cost(ps, a)));
        if (for_a) {
          const __m256* here = reply.vec(s);
          if (w.a_can_move(s, a)) {
            const __m256* there = reply.vec(w.a_target(s, a));
            for (int j = 0; j < V; ++j) {
              const __m256 next = _mm256_fmadd_ps(p_ok, there[j], _mm256_mul_ps(p_fail, here[j]));
              qa[j] = _mm256_fmadd_ps(gamma, next, _mm256_add_ps(r[j], c));
            }
          } else {
            for (int j = 0; j < V; ++j) qa[j] = _mm256_fmadd_ps(gamma, here[j], _mm256_add_ps(r[j], c));
          }
        } else {
          const __m256* there = reply.vec(w.b_next(s, a));
          for (int j = 0; j < V; ++j) qa[j] = _mm256_fmadd_ps(gamma, there[j], _mm256_add_ps(r[j], c));
        }
        for (int j = 0; j < V; ++j) best[j] = _mm256_max_ps(best[j], qa[j]);
      }
      on_q(s, q);
      __m256* out = v_new.vec(s);
      for (int j = 0; j < V; ++j) out[j] = best[j];
      if (residual_wanted)
        for (int k = 0; k < L; ++k) residual = std::max(residual, double(std::abs(v_new.row(s)[k] - v.row(s)[k])));
    }
    return residual;
  }

  // All sweeps but the last, from V = 0; residuals at sweeps 0, 10, 20, ... (hoh.py's log).
  Rows<L> solve(std::vector<double>* residuals) const {
    const int n = w.num_states();
    Rows<L> v(n), v_new(n), reply(n);
    for (int i = 0; i + 1 < ps.sweeps; ++i) {
      const double r = sweep(v, v_new, reply, i % 10 == 0, [](int, const float (*)[L]) {});
      if (i % 10 == 0) residuals->push_back(r);
      v.swap(v_new);
    }
    return v;
  }
};

constexpr int a_lanes = 8, b_lanes = 16;  // B: at most 15 plans per A goal, padded to a cache line

Problem<a_lanes> problem_a(const World& w, const PlanSettings& ps) {
  return Problem<a_lanes>(w, ps, true, {a_goals[0], a_goals[1]});
}

// B's problem for `plans` (indices into b_plans()), all sharing A goal g, against A's
// Boltzmann reply pi_a ([s][2][5]). Padding lanes chase an unreachable goal and are ignored.
Problem<b_lanes> problem_b(const World& w, const PlanSettings& ps, int g, const std::vector<int>& plans,
                           const std::vector<double>& pi_a) {
  std::vector<Goal> goals;
  for (int k : plans) goals.push_back(b_goals[b_plans()[k].b_goal]);
  Problem<b_lanes> p(w, ps, false, goals);
  const int n = w.num_states();
  for (size_t k = 0; k < plans.size(); ++k) p.rho[k] = float(b_plans()[plans[k]].rho);
  p.reply_stay.resize(n);
  p.reply_move.resize(size_t(n) * 4);
  p.reply_reward.resize(n);
  for (int s = 0; s < n; ++s) {
    const State& st = w.state(s);
    const double* pi = &pi_a[(size_t(s) * 2 + g) * num_actions];
    double stay_p = pi[stay], expected_cost = pi[stay] * ps.cost_stay;
    for (int a = 0; a < 4; ++a) {
      expected_cost += pi[a] * ps.cost_move;
      const bool moves = w.a_can_move(s, a);
      p.reply_move[size_t(s) * 4 + a] = float(moves ? 0.6 * pi[a] : 0.0);
      stay_p += moves ? 0.4 * pi[a] : pi[a];
    }
    p.reply_stay[s] = float(stay_p);
    p.reply_reward[s] = float((a_at(st, a_goals[g]) ? 1.0 : 0.0) + expected_cost);
  }
  return p;
}

// The cache holds, per plan, V after all sweeps but the last, as float. Fresh runs round to
// float too, so cached and fresh runs give identical tables.
struct CacheHeader {
  char magic[8] = {'I', 'K', 'S', 'T', 'O', 'R', 'Y', '1'};
  int32_t num_states = 0, num_b = 0, sweeps = 0, pad = 0;
  double beta = 0, gamma = 0, cost_move = 0, cost_stay = 0;
};

CacheHeader header_for(const World& w, const PlanSettings& ps) {
  CacheHeader h;
  h.num_states = w.num_states();
  h.num_b = int(b_plans().size());
  h.sweeps = ps.sweeps;
  h.beta = ps.beta, h.gamma = ps.gamma, h.cost_move = ps.cost_move, h.cost_stay = ps.cost_stay;
  return h;
}

std::string cache_path(const std::string& dir) { return (std::filesystem::path(dir) / "story-values-v1.bin").string(); }

bool read_cache(const std::string& dir, const CacheHeader& want, std::vector<float>& values) {
  if (dir.empty()) return false;
  std::ifstream f(cache_path(dir), std::ios::binary);
  if (!f) return false;
  CacheHeader got;
  if (!f.read(reinterpret_cast<char*>(&got), sizeof got) || std::memcmp(&got, &want, sizeof got) != 0) return false;
  values.resize(size_t(want.num_states) * (2 + want.num_b));
  return bool(f.read(reinterpret_cast<char*>(values.data()), std::streamsize(values.size() * sizeof(float))));
}

void write_cache(const std::string& dir, const CacheHeader& h, const std::vector<float>& values) {
  if (dir.empty()) return;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const std::string path = cache_path(dir), tmp = fmt::format("{}.{}.tmp", path, ::getpid());  // concurrent runs
  {
    std::ofstream f(tmp, std::ios::binary);
    if (!f) return;  // a cache we cannot write only costs time later
    f.write(reinterpret_cast<const char*>(&h), sizeof h);
    f.write(reinterpret_cast<const char*>(values.data()), std::streamsize(values.size() * sizeof(float)));
    if (!f) return;
  }
  std::filesystem::rename(tmp, path, ec);
}

}  // namespace

const std::vector<BPlan>& b_plans() {
  static const std::vector<BPlan> plans = [] {
    std::vector<BPlan> out;
    for (int g = 0; g < 2; ++g) {
      for (int rho : rhos)
        for (int bg = 0; bg < 3; ++bg) out.push_back({g, bg, rho});
      for (int bg = 0; bg < 2; ++bg) out.push_back({g, bg, 0});
      if (g == 1) out.push_back({g, 2, 0});
    }
    return out;
  }();
  return plans;
}

int b_plan_index(int a_goal, int b_goal, int rho) {
  const auto& p = b_plans();
  for (size_t i = 0; i < p.size(); ++i)
    if (p[i].a_goal == a_goal && p[i].b_goal == b_goal && p[i].rho == rho) return int(i);
  return -1;
}

std::string default_cache_dir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return (std::filesystem::path(x) / "inferkit").string();
  if (const char* h = std::getenv("HOME"); h && *h) return (std::filesystem::path(h) / ".cache" / "inferkit").string();
  return "";
}

Tables plan_all(const World& w, const std::string& cache_dir, const PlanSettings& ps, bool* loaded) {
  IK_CHECK(ps.sweeps >= 1, "story planning needs at least one sweep, got {}", ps.sweeps);
  const int n = w.num_states();
  const int nb = int(b_plans().size());
  const CacheHeader header = header_for(w, ps);
  std::vector<float> cached;  // [s][2] for A, then [s][nb] for B
  const bool from_cache = read_cache(cache_dir, header, cached);
  if (loaded) *loaded = from_cache;
  if (!from_cache) cached.assign(size_t(n) * (2 + nb), 0.f);
  float* cached_a = cached.data();
  float* cached_b = cached.data() + size_t(n) * 2;

  Tables t;
  t.num_states = n;
  t.num_b = nb;

  // A, both goals at once.
  const auto pa = problem_a(w, ps);
  Rows<a_lanes> va = from_cache ? Rows<a_lanes>(n) : pa.solve(&t.bellman_residual_a);
  for (int s = 0; s < n; ++s)
    for (int g = 0; g < 2; ++g) {
      float& c = cached_a[size_t(s) * 2 + g];
      if (!from_cache) c = va.row(s)[g];
      va.row(s)[g] = c;
    }
  std::vector<double> pi_a(size_t(n) * 2 * num_actions);  // double: B plans against it
  {
    Rows<a_lanes> v_new(n), reply(n);
    pa.sweep(va, v_new, reply, false, [&](int s, const float (*q)[a_lanes]) {
      for (int g = 0; g < 2; ++g) {
        double qs[num_actions];
        for (int a = 0; a < num_actions; ++a) qs[a] = q[a][g];
        softmax(qs, ps.beta, &pi_a[(size_t(s) * 2 + g) * num_actions]);
      }
    });
    t.value_a.resize(size_t(n) * 2);
    for (int s = 0; s < n; ++s)
      for (int g = 0; g < 2; ++g) t.value_a[size_t(s) * 2 + g] = v_new.row(s)[g];
  }
  t.pi_a.assign(pi_a.begin(), pi_a.end());

  // B, one batch of plans per A goal.
  t.pi_b.resize(size_t(n) * nb * num_actions);
  t.value_b.resize(size_t(n) * nb);
  for (int g = 0; g < 2; ++g) {
    std::vector<int> plans;
    for (int i = 0; i < nb; ++i)
      if (b_plans()[i].a_goal == g) plans.push_back(i);
    const auto pb = problem_b(w, ps, g, plans, pi_a);
    std::vector<double> residuals;
    Rows<b_lanes> v = from_cache ? Rows<b_lanes>(n) : pb.solve(&residuals);
    if (t.bellman_residual_b.size() < residuals.size()) t.bellman_residual_b.resize(residuals.size(), 0.0);
    for (size_t i = 0; i < residuals.size(); ++i) t.bellman_residual_b[i] = std::max(t.bellman_residual_b[i], residuals[i]);
    for (int s = 0; s < n; ++s)
      for (size_t k = 0; k < plans.size(); ++k) {
        float& c = cached_b[size_t(s) * nb + plans[k]];
        if (!from_cache) c = v.row(s)[k];
        v.row(s)[k] = c;
      }
    Rows<b_lanes> v_new(n), reply(n);
    pb.sweep(v, v_new, reply, false, [&](int s, const float (*q)[b_lanes]) {
      for (size_t k = 0; k < plans.size(); ++k) {
        double qs[num_actions], pi[num_actions];
        for (int a = 0; a < num_actions; ++a) qs[a] = q[a][k];
        softmax(qs, ps.beta, pi);
        for (int a = 0; a < num_actions; ++a) t.pi_b[(size_t(s) * nb + plans[k]) * num_actions + a] = float(pi[a]);
      }
    });
    for (int s = 0; s < n; ++s)
      for (size_t k = 0; k < plans.size(); ++k) t.value_b[size_t(s) * nb + plans[k]] = v_new.row(s)[k];
  }
  if (!from_cache) write_cache(cache_dir, header, cached);
  return t;
}

}  // namespace ik::story
