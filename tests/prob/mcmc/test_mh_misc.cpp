// Couplings on a continuous target, the Ising bookkeeping, and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.hpp"
#include "prob/mcmc/gmm.hpp"
#include "prob/mcmc/ising.hpp"
#include "prob/mcmc/mh.hpp"
#include "prob/mcmc/models.hpp"

using namespace ik::mcmc;

// Target N(θ, 1), f = x: after a long burn-in E[J_T] = θ up to a negligible mixing error, so
// the derivative is exactly 1. Both couplings are unbiased; reflection coalesces and has the
// smaller variance, common random numbers never coalesce.
TEST(MhGaussianTarget, ReflectionAndCrnAreUnbiasedReflectionHasLowerVariance) {
  const GaussianModel model;
  const ChainSpec spec{300, 100, 1};
  auto fx = [](double x) { return std::array<double, 1>{x}; };
  double var[2];
  int c = 0;
  for (RwCoupling coupling : {RwCoupling::reflection, RwCoupling::crn}) {
    const int n = 20000;
    std::vector<double> d(n);
#pragma omp parallel for schedule(static)
    for (int r = 0; r < n; ++r) {
      ik::Rng rng(3 + c, uint64_t(r));
      RandomWalkProposal q{2.38, coupling};
      d[r] = estimate_dmh<1>(model, q, 0.0, 0.5, spec, fx, rng).derivative[0];
    }
    double m = 0, q = 0;
    for (double x : d) m += x;
    m /= n;
    for (double x : d) q += (x - m) * (x - m);
    var[c] = q / (n - 1);
    EXPECT_LE(std::abs(m - 1.0), 3 * std::sqrt(var[c] / n)) << "coupling " << c << " mean " << m;
    ++c;
  }
  EXPECT_LT(var[0], var[1]);
}

TEST(MhIsing, IncrementalEnergyMatchesRecount) {
  const IsingModel model(5);
  IsingSiteProposal q(5, true);
  ik::Rng rng(4);
  IsingState x = model.cold_start();
  EXPECT_EQ(x.energy, -2 * 25);  // 2 bonds per site, all aligned
  for (int i = 0; i < 2000; ++i) {
    const auto m = q.propose(x, rng);
    if (rng.uniform() < 0.6) model.apply(x, m);
  }
  EXPECT_EQ(x.energy, model.energy(x));
}

TEST(MhIsing, HeatCapacityPeaksNearTheCriticalTemperature) {
  // Plain MH on a small lattice: C at 2.3 exceeds C at 6 and at 1.2 (the peak is near T_c).
  IsingRunSpec spec{6, 100, 400, true};
  ik::Rng rng(8);
  const double c_low = ising_heat_capacity(spec, 1.2, rng, false).C;
  const double c_mid = ising_heat_capacity(spec, 2.3, rng, false).C;
  const double c_high = ising_heat_capacity(spec, 6.0, rng, false).C;
  EXPECT_GT(c_mid, 2 * c_high);
  EXPECT_GT(c_mid, 2 * c_low);
}

TEST(MhBadInput, ClearErrors) {
  EXPECT_THROW(GmmModel(0.0), ik::Error);
  EXPECT_THROW(GmmModel(-1.0), ik::Error);
  EXPECT_THROW(IsingModel(1), ik::Error);
  EXPECT_THROW((ChainSpec{0, 0, 1}.check()), ik::Error);
  EXPECT_THROW((ChainSpec{-5, 0, 1}.check()), ik::Error);
  EXPECT_THROW((ChainSpec{50, 50, 1}.check()), ik::Error);
  EXPECT_THROW((ChainSpec{50, 80, 1}.check()), ik::Error);
  EXPECT_THROW(parse_rw_coupling("maximal"), ik::Error);
  EXPECT_THROW(parse_estimator("reinforce"), ik::Error);
  ik::Rng rng(1);
  EXPECT_THROW(ising_heat_capacity(IsingRunSpec{12, 10, 10, true}, 0.0, rng), ik::Error);
  try {
    ChainSpec{50, 50, 1}.check();
  } catch (const ik::Error& e) {
    EXPECT_STREQ(e.what(), "burn-in 50 must be < chain length T = 50");
  }
}
