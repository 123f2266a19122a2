#include "llm/serve/engine.hpp"

#include <optional>

#include "core/error.hpp"
#include "llm/model/llama_gpu.hpp"

namespace ik::llm::serve {

namespace {

class CpuEngine final : public Engine {
 public:
  CpuEngine(LlamaModel& model, int slots, int64_t n_ctx)
      : model_(model), samplers_(slots), logits_(size_t(slots) * model.config().n_vocab) {
    const LlamaConfig& c = model.config();
    for (int i = 0; i < slots; ++i) caches_.push_back(std::make_unique<KVCache>(c.n_layer, n_ctx, c.kv_dim()));
  }
  const LlamaConfig& config() const override { return model_.config(); }
  void reset(int slot, const SamplingParams& p) override {
    caches_[slot]->n_past = 0;
    samplers_[slot].emplace(p);
  }
  int64_t n_past(int slot) const override { return caches_[slot]->n_past; }

  // One forward pass over every run's rows; logits only for the runs that sample.
  void step(const std::vector<EngineRun>& runs, std::vector<std::vector<int32_t>>& drawn) override {
    std::vector<int32_t> tokens;
    std::vector<int64_t> rows;
    std::vector<KVCache*> caches;
    std::vector<uint8_t> wants;
    for (const EngineRun& r : runs) {
      tokens.insert(tokens.end(), r.tokens, r.tokens + r.n);
      rows.push_back(r.n);
      caches.push_back(caches_[r.slot].get());
      wants.push_back(r.samples);
    }
    drawn.clear();
    if (runs.empty()) return;
    model_.forward_ragged(tokens.data(), rows.data(), int64_t(runs.size()), caches.data(), logits_.data(),
                          wants.data());
    const int64_t n_vocab = model_.config().n_vocab;
    const float* logits = logits_.data();
    for (const EngineRun& r : runs) {
      if (!r.samples) continue;
      drawn.push_back({samplers_[r.slot]->sample(logits, n_vocab, *r.history)});
      logits += n_vocab;
    }
  }

 private:
  LlamaModel& model_;
  std::vector<std::unique_ptr<KVCache>> caches_;
  std::vector<std::optional<Sampler>> samplers_;
  std::vector<float> logits_;
};

class GpuEngine final : public Engine {
 public:
  GpuEngine(GpuLlama& model, int slots, int64_t n_ctx)
      : g_(model), on_device_(slots, true), samplers_(slots), logits_(model.config().n_vocab) {
    IK_CHECK(model.options().n_seq >= slots, "the GPU model has {} sequence slots, the server needs {}",
             model.options().n_seq, slots);
    IK_CHECK(model.options().n_ctx >= n_ctx, "the GPU model's context ({}) is shorter than the server's ({})",
             model.options().n_ctx, n_ctx);
  }
  const LlamaConfig& config() const override { return g_.config(); }
  // The device sampler has no repetition penalty (as GpuSequence: those draws happen on the host).
  void reset(int slot, const SamplingParams& p) override {
    g_.set_n_past(slot, 0);
    on_device_[slot] = !p.penalizes_repeats();
    if (on_device_[slot]) g_.set_sampling(slot, p.temperature, p.top_k, p.top_p, p.min_p, p.seed);
    else samplers_[slot].emplace(p);
  }
  int64_t n_past(int slot) const override { return g_.n_past(slot); }
  void bind_to_thread() override { backend::cuda::init(g_.device().ordinal); }

  void step(const std::vector<EngineRun>& runs, std::vector<std::vector<int32_t>>& drawn) override {
    drawn.clear();
    std::vector<int32_t> slots, tokens;
    std::vector<size_t> drawn_at;
    for (const EngineRun& r : runs) {
      if (r.samples) drawn.push_back({-1});
      // One token drawn on the device (a decode, or a prompt's 1-token last chunk): batched below.
      if (r.n == 1 && r.samples && on_device_[r.slot]) {
        slots.push_back(r.slot);
        tokens.push_back(r.tokens[0]);
        drawn_at.push_back(drawn.size() - 1);
        continue;
      }
      g_.forward(r.slot, r.tokens, r.n, nullptr);
      if (r.samples) drawn.back()[0] = draw_last(r);
    }
    if (slots.empty()) return;
    std::vector<int32_t> next(slots.size());
    g_.decode_slots(slots.data(), tokens.data(), int(slots.size()), next.data());
    for (size_t i = 0; i < slots.size(); ++i) drawn[drawn_at[i]][0] = next[i];
  }

 private:
  // The next token of the run just forwarded, from its last row.
  int32_t draw_last(const EngineRun& r) {
    if (on_device_[r.slot]) return g_.sample_last(r.slot);
    g_.last_logits(logits_.data(), 1);
    return samplers_[r.slot]->sample(logits_.data(), int64_t(logits_.size()), *r.history);
  }

  GpuLlama& g_;
  std::vector<bool> on_device_;
  std::vector<std::optional<Sampler>> samplers_;
  std::vector<float> logits_;
};

}  // namespace

std::unique_ptr<Engine> make_cpu_engine(LlamaModel& model, int slots, int64_t n_ctx) {
  return std::make_unique<CpuEngine>(model, slots, n_ctx);
}

std::unique_ptr<Engine> make_gpu_engine(GpuLlama& model, int slots, int64_t n_ctx) {
  return std::make_unique<GpuEngine>(model, slots, n_ctx);
}

}  // namespace ik::llm::serve
