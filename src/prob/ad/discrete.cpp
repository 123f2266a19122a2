#include "prob/ad/discrete.hpp"

namespace ik::ad {

// Inversion by a linear scan: the first k with u < F(k). The cap guards against a CDF that
// rounds to just below 1 when u is within an ulp of 1.
template <typename Dist>
static int scan_quantile(const Dist& d, double u, int cap) {
  double F = 0;
  for (int k = 0; k < cap; ++k) {
    F += d.pmf(k);
    if (u < F) return k;
  }
  return cap;
}

double BinomialDist::cdf(int k) const {
  double F = 0;
  for (int j = 0; j <= std::min(k, n); ++j) F += pmf(j);
  return k >= n ? 1 : F;
}
int BinomialDist::quantile(double u) const { return scan_quantile(*this, u, n); }

int GeometricDist::quantile(double u) const {
  if (p >= 1) return 0;
  // F(k) = 1 - (1-p)^(k+1) > u  <=>  k + 1 > log(1-u) / log(1-p)
  const double k = std::floor(std::log1p(-u) / std::log1p(-p));
  return k > 1e9 ? 1 << 30 : int(k);
}

double PoissonDist::cdf(int k) const {
  double F = 0;
  for (int j = 0; j <= k; ++j) F += pmf(j);
  return F;
}
int PoissonDist::quantile(double u) const {
  // Walk the pmf with the recursion pmf(k+1) = pmf(k) λ/(k+1).
  double pk = std::exp(-lambda), F = pk;
  int k = 0;
  const int cap = int(lambda + 40 * std::sqrt(lambda) + 100);
  while (u >= F && k < cap) {
    ++k;
    pk *= lambda / k;
    F += pk;
  }
  return k;
}

double CategoricalDist::cdf(int k) const {
  double F = 0;
  for (int j = 0; j <= std::min(k, max_value()); ++j) F += p[j];
  return F;
}
double CategoricalDist::dcdf(int k) const {
  double dF = 0;
  for (int j = 0; j <= std::min(k, max_value()); ++j) dF += dp[j];
  return dF;
}
int CategoricalDist::quantile(double u) const { return scan_quantile(*this, u, max_value()); }

StochasticTriple<int> categorical(const ProbVector& p, Rng& rng) {
  IK_CHECK(!p.primal.empty(), "categorical: no categories");
  IK_CHECK(p.dual.empty() || p.dual.size() == p.primal.size(),
           "categorical: {} probabilities but {} tangents", p.primal.size(), p.dual.size());
  double total = 0;
  for (double q : p.primal) {
    check_probability(q, "categorical");
    total += q;
  }
  IK_CHECK(std::abs(total - 1) < 1e-9, "categorical: probabilities sum to {}, not 1", total);
  CategoricalDist d{p.primal, p.dual};
  if (d.dp.empty()) d.dp.assign(d.p.size(), 0);
  std::optional<CategoricalDist> alt;
  if (p.alt.alive) {
    IK_CHECK(p.alt.value.size() == p.primal.size(), "categorical: alternative has {} categories, not {}",
             p.alt.value.size(), p.primal.size());
    alt = CategoricalDist{p.alt.value, std::vector<double>(p.primal.size(), 0)};
  }
  return sample_by_inversion(d, alt, p.alt.weight, rng);
}

}  // namespace ik::ad
