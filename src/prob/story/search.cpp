#include "prob/story/search.hpp"

#include <algorithm>
#include <numeric>

#include "core/error.hpp"
#include "core/rng.hpp"

namespace ik::story {

namespace {

struct Node {
  int state = 0;
  double history = 0;  // the additive part of the score over the beliefs so far
  Belief last{};
  std::vector<Turn> turns;
  double score = 0;
};

struct Candidate {
  int parent = 0, turn = 0, state = 0;
  double history = 0, score = 0;
  Belief last{};
};

// The best story from one start: every node of the beam tries every turn; the `cuts` best
// candidates (ties: generation order) survive.
Node search_start(const World& w, const Observer& o, const Scorer& scorer, const SearchOptions& opt,
                 const std::vector<Turn>& turns, int s0) {
  std::vector<Node> beam(1);
  beam[0].state = s0;
  beam[0].last = o.prior();
  beam[0].history = scorer.entry(0, beam[0].last);
  const bool flashback = is_flashback(opt.effect);
  std::vector<Candidate> cands;
  for (int t = 0; t < opt.length; ++t) {
    cands.clear();
    const int i = 2 * t;  // index of the belief before this turn
    for (int p = 0; p < int(beam.size()); ++p) {
      const Node& node = beam[p];
      Belief after_a[num_actions];  // A's update depends on its action only, not on the outcome
      for (int a = 0; a < num_actions; ++a) after_a[a] = o.update(node.last, Who::a, node.state, a);
      for (int k = 0; k < int(turns.size()); ++k) {
        const Turn& turn = turns[k];
        const TurnResult r = apply_turn(w, node.state, turn);
        const Belief& b1 = turn.deus < 0 ? after_a[turn.a_action] : node.last;
        const Belief b2 = turn.deus < 0 ? o.update(b1, Who::b, r.s1, turn.b_action) : b1;
        Candidate c{p, k, r.s2};
        c.history = node.history + scorer.link(i, node.last, b1, node.state, r.s1, Who::a) + scorer.entry(i + 1, b1) +
                    scorer.link(i + 1, b1, b2, r.s1, r.s2, Who::b) + scorer.entry(i + 2, b2);
        c.score = c.history;
        if (flashback) {  // score the story as if the flashback turn followed
          const TurnResult f = apply_turn(w, r.s2, flash_turn);
          const Belief f1 = o.update(b2, Who::a, r.s2, flash_turn.a_action);
          const Belief f2 = o.update(f1, Who::b, f.s1, flash_turn.b_action);
          c.score += scorer.link(i + 2, b2, f1, r.s2, f.s1, Who::a) + scorer.entry(i + 3, f1) +
                     scorer.link(i + 3, f1, f2, f.s1, f.s2, Who::b) + scorer.entry(i + 4, f2) +
                     Scorer::flashback_bonus(w.state(r.s2));
        }
        c.score += Scorer::regularizer(node.turns, &turn);
        c.last = b2;
        cands.push_back(c);
      }
    }
    std::vector<int> order(cands.size());
    std::iota(order.begin(), order.end(), 0);
    const int keep = std::min<int>(opt.cuts, int(order.size()));
    std::partial_sort(order.begin(), order.begin() + keep, order.end(), [&](int a, int b) {
      return cands[a].score != cands[b].score ? cands[a].score > cands[b].score : a < b;
    });
    std::vector<Node> next(keep);
    for (int j = 0; j < keep; ++j) {
      const Candidate& c = cands[order[j]];
      next[j].state = c.state;
      next[j].history = c.history;
      next[j].last = c.last;
      next[j].turns = beam[c.parent].turns;
      next[j].turns.push_back(turns[c.turn]);
      next[j].score = c.score;
    }
    beam.swap(next);
  }
  return beam[0];
}

}  // namespace

Story search(const World& w, const Observer& o, const SearchOptions& opt) {
  IK_CHECK(opt.length > 0, "story length must be positive, got {}", opt.length);
  IK_CHECK(opt.starts > 0, "the number of starts (beam) must be positive, got {}", opt.starts);
  IK_CHECK(opt.cuts > 0, "beam cuts must be positive, got {}", opt.cuts);
  const std::vector<Turn> turns = all_turns(opt.deus);
  const Scorer scorer(o, opt.effect, opt.length);

  ik::Rng rng(opt.seed);
  std::vector<int> starts;
  while (int(starts.size()) < opt.starts) {
    const int s = int(rng.below(w.num_states()));
    const State& st = w.state(s);
    if (opt.deus && !is_wall_cell(st.rx, st.ry)) continue;  // deus needs the box out of play
    starts.push_back(s);
  }

  std::vector<Node> best(starts.size());
#pragma omp parallel for schedule(dynamic)
  for (int j = 0; j < int(starts.size()); ++j) best[j] = search_start(w, o, scorer, opt, turns, starts[j]);
  int winner = 0;
  for (int j = 1; j < int(best.size()); ++j)
    if (best[j].score > best[winner].score) winner = j;
  return {starts[winner], best[winner].turns, best[winner].score};
}

Story search_from(const World& w, const Observer& o, const SearchOptions& opt, int s0) {
  IK_CHECK(opt.length > 0, "story length must be positive, got {}", opt.length);
  IK_CHECK(opt.cuts > 0, "beam cuts must be positive, got {}", opt.cuts);
  const Node best = search_start(w, o, Scorer(o, opt.effect, opt.length), opt, all_turns(opt.deus), s0);
  return {s0, best.turns, best.score};
}

Story naive_story(const World& w, const Observer& o, Effect e, int length, uint64_t seed, Hypothesis* planned) {
  IK_CHECK(length > 0, "story length must be positive, got {}", length);
  ik::Rng rng(seed, 0x6e61697665);  // "naive"
  int alignment = 0;
  switch (e) {
    case Effect::help: case Effect::help_then_hinder: case Effect::help_then_goal: case Effect::flashback_help:
      alignment = 1; break;
    case Effect::hinder: case Effect::hinder_then_help: case Effect::hinder_then_goal: case Effect::flashback_hinder:
      alignment = -1; break;
    case Effect::indifferent: alignment = 0; break;
    default: alignment = int(rng.below(3)) - 1;
  }
  const bool twist = e == Effect::help_then_hinder || e == Effect::hinder_then_help;
  Hypothesis h;
  int plan = -1;
  while (plan < 0) {  // regp.py: resample until the hypothesis exists
    h.a_goal = int(rng.below(2));
    h.b_goal = int(rng.below(3));
    h.rho = (rng.below(2) ? 3 : 1) * alignment;
    plan = b_plan_index(h.a_goal, h.b_goal, h.rho);
  }
  h.a_plan = h.a_goal;
  h.b_plan = plan;
  if (planned) *planned = h;
  const Tables& t = o.tables();
  auto argmax = [](auto&& prob) {
    int best = 0;
    for (int a = 1; a < num_actions; ++a)
      if (prob(a) > prob(best)) best = a;
    return best;
  };
  Story story;
  story.s0 = int(rng.below(w.num_states()));
  int s = story.s0;
  for (int k = 0; k < length; ++k) {
    const int b_plan = twist && k >= length / 2 ? b_plan_index(h.a_goal, h.b_goal, -h.rho) : plan;
    Turn turn;
    turn.a_action = argmax([&](int a) { return t.pa(s, h.a_plan, a); });
    turn.a_outcome = w.a_can_move(s, turn.a_action) && rng.uniform() >= 0.6 ? 1 : 0;
    const int s1 = turn.a_outcome == 0 ? w.a_target(s, turn.a_action) : s;
    turn.b_action = argmax([&](int a) { return t.pb(s1, b_plan, a); });
    s = apply_turn(w, s, turn).s2;
    story.turns.push_back(turn);
  }
  story.score = Scorer(o, e, length).score(w, story.s0, story.turns);
  return story;
}

}  // namespace ik::story
