// Storytelling as inverse inverse planning: the world's dynamics on hand-made states, nested
// value iteration against a literal transcription of the reference's Python (hoh.py), the
// observer against Bayes' rule written out, the incremental beam-search score against the
// objective computed from scratch and against brute force, and the effects' defining
// properties against the naive-planner baseline.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "prob/story/search.hpp"

using namespace ik::story;

namespace {

const World& world() {
  static const World w;
  return w;
}

// ctest runs every test in its own process: they share one cache of planned values, so only
// the first plans (StoryPlanning.FreshPlanning... plans once more, on its own).
std::string cache_dir() {
  return (std::filesystem::temp_directory_path() / "ik_story_test_cache_v1").string();
}

const Tables& tables() {
  static const Tables t = plan_all(world(), cache_dir());
  return t;
}

const Observer& observer() {
  static const Observer o(tables());
  return o;
}

int state_of(int ax, int ay, int bx, int by, int rx, int ry) {
  const int s = world().index(State{int8_t(ax), int8_t(ay), int8_t(bx), int8_t(by), int8_t(rx), int8_t(ry)});
  EXPECT_GE(s, 0) << ax << ay << bx << by << rx << ry;
  return s;
}

// ---- hoh.py, transcribed literally (independent of World's precomputed transitions) -------

const char* const ref_maze[7] = {"...#...#...", "...........", "...#...#...", "#.#######.#",
                                 "...#...#...", "...........", "...#...#..."};
const int ref_ds[4][2] = {{1, 0}, {-1, 0}, {0, 1}, {0, -1}};

char ref_find(const State& s, int x, int y) {
  if (!(0 <= x && x < 11)) return '#';
  if (!(0 <= y && y < 7)) return '#';
  if (x == s.rx && y == s.ry) return 'r';
  if (x == s.ax && y == s.ay) return 'a';
  if (x == s.bx && y == s.by) return 'b';
  return ref_maze[y][x];
}

using Outcomes = std::vector<std::pair<State, double>>;

double ref_step_a(const State& s, int a, Goal g, Outcomes& trs) {
  double r = (s.ax == g.x && s.ay == g.y) ? 1.0 : 0.0;
  r += a == 4 ? -0.1 : -1.0;
  trs.clear();
  if (a == 4) return trs.push_back({s, 1.0}), r;
  const int dx = s.ax + ref_ds[a][0], dy = s.ay + ref_ds[a][1];
  if (ref_find(s, dx, dy) == '.') {
    State n = s;
    n.ax = int8_t(dx), n.ay = int8_t(dy);
    trs.push_back({n, 0.6});
    trs.push_back({s, 0.4});
  } else {
    trs.push_back({s, 1.0});
  }
  return r;
}

double ref_step_b(const State& s, int a, Goal g, Outcomes& trs) {
  double r = (s.bx == g.x && s.by == g.y) ? 1.0 : 0.0;
  r += a == 4 ? -0.1 : -1.0;
  trs.clear();
  if (a == 4) return trs.push_back({s, 1.0}), r;
  const int dx = s.bx + ref_ds[a][0], dy = s.by + ref_ds[a][1];
  const char o = ref_find(s, dx, dy);
  State s_ = s;
  if (o == 'a' && ref_find(s, s.ax + ref_ds[a][0], s.ay + ref_ds[a][1]) == '.') {
    s_.ax = int8_t(s.ax + ref_ds[a][0]), s_.ay = int8_t(s.ay + ref_ds[a][1]);
  } else if (o == 'r' && ref_find(s, s.rx + ref_ds[a][0], s.ry + ref_ds[a][1]) == '.') {
    s_.rx = int8_t(s.rx + ref_ds[a][0]), s_.ry = int8_t(s.ry + ref_ds[a][1]);
  }
  if (ref_find(s_, dx, dy) == '.') {
    s_.bx = int8_t(dx), s_.by = int8_t(dy);
    trs.push_back({s_, 1.0});
  } else {
    trs.push_back({s, 1.0});
  }
  return r;
}

std::vector<double> softmax2(const std::vector<double>& q) {
  std::vector<double> p(5);
  double z = 0;
  for (int a = 0; a < 5; ++a) z += p[a] = std::exp(2.0 * q[a]);
  for (double& x : p) x /= z;
  return p;
}

// V after 200 sweeps, as the cache file stores it: [s][2] for A, then [s][29] for B.
std::vector<float> read_cached_values() {
  std::ifstream f(std::filesystem::path(cache_dir()) / "story-values-v1.bin", std::ios::binary);
  EXPECT_TRUE(f.good());
  f.seekg(56);  // header: 8-byte magic, 4 int32, 4 doubles
  std::vector<float> v(size_t(world().num_states()) * (2 + 29));
  f.read(reinterpret_cast<char*>(v.data()), std::streamsize(v.size() * sizeof(float)));
  EXPECT_TRUE(f.good());
  return v;
}

// hoh.py's Q for A (against B acting by softmax(2 Q_null)) from V.
std::vector<double> ref_q_a(const State& s, int g, const std::vector<float>& v) {
  const auto pi_null = softmax2({-1, -1, -1, -1, -0.1});
  std::vector<double> q(5);
  Outcomes trs, trs_;
  for (int a = 0; a < 5; ++a) {
    const double r = ref_step_a(s, a, a_goals[g], trs);
    double z = 0;
    for (auto [s_, p] : trs)
      for (int b = 0; b < 5; ++b) {
        ref_step_b(s_, b, b_goals[0], trs_);
        for (auto [s__, p_] : trs_) z += p * p_ * pi_null[b] * v[size_t(world().index(s__)) * 2 + g];
      }
    q[a] = r + 0.99 * z;
  }
  return q;
}

// hoh.py's Q for B (against A's Boltzmann reply, reward r_B + rho r_A) from V.
std::vector<double> ref_q_b(const State& s, int plan, const std::vector<float>& v) {
  const BPlan bp = b_plans()[plan];
  const size_t nb_offset = size_t(world().num_states()) * 2;
  std::vector<double> q(5);
  Outcomes trs, trs_;
  for (int b = 0; b < 5; ++b) {
    const double r = ref_step_b(s, b, b_goals[bp.b_goal], trs);
    double z = 0;
    for (auto [s_, p] : trs) {
      const auto pi_a = softmax2(ref_q_a(s_, bp.a_goal, v));
      for (int a = 0; a < 5; ++a) {
        const double r_a = ref_step_a(s_, a, a_goals[bp.a_goal], trs_);
        for (auto [s__, p_] : trs_)
          z += p * p_ * pi_a[a] * (v[nb_offset + size_t(world().index(s__)) * 29 + plan] + bp.rho * r_a);
      }
    }
    q[b] = r + 0.99 * z;
  }
  return q;
}

double mean(const std::vector<double>& x) { return std::accumulate(x.begin(), x.end(), 0.0) / x.size(); }

}  // namespace

// ---- the world -------------------------------------------------------------------------------

TEST(StoryWorld, StateCountAndTurns) {
  // 60 floor cells: A on one, B on another, the box on any of the other 75 cells.
  EXPECT_EQ(world().num_states(), 60 * 59 * 75);
  const auto turns = all_turns(false);
  ASSERT_EQ(turns.size(), 50u);
  EXPECT_EQ(all_turns(true).size(), 55u);
  EXPECT_EQ(turns[0], (Turn{right, 0, right, -1}));
  EXPECT_EQ(turns[1], (Turn{right, 0, left, -1}));
  EXPECT_EQ(turns[5], (Turn{right, 1, right, -1}));
  EXPECT_EQ(turns[49], (Turn{stay, 1, stay, -1}));
}

TEST(StoryWorld, MovesAndPushes) {
  const World& w = world();
  // B pushes A along the corridor row.
  int s = state_of(5, 1, 4, 1, 3, 0);
  EXPECT_EQ(w.b_next(s, right), state_of(6, 1, 5, 1, 3, 0));
  // A against the map edge cannot be pushed, so B does not move.
  s = state_of(10, 1, 9, 1, 3, 0);
  EXPECT_EQ(w.b_next(s, right), s);
  // B pushes the box; the box cannot be pushed into a wall.
  s = state_of(0, 0, 4, 5, 5, 5);
  EXPECT_EQ(w.b_next(s, right), state_of(0, 0, 5, 5, 6, 5));
  s = state_of(0, 0, 5, 5, 5, 4);  // (5,3) is a wall: the box cannot go up, nor can B
  EXPECT_EQ(w.b_next(s, up), state_of(0, 0, 5, 5, 5, 4));
  // A never pushes; A's successful move and its blocked move.
  s = state_of(4, 1, 0, 0, 5, 1);
  EXPECT_EQ(w.a_target(s, right), s);
  EXPECT_FALSE(w.a_can_move(s, right));
  EXPECT_EQ(w.a_target(s, left), state_of(3, 1, 0, 0, 5, 1));
  EXPECT_EQ(w.a_target(s, up), state_of(4, 0, 0, 0, 5, 1));
  EXPECT_EQ(w.a_target(state_of(4, 2, 0, 0, 5, 1), down), state_of(4, 2, 0, 0, 5, 1));  // (4,3) is a wall
}

TEST(StoryWorld, TurnsAndDeusExMachina) {
  const World& w = world();
  const int s = state_of(2, 1, 6, 1, 3, 0);  // the box sits inside the wall at (3,0)
  TurnResult r = apply_turn(w, s, Turn{left, 0, right, -1});
  EXPECT_EQ(r.s1, state_of(1, 1, 6, 1, 3, 0));
  EXPECT_EQ(r.s2, state_of(1, 1, 7, 1, 3, 0));
  r = apply_turn(w, s, Turn{left, 1, stay, -1});  // A slips
  EXPECT_EQ(r.s1, s);
  r = apply_turn(w, s, Turn{stay, 0, stay, 0});  // the box drops onto (1,3)
  EXPECT_EQ(r.s2, state_of(2, 1, 6, 1, 1, 3));
  EXPECT_EQ(apply_turn(w, r.s2, Turn{stay, 0, stay, 1}).s2, r.s2);  // only from inside a wall
  const int occupied = state_of(1, 1, 6, 1, 3, 0);
  EXPECT_EQ(apply_turn(w, occupied, Turn{stay, 0, stay, 1}).s2, occupied);  // A stands on (1,1)
}

// ---- planning ----------------------------------------------------------------------------------

TEST(StoryPlanning, MatchesTheReferenceBellmanBackup) {
  const Tables& t = tables();
  const auto v = read_cached_values();
  ik::Rng rng(7);
  double worst = 0;
  for (int k = 0; k < 60; ++k) {
    const int s = int(rng.below(world().num_states()));
    const State& st = world().state(s);
    for (int g = 0; g < 2; ++g) {
      const auto pi = softmax2(ref_q_a(st, g, v));
      for (int a = 0; a < 5; ++a) worst = std::max(worst, std::abs(pi[a] - t.pa(s, g, a)));
    }
    const int plan = int(rng.below(29));
    const auto pi = softmax2(ref_q_b(st, plan, v));
    for (int b = 0; b < 5; ++b) worst = std::max(worst, std::abs(pi[b] - t.pb(s, plan, b)));
  }
  EXPECT_LT(worst, 2e-3);
}

TEST(StoryPlanning, FreshPlanningResidualsAndCacheRoundTrip) {
  const std::string dir = (std::filesystem::temp_directory_path() / fmt::format("ik_story_fresh_{}", ::getpid())).string();
  std::filesystem::remove_all(dir);
  bool loaded = true;
  const Tables t = plan_all(world(), dir, {}, &loaded);
  EXPECT_FALSE(loaded);
  ASSERT_EQ(t.bellman_residual_a.size(), 20u);  // sweeps 0, 10, ..., 190
  for (size_t i = 2; i < t.bellman_residual_a.size(); ++i) {
    const double ratio = t.bellman_residual_a[i] / t.bellman_residual_a[i - 1];
    EXPECT_NEAR(ratio, std::pow(0.99, 10), 0.03) << i;
  }
  EXPECT_LT(t.bellman_residual_b.back(), t.bellman_residual_b.front() / 5);
  const Tables again = plan_all(world(), dir, {}, &loaded);
  EXPECT_TRUE(loaded);
  EXPECT_TRUE(again.bellman_residual_a.empty());
  EXPECT_EQ(again.pi_a, t.pi_a);
  EXPECT_EQ(again.pi_b, t.pi_b);
  EXPECT_EQ(again.value_b, t.value_b);
  EXPECT_EQ(again.pi_b, tables().pi_b);  // and the shared tables are the same
  std::filesystem::remove_all(dir);
}

TEST(StoryPlanning, SocialWeightShowsInBsValues) {
  // With A on its goal and B without one, B's value is A's reward stream times rho: large for
  // a helper (rho = +3), floored at 0 for a hinderer (rho = -3).
  const Tables& t = tables();
  const int s = state_of(1, 1, 6, 5, 3, 0);
  const int help = b_plan_index(0, 2, 3), hinder = b_plan_index(0, 2, -3);
  EXPECT_GT(t.vb(s, help), t.vb(s, hinder) + 10);
}

// ---- the observer --------------------------------------------------------------------------

TEST(StoryObserver, HypothesisSpace) {
  int rational = 0, helpers = 0;
  for (const Hypothesis& h : hypotheses()) {
    rational += h.rat_a && h.rat_b;
    helpers += h.rat_a && h.rat_b && h.rho > 0;
    EXPECT_FALSE(h.rat_a && h.rat_b && h.rho == 0 && h.b_goal == 2);
    if (h.rat_b) {
      EXPECT_GE(h.b_plan, 0);
    }
  }
  EXPECT_EQ(rational, 28);
  EXPECT_EQ(helpers, 12);
  const Belief p = observer().prior();
  EXPECT_NEAR(pr_rational(p), 28.0 / 34, 1e-12);
  EXPECT_NEAR(pr_help(p), 12.0 / 28, 1e-12);
}

TEST(StoryObserver, UpdateIsBayesRule) {
  const Observer& o = observer();
  const int s = state_of(2, 1, 6, 1, 3, 0);
  const Belief b1 = o.update(o.prior(), Who::a, s, left);
  const Belief b2 = o.update(b1, Who::b, s, right);
  // Written out: prior x likelihoods, normalized; then the epsilon mixing.
  std::vector<double> post(num_hypotheses);
  double z = 0;
  for (int h = 0; h < num_hypotheses; ++h) {
    const Hypothesis& H = hypotheses()[h];
    const double la = H.rat_a ? tables().pa(s, H.a_plan, left) : 0.2;
    const double lb = H.rat_b ? tables().pb(s, H.b_plan, right) : 0.2;
    z += post[h] = la * lb;
  }
  double total = 0;
  for (int h = 0; h < num_hypotheses; ++h) {
    EXPECT_NEAR(b2[h], post[h] / z, 1e-4) << h;
    total += b2[h];
  }
  EXPECT_NEAR(total, 1.0, 1e-12);
}

TEST(StoryObserver, NaiveHelperLooksHelpful) {
  // regp.py: helpers that simply follow their plans raise P(rho > 0) on average.
  std::vector<double> help, hinder;
  for (int seed = 0; seed < 20; ++seed) {
    const Story h = naive_story(world(), observer(), Effect::help, 7, seed);
    help.push_back(pr_help(replay(world(), observer(), h.s0, h.turns).beliefs.back()));
    const Story d = naive_story(world(), observer(), Effect::hinder, 7, seed);
    hinder.push_back(pr_hinder(replay(world(), observer(), d.s0, d.turns).beliefs.back()));
  }
  EXPECT_GT(mean(help), 12.0 / 28);
  EXPECT_GT(mean(hinder), 12.0 / 28);
}

// ---- objectives and search -----------------------------------------------------------------

TEST(StoryObjectives, EffectNamesAndErrors) {
  EXPECT_EQ(parse_effect("help-then-hinder"), Effect::help_then_hinder);
  EXPECT_EQ(effect_names().size(), 14u);
  for (const auto& n : effect_names()) EXPECT_EQ(effect_name(parse_effect(n)), n);
  try {
    parse_effect("tragedy");
    FAIL();
  } catch (const ik::Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("tragedy"), std::string::npos);
    EXPECT_NE(m.find("help-then-hinder"), std::string::npos);
    EXPECT_EQ(m.find('\n'), std::string::npos);
  }
  SearchOptions bad;
  bad.length = 0;
  EXPECT_THROW(search(world(), observer(), bad), ik::Error);
  bad.length = 3, bad.starts = 0;
  EXPECT_THROW(search(world(), observer(), bad), ik::Error);
}

TEST(StoryObjectives, Regularizer) {
  std::vector<Turn> t(4, Turn{right, 0, stay, -1});
  EXPECT_EQ(Scorer::regularizer(t), 0.0);  // fewer than five attempts
  t.push_back(Turn{left, 1, stay, -1});
  t.push_back(Turn{stay, 1, stay, -1});  // staying is not an attempt
  EXPECT_NEAR(Scorer::regularizer(t), -std::abs(5.0 / 7 - 0.6), 1e-12);  // 4 of 5
  t.push_back(Turn{up, 1, stay, -1});
  EXPECT_NEAR(Scorer::regularizer(t), -std::abs(4.0 / 7 - 0.6), 1e-12);  // the last five: 3 of 5
  const Turn extra{down, 1, stay, -1};
  EXPECT_NEAR(Scorer::regularizer(t, &extra), -std::abs(3.0 / 7 - 0.6), 1e-12);
}

TEST(StorySearch, IncrementalScoreEqualsScoreFromScratch) {
  for (Effect e : {Effect::help, Effect::help_then_hinder, Effect::irony, Effect::cinderella, Effect::flashback_hinder,
                   Effect::surprise, Effect::suspense, Effect::curiosity}) {
    SearchOptions opt;
    opt.effect = e;
    opt.length = is_flashback(e) ? 3 : 6;
    opt.starts = 4;
    opt.cuts = 3;
    opt.deus = e == Effect::help;
    const Story st = search(world(), observer(), opt);
    ASSERT_EQ(int(st.turns.size()), opt.length);
    EXPECT_NEAR(st.score, Scorer(observer(), e, opt.length).score(world(), st.s0, st.turns), 1e-9) << effect_name(e);
  }
}

TEST(StorySearch, FullBeamFindsTheBruteForceOptimum) {
  // Two turns, every candidate kept: the beam must find the best of all 55 x 55 stories.
  const int s0 = state_of(2, 1, 6, 1, 3, 0);
  for (Effect e : {Effect::help_then_hinder, Effect::cinderella}) {
    SearchOptions opt;
    opt.effect = e;
    opt.length = 2;
    opt.cuts = 55;
    opt.deus = true;
    const Story st = search_from(world(), observer(), opt, s0);
    const Scorer sc(observer(), e, 2);
    double best = -1e300;
    for (const Turn& t1 : all_turns(true))
      for (const Turn& t2 : all_turns(true)) best = std::max(best, sc.score(world(), s0, {t1, t2}));
    EXPECT_NEAR(st.score, best, 1e-9) << effect_name(e);
    // Without the deus turns the best is no better (a subset of the stories).
    opt.deus = false;
    opt.cuts = 50;
    EXPECT_LE(search_from(world(), observer(), opt, s0).score, st.score + 1e-12);
  }
}

// ---- the effects: better than naive planners, with beliefs of the intended shape ------------

namespace {

struct EffectRun {
  std::vector<Trace> stories;  // best story per seed
  std::vector<double> story_scores, naive_scores;
  std::vector<Trace> naive;
};

// Small beams (20 starts) over three seeds; ten naive stories per seed.
const EffectRun& run_effect(Effect e) {
  static std::map<Effect, EffectRun> runs;
  auto it = runs.find(e);
  if (it != runs.end()) return it->second;
  EffectRun r;
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    SearchOptions opt;
    opt.effect = e;
    opt.length = effect_defaults(e).length;
    opt.cuts = std::min(effect_defaults(e).cuts, 20);
    opt.starts = 20;
    opt.seed = seed;
    const Story st = search(world(), observer(), opt);
    r.story_scores.push_back(st.score);
    r.stories.push_back(replay(world(), observer(), st.s0, st.turns));
    for (int k = 0; k < 10; ++k) {
      const Story nv = naive_story(world(), observer(), e, opt.length, seed * 100 + k);
      r.naive_scores.push_back(nv.score);
      r.naive.push_back(replay(world(), observer(), nv.s0, nv.turns));
    }
  }
  return runs[e] = r;
}

// Mean over stories of a per-story statistic.
template <class F>
double mean_over(const std::vector<Trace>& ts, F f) {
  double s = 0;
  for (const Trace& t : ts) s += f(t);
  return s / ts.size();
}

// First belief index where `later` overtakes `earlier` for good.
template <class F, class G>
int crossing(const Trace& t, F earlier, G later) {
  int last_not = -1;
  for (int i = 0; i < int(t.beliefs.size()); ++i)
    if (later(t.beliefs[i]) <= earlier(t.beliefs[i])) last_not = i;
  return last_not + 1;
}

}  // namespace

TEST(StoryEffects, EveryEffectBeatsTheNaivePlanners) {
  for (const auto& name : effect_names()) {
    const EffectRun& r = run_effect(parse_effect(name));
    EXPECT_GT(mean(r.story_scores), mean(r.naive_scores)) << name;
    fmt::print("{:18} story {:9.3f}  naive {:9.3f}\n", name, mean(r.story_scores), mean(r.naive_scores));
  }
}

TEST(StoryEffects, CharacterBeliefs) {
  EXPECT_GT(mean_over(run_effect(Effect::help).stories, [](const Trace& t) { return pr_help(t.beliefs.back()); }), 0.9);
  EXPECT_GT(mean_over(run_effect(Effect::hinder).stories, [](const Trace& t) { return pr_hinder(t.beliefs.back()); }), 0.9);
  EXPECT_GT(mean_over(run_effect(Effect::indifferent).stories, [](const Trace& t) { return pr_indifferent(t.beliefs.back()); }),
            0.6);
}

TEST(StoryEffects, PlotTwistsCrossNearTheMiddle) {
  for (Effect e : {Effect::help_then_hinder, Effect::hinder_then_help}) {
    const bool help_first = e == Effect::help_then_hinder;
    auto first = [&](const Belief& b) { return help_first ? pr_help(b) : pr_hinder(b); };
    auto second = [&](const Belief& b) { return help_first ? pr_hinder(b) : pr_help(b); };
    for (const Trace& t : run_effect(e).stories) {
      const int mid = int(t.turns.size());  // belief index of the middle
      const int cross = crossing(t, first, second);
      EXPECT_NEAR(cross, mid, mid / 3.0) << effect_name(e);
      double first_early = 0, second_early = 0;
      for (int i = 1; i < mid; ++i) first_early += first(t.beliefs[i]), second_early += second(t.beliefs[i]);
      EXPECT_GT(first_early / (mid - 1), 0.5) << effect_name(e);  // the prior is 12/28
      EXPECT_GT(first_early, 2 * second_early) << effect_name(e);
      EXPECT_GT(second(t.beliefs.back()), 0.8) << effect_name(e);
    }
  }
}

TEST(StoryEffects, IronyKeepsTheAudienceOnGreen) {
  auto green = [](const Trace& t) {
    double s = 0;
    for (const Belief& b : t.beliefs) s += pr_given_rational(b, [](const Hypothesis& H) { return H.a_goal == 1; });
    return s / t.beliefs.size();
  };
  const EffectRun& r = run_effect(Effect::irony);
  fmt::print("irony: mean P(A wants green) story {:.3f} naive {:.3f}\n", mean_over(r.stories, green), mean_over(r.naive, green));
  EXPECT_GT(mean_over(r.stories, green), 0.7);
  EXPECT_GT(mean_over(r.stories, green), mean_over(r.naive, green));
}

TEST(StoryEffects, CinderellaFollowsTheArc) {
  // B's expected fortune E[V_B | rational] should be high where sin(1.5 pi i / mid) is
  // positive (the start and the end) and low where it is negative (the middle).
  const EffectRun& r = run_effect(Effect::cinderella);
  auto arc_gap = [&](const Trace& t) {
    const int mid = int(t.turns.size());
    double up = 0, down = 0;
    int n_up = 0, n_down = 0;
    for (int i = 0; i + 1 < int(t.beliefs.size()); ++i) {
      double joint = 0, marginal = 0;
      for (int h = 0; h < num_hypotheses; ++h) {
        const Hypothesis& H = hypotheses()[h];
        if (!H.rat_a || !H.rat_b) continue;
        joint += t.beliefs[i][h] * tables().vb(t.states[i], H.b_plan);
        marginal += t.beliefs[i][h];
      }
      (std::sin(1.5 * M_PI * i / mid) > 0 ? up : down) += joint / marginal;
      (std::sin(1.5 * M_PI * i / mid) > 0 ? n_up : n_down) += 1;
    }
    return up / n_up - down / n_down;
  };
  fmt::print("cinderella: E[V_B] rising phases minus falling phase: story {:.3f} naive {:.3f}\n", mean_over(r.stories, arc_gap),
             mean_over(r.naive, arc_gap));
  EXPECT_GT(mean_over(r.stories, arc_gap), 0);
  EXPECT_GT(mean_over(r.stories, arc_gap), mean_over(r.naive, arc_gap));
}

TEST(StoryEffects, FlashbackEndsWhereBCanPushA) {
  auto bonus = [](const Trace& t) { return Scorer::flashback_bonus(world().state(t.states.back())); };
  for (Effect e : {Effect::flashback_help, Effect::flashback_hinder}) {
    const EffectRun& r = run_effect(e);
    fmt::print("{}: bonus story {:.2f} naive {:.2f} (of 2)\n", effect_name(e), mean_over(r.stories, bonus), mean_over(r.naive, bonus));
    EXPECT_GE(mean_over(r.stories, bonus), 1.5) << effect_name(e);
    EXPECT_GT(mean_over(r.stories, bonus), mean_over(r.naive, bonus) + 0.5) << effect_name(e);
  }
}

TEST(StoryEffects, SurpriseSuspenseCuriosityMeasures) {
  auto total_kl = [](const Trace& t) {
    double s = 0;
    for (size_t i = 0; i + 1 < t.beliefs.size(); ++i) s += kl_rational(t.beliefs[i + 1], t.beliefs[i]);
    return s;
  };
  auto total_expected_jump = [](const Trace& t) {
    double s = 0;
    for (int i = 0; i + 1 < int(t.beliefs.size()); ++i)
      s += expected_jump(observer(), t.beliefs[i], i % 2 ? Who::b : Who::a, t.state_before(i));
    return s;
  };
  auto mean_entropy = [](const Trace& t) {
    double s = 0;
    for (const Belief& b : t.beliefs) s += entropy_rational(b);
    return s / t.beliefs.size();
  };
  const EffectRun& su = run_effect(Effect::surprise);
  const EffectRun& sp = run_effect(Effect::suspense);
  const EffectRun& cu = run_effect(Effect::curiosity);
  fmt::print("surprise: total KL story {:.3f} naive {:.3f}\n", mean_over(su.stories, total_kl), mean_over(su.naive, total_kl));
  fmt::print("suspense: expected jumps story {:.3f} naive {:.3f}\n", mean_over(sp.stories, total_expected_jump),
             mean_over(sp.naive, total_expected_jump));
  fmt::print("curiosity: mean entropy story {:.3f} naive {:.3f} (max {:.3f})\n", mean_over(cu.stories, mean_entropy),
             mean_over(cu.naive, mean_entropy), std::log(28.0));
  EXPECT_GT(mean_over(su.stories, total_kl), 1.5 * mean_over(su.naive, total_kl));
  EXPECT_GT(mean_over(sp.stories, total_expected_jump), 1.5 * mean_over(sp.naive, total_expected_jump));
  EXPECT_GT(mean_over(cu.stories, mean_entropy), mean_over(cu.naive, mean_entropy));
}
