#include "prob/guess/mlp.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>

#include "core/error.hpp"

namespace ik::guess {

void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* A,
          const float* B, float beta, float* C) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              m, n, k, alpha, A, trans_a ? m : k, B, trans_b ? k : n, beta, C, n);
}

Mlp::Mlp(std::vector<int> w) : widths(std::move(w)) {
  IK_CHECK(widths.size() >= 2, "an MLP needs at least an input and an output width, got {}", widths.size());
  for (int width : widths) IK_CHECK(width > 0, "MLP widths must be positive, got {}", width);
  size_t total = 0;
  for (int i = 0; i < layers(); ++i) {
    offsets.push_back(total);
    total += size_t(out(i)) * in(i) + out(i);
  }
  params.assign(total, 0.0f);
}

void Mlp::init(Rng& rng) {
  std::fill(params.begin(), params.end(), 0.0f);
  for (int i = 0; i < layers(); ++i) {
    const double sd = std::sqrt(2.0 / in(i));
    float* w = W(i);
    for (size_t j = 0; j < size_t(out(i)) * in(i); ++j) w[j] = static_cast<float>(sd * rng.normal());
  }
}

static void add_bias(float* s, const float* b, int batch, int n) {
  for (int r = 0; r < batch; ++r)
    for (int c = 0; c < n; ++c) s[size_t(r) * n + c] += b[c];
}

Forward forward(const Mlp& net, const float* inputs, const int* labels, int batch) {
  Forward f;
  f.batch = batch;
  const int L = net.layers();
  f.x.resize(L);
  f.s.resize(L);
  f.x[0].assign(inputs, inputs + size_t(batch) * net.in(0));
  for (int i = 0; i < L; ++i) {
    f.s[i].assign(size_t(batch) * net.out(i), 0.0f);
    gemm(false, true, batch, net.out(i), net.in(i), 1.0f, f.x[i].data(), net.W(i), 0.0f, f.s[i].data());
    add_bias(f.s[i].data(), net.b(i), batch, net.out(i));
    if (i + 1 < L) {
      f.x[i + 1] = f.s[i];
      for (float& v : f.x[i + 1]) v = std::max(v, 0.0f);
    }
  }
  // Softmax cross-entropy, with the max subtracted for stability.
  const int classes = net.widths.back();
  f.probs = f.s[L - 1];
  f.labels.assign(labels, labels + batch);
  double loss = 0;
  for (int r = 0; r < batch; ++r) {
    float* p = f.probs.data() + size_t(r) * classes;
    IK_CHECK(labels[r] >= 0 && labels[r] < classes, "label {} out of range [0, {})", labels[r], classes);
    const float top = *std::max_element(p, p + classes);
    double sum = 0;
    for (int c = 0; c < classes; ++c) sum += std::exp(double(p[c]) - top);
    loss += std::log(sum) + top - p[labels[r]];
    for (int c = 0; c < classes; ++c) p[c] = static_cast<float>(std::exp(double(p[c]) - top) / sum);
  }
  f.loss = loss / batch;
  return f;
}

// dL/ds_last = (softmax - onehot) / batch.
static std::vector<float> output_delta(const Forward& f, int classes) {
  std::vector<float> d = f.probs;
  for (int r = 0; r < f.batch; ++r) d[size_t(r) * classes + f.labels[r]] -= 1.0f;
  for (float& v : d) v /= f.batch;
  return d;
}

void backprop(const Mlp& net, const Forward& f, std::vector<float>& grad) {
  grad.assign(net.size(), 0.0f);
  const int B = f.batch;
  std::vector<float> ds = output_delta(f, net.widths.back());
  for (int i = net.layers() - 1; i >= 0; --i) {
    float* gW = grad.data() + net.offset(i);
    float* gb = gW + size_t(net.out(i)) * net.in(i);
    gemm(true, false, net.out(i), net.in(i), B, 1.0f, ds.data(), f.x[i].data(), 0.0f, gW);
    for (int r = 0; r < B; ++r)
      for (int c = 0; c < net.out(i); ++c) gb[c] += ds[size_t(r) * net.out(i) + c];
    if (i == 0) break;
    std::vector<float> dx(size_t(B) * net.in(i));
    gemm(false, false, B, net.in(i), net.out(i), 1.0f, ds.data(), net.W(i), 0.0f, dx.data());
    const std::vector<float>& s_prev = f.s[i - 1];
    for (size_t j = 0; j < dx.size(); ++j) dx[j] = s_prev[j] > 0 ? dx[j] : 0.0f;
    ds = std::move(dx);
  }
}

double jvp(const Mlp& net, const Forward& f, const std::vector<float>& direction) {
  IK_CHECK(direction.size() == net.size(), "direction has {} entries, the network {}", direction.size(),
           net.size());
  const int B = f.batch;
  std::vector<float> dx, ds;  // tangents of x_i and s_i; dx_0 = 0 (the data does not move)
  for (int i = 0; i < net.layers(); ++i) {
    const float* dW = direction.data() + net.offset(i);
    const float* db = dW + size_t(net.out(i)) * net.in(i);
    ds.assign(size_t(B) * net.out(i), 0.0f);
    // ds_i = x_i dW_i^T + dx_i W_i^T + db_i
    gemm(false, true, B, net.out(i), net.in(i), 1.0f, f.x[i].data(), dW, 0.0f, ds.data());
    if (i > 0) gemm(false, true, B, net.out(i), net.in(i), 1.0f, dx.data(), net.W(i), 1.0f, ds.data());
    add_bias(ds.data(), db, B, net.out(i));
    if (i + 1 < net.layers()) {
      dx = ds;
      for (size_t j = 0; j < dx.size(); ++j) dx[j] = f.s[i][j] > 0 ? dx[j] : 0.0f;
    }
  }
  // d(logsumexp(s) - s_label) = sum_c (p_c - onehot_c) ds_c, averaged over the batch.
  const std::vector<float> delta = output_delta(f, net.widths.back());
  double d = 0;
  for (size_t j = 0; j < ds.size(); ++j) d += double(delta[j]) * ds[j];
  return d;
}

int count_correct(const Mlp& net, const float* inputs, const int* labels, int count) {
  const int chunk = 1000, classes = net.widths.back();
  int correct = 0;
  for (int start = 0; start < count; start += chunk) {
    const int n = std::min(chunk, count - start);
    const Forward f = forward(net, inputs + size_t(start) * net.in(0), labels + start, n);
    for (int r = 0; r < n; ++r) {
      const float* p = f.probs.data() + size_t(r) * classes;
      correct += (std::max_element(p, p + classes) - p) == labels[start + r];
    }
  }
  return correct;
}

}  // namespace ik::guess
