#pragma once
// The audience: a Bayesian observer over 34 hypotheses about the two characters (i2p.py
// `hypothesis_space`, `advance_transition`). Each hypothesis names A's goal, B's goal, B's
// social weight rho and whether each agent is rational (an irrational agent acts uniformly).
#include <array>
#include <vector>

#include "prob/story/planning.hpp"

namespace ik::story {

struct Hypothesis {
  int a_goal = 0, b_goal = 0, rho = 0;
  bool rat_a = true, rat_b = true;
  int a_plan = -1, b_plan = -1;  // tables used (-1: irrational, uniform actions)
};

constexpr int num_hypotheses = 34;
using Belief = std::array<double, num_hypotheses>;

// In the reference's order: 28 rational (rho in {-3,-1,0,1,3} x A goal x B goal, without
// rho = 0 with no B goal), 3 with A irrational, 2 with B irrational, 1 with both.
const std::array<Hypothesis, num_hypotheses>& hypotheses();

enum class Who { a, b };

class Observer {
 public:
  explicit Observer(const Tables& t) : t_(t) {}
  const Tables& tables() const { return t_; }

  Belief prior() const;
  // P(action | state, hypothesis) for the agent `who`.
  double likelihood(int h, Who who, int s, int action) const;
  // Bayes' rule for one observed action, then mixing with epsilon of the uniform belief so no
  // hypothesis is ever ruled out (the reference mixes with (1 - p) epsilon / |H|, which does
  // not sum to one; we mix with epsilon / |H|).
  Belief update(const Belief& b, Who who, int s, int action) const;

  static constexpr double epsilon = 1e-5;

 private:
  const Tables& t_;
};

// Queries over a belief.
double pr_rational(const Belief& b);  // both rational
// P(pred | both rational).
template <class Pred>
double pr_given_rational(const Belief& b, Pred pred) {
  double joint = 0, marginal = 0;
  for (int h = 0; h < num_hypotheses; ++h) {
    const Hypothesis& H = hypotheses()[h];
    if (!H.rat_a || !H.rat_b) continue;
    marginal += b[h];
    if (pred(H)) joint += b[h];
  }
  return joint / marginal;
}
double pr_help(const Belief& b);         // P(rho > 0 | rational)
double pr_hinder(const Belief& b);       // P(rho < 0 | rational)
double pr_indifferent(const Belief& b);  // P(rho = 0 | rational)

}  // namespace ik::story
