#pragma once
// Adam (Kingma & Ba) for one scalar parameter, as Optimisers.jl's Adam(η) with its defaults.
#include <cmath>

namespace ik::mcmc {

struct Adam {
  double lr, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double m = 0, v = 0;
  int t = 0;
  // The step to SUBTRACT from the parameter to descend along gradient g.
  double step(double g) {
    ++t;
    m = beta1 * m + (1 - beta1) * g;
    v = beta2 * v + (1 - beta2) * g * g;
    const double mhat = m / (1 - std::pow(beta1, t)), vhat = v / (1 - std::pow(beta2, t));
    return lr * mhat / (std::sqrt(vhat) + eps);
  }
};

}  // namespace ik::mcmc
