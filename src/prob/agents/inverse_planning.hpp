#pragma once
// Bayesian inverse planning: a set of hypotheses about what an agent wants (each a planned
// Agent with a prior) and the posterior over them after watching it move.
#include <string>
#include <vector>

#include "prob/agents/gridworld.hpp"
#include "prob/agents/mdp.hpp"

namespace ik::agents {

struct Hypotheses {
  std::vector<std::string> names;
  std::vector<double> prior;   // normalized
  std::vector<Agent> agents;   // one planned agent per hypothesis
  int size() const { return static_cast<int>(names.size()); }
};

// Plans one Boltzmann agent per reward hypothesis of the world.
Hypotheses plan_hypotheses(const GridWorld& world, const std::vector<RewardHypothesis>& hs,
                           const PlanOptions& opt);

// P(h | s_0..s_n) from observed states only: likelihood prod_t T_h(s_{t+1} | s_t).
std::vector<double> posterior_from_states(const Hypotheses& h, const std::vector<int>& states);
// P(h | s, a) from observed states and chosen actions: likelihood prod_t pi_h(a_t | s_t).
std::vector<double> posterior_from_actions(const Hypotheses& h, const std::vector<int>& states,
                                           const std::vector<int>& actions, int num_actions);

// Normalizes prior * exp(log_lik) safely; throws when every hypothesis has zero likelihood.
std::vector<double> normalize_log_posterior(const std::vector<double>& prior, const std::vector<double>& log_lik);

}  // namespace ik::agents
