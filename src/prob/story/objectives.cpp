#include "prob/story/objectives.hpp"

#include <cmath>
#include <numbers>

#include "core/error.hpp"

namespace ik::story {

namespace {

const std::vector<std::pair<std::string, Effect>>& effect_table() {
  static const std::vector<std::pair<std::string, Effect>> t{
      {"help", Effect::help},
      {"hinder", Effect::hinder},
      {"indifferent", Effect::indifferent},
      {"help-then-hinder", Effect::help_then_hinder},
      {"hinder-then-help", Effect::hinder_then_help},
      {"help-then-goal", Effect::help_then_goal},
      {"hinder-then-goal", Effect::hinder_then_goal},
      {"irony", Effect::irony},
      {"cinderella", Effect::cinderella},
      {"flashback-help", Effect::flashback_help},
      {"flashback-hinder", Effect::flashback_hinder},
      {"surprise", Effect::surprise},
      {"suspense", Effect::suspense},
      {"curiosity", Effect::curiosity},
  };
  return t;
}

constexpr int pink = 0, green = 1;  // goal indices: (1,1) and (1,5)

// The belief restricted to the 28 rational hypotheses, renormalized.
std::array<double, num_hypotheses> rational_part(const Belief& b) {
  std::array<double, num_hypotheses> out{};
  double z = 0;
  for (int h = 0; h < num_hypotheses; ++h)
    if (hypotheses()[h].rat_a && hypotheses()[h].rat_b) z += out[h] = b[h];
  for (double& p : out) p /= z;
  return out;
}

// E[V_B(s) | both rational], the robot's expected long-run reward (cinderella's "fortune").
double expected_b_value(const Observer& o, const Belief& b, int s) {
  double joint = 0, marginal = 0;
  for (int h = 0; h < num_hypotheses; ++h) {
    const Hypothesis& H = hypotheses()[h];
    if (!H.rat_a || !H.rat_b) continue;
    joint += b[h] * o.tables().vb(s, H.b_plan);
    marginal += b[h];
  }
  return joint / marginal;
}

double cross_entropy(const Belief& p, const Belief& q) {
  double ce = 0;
  for (int h = 0; h < num_hypotheses; ++h) ce -= p[h] * std::log(q[h]);
  return ce;
}

}  // namespace

const std::vector<std::string>& effect_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& [n, e] : effect_table()) out.push_back(n);
    return out;
  }();
  return names;
}

Effect parse_effect(const std::string& name) {
  for (const auto& [n, e] : effect_table())
    if (n == name) return e;
  std::string valid;
  for (const auto& n : effect_names()) valid += (valid.empty() ? "" : ", ") + n;
  fail("unknown effect '{}' (valid: {})", name, valid);
}

const char* effect_name(Effect e) {
  for (const auto& [n, x] : effect_table())
    if (x == e) return n.c_str();
  return "?";
}

bool is_flashback(Effect e) { return e == Effect::flashback_help || e == Effect::flashback_hinder; }

EffectDefaults effect_defaults(Effect e) {
  if (e == Effect::cinderella || e == Effect::irony) return {25, 1};
  if (is_flashback(e)) return {3, 100};
  return {15, 1};
}

Trace replay(const World& w, const Observer& o, int s0, const std::vector<Turn>& turns) {
  Trace t;
  t.s0 = s0;
  t.turns = turns;
  t.beliefs.push_back(o.prior());
  int s = s0;
  for (const Turn& turn : turns) {
    const TurnResult r = apply_turn(w, s, turn);
    Belief b = t.beliefs.back();
    if (turn.deus < 0) b = o.update(b, Who::a, s, turn.a_action);  // the box's moves tell nothing
    t.beliefs.push_back(b);
    if (turn.deus < 0) b = o.update(b, Who::b, r.s1, turn.b_action);
    t.beliefs.push_back(b);
    t.states.push_back(r.s1);
    t.states.push_back(r.s2);
    s = r.s2;
  }
  return t;
}

double kl_rational(const Belief& p, const Belief& q) {
  const auto pr = rational_part(p), qr = rational_part(q);
  double kl = 0;
  for (int h = 0; h < num_hypotheses; ++h)
    if (pr[h] > 0) kl += pr[h] * std::log(pr[h] / qr[h]);
  return kl;
}

double entropy_rational(const Belief& b) {
  const auto pr = rational_part(b);
  double e = 0;
  for (double p : pr)
    if (p > 0) e -= p * std::log(p);
  return e;
}

double expected_jump(const Observer& o, const Belief& b, Who who, int s) {
  double expected = 0;
  for (int a = 0; a < num_actions; ++a) {
    double p = 0;  // the observer's predictive probability of action a
    for (int h = 0; h < num_hypotheses; ++h) p += b[h] * o.likelihood(h, who, s, a);
    if (p > 0) expected += p * kl_rational(o.update(b, who, s, a), b);
  }
  return expected;
}

double Scorer::entry(int i, const Belief& b) const {
  const double rat = pr_rational(b);
  const bool before_mid = i < mid_;
  switch (effect_) {
    case Effect::help: return rat + pr_help(b);
    case Effect::hinder: return rat + pr_hinder(b);
    case Effect::indifferent: return rat + pr_indifferent(b);
    case Effect::help_then_hinder: return rat + 0.1 * (before_mid ? pr_help(b) : pr_hinder(b));
    case Effect::hinder_then_help: return rat + 0.1 * (i > mid_ ? pr_help(b) : pr_hinder(b));
    case Effect::help_then_goal:
      return rat + pr_given_rational(b, [&](const Hypothesis& H) {
               return H.a_goal == pink && (before_mid ? H.rho > 0 : H.rho == 0);
             });
    case Effect::hinder_then_goal:
      return rat + pr_given_rational(b, [&](const Hypothesis& H) {
               return H.a_goal == pink && (before_mid ? H.rho < 0 : H.rho == 0);
             });
    case Effect::irony: {
      // The audience believes A wants green, yet that B helps a pink-seeking A and hinders a
      // green-seeking one: it knows something the characters' actions belie.
      const double green_p = pr_given_rational(b, [](const Hypothesis& H) { return H.a_goal == green; });
      double help_if_pink = 0, hinder_if_green = 0, pink_mass = 0, green_mass = 0;
      for (int h = 0; h < num_hypotheses; ++h) {
        const Hypothesis& H = hypotheses()[h];
        if (!H.rat_a || !H.rat_b) continue;
        (H.a_goal == pink ? pink_mass : green_mass) += b[h];
        if (H.a_goal == pink && H.rho > 0) help_if_pink += b[h];
        if (H.a_goal == green && H.rho < 0) hinder_if_green += b[h];
      }
      return rat + green_p + help_if_pink / pink_mass + hinder_if_green / green_mass;
    }
    case Effect::cinderella: return rat;
    case Effect::flashback_help: return rat + 0.1 * pr_help(b);
    case Effect::flashback_hinder: return rat + 0.1 * pr_hinder(b);
    case Effect::surprise: return rat;
    case Effect::suspense: return rat;
    case Effect::curiosity: return rat + entropy_rational(b) / std::log(28.0);
  }
  return rat;
}

double Scorer::link(int i, const Belief& b, const Belief& next, int before, int after, Who mover) const {
  switch (effect_) {
    case Effect::cinderella:
      return 1e-2 * std::sin(1.5 * std::numbers::pi * i / mid_) * expected_b_value(o_, b, after) -
             0.1 * cross_entropy(b, next);
    case Effect::surprise: return kl_rational(next, b);
    case Effect::suspense: return expected_jump(o_, b, mover, before);
    default: return 0;
  }
}

double Scorer::regularizer(const std::vector<Turn>& turns, const Turn* extra) {
  int attempts = 0, successes = 0;
  auto visit = [&](const Turn& t) -> bool {  // newest first; false once five are counted
    if (t.deus >= 0 || t.a_action == stay) return true;
    ++attempts;
    successes += t.a_outcome == 0;
    return attempts < 5;
  };
  bool more = extra ? visit(*extra) : true;
  for (auto it = turns.rbegin(); more && it != turns.rend(); ++it) more = visit(*it);
  if (attempts < 5) return 0;
  return -std::abs((successes + 1) / 7.0 - 0.6);
}

double Scorer::flashback_bonus(const State& s) { return (s.ay == s.by) + (s.ax == s.bx + 1); }

double Scorer::score(const World& w, int s0, const std::vector<Turn>& turns) const {
  std::vector<Turn> all = turns;
  if (is_flashback(effect_)) all.push_back(flash_turn);
  const Trace t = replay(w, o_, s0, all);
  double total = regularizer(all);
  for (size_t i = 0; i < t.beliefs.size(); ++i) total += entry(int(i), t.beliefs[i]);
  for (size_t i = 0; i + 1 < t.beliefs.size(); ++i)
    total += link(int(i), t.beliefs[i], t.beliefs[i + 1], t.state_before(int(i)), t.states[i], i % 2 ? Who::b : Who::a);
  if (is_flashback(effect_)) total += flashback_bonus(w.state(t.state_before(int(all.size() * 2 - 1))));
  return total;
}

}  // namespace ik::story
