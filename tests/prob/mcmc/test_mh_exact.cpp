// Unbiasedness of the stochastic-derivative estimator (and of the score baseline) against exact
// derivatives of exact expectations: finite differences of exact matrix powers of the MH kernel
// of the 3-state mixture chain and of the 3x3 Ising sweep kernel (512 states).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "exact_chain.hpp"
#include "prob/mcmc/mh.hpp"
#include "prob/mcmc/models.hpp"

using namespace ik::mcmc;

struct MeanSe {
  double mean, se;
  size_t n;
};
static MeanSe mean_se(const std::vector<double>& v) {
  double m = 0, q = 0;
  for (double x : v) m += x;
  m /= v.size();
  for (double x : v) q += (x - m) * (x - m);
  return {m, std::sqrt(q / (v.size() - 1) / v.size()), v.size()};
}
// Prints the comparison too (docs/mh.md quotes these lines).
#define EXPECT_WITHIN_3SE(ms, exact)                                                           \
  do {                                                                                         \
    std::printf("  [info] %s: exact %.6g, mean estimate %.6g +- %.2g (n = %zu)\n",            \
                ::testing::UnitTest::GetInstance()->current_test_info()->name(), double(exact), \
                (ms).mean, (ms).se, (ms).n);                                                   \
    EXPECT_LE(std::abs((ms).mean - (exact)), 3 * (ms).se + 1e-12)                              \
        << "estimate " << (ms).mean << " +- " << (ms).se << " vs exact " << (exact);           \
  } while (0)

// Estimates in parallel, one random stream per replicate.
template <typename Estimate1>
static std::vector<double> replicate(int n, uint64_t seed, Estimate1 one) {
  std::vector<double> out(n);
#pragma omp parallel for schedule(static)
  for (int r = 0; r < n; ++r) {
    ik::Rng rng(seed, uint64_t(r));
    out[r] = one(rng);
  }
  return out;
}

#ifndef IK_MH_SLOW  // the slow binary holds only the full-size Ising check
// ---- 3-state mixture chain ---------------------------------------------------------------
static exact::Dist gmm_kernel(const exact::Dist& v, double obs) {
  const GmmModel m;
  exact::Dist out(3, 0);
  for (int i = 0; i < 3; ++i) {
    double stay = 1;
    for (int j = 0; j < 3; ++j) {
      if (j == i) continue;
      const double move = 0.5 * std::min(1.0, std::exp(m.log_ratio(i, j, obs)));
      out[j] += v[i] * move;
      stay -= move;
    }
    out[i] += v[i] * stay;
  }
  return out;
}

class MhGmmExact : public ::testing::TestWithParam<int> {};

TEST_P(MhGmmExact, StochasticDerivativeIsUnbiased) {
  const int T = GetParam(), B = 10;
  const double obs = 0.4;
  const std::vector<double> f{1.0, -0.5, 2.0};
  const double truth = exact::derivative(gmm_kernel, {1, 0, 0}, obs, T, B, f);
  const GmmModel model;
  auto fx = [&](int i) { return std::array<double, 1>{f[i]}; };
  const auto est = replicate(100000, 11 + T, [&](ik::Rng& rng) {
    UniformOthersProposal q{3};
    return estimate_dmh<1>(model, q, 0, obs, ChainSpec{T, B, 1}, fx, rng).derivative[0];
  });
  EXPECT_WITHIN_3SE(mean_se(est), truth);
  EXPECT_GT(std::abs(truth), 10 * mean_se(est).se);  // the check has power: truth is far from 0
}

TEST_P(MhGmmExact, ScoreEstimatorIsUnbiased) {
  const int T = GetParam(), B = 10;
  const double obs = 0.4;
  const std::vector<double> f{1.0, -0.5, 2.0};
  const double truth = exact::derivative(gmm_kernel, {1, 0, 0}, obs, T, B, f);
  const GmmModel model;
  auto fx = [&](int i) { return std::array<double, 1>{f[i]}; };
  const auto est = replicate(20000, 99 + T, [&](ik::Rng& rng) {
    UniformOthersProposal q{3};
    return estimate_score<1>(model, q, 0, obs, ChainSpec{T, B, 1}, fx, rng).derivative[0];
  });
  EXPECT_WITHIN_3SE(mean_se(est), truth);
}

INSTANTIATE_TEST_SUITE_P(ChainLengths, MhGmmExact, ::testing::Values(50, 200, 500));
#endif

// ---- 3x3 Ising lattice, fixed site order, exact sweep kernel ---------------------------
constexpr int kL = 3, kSites = kL * kL, kStates = 1 << kSites;

static IsingState state_of(int bits) {
  IsingState x;
  for (int s = 0; s < kSites; ++s) x.spin.push_back((bits >> s) & 1 ? 1 : -1);
  x.energy = IsingModel(kL).energy(x);
  return x;
}

// One sweep over sites 0..8; at each site the spin flips with probability
// P(propose flip) * min(1, exp(-ΔE/T)), P(propose flip) = 1/2 (shared random spin) or 1.
static exact::Kernel ising_sweep(bool coupled) {
  // ΔE of flipping each site in each state does not depend on T: tabulate it once.
  std::vector<double> flip_dE(kSites * kStates);
  const IsingModel model(kL);
  for (int b = 0; b < kStates; ++b) {
    const IsingState x = state_of(b);
    for (int site = 0; site < kSites; ++site)
      flip_dE[site * kStates + b] = 2.0 * x.spin[site] * model.neighbour_sum(x, site);
  }
  return [coupled, flip_dE](const exact::Dist& v0, double T) {
    exact::Dist v = v0, out(kStates);
    for (int site = 0; site < kSites; ++site) {
      std::fill(out.begin(), out.end(), 0.0);
      for (int b = 0; b < kStates; ++b) {
        const double dE = flip_dE[site * kStates + b];
        const double flip = (coupled ? 0.5 : 1.0) * std::min(1.0, std::exp(-dE / T));
        out[b ^ (1 << site)] += v[b] * flip;
        out[b] += v[b] * (1 - flip);
      }
      std::swap(v, out);
    }
    return v;
  };
}

static void check_ising(bool coupled, int sweeps, int n, uint64_t seed) {
  const int B = 5;
  const double T = 2.5;
  std::vector<double> energy(kStates), energy2(kStates);
  for (int b = 0; b < kStates; ++b) {
    energy[b] = state_of(b).energy;
    energy2[b] = energy[b] * energy[b];
  }
  exact::Dist cold(kStates, 0);
  cold[kStates - 1] = 1;
  const double truth_e = exact::derivative(ising_sweep(coupled), cold, T, sweeps, B, energy);
  const double truth_e2 = exact::derivative(ising_sweep(coupled), cold, T, sweeps, B, energy2);
  const IsingModel model(kL);
  auto moments = [](const IsingState& x) {
    return std::array<double, 2>{double(x.energy), double(x.energy) * x.energy};
  };
  std::vector<double> de(n), de2(n);
#pragma omp parallel for schedule(static)
  for (int r = 0; r < n; ++r) {
    ik::Rng rng(seed, uint64_t(r));
    IsingSiteProposal q(kL, coupled, /*shuffled=*/false);
    const auto e = estimate_dmh<2>(model, q, model.cold_start(), T, ChainSpec{sweeps, B, kSites}, moments, rng);
    de[r] = e.derivative[0];
    de2[r] = e.derivative[1];
  }
  EXPECT_WITHIN_3SE(mean_se(de), truth_e);
  EXPECT_WITHIN_3SE(mean_se(de2), truth_e2);
  EXPECT_GT(std::abs(truth_e), 10 * mean_se(de).se);
}

// CI runs 2e4 estimates per chain length; the `slow` binary (test_prob_mcmc_slow, built with
// IK_MH_SLOW) runs 1e5 under the name SlowSweeps/....
#ifdef IK_MH_SLOW
constexpr int kIsingEstimates = 100000;
#define IK_MH_SWEEPS_NAME SlowSweeps
#else
constexpr int kIsingEstimates = 20000;
#define IK_MH_SWEEPS_NAME Sweeps
#endif
class MhIsingExact : public ::testing::TestWithParam<int> {};
TEST_P(MhIsingExact, CoupledProposalIsUnbiased) {
  check_ising(true, GetParam(), kIsingEstimates, 5 + GetParam());
}
INSTANTIATE_TEST_SUITE_P(IK_MH_SWEEPS_NAME, MhIsingExact, ::testing::Values(50, 200, 500));

#ifndef IK_MH_SLOW
TEST(MhIsingExactFlip, AlwaysFlipProposalIsUnbiasedToo) { check_ising(false, 20, 30000, 6); }
#endif
