#include "prob/story/observer.hpp"

namespace ik::story {

const std::array<Hypothesis, num_hypotheses>& hypotheses() {
  static const std::array<Hypothesis, num_hypotheses> hs = [] {
    std::array<Hypothesis, num_hypotheses> out;
    int n = 0;
    auto add = [&](int ag, int bg, int rho, bool ra, bool rb) {
      out[n++] = {ag, bg, rho, ra, rb, ra ? ag : -1, rb ? b_plan_index(ag, bg, rho) : -1};
    };
    for (int rho : {-3, -1, 0, 1, 3})
      for (int ag = 0; ag < 2; ++ag)
        for (int bg = 0; bg < 3; ++bg)
          if (!(rho == 0 && bg == 2)) add(ag, bg, rho, true, true);
    for (int bg = 0; bg < 3; ++bg) add(1, bg, 0, false, true);
    for (int ag = 0; ag < 2; ++ag) add(ag, 2, 0, true, false);
    add(1, 2, 0, false, false);
    return out;
  }();
  return hs;
}

Belief Observer::prior() const {
  Belief b;
  b.fill(1.0 / num_hypotheses);
  return b;
}

double Observer::likelihood(int h, Who who, int s, int action) const {
  const Hypothesis& H = hypotheses()[h];
  if (who == Who::a) return H.a_plan < 0 ? 1.0 / num_actions : t_.pa(s, H.a_plan, action);
  return H.b_plan < 0 ? 1.0 / num_actions : t_.pb(s, H.b_plan, action);
}

Belief Observer::update(const Belief& b, Who who, int s, int action) const {
  Belief out;
  double z = 0;
  for (int h = 0; h < num_hypotheses; ++h) z += out[h] = b[h] * likelihood(h, who, s, action);
  for (double& p : out) p = p / z * (1 - epsilon) + epsilon / num_hypotheses;
  return out;
}

double pr_rational(const Belief& b) {
  double p = 0;
  for (int h = 0; h < num_hypotheses; ++h)
    if (hypotheses()[h].rat_a && hypotheses()[h].rat_b) p += b[h];
  return p;
}

double pr_help(const Belief& b) {
  return pr_given_rational(b, [](const Hypothesis& H) { return H.rho > 0; });
}
double pr_hinder(const Belief& b) {
  return pr_given_rational(b, [](const Hypothesis& H) { return H.rho < 0; });
}
double pr_indifferent(const Belief& b) {
  return pr_given_rational(b, [](const Hypothesis& H) { return H.rho == 0; });
}

}  // namespace ik::story
