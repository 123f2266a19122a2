#pragma once
// Monte Carlo estimators of the snapshot likelihoods rho_g(X) and the goal posterior.
//   rejection     forward simulation from the start, accept when s_t is in X ("light tracing")
//   backward      paths from the snapshot into the past, importance-weighted, ended by Russian
//                 roulette, collecting (1-gamma) P_0 at every vertex ("path tracing")
//   bidirectional forward and backward paths merged at every shared state, weighted by the
//                 balance heuristic over all ways of sampling the same path (MIS)
// Backward and forward paths are drawn from a proposal that mixes all goals, so one path
// scores every goal at once (the "hero wavelength" trick of spectral rendering).
#include <string>
#include <vector>

#include "core/rng.hpp"
#include "prob/snapshot/model.hpp"

namespace ik::snapshot {

enum class Estimator { exact, rejection, backward, backward_uniform, bidirectional };
Estimator parse_estimator(const std::string& name);  // throws listing the valid names
std::string estimator_name(Estimator e);

struct Estimate {
  std::vector<double> rho;        // per goal: estimate of rho_g(X)
  std::vector<double> rho_state;  // per (snapshot state i, goal g): rho_g(x_i), index i*G + g
  std::vector<double> posterior;  // P(g | X); the prior when no sample saw the snapshot
  bool informative = false;       // some sample had non-zero weight
  long paths = 0;                 // paths simulated
};

struct Estimate estimate(const SnapshotModel& m, const std::vector<int>& snapshot_states, Estimator e, int samples,
                         Rng& rng);
Estimate estimate_rejection(const SnapshotModel& m, const std::vector<int>& snapshot_states, int samples, Rng& rng);
// roulette: continuation probability per step (<= 0: gamma). uniform: propose predecessors
// uniformly instead of by the reversed goal-mixture policy.
Estimate estimate_backward(const SnapshotModel& m, const std::vector<int>& snapshot_states, int samples, Rng& rng,
                           bool uniform = false, double roulette = -1);
// Bidirectional: `samples` backward paths and min(samples, kMaxForwardPaths) forward paths.
constexpr int kMaxForwardPaths = 100;
Estimate estimate_bidirectional(const SnapshotModel& m, const std::vector<int>& snapshot_states, int samples,
                                Rng& rng);

// Expected visits to each state before the snapshot, from `samples` backward paths.
std::vector<double> backward_past_visits(const SnapshotModel& m, const std::vector<int>& snapshot_states,
                                         int samples, Rng& rng);

// Likely futures: draw (g, x) with probability proportional to P(g) rho_g(x) from the
// estimate and follow the agent's policy until it reaches its goal or `horizon` steps.
struct Future {
  int goal = 0;
  std::vector<int> states;  // starts at the snapshot state
};
std::vector<Future> sample_futures(const SnapshotModel& m, const std::vector<int>& snapshot_states,
                                             const Estimate& est, int count, int horizon, Rng& rng);

double total_variation(const std::vector<double>& p, const std::vector<double>& q);

}  // namespace ik::snapshot
