#include "prob/snapshot/model.hpp"

#include <Eigen/Sparse>
#include <Eigen/SparseLU>
#include <algorithm>
#include <cmath>
#include <map>

#include "core/error.hpp"

namespace ik::snapshot {

SnapshotModel::SnapshotModel(agents::Hypotheses hypotheses, std::vector<double> p0, double gamma, double guide)
    : hyp_(std::move(hypotheses)), p0_(std::move(p0)), gamma_(gamma) {
  IK_CHECK(gamma > 0 && gamma < 1, "snapshot gamma must be in (0, 1), got {}", gamma);
  IK_CHECK(hyp_.size() > 0, "snapshot model needs at least one goal hypothesis");
  const int S = num_states(), G = num_goals();
  for (int g = 0; g < G; ++g)
    IK_CHECK(chain(g).num_states == S, "goal {} chain has {} states, start distribution {}", g, chain(g).num_states, S);
  double total = 0;
  for (double p : p0_) p0_cdf_.push_back(total += p);
  IK_CHECK(std::abs(total - 1) < 1e-9, "start distribution sums to {}", total);

  // Every edge (from, to) with its G probabilities, gathered from all goals' chains.
  std::map<std::pair<int, int>, std::vector<double>> edges;
  for (int g = 0; g < G; ++g)
    for (int s = 0; s < S; ++s)
      for (auto t : chain(g).row(s)) {
        auto& probs = edges[{s, t.next}];
        probs.resize(G, 0.0);
        probs[g] = t.prob;
      }
  std::vector<std::vector<std::pair<int, int>>> out(S), in(S);  // (other, goal_prob offset)
  for (auto& [key, probs] : edges) {
    const int offset = static_cast<int>(goal_prob_.size());
    goal_prob_.insert(goal_prob_.end(), probs.begin(), probs.end());
    out[key.first].push_back({key.second, offset});
    in[key.second].push_back({key.first, offset});
  }
  // Steps from the start cells (BFS over edges); unreachable states are never proposed.
  std::vector<int> dist(S, -1);
  std::vector<int> frontier;
  for (int s = 0; s < S; ++s)
    if (p0_[s] > 0) dist[s] = 0, frontier.push_back(s);
  for (size_t i = 0; i < frontier.size(); ++i)
    for (auto [next, offset] : out[frontier[i]])
      if (dist[next] < 0) dist[next] = dist[frontier[i]] + 1, frontier.push_back(next);
  for (int s = 0; s < S; ++s) guidance_.push_back(dist[s] < 0 ? 0.0 : std::exp(-guide * dist[s]));
  auto guidance = [&](int s) { return guidance_[s]; };
  auto mixture = [&](int offset) {
    double q = 0;
    for (int g = 0; g < G; ++g) q += hyp_.prior[g] * goal_prob_[offset + g];
    return q;
  };
  auto build = [&](const std::vector<std::vector<std::pair<int, int>>>& rows, bool guided, std::vector<int>& first,
                   std::vector<Edge>& table) {
    first.assign(1, 0);
    for (int s = 0; s < S; ++s) {
      auto weight = [&](int other, int offset) { return mixture(offset) * (guided ? guidance(other) : 1.0); };
      double z = 0;
      int live = 0;
      for (auto [other, offset] : rows[s]) z += weight(other, offset), live += weight(other, offset) > 0;
      for (auto [other, offset] : rows[s])
        if (weight(other, offset) > 0) table.push_back({other, weight(other, offset) / z, 1.0 / live, offset});
      first.push_back(static_cast<int>(table.size()));
    }
  };
  build(out, false, succ_first_, succ_);
  build(in, true, pred_first_, pred_);
}

double SnapshotModel::backward_q(int from, int to) const {
  for (auto& e : predecessors(to))
    if (e.other == from) return e.q;
  return 0.0;
}

double SnapshotModel::forward_q(int from, int to) const {
  for (auto& e : successors(from))
    if (e.other == to) return e.q;
  return 0.0;
}

SnapshotModel make_grid_model(const agents::GridWorld& world, const SnapshotOptions& opt) {
  return SnapshotModel(agents::plan_hypotheses(world, world.goal_hypotheses(), opt.plan),
                       world.start_distribution(), opt.gamma, opt.guide);
}

// Solves (I - gamma M) y = b where M = T_g^T (transpose) or T_g.
static std::vector<double> solve(const SnapshotModel& m, int g, bool transpose, const std::vector<double>& b) {
  const int S = m.num_states();
  std::vector<Eigen::Triplet<double>> trip;
  for (int s = 0; s < S; ++s) {
    trip.push_back({s, s, 1.0});
    for (auto t : m.chain(g).row(s)) {
      if (transpose) trip.push_back({t.next, s, -m.gamma() * t.prob});
      else trip.push_back({s, t.next, -m.gamma() * t.prob});
    }
  }
  Eigen::SparseMatrix<double> a(S, S);
  a.setFromTriplets(trip.begin(), trip.end());  // duplicates are summed
  Eigen::SparseLU<Eigen::SparseMatrix<double>> lu;
  lu.compute(a);
  IK_CHECK(lu.info() == Eigen::Success, "occupancy system for goal {} is singular", g);
  Eigen::VectorXd rhs = Eigen::Map<const Eigen::VectorXd>(b.data(), S);
  Eigen::VectorXd y = lu.solve(rhs);
  return std::vector<double>(y.data(), y.data() + S);
}

std::vector<double> exact_occupancy(const SnapshotModel& m, int g) {
  std::vector<double> b = m.p0();
  for (auto& v : b) v *= 1 - m.gamma();
  return solve(m, g, true, b);
}

Exact exact_posterior(const SnapshotModel& m, const std::vector<std::vector<double>>& rho,
                      const std::vector<int>& snapshot_states) {
  Exact e;
  e.rho = rho;
  double z = 0;
  for (int g = 0; g < m.num_goals(); ++g) {
    double lik = 0;
    for (int x : snapshot_states) lik += rho[g][x];
    e.likelihood.push_back(lik);
    e.posterior.push_back(m.prior()[g] * lik);
    z += e.posterior.back();
  }
  IK_CHECK(z > 0, "the agent can never be in the snapshot state (it is unreachable from the start)");
  for (auto& p : e.posterior) p /= z;
  return e;
}

Exact exact_posterior(const SnapshotModel& m, const std::vector<int>& snapshot_states) {
  std::vector<std::vector<double>> rho;
  for (int g = 0; g < m.num_goals(); ++g) rho.push_back(exact_occupancy(m, g));
  return exact_posterior(m, rho, snapshot_states);
}

std::vector<double> exact_past_visits(const SnapshotModel& m, const std::vector<int>& snapshot_states) {
  const int S = m.num_states();
  std::vector<double> in_x(S, 0.0), visits(S, 0.0);
  for (int x : snapshot_states) in_x[x] = 1;
  double z = 0;
  for (int g = 0; g < m.num_goals(); ++g) {
    const auto rho = exact_occupancy(m, g);
    std::vector<double> b(S, 0.0);  // gamma T_g 1_X
    for (int s = 0; s < S; ++s)
      for (auto t : m.chain(g).row(s)) b[s] += m.gamma() * t.prob * in_x[t.next];
    const auto h = solve(m, g, false, b);
    for (int s = 0; s < S; ++s) visits[s] += m.prior()[g] * rho[s] * h[s];
    for (int x : snapshot_states) z += m.prior()[g] * rho[x];
  }
  IK_CHECK(z > 0, "the agent can never be in the snapshot state (it is unreachable from the start)");
  for (auto& v : visits) v /= z;
  return visits;
}

std::vector<double> exact_next_state(const SnapshotModel& m, const std::vector<int>& snapshot_states) {
  const auto e = exact_posterior(m, snapshot_states);
  std::vector<double> next(m.num_states(), 0.0);
  double z = 0;
  for (int g = 0; g < m.num_goals(); ++g)
    for (int x : snapshot_states) {
      const double w = m.prior()[g] * e.rho[g][x];
      z += w;
      for (auto t : m.chain(g).row(x)) next[t.next] += w * t.prob;
    }
  for (auto& p : next) p /= z;
  return next;
}

}  // namespace ik::snapshot
