#include "prob/mcmc/gmm.hpp"

#include <algorithm>
#include <cmath>

#include "prob/mcmc/adam.hpp"
#include "prob/mcmc/mh.hpp"

namespace ik::mcmc {

Estimator parse_estimator(const std::string& name) {
  if (name == "stochastic") return Estimator::stochastic;
  if (name == "score") return Estimator::score;
  fail("unknown estimator '{}' (expected stochastic or score)", name);
}
const char* estimator_name(Estimator e) { return e == Estimator::stochastic ? "stochastic" : "score"; }

// H(p) = -Σ p log p and dH = -Σ (log p + 1) dp. An empty component (p = 0) adds nothing to H
// and its derivative term is dropped (the 0 log 0 limit).
static EntropyGradient entropy_of(const std::array<double, 3>& p, const std::array<double, 3>& dp) {
  EntropyGradient r{0, 0};
  for (int k = 0; k < 3; ++k) {
    if (p[k] <= 0) continue;
    r.entropy -= p[k] * std::log(p[k]);
    r.gradient -= (std::log(p[k]) + 1) * dp[k];
  }
  return r;
}

EntropyGradient gmm_entropy_gradient(const GmmModel& model, double obs, int n_samples,
                                     int burn_in, Estimator estimator, Rng& rng) {
  UniformOthersProposal proposal{3};
  const ChainSpec spec{burn_in + n_samples, burn_in, 1};
  auto one_hot = [](int i) {
    std::array<double, 3> f{};
    f[i] = 1;
    return f;
  };
  const auto e = estimator == Estimator::stochastic
                     ? estimate_dmh<3>(model, proposal, 0, obs, spec, one_hot, rng)
                     : estimate_score<3>(model, proposal, 0, obs, spec, one_hot, rng);
  return entropy_of(e.value, e.derivative);
}

double gmm_exact_entropy(const GmmModel& model, double obs) {
  return entropy_of(model.posterior(obs), {}).entropy;
}

std::vector<GmmDescentRow> gmm_descent(const GmmModel& model, double obs0, double lr, int iters,
                                       int n_samples, int burn_in, uint64_t seed) {
  Rng rng(seed);
  Adam adam{lr};
  double obs = obs0;
  std::vector<GmmDescentRow> rows;
  for (int it = 0; it < iters; ++it) {
    const auto eg = gmm_entropy_gradient(model, obs, n_samples, burn_in, Estimator::stochastic, rng);
    rows.push_back({it, obs, eg.entropy, gmm_exact_entropy(model, obs), eg.gradient});
    obs -= adam.step(-eg.gradient);  // maximize H: descend on -H
  }
  rows.push_back({iters, obs, NAN, gmm_exact_entropy(model, obs), NAN});
  return rows;
}

static void mean_var(const std::vector<double>& v, double& mean, double& var) {
  mean = 0;
  for (double x : v) mean += x;
  mean /= v.size();
  var = 0;
  for (double x : v) var += (x - mean) * (x - mean);
  var /= std::max<size_t>(1, v.size() - 1);
}

std::vector<VarianceRow> gmm_variance_sweep(const GmmModel& model, double obs,
                                            const std::vector<int>& Ts, int64_t budget,
                                            int min_reps, int burn_in, uint64_t seed) {
  std::vector<VarianceRow> rows;
  for (int T : Ts) {
    IK_CHECK(T > 0, "chain length T = {} must be > 0", T);
    const int reps = int(std::max<int64_t>(min_reps, budget / T));
    std::vector<double> ours(reps), score(reps);
#pragma omp parallel for schedule(dynamic, 4)
    for (int r = 0; r < reps; ++r) {
      Rng rng(seed + T, uint64_t(r));  // one stream per replicate: same numbers for any thread count
      ours[r] = gmm_entropy_gradient(model, obs, T, burn_in, Estimator::stochastic, rng).gradient;
      score[r] = gmm_entropy_gradient(model, obs, T, burn_in, Estimator::score, rng).gradient;
    }
    VarianceRow row{T, reps, 0, 0, 0, 0};
    mean_var(ours, row.mean_ours, row.var_ours);
    mean_var(score, row.mean_score, row.var_score);
    rows.push_back(row);
  }
  return rows;
}

}  // namespace ik::mcmc
