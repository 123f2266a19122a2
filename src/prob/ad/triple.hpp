#pragma once
// Stochastic triples (Arya et al., StochasticAD.jl, pruned backend). A random quantity X(θ)
// is carried as (primal v, dual δ, one weighted alternative (a, w)), meaning
//   X(θ + ε) ≈ v + δ ε          with probability 1 - w ε,
//   X(θ + ε) = a                with probability w ε        (a finite jump),
// so d/dθ E[f(X)] = E[f'(v) δ + w (f(a) - f(v))]. Only one alternative is kept: when two
// meet, pruning keeps one at random with probability ∝ |w| and divides its weight by that
// probability, which leaves E[w (f(a) - f(v))] unchanged (Russian roulette).
#include <cmath>
#include <utility>

#include "core/rng.hpp"

namespace ik::ad {

// One alternative value and its weight (a rate per unit θ; may be negative after a
// derivative rule that subtracts). alive = false means "no alternative".
template <typename V>
struct Alternative {
  V value{};
  double weight = 0;
  bool alive = false;
};

template <typename V, typename D = double>
struct StochasticTriple {
  V primal{};
  D dual{};
  Alternative<V> alt{};
};

// A constant input θ with derivative direction dθ (no alternative yet).
template <typename V, typename D>
StochasticTriple<V, D> make_triple(V primal, D dual) {
  return {std::move(primal), std::move(dual), {}};
}

// Pruning, the decision only: a candidate of weight cand_weight meets `current`. Returns the
// weight the candidate carries if it survives (the caller then stores its value), or 0 when
// it is dropped (current has been reweighted). Splitting decision from copy lets big states
// (an Ising lattice) be copied only when they survive.
template <typename V>
double prune_decide(Alternative<V>& current, double cand_weight, Rng& rng) {
  if (cand_weight == 0) return 0;
  if (!current.alive || current.weight == 0) return cand_weight;
  const double wc = std::abs(cand_weight), wk = std::abs(current.weight);
  const double p = wc / (wc + wk);
  if (rng.uniform() < p) return cand_weight / p;
  current.weight /= (1 - p);
  return 0;
}

// Pruning: merge a candidate alternative into the current one. Both describe the same random
// quantity (relative to the same primal); afterwards at most one survives.
template <typename V>
void prune_into(Alternative<V>& current, Alternative<V> candidate, Rng& rng) {
  if (!candidate.alive) return;
  const double w = prune_decide(current, candidate.weight, rng);
  if (w == 0) return;
  candidate.weight = w;
  current = std::move(candidate);
}

// Map a triple through a deterministic function with known derivative at the primal:
// the primal and the alternative go through f, the dual through f'.
template <typename V, typename F, typename DF>
StochasticTriple<V> map_triple(const StochasticTriple<V>& x, F f, DF df) {
  StochasticTriple<V> r;
  r.primal = f(x.primal);
  r.dual = df(x.primal) * x.dual;
  r.alt = x.alt;
  if (x.alt.alive) r.alt.value = f(x.alt.value);
  return r;
}

// Smoothing (StochasticAD.smooth_triple): the unbiased derivative contribution of f(X),
// f'(v) δ + w (f(a) - f(v)), as a plain number. f_dual is f'(v) δ (pathwise part).
template <typename V, typename D, typename F>
double derivative_contribution(const StochasticTriple<V, D>& x, F f, double f_dual = 0) {
  double d = f_dual;
  if (x.alt.alive) d += x.alt.weight * (f(x.alt.value) - f(x.primal));
  return d;
}

}  // namespace ik::ad
