#pragma once
// A ReLU multilayer perceptron with exact gradients (backprop) and exact directional
// derivatives (forward mode, a JVP pass). Layer i maps widths[i] -> widths[i+1]:
//   s_i = x_i W_i^T + b_i,  x_{i+1} = ReLU(s_i),  loss = mean softmax cross-entropy of s_last.
// All parameters live in one flat vector (per layer: W_i row-major [out x in], then b_i [out]),
// so gradients, guessed directions and optimizer state are plain vectors of the same length.
#include <cstddef>
#include <vector>

#include "core/rng.hpp"

namespace ik::guess {

struct Mlp {
  explicit Mlp(std::vector<int> widths);  // throws ik::Error on < 2 widths or a width <= 0

  int layers() const { return static_cast<int>(widths.size()) - 1; }
  int in(int i) const { return widths[i]; }
  int out(int i) const { return widths[i + 1]; }
  size_t size() const { return params.size(); }
  float* W(int i) { return params.data() + offsets[i]; }
  const float* W(int i) const { return params.data() + offsets[i]; }
  float* b(int i) { return W(i) + size_t(out(i)) * in(i); }
  const float* b(int i) const { return W(i) + size_t(out(i)) * in(i); }
  size_t offset(int i) const { return offsets[i]; }
  void init(Rng& rng);  // He normal weights N(0, 2/in), zero biases

  std::vector<int> widths;
  std::vector<float> params;
  std::vector<size_t> offsets;  // start of W_i in params
};

// One batch through the network, keeping what backprop, the guesses and JVPs need.
struct Forward {
  int batch = 0;
  std::vector<std::vector<float>> x;  // x[i]: input of layer i, [batch x in(i)]; x[0] = the data
  std::vector<std::vector<float>> s;  // s[i]: pre-activation of layer i, [batch x out(i)]
  std::vector<float> probs;           // softmax(s_last), [batch x classes]
  std::vector<int> labels;
  double loss = 0;                    // mean cross-entropy
};

Forward forward(const Mlp& net, const float* inputs, const int* labels, int batch);
// Exact gradient of the mean loss (same layout as params).
void backprop(const Mlp& net, const Forward& f, std::vector<float>& grad);
// Directional derivative dL/dt of loss(params + t*direction) at t = 0, by forward mode.
double jvp(const Mlp& net, const Forward& f, const std::vector<float>& direction);
// Number of rows (of `count`) whose arg-max output equals the label; evaluated in chunks.
int count_correct(const Mlp& net, const float* inputs, const int* labels, int count);

// C[m x n] = alpha * op(A) op(B) + beta * C, row-major (thin wrapper over cblas_sgemm).
void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* A,
          const float* B, float beta, float* C);

}  // namespace ik::guess
