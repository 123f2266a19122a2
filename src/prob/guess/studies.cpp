#include "prob/guess/studies.hpp"

#include <Eigen/Dense>
#include <chrono>
#include <cmath>

#include "core/error.hpp"
#include "prob/guess/train.hpp"

namespace ik::guess {

std::vector<double> family_cosines(const Mlp& net, const Forward& f, const std::vector<float>& g,
                                   int guesses, Rng& rng) {
  IK_CHECK(guesses > 0, "number of guesses must be positive, got {}", guesses);
  std::vector<double> out;
  std::vector<float> y;
  for (Family fam : all_families()) {
    double sum = 0;
    for (int j = 0; j < guesses; ++j) {
      draw_guess(fam, net, f, rng, y);
      sum += std::abs(cosine(y, g));
    }
    out.push_back(sum / guesses);
  }
  return out;
}

double effective_rank(const Mlp& net, int layer) {
  const int rows = net.out(layer), cols = net.in(layer);
  Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> W(net.W(layer), rows,
                                                                                            cols);
  // Singular values from the eigenvalues of the smaller Gram matrix.
  const Eigen::MatrixXd Wd = W.cast<double>();
  const Eigen::MatrixXd gram = rows <= cols ? Eigen::MatrixXd(Wd * Wd.transpose()) : Eigen::MatrixXd(Wd.transpose() * Wd);
  const Eigen::VectorXd eig = Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(gram, Eigen::EigenvaluesOnly).eigenvalues();
  std::vector<double> sigma;
  double total = 0;
  for (int j = 0; j < eig.size(); ++j) {
    sigma.push_back(std::sqrt(std::max(eig[j], 0.0)));
    total += sigma.back();
  }
  if (total == 0) return 0;
  double entropy = 0;
  for (double s : sigma)
    if (s > 0) entropy -= (s / total) * std::log(s / total);
  return std::exp(entropy);
}

static double distance(const std::vector<double>& a, const std::vector<float>& b, double scale) {
  double s = 0;
  for (size_t j = 0; j < b.size(); ++j) s += (a[j] * scale - b[j]) * (a[j] * scale - b[j]);
  return std::sqrt(s);
}

std::vector<BiasResult> bias_study(const Mlp& net, const Forward& f, const std::vector<float>& g,
                                   int samples, Rng& rng) {
  IK_CHECK(samples > 0, "number of samples must be positive, got {}", samples);
  std::vector<BiasResult> out;
  std::vector<float> y;
  for (Family fam : all_families()) {
    BiasResult r;
    r.family = fam;
    const std::vector<float> expected = expected_estimate(fam, net, f, g);
    const double expected_norm = std::sqrt(dot(expected, expected));
    r.cos_expected_vs_g = cosine(expected, g);
    r.expected_norm_ratio = expected_norm / std::sqrt(dot(g, g));
    std::vector<double> sum(g.size(), 0.0);
    int next_checkpoint = 10;
    for (int s = 1; s <= samples; ++s) {
      draw_guess(fam, net, f, rng, y);
      const double d = dot(g, y);  // equals jvp(net, f, y) (tested); cheaper here
      for (size_t j = 0; j < y.size(); ++j) sum[j] += d * y[j];
      if (s == next_checkpoint || s == samples) {
        r.samples.push_back(s);
        r.rel_error.push_back(distance(sum, expected, 1.0 / s) / expected_norm);
        if (s == next_checkpoint) next_checkpoint *= 10;
      }
    }
    out.push_back(std::move(r));
  }
  return out;
}

template <typename Fn>
static double mean_ms(int reps, Fn&& fn) {
  fn();  // warm-up (allocations, BLAS threads)
  const auto start = std::chrono::steady_clock::now();
  for (int j = 0; j < reps; ++j) fn();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / reps;
}

std::vector<Timing> speed_study(const Mlp& net_in, const float* x, const int* y, int batch, int reps) {
  IK_CHECK(reps > 0, "repetitions must be positive, got {}", reps);
  Mlp net = net_in;
  Optimizer sgd(OptimizerKind::sgd, 1e-6, net.size());
  Rng rng(1);
  std::vector<float> grad;
  std::vector<Timing> out;
  out.push_back({"forward pass", mean_ms(reps, [&] { forward(net, x, y, batch); })});
  out.push_back({"backprop step", mean_ms(reps, [&] {
                   const Forward f = forward(net, x, y, batch);
                   backprop(net, f, grad);
                   sgd.step(net.params, grad);
                 })});
  const Forward f = forward(net, x, y, batch);
  std::vector<float> dir;
  draw_guess(Family::directional, net, f, rng, dir);
  out.push_back({"JVP pass alone", mean_ms(reps, [&] { jvp(net, f, dir); })});
  for (Family fam : all_families())
    out.push_back({"fwd-grad step " + family_name(fam), mean_ms(reps, [&] {
                     const Forward fb = forward(net, x, y, batch);
                     forward_gradient(fam, 1, net, fb, rng, grad);
                     sgd.step(net.params, grad);
                   })});
  return out;
}

}  // namespace ik::guess
