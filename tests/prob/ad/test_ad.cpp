// Dual numbers against finite differences; pruning and the discrete derivative rules against
// exact derivatives of exact expectations (sums over the support).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "core/error.hpp"
#include "prob/ad/discrete.hpp"
#include "prob/ad/dual.hpp"
#include "prob/ad/triple.hpp"

using namespace ik::ad;

template <typename S>
static S test_function(const S& x, const S& y) {
  return exp(x * y) / (x + log(y)) + sqrt(x) - 3.0 * y;
}

TEST(AdDual, GradientWithTwoDirectionsMatchesFiniteDifferences) {
  const double x = 0.7, y = 1.3, h = 1e-6;
  using D = Dual<double, 2>;
  const D f = test_function(D::variable(x, 0), D::variable(y, 1));
  EXPECT_NEAR(f.v, test_function(x, y), 1e-14);
  const double fx = (test_function(x + h, y) - test_function(x - h, y)) / (2 * h);
  const double fy = (test_function(x, y + h) - test_function(x, y - h)) / (2 * h);
  EXPECT_NEAR(f.d[0], fx, 1e-7);
  EXPECT_NEAR(f.d[1], fy, 1e-7);
}

TEST(AdDual, NestedDualsGiveSecondDerivatives) {
  const double x = 0.7, y = 1.3, h = 1e-4;
  using D1 = Dual<double, 1>;
  using D2 = Dual<D1, 1>;
  // x as a variable in both layers: f.d[0].d[0] = d2f/dx2.
  const D2 xx(D1::variable(x), {D1(1.0)});
  const D2 f = test_function(xx, D2(y));
  auto first = [&](double xv) { return test_function(D1::variable(xv), D1(y)).d[0]; };
  EXPECT_NEAR(f.d[0].v, first(x), 1e-12);
  EXPECT_NEAR(f.d[0].d[0], (first(x + h) - first(x - h)) / (2 * h), 1e-6);
}

// Mean and standard error of a sample.
struct MeanSe {
  double mean, se;
};
static MeanSe mean_se(const std::vector<double>& v) {
  double m = 0, q = 0;
  for (double x : v) m += x;
  m /= v.size();
  for (double x : v) q += (x - m) * (x - m);
  return {m, std::sqrt(q / (v.size() - 1) / v.size())};
}
#define EXPECT_WITHIN_3SE(ms, exact)                                                         \
  EXPECT_LE(std::abs((ms).mean - (exact)), 3 * (ms).se + 1e-12)                              \
      << "estimate " << (ms).mean << " +- " << (ms).se << " vs exact " << (exact)

TEST(AdPruning, KeepsTheExpectedContribution) {
  ik::Rng rng(7);
  const double w1 = 0.8, d1 = 3, w2 = -2.5, d2 = -1;  // contributions 2.4 and 2.5
  std::vector<double> contrib;
  for (int i = 0; i < 200000; ++i) {
    Alternative<double> cur{d1, w1, true};
    prune_into(cur, Alternative<double>{d2, w2, true}, rng);
    contrib.push_back(cur.weight * cur.value);
  }
  EXPECT_WITHIN_3SE(mean_se(contrib), w1 * d1 + w2 * d2);
}

// d/dθ E[g(X_θ)] from the mean of derivative contributions, against the exact value.
static void check_rule(const char* name, std::function<StochasticTriple<int>(ik::Rng&)> draw,
                       std::function<double(int)> g, double exact, int n = 200000) {
  SCOPED_TRACE(name);
  ik::Rng rng(12345);
  std::vector<double> contrib(n);
  for (int i = 0; i < n; ++i) contrib[i] = derivative_contribution(draw(rng), g);
  EXPECT_WITHIN_3SE(mean_se(contrib), exact);
}

// Exact d/dθ Σ_k pmf_θ(k) g(k) by central differences of the exact sum.
static double exact_derivative(std::function<double(double, int)> pmf, double theta, int kmax,
                               std::function<double(int)> g) {
  auto mean = [&](double t) {
    double m = 0;
    for (int k = 0; k <= kmax; ++k) m += pmf(t, k) * g(k);
    return m;
  };
  const double h = 1e-5;
  return (mean(theta + h) - mean(theta - h)) / (2 * h);
}

TEST(AdDerivativeRules, BernoulliBothSigns) {
  auto g = [](int k) { return k == 1 ? 2.5 : -1.0; };  // d/dp E g = 3.5
  for (double sign : {1.0, -1.0})
    check_rule("bernoulli", [&](ik::Rng& r) { return bernoulli(make_triple(0.3, sign), r); }, g,
               3.5 * sign);
}

TEST(AdDerivativeRules, Binomial) {
  const int n = 8;
  auto g = [](int k) { return double(k * k); };
  const double p = 0.35, exact = n * (1 - 2 * p) + 2.0 * n * n * p;  // d/dp (np(1-p) + n²p²)
  for (double sign : {1.0, -1.0})
    check_rule("binomial", [&](ik::Rng& r) { return binomial(n, make_triple(p, sign), r); }, g,
               exact * sign);
}

TEST(AdDerivativeRules, Geometric) {
  auto g = [](int k) { return double(k * k) - 2.0 * k; };
  auto pmf = [](double p, int k) { return p * std::pow(1 - p, k); };
  const double exact = exact_derivative(pmf, 0.4, 400, g);
  for (double sign : {1.0, -1.0})
    check_rule("geometric", [&](ik::Rng& r) { return geometric(make_triple(0.4, sign), r); }, g,
               exact * sign);
}

TEST(AdDerivativeRules, Poisson) {
  auto g = [](int k) { return double(k * k); };
  const double lambda = 3.5;  // E k² = λ + λ²
  for (double sign : {1.0, -1.0})
    check_rule("poisson", [&](ik::Rng& r) { return poisson(make_triple(lambda, sign), r); }, g,
               (1 + 2 * lambda) * sign);
}

TEST(AdDerivativeRules, CategoricalSoftmax) {
  const std::vector<double> a{0.5, -1.0, 2.0, 0.0}, gv{1.0, -2.0, 3.0, 0.5};
  const double theta = 0.3;
  auto softmax = [&](double t) {
    std::vector<double> p(4);
    double z = 0;
    for (int k = 0; k < 4; ++k) z += p[k] = std::exp(t * a[k]);
    for (auto& q : p) q /= z;
    return p;
  };
  const auto p = softmax(theta);
  double abar = 0;
  for (int k = 0; k < 4; ++k) abar += p[k] * a[k];
  std::vector<double> dp(4);
  for (int k = 0; k < 4; ++k) dp[k] = p[k] * (a[k] - abar);
  auto g = [&](int k) { return gv[k]; };
  const double exact =
      exact_derivative([&](double t, int k) { return softmax(t)[k]; }, theta, 3, g);
  check_rule("categorical", [&](ik::Rng& r) { return categorical(ProbVector{p, dp, {}}, r); }, g,
             exact);
}

// X1 ~ Bernoulli(θ); the next parameter depends on X1, so its alternative must be carried
// through the second draw by inversion coupling.
TEST(AdPropagation, BernoulliIntoBinomialAndPoisson) {
  const double theta = 0.4;
  auto g = [](int k) { return double(k * k) + k; };
  auto binom_mean = [&](double p) {
    double m = 0;
    for (int k = 0; k <= 6; ++k) m += BinomialDist{6, p}.pmf(k) * g(k);
    return m;
  };
  check_rule(
      "binomial after bernoulli",
      [&](ik::Rng& r) {
        const auto x1 = bernoulli(make_triple(theta, 1.0), r);
        StochasticTriple<double> p{0.2 + 0.5 * x1.primal, 0.0, {}};
        if (x1.alt.alive) p.alt = {0.2 + 0.5 * x1.alt.value, x1.alt.weight, true};
        return binomial(6, p, r);
      },
      g, binom_mean(0.7) - binom_mean(0.2));
  // λ = 1 + 2 X1: E g = θ (g-mean at λ=3) + (1-θ)(at λ=1); E k²+k = λ² + 2λ.
  auto pois_mean = [](double l) { return l * l + 2 * l; };
  check_rule(
      "poisson after bernoulli",
      [&](ik::Rng& r) {
        const auto x1 = bernoulli(make_triple(theta, 1.0), r);
        const auto lambda = map_triple(
            StochasticTriple<double>{double(x1.primal), 0.0,
                                     {double(x1.alt.value), x1.alt.weight, x1.alt.alive}},
            [](double v) { return 1 + 2 * v; }, [](double) { return 2.0; });
        return poisson(lambda, r);
      },
      g, pois_mean(3) - pois_mean(1));
}

TEST(AdBadInput, ClearErrors) {
  ik::Rng rng(1);
  EXPECT_THROW(bernoulli(make_triple(1.5, 0.0), rng), ik::Error);
  EXPECT_THROW(poisson(make_triple(-1.0, 0.0), rng), ik::Error);
  EXPECT_THROW(geometric(make_triple(0.0, 0.0), rng), ik::Error);
  EXPECT_THROW(binomial(-2, make_triple(0.5, 0.0), rng), ik::Error);
  EXPECT_THROW(categorical(ProbVector{{0.5, 0.6}, {}, {}}, rng), ik::Error);
}
