// AdamW against steps computed by hand, and the warm-up + cosine schedule.
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "llm/train/adamw.hpp"

using namespace ik::llm::train;

TEST(AdamW, TwoStepsByHand) {
  // lr 0.1, betas (0.9, 0.999), eps 1e-8, weight decay 0.01, p0 = 1; a second array with
  // g = 0 throughout stays put except for the decay.
  AdamW opt({.lr = 0.1f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f});
  float p[2] = {1.0f, 2.0f};
  float g[2] = {0.5f, 0.0f};
  const std::vector<ParamRef> params = {{&p[0], &g[0], 1}, {&p[1], &g[1], 1}};
  // Step 1, g = 0.5: m = 0.05, v = 0.00025, m_hat = 0.5, v_hat = 0.25,
  // p = 1 - 0.1 * (0.5 / (0.5 + 1e-8) + 0.01 * 1) = 0.899 (+2e-9).
  opt.step(params);
  EXPECT_NEAR(p[0], 0.899000002, 1e-7);
  EXPECT_NEAR(p[1], 2.0 - 0.1 * 0.01 * 2.0, 1e-7);  // 1.998
  // Step 2, g = -1: m = 0.045 - 0.1 = -0.055, v = 0.000249750 + 0.001 = 0.00124975,
  // m_hat = -0.055 / 0.19 = -0.289473684, v_hat = 0.00124975 / 0.001999 = 0.625187594,
  // p = 0.899000002 - 0.1 * (-0.289473684 / 0.790688 + 0.00899000002) = 0.934711354.
  g[0] = -1.0f;
  opt.step(params, 0.1f);
  EXPECT_NEAR(p[0], 0.934711354, 2e-7);
  EXPECT_EQ(opt.steps(), 2);
  // A different list is refused.
  EXPECT_THROW(opt.step({params[0]}), ik::Error);
}

TEST(AdamW, WarmupCosineSchedule) {
  // 10 steps, 4 of warm-up, peak 1, floor 0.1.
  EXPECT_FLOAT_EQ(lr_schedule(0, 10, 4, 1.0f, 0.1f), 0.25f);
  EXPECT_FLOAT_EQ(lr_schedule(3, 10, 4, 1.0f, 0.1f), 1.0f);
  EXPECT_FLOAT_EQ(lr_schedule(4, 10, 4, 1.0f, 0.1f), 1.0f);
  // step 6: progress 2/5, 0.1 + 0.45 * (1 + cos(0.4 pi)) = 0.1 + 0.45 * 1.309017 = 0.68905764
  EXPECT_NEAR(lr_schedule(6, 10, 4, 1.0f, 0.1f), 0.68905764, 1e-6);
  EXPECT_FLOAT_EQ(lr_schedule(9, 10, 4, 1.0f, 0.1f), 0.1f);
  EXPECT_FLOAT_EQ(lr_schedule(0, 1, 0, 0.5f), 0.5f);  // one step, no warm-up: the peak
}
