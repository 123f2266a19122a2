#include "prob/mcmc/ising.hpp"

#include "prob/mcmc/adam.hpp"
#include "prob/mcmc/mh.hpp"

namespace ik::mcmc {

void IsingRunSpec::check() const {
  IK_CHECK(L >= 2, "lattice side L = {} must be >= 2", L);
  IK_CHECK(eq_sweeps >= 0, "equilibration sweeps {} must be >= 0", eq_sweeps);
  IK_CHECK(meas_sweeps > 0, "measurement sweeps {} must be > 0", meas_sweeps);
}

HeatCapacity ising_heat_capacity(const IsingRunSpec& spec, double T, Rng& rng, bool derivative) {
  spec.check();
  IK_CHECK(T > 0, "temperature T = {} must be > 0", T);
  const IsingModel model(spec.L);
  IsingSiteProposal proposal(spec.L, spec.coupled);
  const ChainSpec chain{spec.eq_sweeps + spec.meas_sweeps, spec.eq_sweeps, spec.L * spec.L};
  auto energy_moments = [](const IsingState& x) {
    const double e = x.energy;
    return std::array<double, 2>{e, e * e};
  };
  Estimate<2> m;
  if (derivative)
    m = estimate_dmh<2>(model, proposal, model.cold_start(), T, chain, energy_moments, rng);
  else
    m.value = run_plain<2>(model, proposal, model.cold_start(), T, chain, energy_moments, rng);
  // C = (m2 - m1²)/T²: the chain rule through the plug-in, plus the explicit 1/T².
  const double var = m.value[1] - m.value[0] * m.value[0];
  const double dvar = m.derivative[1] - 2 * m.value[0] * m.derivative[0];
  const double C = var / (T * T);
  return {C, dvar / (T * T) - 2 * C / T, m.value[0], m.derivative[0]};
}

std::vector<IsingTraceRow> ising_optimize(const IsingRunSpec& spec, double T0, double lr, int iters,
                                          uint64_t seed,
                                          const std::function<void(const IsingTraceRow&)>& on_iter) {
  IK_CHECK(T0 > 0, "initial temperature {} must be > 0", T0);
  IK_CHECK(lr > 0, "learning rate {} must be > 0", lr);
  IK_CHECK(iters > 0, "iterations {} must be > 0", iters);
  Rng rng(seed);
  Adam adam{lr};
  double T = T0;
  std::vector<IsingTraceRow> rows;
  for (int it = 0; it < iters; ++it) {
    const auto hc = ising_heat_capacity(spec, T, rng);
    rows.push_back({it, T, hc.C, hc.dC_dT});
    if (on_iter) on_iter(rows.back());
    T -= adam.step(-hc.dC_dT);  // maximize C
    IK_CHECK(T > 0, "temperature left (0, inf) at iteration {}; lower the learning rate", it);
  }
  return rows;
}

}  // namespace ik::mcmc
