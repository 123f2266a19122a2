#pragma once
// AdamW over flat f32 parameter arrays, and a warm-up + cosine learning-rate schedule.
//
//   AdamW opt({.lr = 1e-4f, .weight_decay = 0.0f});
//   std::vector<ParamRef> params = {{w.data(), g.data(), int64_t(w.size())}, ...};
//   for (step ...) {
//     zero the grads, run forward + backward (accumulating into g) ...
//     opt.step(params, lr_schedule(step, total, warmup, 1e-4f));   // or opt.step(params)
//   }
//
// Pass the SAME list (same order, same sizes) to every step: the moment buffers m, v are
// kept per list entry, created on the first step.
#include <cstdint>
#include <vector>

namespace ik::llm::train {

struct AdamWConfig {
  float lr = 1e-3f;
  float beta1 = 0.9f, beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;  // decoupled (AdamW): p -= lr * weight_decay * p
};

// One parameter array and its gradient (same length n).
struct ParamRef {
  float* value = nullptr;
  const float* grad = nullptr;
  int64_t n = 0;
};

class AdamW {
 public:
  explicit AdamW(AdamWConfig cfg = {}) : cfg_(cfg) {}
  // One update with the config's lr.
  void step(const std::vector<ParamRef>& params) { step(params, cfg_.lr); }
  // One update with the given lr (e.g. from lr_schedule). With t = number of steps so far
  // (1 on the first):
  //   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
  //   p -= lr * ( (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps) + weight_decay * p )
  void step(const std::vector<ParamRef>& params, float lr);
  int64_t steps() const { return t_; }
  const AdamWConfig& config() const { return cfg_; }

 private:
  AdamWConfig cfg_;
  int64_t t_ = 0;
  std::vector<std::vector<float>> m_, v_;  // per ParamRef
};

// Learning rate at step (0-based) of total: linear warm-up from peak/warmup to peak over the
// first `warmup` steps, then a cosine decay from peak to min_lr at step total-1.
float lr_schedule(int64_t step, int64_t total, int64_t warmup, float peak, float min_lr = 0.0f);

}  // namespace ik::llm::train
