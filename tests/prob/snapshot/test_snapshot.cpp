// Snapshot inference: the exact solve against a power series, the Monte Carlo estimators'
// unbiasedness against the exact solve (mean within a few standard errors), past-visit and
// next-step predictions against independent forward simulation, and error handling.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "prob/snapshot/estimators.hpp"
#include "prob/snapshot/model.hpp"
#include "prob/snapshot/study.hpp"

using namespace ik;
using namespace ik::agents;
using namespace ik::snapshot;

static GridWorld world(const char* name, GridOptions go = {}) {
  return GridWorld(load_map(std::string(IK_SOURCE_DIR "/data/worlds/") + name), go);
}

TEST(Exact, OccupancyMatchesPowerSeries) {
  GridOptions go;
  go.slip = 0.1;
  const auto w = world("door_key.txt", go);
  SnapshotOptions so;
  so.gamma = 0.9;
  const auto m = make_grid_model(w, so);
  for (int g = 0; g < m.num_goals(); ++g) {
    const auto rho = exact_occupancy(m, g);
    // rho = (1-gamma) sum_t gamma^t P_0 T^t, summed until gamma^t < 1e-13.
    std::vector<double> p = m.p0(), series(m.num_states(), 0.0);
    double weight = 1 - so.gamma;
    for (int t = 0; weight > 1e-15; ++t, weight *= so.gamma) {
      std::vector<double> next(m.num_states(), 0.0);
      for (int s = 0; s < m.num_states(); ++s) {
        series[s] += weight * p[s];
        for (auto e : m.chain(g).row(s)) next[e.next] += p[s] * e.prob;
      }
      p.swap(next);
    }
    double total = 0;
    for (int s = 0; s < m.num_states(); ++s) {
      EXPECT_NEAR(rho[s], series[s], 1e-11);
      total += rho[s];
    }
    EXPECT_NEAR(total, 1.0, 1e-10);  // occupancy is a distribution
  }
}

// Mean and standard error of `runs` independent estimates of rho_g(X) for every goal.
template <typename F>
static void expect_unbiased(const SnapshotModel& m, const std::vector<int>& xs, int runs, F run_once,
                            const char* label) {
  const auto exact = exact_posterior(m, xs);
  const int G = m.num_goals();
  const double largest = *std::max_element(exact.likelihood.begin(), exact.likelihood.end());
  std::vector<double> sum(G, 0.0), sum2(G, 0.0);
  for (int r = 0; r < runs; ++r) {
    const auto est = run_once(r);
    for (int g = 0; g < G; ++g) sum[g] += est.rho[g], sum2[g] += est.rho[g] * est.rho[g];
  }
  for (int g = 0; g < G; ++g) {
    const double mean = sum[g] / runs, var = sum2[g] / runs - mean * mean;
    const double se = std::sqrt(std::max(var, 0.0) / runs);
    // 4.5 standard errors: a false alarm about once in 10^5 checks.
    EXPECT_NEAR(mean, exact.likelihood[g], 4.5 * se + 1e-12)
        << label << " goal " << g << " se " << se << " exact " << exact.likelihood[g];
    if (exact.likelihood[g] > 1e-2 * largest) {  // rare goals (heavy-tailed weights): only the mean check
      EXPECT_LT(se, 0.2 * exact.likelihood[g]) << label << ": too few runs to test";
    }
  }
}

TEST(Backward, UnbiasedAgainstExactSolve) {
  const auto w = world("maze3.txt");
  const auto m = make_grid_model(w, SnapshotOptions{});
  Rng rng(1);
  for (auto [x, y] : {std::pair{3, 3}, std::pair{9, 5}, std::pair{5, 1}}) {
    const auto xs = w.snapshot_states(x, y);
    expect_unbiased(m, xs, 100000, [&](int) { return estimate_backward(m, xs, 1, rng); }, "backward");
    expect_unbiased(m, xs, 100000, [&](int) { return estimate_backward(m, xs, 1, rng, true); }, "uniform");
    expect_unbiased(m, xs, 100000, [&](int) { return estimate_backward(m, xs, 1, rng, false, 0.8); }, "roulette 0.8");
  }
}

TEST(Backward, UnbiasedWithKeyStateAndSlip) {
  // Start anywhere on '.' (a single start cell is the bidirectional estimator's case).
  GridOptions go;
  go.slip = 0.2;
  const GridWorld w(parse_map("#########\n#A..#.k.#\n#...d...#\n#####...#\n#B......#\n#########\n"), go);
  const auto m = make_grid_model(w, SnapshotOptions{});
  Rng rng(2);
  for (std::optional<bool> key : {std::optional<bool>{}, std::optional<bool>{true}, std::optional<bool>{false}}) {
    const auto xs = w.snapshot_states(5, 2, key);
    expect_unbiased(m, xs, 100000, [&](int) { return estimate_backward(m, xs, 1, rng); }, "backward");
  }
}

TEST(Bidirectional, UnbiasedAgainstExactSolve) {
  const auto w = world("maze4_start.txt");  // single start cell: the hard case for backward paths
  const auto m = make_grid_model(w, SnapshotOptions{});
  Rng rng(3);
  for (auto [x, y] : {std::pair{2, 5}, std::pair{10, 7}}) {
    const auto xs = w.snapshot_states(x, y);
    expect_unbiased(m, xs, 4000, [&](int) { return estimate_bidirectional(m, xs, 8, rng); }, "bidirectional");
  }
}

TEST(Rejection, UnbiasedAgainstExactSolve) {
  const auto w = world("room4.txt");
  const auto m = make_grid_model(w, SnapshotOptions{});
  Rng rng(4);
  const auto xs = w.snapshot_states(3, 3);
  expect_unbiased(m, xs, 2000, [&](int) { return estimate_rejection(m, xs, 500, rng); }, "rejection");
}

TEST(PastVisits, ExactMatchesForwardSimulation) {
  const auto w = world("two_goals.txt");
  SnapshotOptions so;
  so.gamma = 0.9;
  const auto m = make_grid_model(w, so);
  const auto xs = w.snapshot_states(4, 3);
  const auto exact = exact_past_visits(m, xs);
  // Independent reference: simulate the generative model, keep runs whose snapshot is in X.
  Rng rng(5);
  std::vector<double> visits(m.num_states(), 0.0);
  double kept = 0;
  std::vector<int> path;
  for (int n = 0; n < 400000; ++n) {
    const int g = static_cast<int>(rng.below(m.num_goals()));
    double u = rng.uniform();
    int s = 0;
    while (u >= m.p0()[s]) u -= m.p0()[s++];
    path.assign(1, s);
    while (rng.uniform() < so.gamma) {
      double v = rng.uniform();
      const auto row = m.chain(g).row(path.back());
      int next = row.back().next;
      for (auto t : row)
        if ((v -= t.prob) < 0) { next = t.next; break; }
      path.push_back(next);
    }
    if (path.back() != xs[0]) continue;
    kept += 1;
    for (size_t t = 0; t + 1 < path.size(); ++t) visits[path[t]] += 1;
  }
  ASSERT_GT(kept, 1000);
  const auto mc = backward_past_visits(m, xs, 100000, rng);
  for (int s = 0; s < m.num_states(); ++s) {
    EXPECT_NEAR(visits[s] / kept, exact[s], 0.05 + 0.1 * exact[s]) << "state " << s;
    EXPECT_NEAR(mc[s], exact[s], 0.03 + 0.05 * exact[s]) << "state " << s;
  }
}

TEST(Futures, FirstStepMatchesExactPrediction) {
  const auto w = world("maze3.txt");
  const auto m = make_grid_model(w, SnapshotOptions{});
  const auto xs = w.snapshot_states(7, 3);
  Rng rng(6);
  const auto est = estimate(m, xs, Estimator::exact, 1, rng);
  const auto exact = exact_next_state(m, xs);
  const int n = 200000;
  const auto futures = sample_futures(m, xs, est, n, 1, rng);
  std::vector<double> freq(m.num_states(), 0.0);
  for (auto& f : futures) freq[f.states.size() > 1 ? f.states[1] : f.states[0]] += 1.0 / n;
  for (int s = 0; s < m.num_states(); ++s) EXPECT_NEAR(freq[s], exact[s], 5 * std::sqrt(exact[s] / n) + 1e-9);
}

TEST(Estimators, BackwardAtTenBeatsRejectionAtThousand) {
  // The headline claim on the two uniform-start worlds, 10 cells each (seeded).
  StudyOptions o;
  o.maps = {IK_SOURCE_DIR "/data/worlds/maze3.txt", IK_SOURCE_DIR "/data/worlds/room4.txt"};
  o.cells_per_world = 10;
  o.samples = {10, 1000};
  o.estimators = {Estimator::rejection, Estimator::backward};
  o.repeats = 10;
  o.progress = false;
  const auto r = run_study(o);
  ASSERT_EQ(r.rows.size(), 4u);
  EXPECT_EQ(r.cells, 20);
  const auto& rejection_1000 = r.rows[1];
  const auto& backward_10 = r.rows[2];
  ASSERT_EQ(rejection_1000.estimator, Estimator::rejection);
  ASSERT_EQ(backward_10.samples, 10);
  EXPECT_LT(backward_10.mean_tv + 2 * backward_10.se_tv, rejection_1000.mean_tv - 2 * rejection_1000.se_tv);
}

TEST(Estimators, BadNames) {
  EXPECT_THROW(parse_estimator("forward"), ik::Error);
  EXPECT_EQ(parse_estimator("bidirectional"), Estimator::bidirectional);
}

TEST(Model, UnreachableSnapshotIsAnError) {
  // With a single start and a door without... use a cell only reachable after the goal: none;
  // instead ask for the key-holding state left of the key, which the agent can reach, and the
  // key-less state beyond the door, which it cannot.
  const auto w = world("door_key.txt");
  const auto m = make_grid_model(w, SnapshotOptions{});
  EXPECT_THROW(exact_posterior(m, w.snapshot_states(2, 2, false)), ik::Error);
  EXPECT_NO_THROW(exact_posterior(m, w.snapshot_states(2, 2, true)));
}
