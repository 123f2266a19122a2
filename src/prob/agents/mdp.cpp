#include "prob/agents/mdp.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.hpp"

namespace ik::agents {

void Mdp::start(int states, int actions) {
  num_states = states;
  num_actions = actions;
  first.assign(1, 0);
  outcomes.clear();
  reward.clear();
  terminal.assign(states, 0);
  terminal_value.assign(states, 0.0);
}

void Mdp::check() const {
  IK_CHECK(num_states > 0 && num_actions > 0, "MDP has no states or no actions");
  IK_CHECK(first.size() == size_t(num_states) * num_actions + 1, "MDP has {} action rows, expected {}",
           first.size() - 1, size_t(num_states) * num_actions);
  IK_CHECK(reward.size() + 1 == first.size(), "MDP reward table has the wrong size");
  for (int s = 0; s < num_states; ++s) {
    if (terminal[s]) continue;
    for (int a = 0; a < num_actions; ++a) {
      double total = 0;
      for (auto t : next(s, a)) {
        IK_CHECK(t.next >= 0 && t.next < num_states, "MDP state {} action {} leads to unknown state {}", s,
                 a, t.next);
        total += t.prob;
      }
      IK_CHECK(std::abs(total - 1) < 1e-9, "MDP state {} action {}: outcome probabilities sum to {}", s, a,
               total);
    }
  }
}

std::vector<double> value_iteration(const Mdp& mdp, const PlanOptions& opt) {
  const int S = mdp.num_states, A = mdp.num_actions;
  std::vector<double> q(size_t(S) * A, 0.0), v(S, 0.0);
  for (int s = 0; s < S; ++s)
    if (mdp.terminal[s]) v[s] = mdp.terminal_value[s];
  for (int sweep = 0; sweep < opt.max_sweeps; ++sweep) {
    double change = 0;
    for (int s = 0; s < S; ++s) {
      if (mdp.terminal[s]) {
        for (int a = 0; a < A; ++a) q[size_t(s) * A + a] = mdp.terminal_value[s];
        continue;
      }
      double best = -std::numeric_limits<double>::infinity();
      for (int a = 0; a < A; ++a) {
        double expect = 0;
        for (auto t : mdp.next(s, a)) expect += t.prob * v[t.next];
        const double qa = mdp.reward[size_t(s) * A + a] + opt.gamma * expect;
        change = std::max(change, std::abs(qa - q[size_t(s) * A + a]));
        q[size_t(s) * A + a] = qa;
        best = std::max(best, qa);
      }
      v[s] = best;  // Gauss-Seidel: later states in this sweep see the new value
    }
    if (change < opt.tol) break;
  }
  return q;
}

std::vector<double> boltzmann_policy(const Mdp& mdp, const std::vector<double>& q, double beta) {
  const int S = mdp.num_states, A = mdp.num_actions;
  std::vector<double> pi(size_t(S) * A);
  for (int s = 0; s < S; ++s) {
    const double* qs = &q[size_t(s) * A];
    const double top = *std::max_element(qs, qs + A);  // subtract the max: no overflow
    double z = 0;
    for (int a = 0; a < A; ++a) z += pi[size_t(s) * A + a] = std::exp(beta * (qs[a] - top));
    for (int a = 0; a < A; ++a) pi[size_t(s) * A + a] /= z;
  }
  return pi;
}

double MarkovChain::prob(int from, int to) const {
  for (auto t : row(from))
    if (t.next == to) return t.prob;
  return 0.0;
}

MarkovChain induced_chain(const Mdp& mdp, const std::vector<double>& policy) {
  MarkovChain c;
  c.num_states = mdp.num_states;
  c.first.assign(1, 0);
  std::vector<Transition> row;
  for (int s = 0; s < mdp.num_states; ++s) {
    row.clear();
    if (mdp.terminal[s]) {
      row.push_back({s, 1.0});
    } else {
      for (int a = 0; a < mdp.num_actions; ++a) {
        const double pa = policy[size_t(s) * mdp.num_actions + a];
        for (auto t : mdp.next(s, a)) row.push_back({t.next, pa * t.prob});
      }
      std::sort(row.begin(), row.end(), [](auto& l, auto& r) { return l.next < r.next; });
      size_t kept = 0;  // merge duplicates (several actions reaching the same state)
      for (size_t i = 0; i < row.size(); ++i) {
        if (kept && row[kept - 1].next == row[i].next) row[kept - 1].prob += row[i].prob;
        else row[kept++] = row[i];
      }
      row.resize(kept);
      std::erase_if(row, [](auto& t) { return t.prob <= 0; });
    }
    c.out.insert(c.out.end(), row.begin(), row.end());
    c.first.push_back(static_cast<int>(c.out.size()));
  }
  return c;
}

Agent plan_agent(const Mdp& mdp, const PlanOptions& opt) {
  Agent agent;
  agent.q = value_iteration(mdp, opt);
  agent.policy = boltzmann_policy(mdp, agent.q, opt.beta);
  agent.chain = induced_chain(mdp, agent.policy);
  return agent;
}

}  // namespace ik::agents
