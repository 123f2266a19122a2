#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "core/error.hpp"
#include "llm/runtime/sampler.hpp"

using namespace ik::llm;

TEST(Sampler, GreedyIsArgmax) {
  std::vector<float> l{0.1f, 2.0f, -1.0f, 1.9f};
  SamplingParams p;
  p.temperature = 0;
  Sampler s(p);
  EXPECT_EQ(s.sample(l.data(), 4, {}), 1);
}

TEST(Sampler, RepetitionPenaltyFollowsLlamaCppRule) {
  std::vector<float> l{0.1f, 2.0f, -1.0f, 1.9f};
  SamplingParams p;
  p.temperature = 0;
  p.repeat_penalty = 1.1f;  // 2.0 / 1.1 = 1.818 < 1.9
  Sampler s(p);
  EXPECT_EQ(s.sample(l.data(), 4, {1}), 3);
  EXPECT_EQ(l[1], 2.0f);  // caller's logits untouched
}

TEST(Sampler, SameSeedSameDraws) {
  std::vector<float> l(100);
  for (int i = 0; i < 100; ++i) l[i] = std::sin(i * 0.37f) * 3;
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0;
  p.seed = 5;
  Sampler a(p), b(p);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(a.sample(l.data(), 100, {}), b.sample(l.data(), 100, {}));
}

// Empirical frequencies against the exact softmax at temperature T restricted to top-k.
TEST(Sampler, FrequenciesMatchTruncatedSoftmax) {
  std::vector<float> l{1.0f, 2.0f, 0.5f, 3.0f, -2.0f};
  SamplingParams p;
  p.temperature = 0.7f;
  p.top_k = 3;
  p.top_p = 1.0f;
  p.min_p = 0;
  p.seed = 11;
  Sampler s(p);
  std::map<int, int> count;
  const int n = 200000;
  for (int i = 0; i < n; ++i) count[s.sample(l.data(), 5, {})]++;
  const double z = std::exp(3.0 / 0.7) + std::exp(2.0 / 0.7) + std::exp(1.0 / 0.7);
  EXPECT_EQ(count[2] + count[4], 0);
  for (int id : {0, 1, 3}) {
    const double pr = std::exp(l[id] / 0.7) / z;
    EXPECT_NEAR(count[id] / double(n), pr, 4 * std::sqrt(pr * (1 - pr) / n)) << id;
  }
}

TEST(Sampler, TopPAndMinPTruncate) {
  // Probabilities at T=1: about 0.665, 0.245, 0.090 for logits 2, 1, 0.
  std::vector<float> l{2.0f, 1.0f, 0.0f};
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 0.8f;  // keeps the first two
  p.min_p = 0;
  Sampler s(p);
  for (int i = 0; i < 2000; ++i) EXPECT_NE(s.sample(l.data(), 3, {}), 2);
  p.top_p = 1.0f;
  p.min_p = 0.5f;  // 0.245 < 0.5 * 0.665: only the first survives
  Sampler m(p);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(m.sample(l.data(), 3, {}), 0);
}

TEST(Sampler, RejectsOutOfRangeParameters) {
  SamplingParams p;
  p.temperature = -1;
  EXPECT_THROW(Sampler{p}, ik::Error);
  p = {};
  p.top_p = 0;
  EXPECT_THROW(Sampler{p}, ik::Error);
}
