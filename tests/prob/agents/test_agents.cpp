// Gridworld parsing and its errors, value iteration against BFS distances, Boltzmann
// policies and Bayesian inverse planning against likelihoods computed independently.
#include <gtest/gtest.h>

#include <cmath>
#include <queue>

#include "core/error.hpp"
#include "prob/agents/gridworld.hpp"
#include "prob/agents/inverse_planning.hpp"

using namespace ik::agents;

static std::string error_of(const std::string& text) {
  try {
    GridWorld w(parse_map(text, "t.txt"));
  } catch (const ik::Error& e) {
    return e.what();
  }
  return "";
}

TEST(Gridworld, MalformedMapsNameLineAndColumn) {
  EXPECT_NE(error_of("#####\n#A..#\n#..#\n#####\n").find("line 3"), std::string::npos);  // ragged
  const auto unknown = error_of("#####\n#A.?#\n#####\n");
  EXPECT_NE(unknown.find("line 2, column 4"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("'?'"), std::string::npos);
  EXPECT_NE(error_of("#####\n#...#\n#####\n").find("no goals"), std::string::npos);
  const auto walled = error_of("#######\n#s.#.B#\n#######\n");
  EXPECT_NE(walled.find("goal B cannot be reached"), std::string::npos) << walled;
  EXPECT_NE(walled.find("line 2, column 6"), std::string::npos) << walled;
  EXPECT_NE(error_of("#####\n#A.A#\n#####\n").find("twice"), std::string::npos);
  EXPECT_NE(error_of("").find("empty"), std::string::npos);
  // A goal behind a door with no key anywhere cannot be reached either.
  EXPECT_NE(error_of("#######\n#s.d.B#\n#######\n").find("cannot be reached"), std::string::npos);
}

TEST(Gridworld, SnapshotOnWallOrOutsideIsAnError) {
  GridWorld w(parse_map("#####\n#A.B#\n#####\n"));
  EXPECT_THROW(w.snapshot_states(0, 0), ik::Error);
  EXPECT_THROW(w.snapshot_states(7, 1), ik::Error);
  EXPECT_THROW(w.snapshot_states(-1, 1), ik::Error);
  EXPECT_THROW(w.snapshot_states(2, 1, true), ik::Error);  // no key in this map
  EXPECT_EQ(w.snapshot_states(2, 1).size(), 1u);
}

TEST(Gridworld, DoorsOpenOnlyWithTheKey) {
  GridWorld w(parse_map("#######\n#sk.dA#\n#######\n"));
  ASSERT_EQ(w.key_states(), 2);
  const int before_door = w.state(3, 1, false), with_key = w.state(3, 1, true);
  EXPECT_EQ(w.move(before_door, east), before_door);  // locked
  EXPECT_EQ(w.move(with_key, east), w.state(4, 1, true));
  EXPECT_EQ(w.move(w.state(1, 1, false), east), w.state(2, 1, true));  // picks the key up
}

// BFS distance to goal cell (deterministic moves).
static std::vector<int> bfs_distance(const GridWorld& w, int goal) {
  std::vector<int> d(w.num_states(), -1);
  std::queue<int> todo;
  d[goal] = 0;
  todo.push(goal);
  while (!todo.empty()) {  // moves are reversible without doors/keys
    const int s = todo.front();
    todo.pop();
    for (int a = 0; a < 4; ++a) {
      const int n = w.move(s, a);
      if (d[n] < 0) d[n] = d[s] + 1, todo.push(n);
    }
  }
  return d;
}

TEST(ValueIteration, MatchesDiscountedShortestPaths) {
  GridWorld w(load_map(IK_SOURCE_DIR "/data/worlds/maze3.txt"));
  PlanOptions opt;
  opt.gamma = 0.95;
  const auto hyp = w.goal_hypotheses();
  for (int g = 0; g < w.num_goals(); ++g) {
    const auto mdp = w.mdp(hyp[g]);
    mdp.check();
    const auto q = value_iteration(mdp, opt);
    const auto d = bfs_distance(w, w.goal_state(g));
    for (int s = 0; s < w.num_states(); ++s) {
      // Cost 1 per step for d steps: V = -(1 - gamma^d) / (1 - gamma).
      const double v = -(1 - std::pow(opt.gamma, d[s])) / (1 - opt.gamma);
      double best = -1e300;
      for (int a = 0; a < 4; ++a) best = std::max(best, q[size_t(s) * 4 + a]);
      EXPECT_NEAR(best, v, 1e-7) << "state " << s;
    }
  }
}

TEST(Policy, BoltzmannRowsAndInducedChain) {
  GridOptions go;
  go.slip = 0.2;
  go.allow_stay = true;
  GridWorld w(load_map(IK_SOURCE_DIR "/data/worlds/door_key.txt"), go);
  const auto mdp = w.mdp(w.goal_hypotheses()[0]);
  mdp.check();
  PlanOptions opt;
  const auto agent = plan_agent(mdp, opt);
  for (int s = 0; s < w.num_states(); ++s) {
    double total = 0;
    for (auto t : agent.chain.row(s)) total += t.prob;
    EXPECT_NEAR(total, 1.0, 1e-12);
    const double* pi = &agent.policy[size_t(s) * 5];
    const double* q = &agent.q[size_t(s) * 5];
    EXPECT_NEAR(std::log(pi[0] / pi[1]), opt.beta * (q[0] - q[1]), 1e-9);
  }
}

TEST(InversePlanning, PosteriorFromStatesMatchesHandComputedLikelihood) {
  // Corridor: A at the left end, B at the right. Walk right twice from the middle.
  GridWorld w(parse_map("#########\n#A.....B#\n#########\n"));
  PlanOptions opt;
  opt.gamma = 0.9;
  opt.beta = 1.5;
  const auto h = plan_hypotheses(w, w.goal_hypotheses(), opt);
  const std::vector<int> path{w.state(4, 1), w.state(5, 1), w.state(6, 1)};
  const auto post = posterior_from_states(h, path);
  // Independent likelihood: distances along the corridor, Q = -1 + gamma V(next),
  // V(d) = -(1 - gamma^d)/(1 - gamma); north/south bump into walls and stay.
  auto v = [&](int d) { return -(1 - std::pow(opt.gamma, d)) / (1 - opt.gamma); };
  auto step_prob = [&](int goal_x, int x, int nx) {
    const int dx = std::abs(x - goal_x);
    const double q_toward = -1 + opt.gamma * v(dx - 1), q_away = -1 + opt.gamma * v(dx + 1),
                 q_stay = -1 + opt.gamma * v(dx);
    const double z = std::exp(opt.beta * q_toward) + std::exp(opt.beta * q_away) + 2 * std::exp(opt.beta * q_stay);
    const bool toward = std::abs(nx - goal_x) < dx;
    return std::exp(opt.beta * (toward ? q_toward : q_away)) / z;
  };
  const double la = step_prob(1, 4, 5) * step_prob(1, 5, 6), lb = step_prob(7, 4, 5) * step_prob(7, 5, 6);
  EXPECT_NEAR(post[0], la / (la + lb), 1e-9);
  EXPECT_NEAR(post[1], lb / (la + lb), 1e-9);
  EXPECT_GT(post[1], 0.9);
  // The same through actions (no slip: the action is the move).
  const auto post_a = posterior_from_actions(h, {path[0], path[1]}, {east, east}, w.num_actions());
  EXPECT_NEAR(post_a[1], post[1], 1e-12);
}

TEST(InversePlanning, ImpossibleTrajectoryIsAnError) {
  GridWorld w(parse_map("#######\n#A...B#\n#######\n"));
  const auto h = plan_hypotheses(w, w.goal_hypotheses(), PlanOptions{});
  EXPECT_THROW(posterior_from_states(h, {w.state(2, 1), w.state(4, 1)}), ik::Error);  // a jump
}

TEST(InversePlanning, RewardHypothesesWithSeveralGoals) {
  // Two goals worth different amounts: the agent prefers the nearer-or-richer one.
  GridWorld w(parse_map("#########\n#A.....B#\n#########\n"));
  std::vector<RewardHypothesis> hs{{"A rich", {{0, 20.0}, {1, 0.0}}, 0.5}, {"B rich", {{0, 0.0}, {1, 20.0}}, 0.5}};
  const auto h = plan_hypotheses(w, hs, PlanOptions{});
  const auto post = posterior_from_states(h, {w.state(3, 1), w.state(2, 1)});
  EXPECT_GT(post[0], 0.9);
}
