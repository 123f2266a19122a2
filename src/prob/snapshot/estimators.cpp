#include "prob/snapshot/estimators.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"

namespace ik::snapshot {

Estimator parse_estimator(const std::string& name) {
  if (name == "exact") return Estimator::exact;
  if (name == "rejection") return Estimator::rejection;
  if (name == "backward") return Estimator::backward;
  if (name == "backward-uniform") return Estimator::backward_uniform;
  if (name == "bidirectional") return Estimator::bidirectional;
  fail("unknown estimator '{}' (valid: exact, rejection, backward, backward-uniform, bidirectional)", name);
}

std::string estimator_name(Estimator e) {
  switch (e) {
    case Estimator::exact: return "exact";
    case Estimator::rejection: return "rejection";
    case Estimator::backward: return "backward";
    case Estimator::backward_uniform: return "backward-uniform";
    case Estimator::bidirectional: return "bidirectional";
  }
  return "?";
}

double total_variation(const std::vector<double>& p, const std::vector<double>& q) {
  double tv = 0;
  for (size_t i = 0; i < p.size(); ++i) tv += std::abs(p[i] - q[i]);
  return tv / 2;
}

// Index drawn from a cumulative table (last entry ~1).
static int sample_cdf(const std::vector<double>& cdf, Rng& rng) {
  const double u = rng.uniform() * cdf.back();
  const auto it = std::upper_bound(cdf.begin(), cdf.end(), u);
  return std::min(static_cast<int>(it - cdf.begin()), static_cast<int>(cdf.size()) - 1);
}

static int step(const agents::MarkovChain& chain, int s, Rng& rng) {
  double u = rng.uniform();
  const auto row = chain.row(s);
  for (auto t : row) {
    if (u < t.prob) return t.next;
    u -= t.prob;
  }
  return row.back().next;  // rounding
}

static const SnapshotModel::Edge& pick_edge(std::span<const SnapshotModel::Edge> edges, bool uniform, Rng& rng) {
  if (uniform) return edges[rng.below(edges.size())];
  double u = rng.uniform();
  for (auto& e : edges) {
    if (u < e.q) return e;
    u -= e.q;
  }
  return edges.back();
}

static int snapshot_index(const std::vector<int>& xs, int s) {
  for (size_t i = 0; i < xs.size(); ++i)
    if (xs[i] == s) return static_cast<int>(i);
  return -1;
}

// Sums rho over snapshot states and normalizes prior * rho into the posterior.
static void finish(const SnapshotModel& m, Estimate& est) {
  const int G = m.num_goals();
  est.rho.assign(G, 0.0);
  for (size_t i = 0; i < est.rho_state.size(); ++i) est.rho[i % G] += est.rho_state[i];
  double z = 0;
  est.posterior.resize(G);
  for (int g = 0; g < G; ++g) z += est.posterior[g] = m.prior()[g] * est.rho[g];
  est.informative = z > 0;
  for (int g = 0; g < G; ++g) est.posterior[g] = est.informative ? est.posterior[g] / z : m.prior()[g];
}

static void check_query(const SnapshotModel& m, const std::vector<int>& xs, int samples) {
  IK_CHECK(!xs.empty(), "empty snapshot");
  for (int x : xs) IK_CHECK(x >= 0 && x < m.num_states(), "snapshot state {} out of range", x);
  IK_CHECK(samples > 0, "samples must be positive, got {}", samples);
}

Estimate estimate_rejection(const SnapshotModel& m, const std::vector<int>& xs, int samples, Rng& rng) {
  check_query(m, xs, samples);
  const int G = m.num_goals();
  std::vector<double> prior_cdf;
  double c = 0;
  for (double p : m.prior()) prior_cdf.push_back(c += p);
  Estimate est;
  est.rho_state.assign(xs.size() * G, 0.0);
  for (int n = 0; n < samples; ++n) {
    const int g = sample_cdf(prior_cdf, rng);
    int s = sample_cdf(m.p0_cdf(), rng);
    while (rng.uniform() < m.gamma()) s = step(m.chain(g), s, rng);  // t ~ Geometric: P(t) = (1-gamma) gamma^t
    const int i = snapshot_index(xs, s);
    if (i >= 0) est.rho_state[i * G + g] += 1.0 / (samples * m.prior()[g]);  // P(accept, g) = P(g) rho_g
  }
  est.paths = samples;
  finish(m, est);
  return est;
}

Estimate estimate_backward(const SnapshotModel& m, const std::vector<int>& xs, int samples, Rng& rng, bool uniform,
                           double roulette) {
  check_query(m, xs, samples);
  const int G = m.num_goals();
  const double gamma = m.gamma(), c = roulette > 0 ? roulette : gamma;
  const double start_weight = static_cast<double>(xs.size());  // picked 1 of |X| states
  const auto& p0 = m.p0();
  Estimate est;
  est.rho_state.assign(xs.size() * G, 0.0);
  // Weight window (as in neutron transport): a path whose largest goal weight, times how
  // promising its state is (guidance, relative to the snapshot's), grows past kSplitAbove
  // times its start weight splits into copies sharing the weight; one that falls below
  // kRouletteBelow survives with probability proportional to it. Both keep the estimate
  // unbiased; splitting spends samples where the past matters most.
  constexpr double kSplitAbove = 2.0, kRouletteBelow = 0.25;
  constexpr int kMaxSplit = 4, kMaxBranches = 8;  // bounds the cost per sample
  std::vector<int> stack_state;
  std::vector<double> stack_w, w(G);
  long paths = 0;
  for (int n = 0; n < samples; ++n) {
    const int i = static_cast<int>(rng.below(xs.size()));
    const double start_guidance = m.guidance(xs[i]);
    stack_state.assign(1, xs[i]);
    stack_w.assign(G, start_weight);
    int branches = 1;
    while (!stack_state.empty()) {
      int s = stack_state.back();
      stack_state.pop_back();
      std::copy(stack_w.end() - G, stack_w.end(), w.begin());
      stack_w.resize(stack_w.size() - G);
      ++paths;
      for (;;) {
        if (p0[s] > 0)  // emission: the path could have started here
          for (int g = 0; g < G; ++g) est.rho_state[i * G + g] += (1 - gamma) * p0[s] * w[g] / samples;
        if (rng.uniform() >= c) break;  // Russian roulette, compensated by 1/c below
        const auto preds = m.predecessors(s);
        if (preds.empty()) break;
        const auto& e = pick_edge(preds, uniform, rng);
        const double q = uniform ? e.q_uniform : e.q;
        const double* t = m.goal_probs(e);
        double top = 0;
        for (int g = 0; g < G; ++g) top = std::max(top, w[g] *= gamma * t[g] / (c * q));
        if (top <= 0) break;
        s = e.other;
        const double ratio = top * m.guidance(s) / (start_weight * start_guidance);
        if (ratio > kSplitAbove && branches < kMaxBranches) {
          const int k = std::min({kMaxSplit, static_cast<int>(ratio), kMaxBranches - branches + 1});
          branches += k - 1;
          for (auto& v : w) v /= k;
          for (int copy = 1; copy < k; ++copy) {
            stack_state.push_back(s);
            stack_w.insert(stack_w.end(), w.begin(), w.end());
          }
        } else if (ratio < kRouletteBelow) {
          const double survive = ratio / kRouletteBelow;
          if (rng.uniform() >= survive) break;
          for (auto& v : w) v /= survive;
        }
      }
    }
  }
  est.paths = paths;
  finish(m, est);
  return est;
}

// Bidirectional estimator with vertex merging in a discrete state space. A path
// s_0 .. s_t = x can be sampled t+1 ways: strategy 0 = all backward (emission at s_0), and
// strategy j = 1..t = a forward path from P_0 reaching s_j merged with a backward path from
// x reaching s_j. The balance heuristic gives each found path the contribution
// f / sum_k n_k p_k (times the pair scale for merges, see below). Following
// Georgiev et al. (VCM), the sum splits into a part L known at the forward vertex and a part
// R known at the backward vertex, each updated by one ratio per step.
Estimate estimate_bidirectional(const SnapshotModel& m, const std::vector<int>& xs, int samples, Rng& rng) {
  check_query(m, xs, samples);
  const int G = m.num_goals(), S = m.num_states();
  const double gamma = m.gamma(), c = gamma;
  // Merging costs O(N_b N_f L^2 / S): cap the forward paths, MIS accounts for any count.
  const int forward_paths = std::min(samples, kMaxForwardPaths);
  // Balance heuristic with sample counts n_0 = N for emission and n_m = N_f for merging: the
  // N x N_f pairs share N_f forward paths, so they count as N_f samples, not N x N_f (any
  // counts keep the weights summing to one; each merge is then scaled by n_m / (N x N_f)).
  const double n0 = samples, nm = forward_paths, pair_scale = nm / (double(samples) * forward_paths);
  const auto& p0 = m.p0();

  // Forward paths: vertices at depth >= 1 with their throughput f/p per goal and L.
  std::vector<int> v_state;
  std::vector<double> v_L, v_tf;
  std::vector<double> tf(G);
  for (int n = 0; n < forward_paths; ++n) {
    int s = sample_cdf(m.p0_cdf(), rng);
    std::fill(tf.begin(), tf.end(), 1.0);
    double L = 0;
    for (int depth = 0;; ++depth) {
      if (rng.uniform() >= c) break;
      const auto succ = m.successors(s);
      if (succ.empty()) break;
      const auto& e = pick_edge(succ, false, rng);
      const double qf = e.q, qb = m.backward_q(s, e.other);
      const double* t = m.goal_probs(e);
      bool alive = false;
      for (int g = 0; g < G; ++g) alive |= (tf[g] *= gamma * t[g] / (c * qf)) > 0;
      L = depth == 0 ? n0 * qb / (p0[s] * qf) : qb / qf * (L + nm);
      s = e.other;
      if (!alive) break;
      v_state.push_back(s);
      v_L.push_back(L);
      v_tf.insert(v_tf.end(), tf.begin(), tf.end());
    }
  }
  // Bucket the forward vertices by state (counting sort).
  std::vector<int> first(S + 1, 0), order(v_state.size());
  for (int s : v_state) ++first[s + 1];
  for (int s = 0; s < S; ++s) first[s + 1] += first[s];
  {
    std::vector<int> fill(first.begin(), first.end() - 1);
    for (size_t v = 0; v < v_state.size(); ++v) order[fill[v_state[v]]++] = static_cast<int>(v);
  }

  Estimate est;
  est.rho_state.assign(xs.size() * G, 0.0);
  std::vector<double> tb(G);
  for (int n = 0; n < samples; ++n) {
    const int i = static_cast<int>(rng.below(xs.size()));
    int s = xs[i];
    double* acc = &est.rho_state[i * G];
    std::fill(tb.begin(), tb.end(), static_cast<double>(xs.size()));
    double R = 0;
    for (;;) {
      if (p0[s] > 0) {
        const double k = (1 - gamma) * p0[s] / (n0 + p0[s] * R);
        for (int g = 0; g < G; ++g) acc[g] += k * tb[g];
      }
      for (int j = first[s]; j < first[s + 1]; ++j) {
        const int v = order[j];
        const double k = (1 - gamma) * pair_scale / (nm + v_L[v] + R);
        const double* f = &v_tf[size_t(v) * G];
        for (int g = 0; g < G; ++g) acc[g] += k * f[g] * tb[g];
      }
      if (rng.uniform() >= c) break;
      const auto preds = m.predecessors(s);
      if (preds.empty()) break;
      const auto& e = pick_edge(preds, false, rng);
      const double qb = e.q, qf = m.forward_q(e.other, s);
      const double* t = m.goal_probs(e);
      bool alive = false;
      for (int g = 0; g < G; ++g) alive |= (tb[g] *= gamma * t[g] / (c * qb)) > 0;
      if (!alive) break;
      R = qf / qb * (nm + R);
      s = e.other;
    }
  }
  est.paths = long(samples) + forward_paths;
  finish(m, est);
  return est;
}

Estimate estimate(const SnapshotModel& m, const std::vector<int>& xs, Estimator e, int samples, Rng& rng) {
  switch (e) {
    case Estimator::exact: {
      const auto ex = exact_posterior(m, xs);
      Estimate est;
      for (int x : xs)
        for (int g = 0; g < m.num_goals(); ++g) est.rho_state.push_back(ex.rho[g][x]);
      finish(m, est);
      return est;
    }
    case Estimator::rejection: return estimate_rejection(m, xs, samples, rng);
    case Estimator::backward: return estimate_backward(m, xs, samples, rng, false);
    case Estimator::backward_uniform: return estimate_backward(m, xs, samples, rng, true);
    case Estimator::bidirectional: return estimate_bidirectional(m, xs, samples, rng);
  }
  return {};
}

std::vector<double> backward_past_visits(const SnapshotModel& m, const std::vector<int>& xs, int samples, Rng& rng) {
  check_query(m, xs, samples);
  const int G = m.num_goals();
  const double gamma = m.gamma(), c = gamma;
  std::vector<double> visits(m.num_states(), 0.0), w(G);
  std::vector<int> path;
  std::vector<double> emitted;  // prior-weighted emission at each vertex of the path
  double total = 0;
  for (int n = 0; n < samples; ++n) {
    int s = xs[rng.below(xs.size())];
    std::fill(w.begin(), w.end(), static_cast<double>(xs.size()));
    path.clear();
    emitted.clear();
    for (;;) {
      double em = 0;
      for (int g = 0; g < G; ++g) em += m.prior()[g] * (1 - gamma) * m.p0()[s] * w[g];
      path.push_back(s);
      emitted.push_back(em);
      if (rng.uniform() >= c) break;
      const auto preds = m.predecessors(s);
      if (preds.empty()) break;
      const auto& e = pick_edge(preds, false, rng);
      const double* t = m.goal_probs(e);
      bool alive = false;
      for (int g = 0; g < G; ++g) alive |= (w[g] *= gamma * t[g] / (c * e.q)) > 0;
      if (!alive) break;
      s = e.other;
    }
    // A vertex at depth k >= 1 is a past state of every path that starts at depth >= k.
    double suffix = 0;
    for (size_t k = path.size(); k-- > 0;) {
      suffix += emitted[k];
      if (k >= 1) visits[path[k]] += suffix;
    }
    total += suffix;
  }
  if (total > 0)
    for (auto& v : visits) v /= total;
  return visits;
}

std::vector<Future> sample_futures(const SnapshotModel& m, const std::vector<int>& xs, const Estimate& est,
                                             int count, int horizon, Rng& rng) {
  const int G = m.num_goals();
  std::vector<double> cdf;
  double total = 0;
  for (size_t i = 0; i < xs.size(); ++i)
    for (int g = 0; g < G; ++g) {
      const double rho = est.informative ? est.rho_state[i * G + g] : 1.0;
      cdf.push_back(total += m.prior()[g] * rho);
    }
  std::vector<Future> futures;
  for (int n = 0; n < count; ++n) {
    const int k = sample_cdf(cdf, rng), g = k % G;
    std::vector<int> path{xs[k / G]};
    for (int t = 0; t < horizon; ++t) {
      const auto row = m.chain(g).row(path.back());
      if (row.size() == 1 && row[0].next == path.back()) break;  // absorbed at the goal
      path.push_back(step(m.chain(g), path.back(), rng));
    }
    futures.push_back({g, std::move(path)});
  }
  return futures;
}

}  // namespace ik::snapshot
