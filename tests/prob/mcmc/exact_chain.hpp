#pragma once
// Exact references for small chains: the MH transition kernel applied to a probability
// vector, E[J_T] = (1/(T-B)) Σ_{t=B+1..T} (e_x0ᵀ P^t) f, and its θ-derivative by central
// differences of that exact expression.
#include <cmath>
#include <functional>
#include <vector>

namespace exact {

using Dist = std::vector<double>;
// kernel(v, θ): one step (or sweep) of the chain, as a map on distributions.
using Kernel = std::function<Dist(const Dist&, double)>;

inline double expected_average(const Kernel& kernel, Dist v, double theta, int T, int B,
                               const std::vector<double>& f) {
  double sum = 0;
  for (int t = 1; t <= T; ++t) {
    v = kernel(v, theta);
    if (t <= B) continue;
    for (size_t s = 0; s < v.size(); ++s) sum += v[s] * f[s];
  }
  return sum / (T - B);
}

inline double derivative(const Kernel& kernel, const Dist& v0, double theta, int T, int B,
                         const std::vector<double>& f, double h = 1e-5) {
  return (expected_average(kernel, v0, theta + h, T, B, f) -
          expected_average(kernel, v0, theta - h, T, B, f)) / (2 * h);
}

}  // namespace exact
