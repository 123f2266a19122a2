// The speculative engines (make_spec_engine, make_gpu_spec_engine in engine.hpp): one
// SpecDecoder per slot, stepped one slot after another. The scheduler sees an engine whose
// decode runs may yield several tokens.
#include <optional>

#include "core/error.hpp"
#include "llm/serve/engine.hpp"
#include "llm/spec/decode.hpp"
#include "llm/spec/gpu.hpp"
#include "llm/spec/heads.hpp"

namespace ik::llm::serve {

namespace {

// A slot's speculative decoder: its drafter and its decoder, which runs the model on its own KV
// cache (CPU) or runs `base` (a device's model: sequence 0 of a GpuLlama).
struct SpecSlot {
  SpecSlot(std::unique_ptr<spec::Drafter> d, const spec::DraftTree& tree, LlamaModel& model, int64_t n_ctx)
      : drafter(std::move(d)), decoder(model, *drafter, tree, n_ctx) {}
  SpecSlot(std::unique_ptr<spec::SpecBase> b, std::unique_ptr<spec::Drafter> d, const spec::DraftTree& tree)
      : base(std::move(b)), drafter(std::move(d)), decoder(*base, *drafter, tree) {}
  std::unique_ptr<spec::SpecBase> base;    // null on the CPU; before decoder, which refers to it
  std::unique_ptr<spec::Drafter> drafter;  // before decoder, which refers to it
  spec::SpecDecoder decoder;
  spec::SpecOptions options;  // the request's sampling (temperature 0: exact acceptance)
  std::optional<Sampler> sampler;
};

class SpecEngine final : public Engine {
 public:
  SpecEngine(const LlamaConfig& config, std::vector<std::unique_ptr<SpecSlot>> slots)
      : config_(config), slots_(std::move(slots)) {}
  const LlamaConfig& config() const override { return config_; }
  void check(const SamplingParams& p) const override {
    IK_CHECK(!p.penalizes_repeats(), "speculative decoding does not support a repetition penalty");
  }
  void reset(int slot, const SamplingParams& p) override {
    SpecSlot& s = *slots_[slot];
    s.decoder.reset();
    s.options.sampling = p;
    s.sampler.emplace(p);
  }
  int64_t n_past(int slot) const override { return slots_[slot]->decoder.n_past(); }

  // A prompt chunk is a plain forward of its slot; a decode run (the token drawn last step) is
  // one tree verification, whose accepted path after that token is yielded, then the next draw.
  // A prompt's last chunk of one token on a non-empty cache is verified like a decode run: it
  // too is a token not yet in the cache whose continuation the tree drafts.
  void step(const std::vector<EngineRun>& runs, std::vector<std::vector<int32_t>>& drawn) override {
    drawn.clear();
    const int64_t n_vocab = config_.n_vocab;
    for (const EngineRun& r : runs) {
      SpecSlot& s = *slots_[r.slot];
      std::vector<int32_t> yielded;
      if (!r.samples || r.n > 1 || s.decoder.n_past() == 0) {  // a prompt chunk
        s.decoder.feed(r.tokens, r.n);
      } else {
        const std::vector<int32_t>& path = s.decoder.verify(r.tokens[0], s.options);
        s.decoder.commit();
        yielded.assign(path.begin() + 1, path.end());
      }
      if (!r.samples) continue;
      // No repetition penalty (check()), so the history the sampler is given does not matter.
      yielded.push_back(s.sampler->sample(s.decoder.last_logits(), n_vocab, *r.history));
      drawn.push_back(std::move(yielded));
    }
  }

 private:
  LlamaConfig config_;
  std::vector<std::unique_ptr<SpecSlot>> slots_;
};

// The heads fit the model and the tree; then shared, read-only, as long as the drafters live.
std::shared_ptr<const spec::DraftHeads> checked_heads(spec::DraftHeads heads, LlamaModel& model,
                                                     const spec::DraftTree& tree) {
  heads.check_base(model);
  IK_CHECK(tree.max_depth <= heads.n_heads(), "the draft tree is {} deep, but the heads file has only {} heads",
           tree.max_depth, heads.n_heads());
  return std::make_shared<const spec::DraftHeads>(std::move(heads));
}

// A drafter that keeps its heads alive.
template <class Base, class Model>
struct Owning : Base {
  Owning(std::shared_ptr<const spec::DraftHeads> h, Model& m) : Base(*h, m), heads(std::move(h)) {}
  Owning(std::shared_ptr<const spec::DraftHeads> h, Model& m, int64_t n) : Base(*h, m, n), heads(std::move(h)) {}
  std::shared_ptr<const spec::DraftHeads> heads;
};

}  // namespace

std::unique_ptr<Engine> make_spec_engine(LlamaModel& model, const spec::DraftTree& tree, int slots, int64_t n_ctx,
                                         const DrafterFactory& new_drafter) {
  std::vector<std::unique_ptr<SpecSlot>> s;
  for (int i = 0; i < slots; ++i) s.push_back(std::make_unique<SpecSlot>(new_drafter(), tree, model, n_ctx));
  return std::make_unique<SpecEngine>(model.config(), std::move(s));
}

std::unique_ptr<Engine> make_spec_engine(LlamaModel& model, spec::DraftHeads heads, const spec::DraftTree& tree,
                                         int slots, int64_t n_ctx) {
  auto shared = checked_heads(std::move(heads), model, tree);
  return make_spec_engine(model, tree, slots, n_ctx,
                          [&] { return std::make_unique<Owning<spec::HeadDrafter, LlamaModel>>(shared, model, n_ctx); });
}

std::unique_ptr<Engine> make_gpu_spec_engine(LlamaModel& model, GpuLlama& gpu, spec::DraftHeads heads,
                                             const spec::DraftTree& tree) {
  auto shared = checked_heads(std::move(heads), model, tree);
  std::vector<std::unique_ptr<SpecSlot>> s;
  s.push_back(std::make_unique<SpecSlot>(std::make_unique<spec::GpuSpecBase>(gpu),
                                         std::make_unique<Owning<spec::GpuHeadDrafter, GpuLlama>>(shared, gpu), tree));
  return std::make_unique<SpecEngine>(gpu.config(), std::move(s));
}

}  // namespace ik::llm::serve
