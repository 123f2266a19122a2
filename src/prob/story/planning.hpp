#pragma once
// Nested value iteration for the two agents (hoh.py `value_iteration`), done once for every
// goal/alignment the observer considers, and cached on disk.
//
// A plans against a B that acts by softmax(beta * Q_null) (moves -1, stay -0.1). B plans
// against A's Boltzmann response: Q_B(s,b) = r_B + gamma * E_{a ~ pi_A}[V_B(s'') + rho * r_A],
// so rho > 0 makes B a helper, rho < 0 a hinderer. Rewards: +1 per step at one's own goal,
// -1 per move, -0.1 per stay; beta = 2, gamma = 0.99, 201 Jacobi sweeps from V = 0 with
// V = max(0, max_a Q) (the reference's `best = 0`).
#include <string>
#include <vector>

#include "prob/story/world.hpp"

namespace ik::story {

struct Goal {
  int x = 0, y = 0;
};
// A's goals (pink, green) and B's (pink, green, "none": (3,3) is a wall, so it is never reached).
constexpr Goal a_goals[2] = {{1, 1}, {1, 5}};
constexpr Goal b_goals[3] = {{1, 1}, {1, 5}, {3, 3}};

struct PlanSettings {
  double beta = 2.0, gamma = 0.99;
  double cost_move = -1.0, cost_stay = -0.1;
  int sweeps = 201;  // range(200 + 1)
};

// One planned B: whose goal A has (it plans against that A), its own goal and rho.
struct BPlan {
  int a_goal = 0, b_goal = 0, rho = 0;
};
// The 29 B plans the 34 hypotheses use: for each A goal, rho in {-3,-1,+1,+3} x 3 B goals,
// rho = 0 x 2 real B goals; plus (A green, B none, rho 0) for the hypotheses where A is irrational.
const std::vector<BPlan>& b_plans();
int b_plan_index(int a_goal, int b_goal, int rho);  // -1 when not planned

// Boltzmann policies (float, [state][plan][action]) and values at every state.
struct Tables {
  int num_states = 0;
  int num_b = 0;
  std::vector<float> pi_a;     // [s][2][5]
  std::vector<float> pi_b;     // [s][num_b][5]
  std::vector<float> value_a;  // [s][2]
  std::vector<float> value_b;  // [s][num_b]
  std::vector<double> bellman_residual_a, bellman_residual_b;  // max |V_k - V_{k-1}|, every 10 sweeps

  float pa(int s, int plan, int a) const { return pi_a[(size_t(s) * 2 + plan) * num_actions + a]; }
  float pb(int s, int plan, int a) const { return pi_b[(size_t(s) * num_b + plan) * num_actions + a]; }
  float va(int s, int plan) const { return value_a[size_t(s) * 2 + plan]; }
  float vb(int s, int plan) const { return value_b[size_t(s) * num_b + plan]; }
};

// Plans everything. With a non-empty cache_dir, the values before the last sweep are read from
// (or written to) cache_dir/story-values-v1.bin, so later runs only redo the last sweep.
// `loaded` (optional) tells whether the cache was used.
Tables plan_all(const World& w, const std::string& cache_dir = "", const PlanSettings& ps = {},
                bool* loaded = nullptr);

// The default cache folder: $XDG_CACHE_HOME/inferkit or ~/.cache/inferkit ("" without HOME).
std::string default_cache_dir();

}  // namespace ik::story
