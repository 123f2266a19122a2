#pragma once
// Central finite differences for the train-op tests.
//
// The ops are fp32, so the check is bounded by float rounding of the loss, not by the step.
// The difference is Richardson-extrapolated, (4 D(h/2) - D(h)) / 3 with D the central
// difference, which cancels the h^2 error term; with h = 4e-2 on O(1) inputs the remaining
// truncation (~h^4) is ~1e-6 and the f32 rounding noise over h is ~1e-5 (single ops) to
// ~5e-4 (a whole Block: measured worst 5.1e-4; it shrinks 4x when h grows 4x, so it is
// noise, not a gradient error). Tolerance: |fd - analytic| <= 1e-3 * max(1, |analytic|) per
// element (measured worst over the single ops: 3e-5 .. 2e-4). A wrong gradient (a missing
// term, a transposed index, a sign) is off by O(1e-1..1) and fails by orders of magnitude.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/rng.hpp"

namespace ik::train_test {

constexpr double kStep = 4e-2;
constexpr double kTol = 1e-3;

inline std::vector<float> random_vec(Rng& rng, size_t n, float sd = 1.0f, float mean = 0.0f) {
  std::vector<float> v(n);
  for (auto& x : v) x = mean + sd * float(rng.normal());
  return v;
}

// sum_i r[i] * y[i] in double: the scalar loss whose gradient dL/dy is r.
inline double dot(const std::vector<float>& r, const float* y) {
  double s = 0;
  for (size_t i = 0; i < r.size(); ++i) s += double(r[i]) * y[i];
  return s;
}

// Perturbs every element of x (or every `stride`-th) and compares (L(x+h) - L(x-h)) / 2h
// with analytic[i].
inline void expect_grad(const std::string& what, std::vector<float>& x, const std::vector<float>& analytic,
                        const std::function<double()>& loss, size_t stride = 1) {
  ASSERT_EQ(x.size(), analytic.size()) << what;
  double worst = 0;
  size_t worst_i = 0;
  for (size_t i = 0; i < x.size(); i += stride) {
    const float keep = x[i];
    auto central = [&](double h) {
      x[i] = float(keep + h);
      const double up = loss();
      x[i] = float(keep - h);
      const double down = loss();
      x[i] = keep;
      return (up - down) / (2 * h);
    };
    // Richardson: (4 D(h/2) - D(h)) / 3 cancels the h^2 term of the central difference.
    const double fd = (4 * central(kStep / 2) - central(kStep)) / 3;
    const double err = std::fabs(fd - analytic[i]) / std::max(1.0, std::fabs(double(analytic[i])));
    if (err > worst) worst = err, worst_i = i;
  }
  EXPECT_LT(worst, kTol) << what << ": worst element " << worst_i << " analytic " << analytic[worst_i];
}

}  // namespace ik::train_test
