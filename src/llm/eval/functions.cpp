// In-context learning of parameterized functions: each prompt draws a random function
// (linear classifier, 2-layer ReLU network or depth-2 decision tree) over integer vectors,
// shows labelled exemplars, and asks for the label of a query.
#include <algorithm>
#include <functional>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "llm/eval/tasks.hpp"

namespace ik::llm::eval {

using Vec = std::vector<int>;
using Classifier = std::function<int(const Vec&)>;

static constexpr int kLo = -9, kHi = 9;  // input coordinates are integers in [kLo, kHi]

static Vec random_input(Rng& rng, int dims) {
  Vec x(dims);
  for (auto& v : x) v = kLo + int(rng.below(kHi - kLo + 1));
  return x;
}

// A real-valued score thresholded at its median over random inputs: both labels are common.
static Classifier thresholded(Rng& rng, int dims, std::function<double(const Vec&)> f) {
  std::vector<double> v(255);
  for (auto& s : v) s = f(random_input(rng, dims));
  std::nth_element(v.begin(), v.begin() + 127, v.end());
  const double median = v[127];
  return [f, median](const Vec& x) { return f(x) > median ? 1 : 0; };
}

static Classifier random_linear(Rng& rng, int dims) {
  std::vector<double> w(dims);
  for (auto& a : w) a = rng.normal();
  return thresholded(rng, dims, [w](const Vec& x) {
    double s = 0;
    for (size_t i = 0; i < w.size(); ++i) s += w[i] * x[i];
    return s;
  });
}

static Classifier random_mlp(Rng& rng, int dims) {
  const int hidden = 8;
  std::vector<double> u(hidden * dims), c(hidden), v(hidden);
  for (auto& a : u) a = rng.normal();
  for (auto& a : c) a = 3.0 * rng.normal();
  for (auto& a : v) a = rng.normal();
  return thresholded(rng, dims, [=](const Vec& x) {
    double out = 0;
    for (int h = 0; h < hidden; ++h) {
      double z = c[h];
      for (int i = 0; i < dims; ++i) z += u[h * dims + i] * x[i];
      out += v[h] * std::max(0.0, z);
    }
    return out;
  });
}

static Classifier random_tree(Rng& rng, int dims) {
  // Root splits on feature a; each child splits on its own feature; sibling leaves differ.
  const int a = int(rng.below(dims)), b = int(rng.below(dims)), c = int(rng.below(dims));
  auto threshold = [&] { return int(rng.below(9)) - 4; };
  const int ta = threshold(), tb = threshold(), tc = threshold();
  const int left = int(rng.below(2)), right = int(rng.below(2));
  return [=](const Vec& x) {
    if (x[a] <= ta) return x[b] <= tb ? left : 1 - left;
    return x[c] <= tc ? right : 1 - right;
  };
}

// At least 1 in 8 of 256 probe inputs gets each label.
static bool both_labels_common(const Classifier& f, int dims, uint64_t seed, int64_t item) {
  Rng probe(seed ^ 0x5bd1e995u, 1000 + uint64_t(item));
  int ones = 0;
  for (int t = 0; t < 256; ++t) ones += f(random_input(probe, dims));
  return ones >= 32 && ones <= 256 - 32;
}

static std::string format_example(const Vec& x) {
  std::string s = "Input:";
  for (int v : x) s += " " + std::to_string(v);
  return s + "\nLabel:";
}

std::vector<EvalItem> function_items(const std::string& kind, int64_t n, uint64_t seed, int exemplars, int dims) {
  IK_CHECK(kind == "linear" || kind == "mlp" || kind == "tree", "unknown function kind '{}'", kind);
  IK_CHECK(exemplars > 0 && dims > 0, "function tasks need exemplars > 0 and dims > 0");
  const uint64_t stream = kind == "linear" ? 11 : kind == "mlp" ? 12 : 13;
  Rng rng(seed, stream);
  std::vector<EvalItem> out;
  auto draw = [&] {
    return kind == "linear" ? random_linear(rng, dims) : kind == "mlp" ? random_mlp(rng, dims) : random_tree(rng, dims);
  };
  for (int64_t i = 0; i < n; ++i) {
    // A function whose labels are (nearly) all the same is no task: some decision trees are,
    // when a split repeats a feature. Redraw it; the probe has its own stream, so the items of
    // functions that pass are the same as without the check.
    Classifier f = draw();
    for (int redraw = 0; !both_labels_common(f, dims, seed, i); ++redraw) {
      IK_CHECK(redraw < 1000, "could not draw a {} function with both labels common", kind);
      f = draw();
    }
    std::string prompt;
    for (int e = 0; e < exemplars; ++e) {
      const Vec x = random_input(rng, dims);
      prompt += format_example(x) + " " + std::to_string(f(x)) + "\n\n";
    }
    // Balanced query labels: chance accuracy is 50%.
    const int want = int(i % 2);
    Vec q = random_input(rng, dims);
    for (int tries = 0; f(q) != want && tries < 10000; ++tries) q = random_input(rng, dims);
    IK_CHECK(f(q) == want, "could not draw a query of label {} for a {} function", want, kind);
    prompt += format_example(q);
    out.push_back({"icl_" + kind, kind, prompt, {std::to_string(want)}});
  }
  return out;
}

}  // namespace ik::llm::eval
