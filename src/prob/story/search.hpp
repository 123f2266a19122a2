#pragma once
// Inverse inverse planning: choose the characters' actions (and A's lucky or unlucky
// outcomes) so that the observer's beliefs tell the wanted story (i2p.py `lean_search_many`),
// and the naive-planner baseline of regp.py for comparison.
#include <cstdint>
#include <vector>

#include "prob/story/objectives.hpp"

namespace ik::story {

struct SearchOptions {
  Effect effect = Effect::help;
  int length = 15;   // turns
  int starts = 500;  // random start states, searched independently ("beam size")
  int cuts = 1;      // beam width kept per start after each turn ("beam cuts")
  bool deus = false; // add the 5 deus ex machina turns (starts then have the box in a wall)
  uint64_t seed = 1;
};

struct Story {
  int s0 = 0;
  std::vector<Turn> turns;
  double score = 0;
};

// Starts are drawn uniformly from the valid states with ik::Rng(seed); each start is searched
// on its own thread (OpenMP) and the best story over all starts wins. Deterministic for a
// given seed whatever the thread count. Throws on length <= 0, starts <= 0 or cuts <= 0.
Story search(const World& w, const Observer& o, const SearchOptions& opt);
// The search from one given start (opt.starts and opt.seed are ignored).
Story search_from(const World& w, const Observer& o, const SearchOptions& opt, int s0);

// The baseline: both characters simply act on their own plans (argmax of their policies,
// A's outcomes drawn with p = 0.6), for hypothetical goals and a rho that matches the effect:
// rho in {+1,+3} for help-like effects, {-1,-3} for hinder-like, 0 for indifferent; the
// twists switch sign at the middle; the others draw the alignment uniformly. Returns the
// story and the hypothesis it was planned with.
Story naive_story(const World& w, const Observer& o, Effect e, int length, uint64_t seed, Hypothesis* planned = nullptr);

}  // namespace ik::story
