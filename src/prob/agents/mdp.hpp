#pragma once
// Finite MDPs stored sparsely, value iteration, Boltzmann-rational policies and the Markov
// chain a policy induces. Nothing here knows about grids: gridworld.hpp builds one MDP per
// reward hypothesis, and a multi-agent world can build its joint-state MDP the same way.
#include <span>
#include <vector>

namespace ik::agents {

struct Transition {
  int next = 0;
  double prob = 0;
};

// For each (state, action): a few outcomes and the expected reward. Terminal states are
// absorbing and worth terminal_value; their actions are ignored.
struct Mdp {
  int num_states = 0;
  int num_actions = 0;
  std::vector<int> first;             // num_states*num_actions + 1 offsets into outcomes
  std::vector<Transition> outcomes;
  std::vector<double> reward;         // per (state, action)
  std::vector<char> terminal;         // per state
  std::vector<double> terminal_value; // per state, used when terminal

  std::span<const Transition> next(int s, int a) const {
    const int i = s * num_actions + a;
    return {outcomes.data() + first[i], outcomes.data() + first[i + 1]};
  }
  // Building: call add_outcome for (s, a) in row-major order, close each pair with end_action.
  void start(int states, int actions);
  void add_outcome(int next, double prob) { outcomes.push_back({next, prob}); }
  void end_action(double r) {
    reward.push_back(r);
    first.push_back(static_cast<int>(outcomes.size()));
  }
  void check() const;  // sizes and probabilities sum to one; throws ik::Error
};

struct PlanOptions {
  double gamma = 0.99;   // planning discount
  double beta = 2.0;     // Boltzmann rationality: pi(a|s) ~ exp(beta Q(s,a))
  double tol = 1e-10;    // stop when the largest Q change is below tol
  int max_sweeps = 100000;
};

// Q(s,a) = r(s,a) + gamma sum_s' P(s'|s,a) V(s'), V = max_a Q (terminal: terminal_value).
// Returns num_states*num_actions values.
std::vector<double> value_iteration(const Mdp& mdp, const PlanOptions& opt);

// pi(a|s) proportional to exp(beta Q(s,a)), num_states*num_actions values.
std::vector<double> boltzmann_policy(const Mdp& mdp, const std::vector<double>& q, double beta);

// T(s'|s) = sum_a pi(a|s) P(s'|s,a), one sparse row per state; terminal states loop on themselves.
struct MarkovChain {
  int num_states = 0;
  std::vector<int> first;          // num_states + 1
  std::vector<Transition> out;     // successors, sorted by state, no duplicates
  std::span<const Transition> row(int s) const {
    return {out.data() + first[s], out.data() + first[s + 1]};
  }
  double prob(int from, int to) const;
};
MarkovChain induced_chain(const Mdp& mdp, const std::vector<double>& policy);

// One planning agent: its Q values, policy and induced chain.
struct Agent {
  std::vector<double> q, policy;
  MarkovChain chain;
};
Agent plan_agent(const Mdp& mdp, const PlanOptions& opt);

}  // namespace ik::agents
