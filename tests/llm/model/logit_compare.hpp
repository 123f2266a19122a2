#pragma once
// Shared by the GPU engine tests: the largest difference of two logit arrays relative to the
// largest reference value, and no NaN anywhere (catches unwritten outputs).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

inline double max_rel_diff(const float* a, const float* b, int64_t n) {
  double d = 0, m = 1e-20;
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_FALSE(std::isnan(a[i]));
    d = std::max(d, double(std::fabs(a[i] - b[i])));
    m = std::max(m, double(std::fabs(b[i])));
  }
  return d / m;
}
