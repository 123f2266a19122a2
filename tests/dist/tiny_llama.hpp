#pragma once
// A tiny random Llama (seeded, GGUF in memory), and an independent single-process
// reference forward in plain loops on the dequantized weights: standard blocks, the Ladder
// Residual recurrence (last k layers) and the parallel attention+MLP block, written from the
// formulas in docs/tensor_parallel.md, not from the library code.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "io/gguf.hpp"
#include "llm/dist/random_llama.hpp"
#include "llm/model/llama.hpp"

namespace tiny {

using namespace ik;

using Dims = llm::RandomLlamaDims;

struct Model {
  Dims dims;
  std::vector<uint8_t> bytes;  // the GGUF file (the parsed file points into it)
  std::shared_ptr<const io::GgufFile> file;
  std::unique_ptr<llm::LlamaModel> model;
  std::vector<float> get(const std::string& name) const {
    const auto& t = file->tensor(name);
    std::vector<float> v(t.n_elements());
    io::dequantize(t.type, t.data, v.data(), int64_t(v.size()));
    return v;
  }
};

// A random model (llm/dist/random_llama.hpp: matrices stored as `type`, F32, Q8_0 or Q4_1).
inline std::unique_ptr<Model> make(Dims d, uint64_t seed, io::DType type, llm::WeightMode mode) {
  auto m = std::make_unique<Model>();
  m->dims = d;
  m->bytes = llm::random_llama_gguf(d, seed, type);
  m->file = std::make_shared<const io::GgufFile>(io::GgufFile::parse(m->bytes.data(), m->bytes.size()));
  m->model = std::make_unique<llm::LlamaModel>(llm::LlamaModel::from_gguf(m->file, mode));
  return m;
}

// ---- reference forward (whole sequence, no cache) -------------------------------------------

using Mat = std::vector<float>;  // row-major [rows, cols]

inline Mat matmul(const Mat& x, int64_t m, const Mat& W, int64_t n, int64_t k) {  // x [m,k] W [n,k]
  Mat y(m * n);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t o = 0; o < n; ++o) {
      double s = 0;
      for (int64_t j = 0; j < k; ++j) s += double(x[i * k + j]) * W[o * k + j];
      y[i * n + o] = float(s);
    }
  return y;
}

inline Mat rms_norm(const Mat& x, int64_t m, const Mat& w) {
  const int64_t n = int64_t(w.size());
  Mat y(x.size());
  for (int64_t i = 0; i < m; ++i) {
    double ss = 0;
    for (int64_t j = 0; j < n; ++j) ss += double(x[i * n + j]) * x[i * n + j];
    const double inv = 1.0 / std::sqrt(ss / n + 1e-5);
    for (int64_t j = 0; j < n; ++j) y[i * n + j] = float(x[i * n + j] * inv * w[j]);
  }
  return y;
}

// Adjacent-pair rotary embedding, theta_i = 10000^(-2i/d), position = row index.
inline void rope(Mat& x, int64_t m, int heads, int hd) {
  for (int64_t t = 0; t < m; ++t)
    for (int h = 0; h < heads; ++h)
      for (int i = 0; i < hd / 2; ++i) {
        float* p = x.data() + t * heads * hd + h * hd + 2 * i;
        const double a = double(t) * std::pow(10000.0, -2.0 * i / hd);
        const double x0 = p[0], x1 = p[1];
        p[0] = float(x0 * std::cos(a) - x1 * std::sin(a));
        p[1] = float(x0 * std::sin(a) + x1 * std::cos(a));
      }
}

struct Reference {
  const Model& M;
  int64_t m;
  Mat attention(int l, const Mat& u) const {
    const Dims& d = M.dims;
    const int64_t E = d.embd(), KV = int64_t(d.n_kv) * d.head_dim;
    const std::string p = "blk." + std::to_string(l) + ".";
    const Mat xn = rms_norm(u, m, M.get(p + "attn_norm.weight"));
    Mat q = matmul(xn, m, M.get(p + "attn_q.weight"), E, E);
    Mat k = matmul(xn, m, M.get(p + "attn_k.weight"), KV, E);
    const Mat v = matmul(xn, m, M.get(p + "attn_v.weight"), KV, E);
    rope(q, m, d.n_head, d.head_dim);
    rope(k, m, d.n_kv, d.head_dim);
    Mat out(m * E, 0.0f);
    const int group = d.n_head / d.n_kv;
    for (int64_t t = 0; t < m; ++t)
      for (int h = 0; h < d.n_head; ++h) {
        const int kh = h / group;
        std::vector<double> score(t + 1);
        double mx = -1e300, den = 0;
        for (int64_t s = 0; s <= t; ++s) {
          double dot = 0;
          for (int i = 0; i < d.head_dim; ++i) dot += double(q[t * E + h * d.head_dim + i]) * k[s * KV + kh * d.head_dim + i];
          score[s] = dot / std::sqrt(double(d.head_dim));
          mx = std::max(mx, score[s]);
        }
        for (auto& sc : score) den += (sc = std::exp(sc - mx));
        for (int i = 0; i < d.head_dim; ++i) {
          double acc = 0;
          for (int64_t s = 0; s <= t; ++s) acc += score[s] * v[s * KV + kh * d.head_dim + i];
          out[t * E + h * d.head_dim + i] = float(acc / den);
        }
      }
    return matmul(out, m, M.get(p + "attn_output.weight"), E, E);
  }
  Mat mlp(int l, const Mat& u) const {
    const Dims& d = M.dims;
    const int64_t E = d.embd(), F = d.n_ff;
    const std::string p = "blk." + std::to_string(l) + ".";
    const Mat xn = rms_norm(u, m, M.get(p + "ffn_norm.weight"));
    Mat g = matmul(xn, m, M.get(p + "ffn_gate.weight"), F, E);
    const Mat up = matmul(xn, m, M.get(p + "ffn_up.weight"), F, E);
    for (size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * up[i];
    return matmul(g, m, M.get(p + "ffn_down.weight"), E, F);
  }
  Mat module(int j, const Mat& u) const { return j % 2 == 0 ? attention(j / 2, u) : mlp(j / 2, u); }
  static Mat plus(Mat a, const Mat& b) {
    for (size_t i = 0; i < a.size(); ++i) a[i] += b[i];
    return a;
  }

  // Logits [m, n_vocab] with the last k layers ladder (k = 0: the standard model), or the
  // parallel block in every layer.
  Mat logits(const std::vector<int32_t>& tokens, int k, bool parallel) const {
    const Dims& d = M.dims;
    const int64_t E = d.embd();
    const Mat emb = M.get("token_embd.weight");
    Mat h(m * E);
    for (int64_t t = 0; t < m; ++t) std::copy_n(emb.begin() + tokens[t] * E, E, h.begin() + t * E);
    const int L = d.n_layer, j0 = 2 * (L - k);  // first ladder module
    if (parallel) {
      for (int l = 0; l < L; ++l) h = plus(h, plus(attention(l, h), mlp(l, h)));
    } else {
      for (int j = 0; j < j0; ++j) h = plus(h, module(j, h));  // standard: u_{j+1} = u_j + y_j
      if (k > 0) {
        // Ladder: u_{j0} = u_{j0+1} = h, u_j = u_{j-1} + y_{j-2}; final = u_{2L-1} + y_{2L-2} + y_{2L-1}.
        std::vector<Mat> u(2 * L), y(2 * L);
        u[j0] = u[j0 + 1] = h;
        for (int j = j0; j < 2 * L; ++j) {
          if (j >= j0 + 2) u[j] = plus(u[j - 1], y[j - 2]);
          y[j] = module(j, u[j]);
        }
        h = plus(plus(u[2 * L - 1], y[2 * L - 2]), y[2 * L - 1]);
      }
    }
    return matmul(rms_norm(h, m, M.get("output_norm.weight")), m, M.get("output.weight"), d.n_vocab, E);
  }
};

}  // namespace tiny
