#pragma once
// The ambiguous-observation experiment (differentiable_mh scripts/mixture.jl): MH over the
// component i of a 3-component Gaussian mixture; the objective is the entropy of the
// empirical posterior S/N, and its gradient with respect to the observation.
#include <cstdint>
#include <string>
#include <vector>

#include "core/rng.hpp"
#include "prob/mcmc/models.hpp"

namespace ik::mcmc {

enum class Estimator { stochastic, score };
Estimator parse_estimator(const std::string& name);  // "stochastic" or "score"
const char* estimator_name(Estimator e);

struct EntropyGradient {
  double entropy, gradient;
};

// One estimate from a chain of burn_in + n_samples steps started at component 0.
EntropyGradient gmm_entropy_gradient(const GmmModel& model, double obs, int n_samples,
                                     int burn_in, Estimator estimator, Rng& rng);
double gmm_exact_entropy(const GmmModel& model, double obs);

struct GmmDescentRow {
  int iter;
  double obs, entropy_estimate, exact_entropy, gradient;
};
// Adam ascent on the entropy (descent on -H) from obs0.
std::vector<GmmDescentRow> gmm_descent(const GmmModel& model, double obs0, double lr, int iters,
                                       int n_samples, int burn_in, uint64_t seed);

struct VarianceRow {
  int T, replicates;
  double mean_ours, var_ours, mean_score, var_score;
};
// For each T, budget/T independent estimates (at least min_reps) by both estimators.
std::vector<VarianceRow> gmm_variance_sweep(const GmmModel& model, double obs,
                                            const std::vector<int>& Ts, int64_t budget,
                                            int min_reps, int burn_in, uint64_t seed);

}  // namespace ik::mcmc
