// Forward gradients and gradient guesses: JVP against backprop and finite differences,
// E[(g.y)y] against its closed form, the 1/P cosine law of isotropic guesses, training.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "core/error.hpp"
#include "prob/guess/dataset.hpp"
#include "prob/guess/guesses.hpp"
#include "prob/guess/mlp.hpp"
#include "prob/guess/train.hpp"

using namespace ik::guess;

namespace {

struct Fixture {
  Mlp net;
  std::vector<float> x;
  std::vector<int> y;
  int batch;
  Fixture(std::vector<int> widths, int batch_size, uint64_t seed) : net(widths), batch(batch_size) {
    ik::Rng rng(seed);
    net.init(rng);
    // Small random biases so masks and bias columns are exercised.
    for (int i = 0; i < net.layers(); ++i)
      for (int o = 0; o < net.out(i); ++o) net.b(i)[o] = float(0.1 * rng.normal());
    x.resize(size_t(batch) * widths.front());
    for (float& v : x) v = float(rng.normal());
    for (int r = 0; r < batch; ++r) y.push_back(int(rng.below(widths.back())));
  }
  Forward run() const { return forward(net, x.data(), y.data(), batch); }
};

double norm(const std::vector<float>& v) { return std::sqrt(dot(v, v)); }

}  // namespace

TEST(GuessJvp, EqualsBackpropGradientDottedWithDirection) {
  Fixture fx({7, 6, 5, 4}, 5, 1);
  const Forward f = fx.run();
  std::vector<float> g, y;
  backprop(fx.net, f, g);
  ik::Rng rng(2);
  for (Family fam : all_families()) {
    for (int rep = 0; rep < 5; ++rep) {
      draw_guess(fam, fx.net, f, rng, y);
      const double exact = dot(g, y);
      EXPECT_NEAR(jvp(fx.net, f, y), exact, 2e-6 * norm(g) * norm(y)) << family_name(fam);
    }
  }
}

TEST(GuessJvp, MatchesCentralFiniteDifference) {
  // Independent of backprop: central differences of the loss itself along the direction.
  Fixture fx({7, 6, 5, 4}, 5, 3);
  const Forward f = fx.run();
  ik::Rng rng(4);
  std::vector<float> y;
  for (int rep = 0; rep < 5; ++rep) {
    draw_guess(Family::directional, fx.net, f, rng, y);
    const double h = 1e-3;
    Mlp plus = fx.net, minus = fx.net;
    for (size_t j = 0; j < y.size(); ++j) {
      plus.params[j] += float(h * y[j]);
      minus.params[j] -= float(h * y[j]);
    }
    const double fd = (forward(plus, fx.x.data(), fx.y.data(), fx.batch).loss -
                       forward(minus, fx.x.data(), fx.y.data(), fx.batch).loss) / (2 * h);
    const double d = jvp(fx.net, f, y);
    EXPECT_NEAR(d, fd, 1e-2 * std::abs(d) + 1e-4);
  }
}

// Mean of (g.y) y over many guesses vs the closed form, judged by per-coordinate z-scores.
// The same samples are also compared with g itself: structured guesses must be visibly biased.
TEST(GuessBias, EmpiricalMeanMatchesClosedForm) {
  Fixture fx({6, 5, 4, 3}, 4, 5);
  const Forward f = fx.run();
  std::vector<float> g, y;
  backprop(fx.net, f, g);
  const int n = 200000;
  for (Family fam : all_families()) {
    ik::Rng rng(6);
    std::vector<double> sum(g.size(), 0.0), sum2(g.size(), 0.0);
    for (int s = 0; s < n; ++s) {
      draw_guess(fam, fx.net, f, rng, y);
      const double d = dot(g, y);
      for (size_t j = 0; j < y.size(); ++j) {
        sum[j] += d * y[j];
        sum2[j] += (d * y[j]) * (d * y[j]);
      }
    }
    const std::vector<float> expected = expected_estimate(fam, fx.net, f, g);
    double worst_z = 0, worst_z_vs_g = 0;
    for (size_t j = 0; j < g.size(); ++j) {
      const double mean = sum[j] / n;
      const double se = std::sqrt(std::max(sum2[j] / n - mean * mean, 1e-30) / n);
      worst_z = std::max(worst_z, std::abs(mean - expected[j]) / se);
      worst_z_vs_g = std::max(worst_z_vs_g, std::abs(mean - g[j]) / se);
    }
    EXPECT_LT(worst_z, 5.0) << family_name(fam);  // 74 coordinates: 5 sigma is a safe max
    if (fam == Family::directional)
      EXPECT_LT(worst_z_vs_g, 5.0);  // unbiased
    else
      EXPECT_GT(worst_z_vs_g, 20.0) << family_name(fam);  // biased: E = M M^T g != g
  }
}

TEST(GuessBias, ActivationFamiliesShareTheClosedFormGXtX) {
  // For act-pert and act-mix the expectation is G~ X~^T X~ per layer: check it on one layer by hand.
  Fixture fx({3, 2}, 4, 7);
  const Forward f = fx.run();
  std::vector<float> g;
  backprop(fx.net, f, g);
  const std::vector<float> e = expected_estimate(Family::act_pert, fx.net, f, g);
  EXPECT_EQ(e, expected_estimate(Family::act_mix, fx.net, f, g));
  // G~ = [W grad | b grad] (2 x 4), X~ = [x 1] (4 x 4).
  for (int o = 0; o < 2; ++o)
    for (int c = 0; c < 4; ++c) {
      double want = 0;
      for (int r = 0; r < 4; ++r) {
        double gx = g[6 + o];
        for (int t = 0; t < 3; ++t) gx += double(g[o * 3 + t]) * fx.x[r * 3 + t];
        want += gx * (c < 3 ? fx.x[r * 3 + c] : 1.0);
      }
      const double got = c < 3 ? e[o * 3 + c] : e[6 + o];
      EXPECT_NEAR(got, want, 1e-5 * (1 + std::abs(want)));
    }
}

TEST(GuessCosine, IsotropicGuessHasMeanSquaredCosineOneOverP) {
  Fixture fx({20, 16, 8}, 8, 9);  // P = 20*16+16 + 16*8+8 = 472
  const Forward f = fx.run();
  std::vector<float> g, y;
  backprop(fx.net, f, g);
  ik::Rng rng(10);
  const int n = 20000;
  double mean_cos2 = 0;
  for (int s = 0; s < n; ++s) {
    draw_guess(Family::directional, fx.net, f, rng, y);
    const double c = cosine(g, y);
    mean_cos2 += c * c / n;
  }
  const double P = double(fx.net.size());
  EXPECT_EQ(fx.net.size(), 472u);
  EXPECT_NEAR(mean_cos2 * P, 1.0, 0.05);  // sd of the estimate is ~1%
}

// Three Gaussian clusters in 8 dimensions.
static Dataset clusters(int count, uint64_t seed) {
  ik::Rng rng(seed);
  Dataset d;
  d.count = count, d.dim = 8, d.classes = 3;
  for (int j = 0; j < count; ++j) {
    const int label = j % 3;
    d.y.push_back(label);
    for (int c = 0; c < d.dim; ++c) d.x.push_back(float(rng.normal() * 0.7 + (c % 3 == label ? 1.5 : 0.0)));
  }
  return d;
}

TEST(GuessTrain, ForwardGradientAndBackpropReduceLoss) {
  const Dataset data = clusters(600, 11);
  for (const std::string method : {"backprop", "wt", "act-mix", "directional"}) {
    for (OptimizerKind opt : {OptimizerKind::sgd, OptimizerKind::adam}) {
      // The estimate projects g on unit guesses, so plain SGD steps shrink with the cosine:
      // SGD is checked only where the cosine is large (backprop, wt); Adam rescales for the rest.
      if (opt == OptimizerKind::sgd && (method == "act-mix" || method == "directional")) continue;
      Mlp net({8, 16, 16, 3});
      ik::Rng rng(12);
      net.init(rng);
      TrainConfig cfg;
      cfg.method = parse_method(method, 4);
      cfg.optimizer = opt;
      cfg.lr = opt == OptimizerKind::sgd ? 0.1 : 0.01;
      cfg.batch = 20;
      cfg.epochs = method == "directional" ? 20 : 5;
      cfg.progress = false;
      double first = 0, last = 0;
      cfg.eval_every = 1000000;  // checkpoints only at the first and last step
      train(net, data, cfg, [&](int step, double, double loss) { (step == 0 ? first : last) = loss; });
      EXPECT_LT(last, 0.6 * first) << method << (opt == OptimizerKind::sgd ? " sgd" : " adam");
    }
  }
}

TEST(GuessInput, BadInputGivesClearErrors) {
  EXPECT_THROW(Mlp({784}), ik::Error);
  EXPECT_THROW(Mlp({784, 0, 10}), ik::Error);
  EXPECT_THROW(parse_method("wt", 0), ik::Error);
  EXPECT_THROW(parse_method("sideways", 1), ik::Error);
  try {
    load_fashion_mnist("/nonexistent/dir", "train");
    FAIL() << "no error for a missing data directory";
  } catch (const ik::Error& e) {
    EXPECT_NE(std::string(e.what()).find("dataset-fashion-mnist"), std::string::npos) << e.what();
  }
}

TEST(GuessData, FashionMnistReadsInPlace) {
  if (!std::filesystem::exists(kFashionMnistDir)) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  const Dataset test = load_fashion_mnist(kFashionMnistDir, "t10k");
  EXPECT_EQ(test.count, 10000);
  EXPECT_EQ(test.dim, 784);
  const std::vector<int> first = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};  // from the IDX file (Python gzip)
  EXPECT_EQ(std::vector<int>(test.y.begin(), test.y.begin() + 10), first);
  const Dataset train = load_fashion_mnist(kFashionMnistDir, "train", 1);
  double pixel_sum = 0;
  for (float v : train.x) pixel_sum += v;
  EXPECT_NEAR(pixel_sum, 76247 / 255.0, 1e-3);  // first training image's byte sum
  EXPECT_EQ(train.y[0], 9);
}
