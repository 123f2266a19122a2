#pragma once
// Forward-mode dual numbers with N directions at once: Dual<T, N> carries a value v and
// N tangents d[i] = dv/dθ_i. T is itself a scalar type, so duals compose (Stan-Math style):
// Dual<Dual<double, 1>, 1> gives second derivatives. User code is written once, templated on
// the scalar S, and runs with S = double (plain), Dual<double, N> (gradients) and so on.
#include <array>
#include <cmath>

namespace ik::ad {

template <typename T, int N = 1>
struct Dual {
  T v{};
  std::array<T, N> d{};

  Dual() = default;
  Dual(double value) : v(value) {}  // NOLINT: constants promote silently, as in Stan
  Dual(T value, std::array<T, N> tangent) : v(value), d(tangent) {}

  // The i-th input variable: value x, tangent e_i.
  static Dual variable(T x, int i = 0) {
    Dual r(x, {});
    r.d[i] = T(1);
    return r;
  }

  Dual& operator+=(const Dual& b) { return *this = *this + b; }
  Dual& operator-=(const Dual& b) { return *this = *this - b; }
  Dual& operator*=(const Dual& b) { return *this = *this * b; }
  Dual& operator/=(const Dual& b) { return *this = *this / b; }
};

// value(x) strips every layer of dual down to a double; tangent(x, i) reads one direction.
inline double value(double x) { return x; }
template <typename T, int N>
double value(const Dual<T, N>& x) { return value(x.v); }
template <typename T, int N>
T tangent(const Dual<T, N>& x, int i = 0) { return x.d[i]; }

// Apply a scalar function with known derivative: f(x) = (fv, fv' * dx).
template <typename T, int N>
Dual<T, N> chain(const Dual<T, N>& x, const T& fv, const T& dfdx) {
  Dual<T, N> r;
  r.v = fv;
  for (int i = 0; i < N; ++i) r.d[i] = dfdx * x.d[i];
  return r;
}

template <typename T, int N>
Dual<T, N> operator+(const Dual<T, N>& a, const Dual<T, N>& b) {
  Dual<T, N> r;
  r.v = a.v + b.v;
  for (int i = 0; i < N; ++i) r.d[i] = a.d[i] + b.d[i];
  return r;
}
template <typename T, int N>
Dual<T, N> operator-(const Dual<T, N>& a, const Dual<T, N>& b) {
  Dual<T, N> r;
  r.v = a.v - b.v;
  for (int i = 0; i < N; ++i) r.d[i] = a.d[i] - b.d[i];
  return r;
}
template <typename T, int N>
Dual<T, N> operator-(const Dual<T, N>& a) {
  Dual<T, N> r;
  r.v = -a.v;
  for (int i = 0; i < N; ++i) r.d[i] = -a.d[i];
  return r;
}
template <typename T, int N>
Dual<T, N> operator*(const Dual<T, N>& a, const Dual<T, N>& b) {
  Dual<T, N> r;
  r.v = a.v * b.v;
  for (int i = 0; i < N; ++i) r.d[i] = a.d[i] * b.v + a.v * b.d[i];
  return r;
}
template <typename T, int N>
Dual<T, N> operator/(const Dual<T, N>& a, const Dual<T, N>& b) {
  Dual<T, N> r;
  r.v = a.v / b.v;
  for (int i = 0; i < N; ++i) r.d[i] = (a.d[i] - r.v * b.d[i]) / b.v;
  return r;
}
// Mixed arithmetic with plain doubles (templates do not apply implicit conversions).
#define IK_DUAL_MIXED(op)                                                                       \
  template <typename T, int N>                                                                  \
  Dual<T, N> operator op(const Dual<T, N>& a, double b) { return a op Dual<T, N>(T(b), {}); }   \
  template <typename T, int N>                                                                  \
  Dual<T, N> operator op(double a, const Dual<T, N>& b) { return Dual<T, N>(T(a), {}) op b; }
IK_DUAL_MIXED(+)
IK_DUAL_MIXED(-)
IK_DUAL_MIXED(*)
IK_DUAL_MIXED(/)
#undef IK_DUAL_MIXED

template <typename T, int N>
bool operator<(const Dual<T, N>& a, const Dual<T, N>& b) { return value(a) < value(b); }
template <typename T, int N>
bool operator<(const Dual<T, N>& a, double b) { return value(a) < b; }
template <typename T, int N>
bool operator>(const Dual<T, N>& a, double b) { return value(a) > b; }

using std::exp;
using std::log;
using std::sqrt;
template <typename T, int N>
Dual<T, N> exp(const Dual<T, N>& x) {
  const T e = exp(x.v);
  return chain(x, e, e);
}
template <typename T, int N>
Dual<T, N> log(const Dual<T, N>& x) { return chain(x, T(log(x.v)), T(1.0 / x.v)); }
template <typename T, int N>
Dual<T, N> sqrt(const Dual<T, N>& x) {
  const T s = sqrt(x.v);
  return chain(x, s, T(0.5 / s));
}

}  // namespace ik::ad
