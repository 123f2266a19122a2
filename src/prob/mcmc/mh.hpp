#pragma once
// Differentiable Metropolis-Hastings (Arya et al. 2023): an unbiased estimate of
// d/dθ E[J_T(θ)], J_T = mean of f(x_t) over t = B+1..T, by stochastic triples on the chain.
//
// The chain carries its primal state x and at most ONE weighted alternative state y. Each MH
// step draws a proposal and a uniform U shared by both (accept iff U >= 1 - α, inversion):
//  * the alternative takes its move from the proposal's coupling and accepts with its own α_y
//    against the same U (inversion propagation coupling);
//  * the primal's accept coin is Bernoulli(α) with dα/dθ from dual numbers, so the Bernoulli
//    derivative rule proposes a new alternative: the other outcome of this step, with weight
//    dα/(1-α) (rejected, dα > 0) or -dα/α (accepted, dα < 0);
//  * the two alternatives are merged by pruning; when y == x the chains have coalesced and
//    the alternative dies.
// Then G = mean over post-burn-in samples of w * (f(y) - f(x)) (f and proposals do not depend
// on θ here, so the pathwise term is zero).
//
// User models provide
//   using State = ...; using Move = ...;
//   template <class S> S log_ratio(const State& x, const Move& m, const S& theta) const;
//       // ℓ_θ(x∘m) - ℓ_θ(x) + log q(x|x∘m) - log q(x∘m|x)
//   void apply(State& x, const Move& m) const;   // x <- x∘m
// and proposals provide
//   Move propose(const State& x, Rng&);                                   // primal move
//   Move couple(const State& y, const State& x, const Move& mx, Rng&);     // alternative's move
#include <array>
#include <cmath>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "prob/ad/dual.hpp"
#include "prob/ad/triple.hpp"

namespace ik::mcmc {

// T samples of f, each after steps_per_sample MH steps (1, or L*L for an Ising sweep);
// the first burn_in samples are discarded.
struct ChainSpec {
  int samples = 0;
  int burn_in = 0;
  int steps_per_sample = 1;
  void check() const {
    IK_CHECK(samples > 0, "chain length T = {} must be > 0", samples);
    IK_CHECK(burn_in >= 0, "burn-in {} must be >= 0", burn_in);
    IK_CHECK(burn_in < samples, "burn-in {} must be < chain length T = {}", burn_in, samples);
    IK_CHECK(steps_per_sample > 0, "steps per sample {} must be > 0", steps_per_sample);
  }
  int kept() const { return samples - burn_in; }
};

// Estimates of E[J_T] (value) and d/dθ E[J_T] (derivative) for a vector-valued f.
template <int K>
struct Estimate {
  std::array<double, K> value{}, derivative{};
};

// α = min(1, exp(lr)) and its tangent; the clip at 1 kills the derivative.
struct Acceptance {
  double alpha, dalpha;
};
inline Acceptance acceptance(const ad::Dual<double, 1>& lr) {
  if (lr.v >= 0) return {1.0, 0.0};
  const double a = std::exp(lr.v);
  return {a, a * lr.d[0]};
}
inline double acceptance(double lr) { return lr >= 0 ? 1.0 : std::exp(lr); }

// Primal chain plus one weighted alternative, advanced together.
template <typename Model, typename Proposal>
struct CoupledChain {
  using State = typename Model::State;
  const Model& model;
  Proposal& proposal;
  double theta;
  State x;
  ad::Alternative<State> alt{};

  void step(Rng& rng) {
    using D = ad::Dual<double, 1>;
    const auto move = proposal.propose(x, rng);
    const auto [a, da] = acceptance(model.log_ratio(x, move, D::variable(theta)));
    const double u = rng.uniform();
    const bool accept = u >= 1 - a;
    bool changed = accept;
    if (alt.alive) {
      const auto move_y = proposal.couple(alt.value, x, move, rng);
      const double a_y = acceptance(model.log_ratio(alt.value, move_y, theta));
      if (u >= 1 - a_y) {
        model.apply(alt.value, move_y);
        changed = true;
      }
    }
    // Bernoulli derivative rule: the other outcome of this step becomes a candidate.
    const double w = (da > 0 && !accept) ? da / (1 - a) : (da < 0 && accept) ? -da / a : 0;
    if (w != 0) {
      const double kept = ad::prune_decide(alt, w, rng);
      if (kept != 0) {
        alt.value = x;  // x before the move: the rejected/accepted twin
        if (!accept) model.apply(alt.value, move);
        alt.weight = kept;
        alt.alive = true;
        changed = true;
      }
    }
    if (accept) model.apply(x, move);
    if (alt.alive && changed && alt.value == x) alt.alive = false;  // coalesced
  }
};

// Stochastic-derivative estimate (ours). f maps a State to std::array<double, K>.
template <int K, typename Model, typename Proposal, typename F>
Estimate<K> estimate_dmh(const Model& model, Proposal& proposal, typename Model::State x0,
                         double theta, const ChainSpec& spec, F f, Rng& rng) {
  spec.check();
  CoupledChain<Model, Proposal> chain{model, proposal, theta, std::move(x0)};
  Estimate<K> e;
  for (int t = 1; t <= spec.samples; ++t) {
    for (int s = 0; s < spec.steps_per_sample; ++s) chain.step(rng);
    if (t <= spec.burn_in) continue;
    const auto fx = f(chain.x);
    for (int k = 0; k < K; ++k) e.value[k] += fx[k];
    if (chain.alt.alive) {
      const auto fy = f(chain.alt.value);
      for (int k = 0; k < K; ++k) e.derivative[k] += chain.alt.weight * (fy[k] - fx[k]);
    }
  }
  for (int k = 0; k < K; ++k) {
    e.value[k] /= spec.kept();
    e.derivative[k] /= spec.kept();
  }
  return e;
}

// Score-function (REINFORCE) baseline: W_t = Σ_{s<=t} d/dθ log P(coin_s), G = mean W_t f(x_t).
template <int K, typename Model, typename Proposal, typename F>
Estimate<K> estimate_score(const Model& model, Proposal& proposal, typename Model::State x,
                           double theta, const ChainSpec& spec, F f, Rng& rng) {
  spec.check();
  using D = ad::Dual<double, 1>;
  Estimate<K> e;
  double score = 0;
  for (int t = 1; t <= spec.samples; ++t) {
    for (int s = 0; s < spec.steps_per_sample; ++s) {
      const auto move = proposal.propose(x, rng);
      const auto [a, da] = acceptance(model.log_ratio(x, move, D::variable(theta)));
      const bool accept = rng.uniform() >= 1 - a;
      score += accept ? da / a : -da / (1 - a);
      if (accept) model.apply(x, move);
    }
    if (t <= spec.burn_in) continue;
    const auto fx = f(x);
    for (int k = 0; k < K; ++k) {
      e.value[k] += fx[k];
      e.derivative[k] += score * fx[k];
    }
  }
  for (int k = 0; k < K; ++k) {
    e.value[k] /= spec.kept();
    e.derivative[k] /= spec.kept();
  }
  return e;
}

// Plain MH (no derivatives), the speed reference: returns the estimate of E[J_T].
template <int K, typename Model, typename Proposal, typename F>
std::array<double, K> run_plain(const Model& model, Proposal& proposal, typename Model::State x,
                                double theta, const ChainSpec& spec, F f, Rng& rng) {
  spec.check();
  std::array<double, K> value{};
  for (int t = 1; t <= spec.samples; ++t) {
    for (int s = 0; s < spec.steps_per_sample; ++s) {
      const auto move = proposal.propose(x, rng);
      const double a = acceptance(model.log_ratio(x, move, theta));
      if (rng.uniform() >= 1 - a) model.apply(x, move);
    }
    if (t <= spec.burn_in) continue;
    const auto fx = f(x);
    for (int k = 0; k < K; ++k) value[k] += fx[k];
  }
  for (auto& v : value) v /= spec.kept();
  return value;
}

}  // namespace ik::mcmc
