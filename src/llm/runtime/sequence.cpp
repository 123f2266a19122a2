#include "llm/runtime/sequence.hpp"

#include <algorithm>
#include <optional>

#include "core/error.hpp"
#include "llm/model/llama_gpu.hpp"

namespace ik::llm {

namespace {

class CpuSequence final : public Sequence {
 public:
  CpuSequence(LlamaModel& m, int64_t n_ctx, int64_t batch)
      : model_(m), cache_(m.config().n_layer, n_ctx, m.config().kv_dim()), batch_(batch), logits_(m.config().n_vocab) {
    IK_CHECK(n_ctx > 0 && batch > 0, "context and batch sizes must be positive");
  }
  const LlamaConfig& config() const override { return model_.config(); }
  int64_t n_ctx() const override { return cache_.n_ctx(); }
  int64_t n_past() const override { return cache_.n_past; }
  void rewind(int64_t n) override { cache_.n_past = std::min(n, cache_.n_past); }
  void append(const int32_t* tokens, int64_t n) override {
    for (int64_t i = 0; i < n; i += batch_) model_.forward(tokens + i, std::min(batch_, n - i), cache_, logits_.data());
  }
  void set_sampling(const SamplingParams& p) override { sampler_.emplace(p); }
  int32_t next_token(const std::vector<int32_t>& history) override {
    IK_CHECK(sampler_.has_value(), "next_token: no sampling settings");
    return sampler_->sample(logits_.data(), int64_t(logits_.size()), history);
  }
  const std::vector<float>& logits() override { return logits_; }

 private:
  LlamaModel& model_;
  KVCache cache_;
  int64_t batch_;
  std::vector<float> logits_;
  std::optional<Sampler> sampler_;
};

class GpuSequence final : public Sequence {
 public:
  GpuSequence(GpuLlama& g, int seq) : g_(g), seq_(seq) {}
  const LlamaConfig& config() const override { return g_.config(); }
  int64_t n_ctx() const override { return g_.options().n_ctx; }
  int64_t n_past() const override { return g_.n_past(seq_); }
  void rewind(int64_t n) override { g_.set_n_past(seq_, std::min(n, n_past())); }
  // One token on slot 0 is the captured decode step, which also draws the next token.
  void append(const int32_t* tokens, int64_t n) override {
    if (n == 1 && seq_ == 0 && on_device_) {
      g_.decode(tokens, 1, &drawn_);
      have_drawn_ = true;
    } else {
      g_.forward(seq_, tokens, n, nullptr);
      have_drawn_ = false;
    }
    logits_valid_ = false;
  }
  void set_sampling(const SamplingParams& p) override {
    p.validate();
    on_device_ = !p.penalizes_repeats();
    if (on_device_) g_.set_sampling(seq_, p.temperature, p.top_k, p.top_p, p.min_p, p.seed);
    else sampler_.emplace(p);
    have_drawn_ = false;
  }
  int32_t next_token(const std::vector<int32_t>& history) override {
    if (on_device_) {
      if (have_drawn_) {
        have_drawn_ = false;
        return drawn_;
      }
      return g_.sample_last(seq_);
    }
    IK_CHECK(sampler_.has_value(), "next_token: no sampling settings");
    const auto& l = logits();
    return sampler_->sample(l.data(), int64_t(l.size()), history);
  }
  const std::vector<float>& logits() override {
    if (!logits_valid_) {
      logits_.resize(g_.config().n_vocab);
      g_.last_logits(logits_.data(), 1);
      logits_valid_ = true;
    }
    return logits_;
  }

 private:
  GpuLlama& g_;
  int seq_;
  bool on_device_ = true, have_drawn_ = false, logits_valid_ = false;
  int32_t drawn_ = 0;
  std::vector<float> logits_;
  std::optional<Sampler> sampler_;
};

}  // namespace

std::unique_ptr<Sequence> make_cpu_sequence(LlamaModel& model, int64_t n_ctx, int64_t batch) {
  return std::make_unique<CpuSequence>(model, n_ctx, batch);
}

std::unique_ptr<Sequence> make_gpu_sequence(GpuLlama& model, int seq) {
  IK_CHECK(seq >= 0 && seq < model.options().n_seq, "GPU sequence slot {} out of range", seq);
  return std::make_unique<GpuSequence>(model, seq);
}

}  // namespace ik::llm
