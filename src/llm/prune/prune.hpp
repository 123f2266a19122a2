#pragma once
// One-shot pruning of a linear layer W [rows = outputs, cols = inputs] (row-major f32):
//  - magnitude: drop the smallest |W_ij| in each output row;
//  - Wanda (Sun et al. 2023): drop the smallest |W_ij| * ||X_j||_2 in each output row;
//  - SparseGPT (Frantar & Alistarh 2023): optimal-brain-surgeon column sweeps on
//    H = 2 X X^T + damping that choose the mask by w^2 / [H^-1]_jj^2 and update the weights
//    not yet visited to compensate (as in IST-DASLab/sparsegpt, sparsegpt.py).
// Unstructured sparsity prunes exactly floor(cols * sparsity) weights in every row; an N:M
// pattern prunes N of every M consecutive inputs of every row.
#include <cstdint>
#include <string>
#include <vector>

namespace ik::llm::prune {

enum class Method { magnitude, wanda, sparsegpt };
Method method_from_name(const std::string& name);  // throws naming the choices
const char* method_name(Method m);

struct Pattern {
  double sparsity = 0;  // unstructured fraction in [0, 1)
  int n = 0, m = 0;     // N:M when m > 0 (prune n of every m)
  bool nm() const { return m > 0; }
  double fraction() const { return nm() ? double(n) / m : sparsity; }
  std::string describe() const;
};
Pattern parse_nm(const std::string& text);  // "2:4"; throws for malformed or n >= m
// Throws for sparsity outside [0, 1) or an M that does not divide cols.
void check_pattern(const Pattern& p, int64_t cols);

// Second moments of a layer's calibration inputs: xtx = sum over samples of x x^T (cols x
// cols, row-major), or only its diagonal when diag_only (all Wanda needs).
struct InputStats {
  int64_t k = 0, n = 0;
  bool diag_only = false;
  std::vector<float> xtx;
  InputStats() = default;
  InputStats(int64_t k, bool diag_only);
  void add(const float* x, int64_t m);  // x: [m, k]
  float diag(int64_t j) const { return diag_only ? xtx[j] : xtx[j * k + j]; }
  std::vector<float> column_norms() const;  // ||X_j||_2 = sqrt(diag)
};

void prune_magnitude(float* w, int64_t rows, int64_t cols, const Pattern& p);
void prune_wanda(float* w, int64_t rows, int64_t cols, const Pattern& p, const std::vector<float>& col_norms);
// damp: fraction of the mean diagonal of H added to the diagonal; block: columns per sweep.
void prune_sparsegpt(float* w, int64_t rows, int64_t cols, const Pattern& p, const InputStats& stats,
                     double damp = 0.01, int block = 128);
// Dispatch; stats may be null for magnitude.
void prune_matrix(Method method, float* w, int64_t rows, int64_t cols, const Pattern& p, const InputStats* stats);

}  // namespace ik::llm::prune
