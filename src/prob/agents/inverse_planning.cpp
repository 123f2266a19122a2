#include "prob/agents/inverse_planning.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.hpp"

namespace ik::agents {

Hypotheses plan_hypotheses(const GridWorld& world, const std::vector<RewardHypothesis>& hs,
                           const PlanOptions& opt) {
  IK_CHECK(!hs.empty(), "no hypotheses to plan");
  Hypotheses out;
  double total = 0;
  for (auto& h : hs) {
    IK_CHECK(h.prior >= 0, "hypothesis '{}' has a negative prior", h.name);
    total += h.prior;
  }
  IK_CHECK(total > 0, "the hypothesis priors sum to zero");
  for (auto& h : hs) {
    out.names.push_back(h.name);
    out.prior.push_back(h.prior / total);
    out.agents.push_back(plan_agent(world.mdp(h), opt));
  }
  return out;
}

std::vector<double> normalize_log_posterior(const std::vector<double>& prior, const std::vector<double>& log_lik) {
  std::vector<double> post(prior.size());
  double top = -std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < prior.size(); ++i)
    if (prior[i] > 0) top = std::max(top, log_lik[i] + std::log(prior[i]));
  IK_CHECK(std::isfinite(top), "the observations are impossible under every hypothesis");
  double z = 0;
  for (size_t i = 0; i < prior.size(); ++i)
    z += post[i] = prior[i] > 0 ? std::exp(log_lik[i] + std::log(prior[i]) - top) : 0.0;
  for (auto& p : post) p /= z;
  return post;
}

std::vector<double> posterior_from_states(const Hypotheses& h, const std::vector<int>& states) {
  std::vector<double> log_lik(h.size(), 0.0);
  for (int i = 0; i < h.size(); ++i)
    for (size_t t = 0; t + 1 < states.size(); ++t)
      log_lik[i] += std::log(h.agents[i].chain.prob(states[t], states[t + 1]));
  return normalize_log_posterior(h.prior, log_lik);
}

std::vector<double> posterior_from_actions(const Hypotheses& h, const std::vector<int>& states,
                                           const std::vector<int>& actions, int num_actions) {
  IK_CHECK(actions.size() == states.size(), "{} actions for {} states", actions.size(), states.size());
  std::vector<double> log_lik(h.size(), 0.0);
  for (int i = 0; i < h.size(); ++i)
    for (size_t t = 0; t < states.size(); ++t)
      log_lik[i] += std::log(h.agents[i].policy[size_t(states[t]) * num_actions + actions[t]]);
  return normalize_log_posterior(h.prior, log_lik);
}

}  // namespace ik::agents
