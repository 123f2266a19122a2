#pragma once
// Discrete distributions whose parameters are stochastic triples. Every draw is by inversion,
// k = F^{-1}(U), which gives both rules of StochasticAD.jl (src/discrete_randomness.jl):
//
//  * derivative rule (new alternative): when the parameter moves by dθ the CDF moves by
//    F'(k) dθ, so the draw jumps k -> k+1 with rate -F'(k)/pmf(k) (when positive) and
//    k -> k-1 with rate F'(k-1)/pmf(k) (when positive). For Bernoulli(p) with δ = dp:
//    δ > 0 and k = 0 -> alternative 1, w = δ/(1-p);  δ < 0 and k = 1 -> alternative 0, w = -δ/p.
//  * propagation (inversion coupling) of an existing alternative parameter p': the same U,
//    which given k is uniform on [F(k-1), F(k)), drawn through F_{p'}^{-1}.
//
// Both candidates are merged by pruning (triple.hpp), so the result has one alternative.
#include <cmath>
#include <optional>
#include <vector>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "prob/ad/triple.hpp"

namespace ik::ad {

// Each distribution knows pmf(k), cdf(k) and dcdf(k) = dF(k)/dθ along the parameter's dual;
// quantile() inverts cdf by a linear scan (the supports used here are small).
struct BernoulliDist {
  double p, dp = 0;
  double pmf(int k) const { return k == 0 ? 1 - p : p; }
  double cdf(int k) const { return k < 0 ? 0 : k == 0 ? 1 - p : 1; }
  double dcdf(int k) const { return k == 0 ? -dp : 0; }
  int quantile(double u) const { return u >= 1 - p ? 1 : 0; }
  int max_value() const { return 1; }
};

struct BinomialDist {
  int n;
  double p, dp = 0;
  double pmf(int k) const {
    if (k < 0 || k > n) return 0;
    if (p <= 0) return k == 0 ? 1 : 0;
    if (p >= 1) return k == n ? 1 : 0;
    return std::exp(std::lgamma(n + 1.0) - std::lgamma(k + 1.0) - std::lgamma(n - k + 1.0) +
                    k * std::log(p) + (n - k) * std::log1p(-p));
  }
  double cdf(int k) const;
  // dF(k)/dp = -(n-k) pmf(k) / (1-p), the classical identity -n C(n-1,k) p^k (1-p)^(n-1-k).
  double dcdf(int k) const { return (k < 0 || k >= n) ? 0 : -dp * (n - k) * pmf(k) / (1 - p); }
  int quantile(double u) const;
  int max_value() const { return n; }
};

// Number of failures before the first success: pmf p (1-p)^k, F(k) = 1 - (1-p)^(k+1).
struct GeometricDist {
  double p, dp = 0;
  double pmf(int k) const { return k < 0 ? 0 : p * std::pow(1 - p, k); }
  double cdf(int k) const { return k < 0 ? 0 : 1 - std::pow(1 - p, k + 1); }
  double dcdf(int k) const { return k < 0 ? 0 : dp * (k + 1) * std::pow(1 - p, k); }
  int quantile(double u) const;
  int max_value() const { return 1 << 30; }
};

struct PoissonDist {
  double lambda, dlambda = 0;
  double pmf(int k) const {
    return k < 0 ? 0 : std::exp(k * std::log(lambda) - lambda - std::lgamma(k + 1.0));
  }
  double cdf(int k) const;
  double dcdf(int k) const { return k < 0 ? 0 : -dlambda * pmf(k); }  // dF(k)/dλ = -pmf(k)
  int quantile(double u) const;
  int max_value() const { return 1 << 30; }
};

// Categorical over 0..K-1 with probabilities p (summing to 1) and their tangents dp.
struct CategoricalDist {
  std::vector<double> p, dp;
  double pmf(int k) const { return (k < 0 || k >= int(p.size())) ? 0 : p[k]; }
  double cdf(int k) const;
  double dcdf(int k) const;
  int quantile(double u) const;
  int max_value() const { return int(p.size()) - 1; }
};

// Draw k = F^{-1}(U) with the derivative rule and, when the parameter has an alternative
// (alt_dist with weight alt_weight), its inversion-coupled propagation.
template <typename Dist>
StochasticTriple<int> sample_by_inversion(const Dist& d, const std::optional<Dist>& alt_dist,
                                          double alt_weight, Rng& rng) {
  const double u = rng.uniform();
  StochasticTriple<int> r;
  r.primal = d.quantile(u);
  const int k = r.primal;
  const double pk = d.pmf(k);
  const double up = -d.dcdf(k) / pk, down = d.dcdf(k - 1) / pk;
  if (up > 0 && k < d.max_value()) prune_into(r.alt, Alternative<int>{k + 1, up, true}, rng);
  if (down > 0 && k > 0) prune_into(r.alt, Alternative<int>{k - 1, down, true}, rng);
  if (alt_dist) {
    const int k_alt = alt_dist->quantile(u);  // u | k is uniform on [F(k-1), F(k)): reuse it
    if (k_alt != k) prune_into(r.alt, Alternative<int>{k_alt, alt_weight, true}, rng);
  }
  return r;
}

inline void check_probability(double p, const char* what) {
  IK_CHECK(p >= 0 && p <= 1, "{}: probability {} is outside [0, 1]", what, p);
}

inline StochasticTriple<int> bernoulli(const StochasticTriple<double>& p, Rng& rng) {
  check_probability(p.primal, "bernoulli");
  std::optional<BernoulliDist> alt;
  if (p.alt.alive) alt = BernoulliDist{p.alt.value};
  return sample_by_inversion(BernoulliDist{p.primal, p.dual}, alt, p.alt.weight, rng);
}

inline StochasticTriple<int> binomial(int n, const StochasticTriple<double>& p, Rng& rng) {
  IK_CHECK(n >= 0, "binomial: n = {} must be >= 0", n);
  check_probability(p.primal, "binomial");
  std::optional<BinomialDist> alt;
  if (p.alt.alive) alt = BinomialDist{n, p.alt.value};
  return sample_by_inversion(BinomialDist{n, p.primal, p.dual}, alt, p.alt.weight, rng);
}

inline StochasticTriple<int> geometric(const StochasticTriple<double>& p, Rng& rng) {
  IK_CHECK(p.primal > 0 && p.primal <= 1, "geometric: p = {} must be in (0, 1]", p.primal);
  std::optional<GeometricDist> alt;
  if (p.alt.alive) alt = GeometricDist{p.alt.value};
  return sample_by_inversion(GeometricDist{p.primal, p.dual}, alt, p.alt.weight, rng);
}

inline StochasticTriple<int> poisson(const StochasticTriple<double>& lambda, Rng& rng) {
  IK_CHECK(lambda.primal > 0, "poisson: rate {} must be > 0", lambda.primal);
  std::optional<PoissonDist> alt;
  if (lambda.alt.alive) alt = PoissonDist{lambda.alt.value};
  return sample_by_inversion(PoissonDist{lambda.primal, lambda.dual}, alt, lambda.alt.weight, rng);
}

using ProbVector = StochasticTriple<std::vector<double>, std::vector<double>>;
StochasticTriple<int> categorical(const ProbVector& p, Rng& rng);

}  // namespace ik::ad
