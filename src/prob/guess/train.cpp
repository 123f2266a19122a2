#include "prob/guess/train.hpp"

#include <cmath>
#include <numeric>

#include "core/error.hpp"
#include "core/progress.hpp"

namespace ik::guess {

Method parse_method(const std::string& name, int k) {
  IK_CHECK(k > 0, "the number of guesses per step k must be positive, got {}", k);
  Method m;
  m.k = k;
  if (name == "backprop") return m;
  m.backprop = false;
  for (Family f : all_families())
    if (family_name(f) == name) {
      m.family = f;
      return m;
    }
  fail("unknown method '{}' (valid: backprop, directional, act-pert, wt, downstream, act-mix)", name);
}

std::string method_name(const Method& m) {
  return m.backprop ? "backprop" : fmt::format("{} k={}", family_name(m.family), m.k);
}

void forward_gradient(Family family, int k, const Mlp& net, const Forward& f, Rng& rng,
                      std::vector<float>& estimate) {
  estimate.assign(net.size(), 0.0f);
  std::vector<float> y;
  for (int j = 0; j < k; ++j) {
    draw_guess(family, net, f, rng, y);
    const double norm2 = dot(y, y);
    if (norm2 == 0) continue;  // e.g. every ReLU dead on this batch
    const float scale = static_cast<float>(jvp(net, f, y) / norm2);
    for (size_t t = 0; t < y.size(); ++t) estimate[t] += scale * y[t];
  }
}

void step_gradient(const Method& m, const Mlp& net, const Forward& f, Rng& rng, std::vector<float>& grad) {
  if (m.backprop)
    backprop(net, f, grad);
  else
    forward_gradient(m.family, m.k, net, f, rng, grad);
}

OptimizerKind parse_optimizer(const std::string& name) {
  if (name == "sgd") return OptimizerKind::sgd;
  if (name == "adam") return OptimizerKind::adam;
  fail("unknown optimizer '{}' (sgd or adam)", name);
}

Optimizer::Optimizer(OptimizerKind kind, double lr, size_t size) : kind_(kind), lr_(lr) {
  IK_CHECK(lr > 0 && std::isfinite(lr), "learning rate must be positive, got {}", lr);
  if (kind == OptimizerKind::adam) {
    m_.assign(size, 0.0f);
    v_.assign(size, 0.0f);
  }
}

void Optimizer::step(std::vector<float>& params, const std::vector<float>& grad) {
  if (kind_ == OptimizerKind::sgd) {
    for (size_t j = 0; j < params.size(); ++j) params[j] -= static_cast<float>(lr_) * grad[j];
    return;
  }
  ++t_;
  const double c1 = 1 - std::pow(beta1_, double(t_)), c2 = 1 - std::pow(beta2_, double(t_));
  const float b1 = float(beta1_), b2 = float(beta2_);
  const float step = float(lr_ / c1), inv_c2 = float(1 / c2), eps = float(eps_);
  for (size_t j = 0; j < params.size(); ++j) {
    m_[j] = b1 * m_[j] + (1 - b1) * grad[j];
    v_[j] = b2 * v_[j] + (1 - b2) * grad[j] * grad[j];
    params[j] -= step * m_[j] / (std::sqrt(v_[j] * inv_c2) + eps);
  }
}

int train(Mlp& net, const Dataset& data, const TrainConfig& cfg, const Checkpoint& on_checkpoint) {
  IK_CHECK(data.dim == net.in(0), "data has {} inputs, the network {}", data.dim, net.in(0));
  IK_CHECK(data.classes <= net.widths.back(), "data has {} classes, the network {} outputs", data.classes,
           net.widths.back());
  IK_CHECK(cfg.batch > 0 && cfg.batch <= data.count, "batch size {} must be in [1, {}]", cfg.batch, data.count);
  IK_CHECK(cfg.epochs > 0, "epochs must be positive, got {}", cfg.epochs);
  IK_CHECK(cfg.eval_every > 0, "eval interval must be positive, got {}", cfg.eval_every);
  const int steps_per_epoch = data.count / cfg.batch;
  const int steps = std::max(1, int(std::lround(cfg.epochs * steps_per_epoch)));
  Rng shuffle_rng(cfg.seed, 1), guess_rng(cfg.seed, 2);
  Optimizer opt(cfg.optimizer, cfg.lr, net.size());
  std::vector<int> order(data.count);
  std::iota(order.begin(), order.end(), 0);
  std::vector<float> xb(size_t(cfg.batch) * data.dim), grad;
  std::vector<int> yb(cfg.batch);
  Progress bar(method_name(cfg.method), steps, cfg.progress);
  double loss_sum = 0;
  int loss_count = 0;
  for (int step = 0; step < steps; ++step) {
    const int pos = step % steps_per_epoch;
    if (pos == 0)  // Fisher-Yates reshuffle at every epoch start
      for (int j = data.count - 1; j > 0; --j) std::swap(order[j], order[shuffle_rng.below(j + 1)]);
    for (int r = 0; r < cfg.batch; ++r) {
      const int idx = order[size_t(pos) * cfg.batch + r];
      std::copy_n(data.x.data() + size_t(idx) * data.dim, data.dim, xb.data() + size_t(r) * data.dim);
      yb[r] = data.y[idx];
    }
    const Forward f = forward(net, xb.data(), yb.data(), cfg.batch);
    IK_CHECK(std::isfinite(f.loss), "training diverged at step {} ({}): lower the learning rate", step,
             method_name(cfg.method));
    if (step == 0) on_checkpoint(0, 0.0, f.loss);
    step_gradient(cfg.method, net, f, guess_rng, grad);
    opt.step(net.params, grad);
    loss_sum += f.loss;
    ++loss_count;
    if ((step + 1) % cfg.eval_every == 0 || step + 1 == steps) {
      on_checkpoint(step + 1, double(step + 1) / steps_per_epoch, loss_sum / loss_count);
      loss_sum = 0;
      loss_count = 0;
    }
    bar.set_note(fmt::format("loss {:.3f}", f.loss));
    bar.advance();
  }
  bar.finish();
  return steps;
}

}  // namespace ik::guess
