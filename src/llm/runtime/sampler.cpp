#include "llm/runtime/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "core/error.hpp"

namespace ik::llm {

void SamplingParams::validate() const {
  IK_CHECK(temperature >= 0 && std::isfinite(temperature), "temperature must be >= 0 (got {})", temperature);
  IK_CHECK(top_k >= 0, "top-k must be >= 0 (got {})", top_k);
  IK_CHECK(top_p > 0 && top_p <= 1, "top-p must be in (0, 1] (got {})", top_p);
  IK_CHECK(min_p >= 0 && min_p < 1, "min-p must be in [0, 1) (got {})", min_p);
  IK_CHECK(repeat_penalty > 0, "repeat penalty must be > 0 (got {})", repeat_penalty);
  IK_CHECK(repeat_last_n >= 0, "repeat-last-n must be >= 0 (got {})", repeat_last_n);
}

int32_t argmax(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return int32_t(best);
}

int32_t Sampler::sample(const float* logits, int64_t n_vocab, const std::vector<int32_t>& history) {
  // The penalty works on a copy: the caller's logits stay as the model produced them.
  if (p_.penalizes_repeats() && !history.empty()) {
    penalised_.assign(logits, logits + n_vocab);
    std::unordered_set<int32_t> seen;
    const size_t start = history.size() > size_t(p_.repeat_last_n) ? history.size() - p_.repeat_last_n : 0;
    for (size_t i = start; i < history.size(); ++i) {
      const int32_t t = history[i];
      if (t < 0 || t >= n_vocab || !seen.insert(t).second) continue;
      penalised_[t] = penalised_[t] > 0 ? penalised_[t] / p_.repeat_penalty : penalised_[t] * p_.repeat_penalty;
    }
    logits = penalised_.data();
  }
  if (p_.temperature == 0.0f) return argmax(logits, n_vocab);

  cand_.resize(n_vocab);
  for (int64_t i = 0; i < n_vocab; ++i) cand_[i] = {logits[i], int32_t(i)};
  auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  size_t n = cand_.size();
  if (p_.top_k > 0 && size_t(p_.top_k) < n) {
    std::partial_sort(cand_.begin(), cand_.begin() + p_.top_k, cand_.end(), by_logit);
    n = p_.top_k;
  } else {
    std::sort(cand_.begin(), cand_.end(), by_logit);
  }
  // Probabilities at temperature T over the surviving candidates.
  std::vector<double> prob(n);
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += prob[i] = std::exp(double(cand_[i].first - cand_[0].first) / p_.temperature);
  for (auto& p : prob) p /= sum;
  // top-p: the smallest prefix whose mass reaches p; min-p: drop tokens below min_p * max.
  size_t keep = n;
  if (p_.top_p < 1.0f) {
    double cum = 0;
    for (size_t i = 0; i < n; ++i) {
      cum += prob[i];
      if (cum >= p_.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  if (p_.min_p > 0) {
    size_t i = 1;
    while (i < keep && prob[i] >= p_.min_p * prob[0]) ++i;
    keep = i;
  }
  double mass = 0;
  for (size_t i = 0; i < keep; ++i) mass += prob[i];
  double u = rng_.uniform() * mass;
  for (size_t i = 0; i < keep; ++i) {
    u -= prob[i];
    if (u < 0) return cand_[i].second;
  }
  return cand_[keep - 1].second;
}

}  // namespace ik::llm
