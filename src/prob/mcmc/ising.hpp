#pragma once
// Specific-heat maximization (differentiable_mh scripts/ising): C(T) = (<E²> - <E>²)/T² from a
// cold-started chain (eq sweeps discarded, then meas sweeps measured), and an unbiased
// derivative of <E> and <E²> by the coupled-chain estimator; Adam ascends C over T.
#include <cstdint>
#include <functional>
#include <vector>

#include "core/rng.hpp"
#include "prob/mcmc/models.hpp"

namespace ik::mcmc {

struct IsingRunSpec {
  int L = 12;
  int eq_sweeps = 100;
  int meas_sweeps = 1000;
  bool coupled = true;  // shared-spin proposal; false: always-flip proposal
  void check() const;
};

struct HeatCapacity {
  double C, dC_dT, mean_energy, dmean_energy_dT;
};

// One estimate at temperature T (plain MH when derivative = false; dC_dT is then 0).
HeatCapacity ising_heat_capacity(const IsingRunSpec& spec, double T, Rng& rng, bool derivative = true);

struct IsingTraceRow {
  int iter;
  double T, C, dC_dT;
};
// Adam ascent on C from T0; on_iter (optional) is called after each iteration.
std::vector<IsingTraceRow> ising_optimize(const IsingRunSpec& spec, double T0, double lr, int iters,
                                          uint64_t seed,
                                          const std::function<void(const IsingTraceRow&)>& on_iter = {});

}  // namespace ik::mcmc
