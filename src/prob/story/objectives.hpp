#pragma once
// What a story should make the audience believe (i2p.py `score_history`, `score_turns`), plus
// three effects of our own defined on the belief sequence (surprise, suspense, curiosity).
//
// A story of T turns gives the observer 2T transitions (A's move, then B's) and 2T+1 beliefs
// b_0..b_2T; mid = T is the middle of that sequence. Every objective adds rat = sum_i
// P_i(both rational) and the plausibility regularizer on A's last five attempted moves.
#include <string>
#include <vector>

#include "prob/story/observer.hpp"
#include "prob/story/world.hpp"

namespace ik::story {

enum class Effect {
  help, hinder, indifferent,              // character
  help_then_hinder, hinder_then_help,     // plot twists
  help_then_goal, hinder_then_goal,       // the reference's goal-revealing twists
  irony,                                  // dramatic irony
  cinderella,                             // narrative arc (with the belief-jump penalty)
  flashback_help, flashback_hinder,       // scored with a final flashback turn appended
  surprise, suspense, curiosity,          // extensions
};

const std::vector<std::string>& effect_names();  // "help", "help-then-hinder", ...
Effect parse_effect(const std::string& name);    // ik::Error listing the valid names
const char* effect_name(Effect e);
bool is_flashback(Effect e);

// The reference's search settings (i2p.sbatch); the extensions use those of help.
struct EffectDefaults {
  int length = 15, cuts = 1;
};
EffectDefaults effect_defaults(Effect e);

// The virtual last turn of flashback stories: A stays, B moves right (the reference's SOUTH).
constexpr Turn flash_turn{stay, 0, right, -1};

// Everything the observer saw: the state after each transition and the beliefs.
struct Trace {
  int s0 = 0;
  std::vector<Turn> turns;
  std::vector<int> states;      // 2 per turn: after A's move (or the box's), after B's
  std::vector<Belief> beliefs;  // 2 * turns + 1: prior, then after each transition
  int state_before(int i) const { return i == 0 ? s0 : states[i - 1]; }
};
Trace replay(const World& w, const Observer& o, int s0, const std::vector<Turn>& turns);

class Scorer {
 public:
  Scorer(const Observer& o, Effect e, int length) : o_(o), effect_(e), mid_(length) {}
  Effect effect() const { return effect_; }

  // The terms of belief b_i on its own.
  double entry(int i, const Belief& b) const;
  // The terms linking b_i to b_{i+1} through transition i, which `mover` made from `before`
  // to `after` (cinderella's value curve and belief-jump penalty, surprise, suspense).
  double link(int i, const Belief& b, const Belief& next, int before, int after, Who mover) const;
  // The plausibility regularizer: A's last five attempted moves should succeed about 60% of
  // the time: -|(successes + 1) / 7 - 0.6| once there are five (deus turns do not count).
  static double regularizer(const std::vector<Turn>& turns, const Turn* extra = nullptr);
  // Flashback bonus: the story ends with A just right of B on the same row (so the flashback
  // turn has B push A).
  static double flashback_bonus(const State& final_state);

  // The whole objective of a story from scratch (flashback effects append flash_turn).
  double score(const World& w, int s0, const std::vector<Turn>& turns) const;

 private:
  const Observer& o_;
  Effect effect_;
  int mid_;
};

// Information measures on beliefs conditioned on both characters being rational.
double kl_rational(const Belief& p, const Belief& q);  // KL(p || q)
double entropy_rational(const Belief& b);              // in nats
// E[KL(b' || b)] over the next action of `who` at state s, drawn from the observer's own
// predictive distribution: the expected size of the next belief jump.
double expected_jump(const Observer& o, const Belief& b, Who who, int s);

}  // namespace ik::story
