#include "llm/train/adamw.hpp"

#include <cmath>

#include "core/error.hpp"

namespace ik::llm::train {

void AdamW::step(const std::vector<ParamRef>& params, float lr) {
  if (m_.empty()) {
    for (const ParamRef& p : params) {
      m_.emplace_back(p.n, 0.0f);
      v_.emplace_back(p.n, 0.0f);
    }
  }
  IK_CHECK(params.size() == m_.size(), "AdamW: {} parameter arrays, but the first step had {}", params.size(),
           m_.size());
  ++t_;
  const float b1 = cfg_.beta1, b2 = cfg_.beta2;
  const double c1 = 1.0 - std::pow(double(b1), double(t_)), c2 = 1.0 - std::pow(double(b2), double(t_));
  for (size_t a = 0; a < params.size(); ++a) {
    const ParamRef& p = params[a];
    IK_CHECK(int64_t(m_[a].size()) == p.n, "AdamW: parameter array {} changed size ({} -> {})", a, m_[a].size(), p.n);
    float* m = m_[a].data();
    float* v = v_[a].data();
#pragma omp parallel for schedule(static) if (p.n >= (1 << 14))
    for (int64_t i = 0; i < p.n; ++i) {
      const float g = p.grad[i];
      m[i] = b1 * m[i] + (1.0f - b1) * g;
      v[i] = b2 * v[i] + (1.0f - b2) * g * g;
      const double update = (m[i] / c1) / (std::sqrt(v[i] / c2) + cfg_.eps) + cfg_.weight_decay * p.value[i];
      p.value[i] -= float(lr * update);
    }
  }
}

float lr_schedule(int64_t step, int64_t total, int64_t warmup, float peak, float min_lr) {
  if (step < warmup) return peak * float(step + 1) / float(warmup);
  const int64_t decay_steps = total - 1 - warmup;
  if (decay_steps <= 0) return peak;
  const double progress = std::min(1.0, double(step - warmup) / double(decay_steps));
  return float(min_lr + 0.5 * (peak - min_lr) * (1.0 + std::cos(M_PI * progress)));
}

}  // namespace ik::llm::train
