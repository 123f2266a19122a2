#pragma once
// Snapshot inference: we see an agent once, in state x at an unknown time t with prior
// P(t) = (1-gamma) gamma^t, and ask which goal it pursues, where it came from and where it
// goes. The likelihood of goal g is the discounted occupancy
//   rho_g(x) = (1-gamma) sum_t gamma^t P(s_t = x | g),   rho_g = (1-gamma) P_0 + gamma T_g^T rho_g,
// the same equation as light transport (emission = start distribution, transport = agent).
// SnapshotModel holds one planned agent per goal hypothesis plus the sparse tables that the
// Monte Carlo estimators walk; it knows nothing about grids.
#include <span>
#include <vector>

#include "prob/agents/inverse_planning.hpp"

namespace ik::snapshot {

struct SnapshotOptions {
  double gamma = 0.97;     // snapshot-time prior: P(t) = (1-gamma) gamma^t (mean 1/(1-gamma) - 1)
  agents::PlanOptions plan;
  // Backward proposal guidance: predecessors p are weighted by exp(-guide * d(p)), d = steps
  // from the start cells. 0 = plain reversed policy; see docs/snapshot.md.
  double guide = 1.0;
};

class SnapshotModel {
 public:
  SnapshotModel(agents::Hypotheses hypotheses, std::vector<double> p0, double gamma, double guide = 1.0);

  int num_goals() const { return hyp_.size(); }
  int num_states() const { return static_cast<int>(p0_.size()); }
  double gamma() const { return gamma_; }
  const agents::Hypotheses& hypotheses() const { return hyp_; }
  const std::vector<double>& prior() const { return hyp_.prior; }
  const std::vector<double>& p0() const { return p0_; }
  const agents::MarkovChain& chain(int g) const { return hyp_.agents[g].chain; }

  // An edge of the transition graph: an ordered pair (from, to) with T_g(to|from) > 0 for
  // some goal g, stored twice (out of `from`, into `to`) with all goals' probabilities.
  struct Edge {
    int other;        // successor (forward table) or predecessor (backward table)
    double q;         // proposal: forward sum_g P(g) T_g(to|from); backward the same times the
                      // guidance exp(-guide * steps from the start to `other`), normalized over the row
    double q_uniform; // backward only: 1 / number of predecessors
    int goal_probs;   // offset into goal_prob: T_g(to|from) for g = 0..G-1
  };
  std::span<const Edge> successors(int s) const { return {succ_.data() + succ_first_[s], succ_.data() + succ_first_[s + 1]}; }
  std::span<const Edge> predecessors(int s) const { return {pred_.data() + pred_first_[s], pred_.data() + pred_first_[s + 1]}; }
  const double* goal_probs(const Edge& e) const { return &goal_prob_[e.goal_probs]; }
  // Backward proposal probability q_b(from | to) of the edge from -> to (0 when absent).
  double backward_q(int from, int to) const;
  // Forward proposal probability q_f(to | from) of the edge from -> to (0 when absent).
  double forward_q(int from, int to) const;

  const std::vector<double>& p0_cdf() const { return p0_cdf_; }
  // exp(-guide * steps from the start cells), 0 where unreachable: how promising a state is
  // for a backward path (1 on start cells).
  double guidance(int s) const { return guidance_[s]; }

 private:
  agents::Hypotheses hyp_;
  std::vector<double> p0_, p0_cdf_, guidance_;
  double gamma_;
  std::vector<int> succ_first_, pred_first_;
  std::vector<Edge> succ_, pred_;
  std::vector<double> goal_prob_;
};

// Builds the model of a gridworld: one Boltzmann agent per goal, uniform goal prior.
SnapshotModel make_grid_model(const agents::GridWorld& world, const SnapshotOptions& opt);

// Exact answers by sparse LU.
// rho_g over all states: (I - gamma T_g^T) rho = (1 - gamma) P_0.
std::vector<double> exact_occupancy(const SnapshotModel& m, int g);
struct Exact {
  std::vector<std::vector<double>> rho;  // per goal, over all states
  std::vector<double> likelihood;        // per goal: rho_g summed over the snapshot states
  std::vector<double> posterior;         // P(g | snapshot)
};
Exact exact_posterior(const SnapshotModel& m, const std::vector<int>& snapshot_states);
Exact exact_posterior(const SnapshotModel& m, const std::vector<std::vector<double>>& rho,
                      const std::vector<int>& snapshot_states);  // reuse solved rho
// Expected number of visits to each state before the snapshot, given the snapshot:
// sum_g P(g) rho_g(y) h_g(y) / sum_g P(g) rho_g(X), with (I - gamma T_g) h_g = gamma T_g 1_X.
std::vector<double> exact_past_visits(const SnapshotModel& m, const std::vector<int>& snapshot_states);
// P(next state | snapshot) = sum_{g, x in X} P(g) rho_g(x) T_g(. | x) / normalizer.
std::vector<double> exact_next_state(const SnapshotModel& m, const std::vector<int>& snapshot_states);

}  // namespace ik::snapshot
