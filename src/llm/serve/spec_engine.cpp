// The speculative engine (make_spec_engine in engine.hpp): one SpecDecoder per slot, stepped one
// slot after another. The scheduler sees an engine whose decode runs may yield several tokens.
#include <optional>

#include "core/error.hpp"
#include "llm/serve/engine.hpp"
#include "llm/spec/decode.hpp"
#include "llm/spec/heads.hpp"

namespace ik::llm::serve {

namespace {

// A slot's speculative decoder: its drafter and its decoder with its own KV cache.
struct SpecSlot {
  SpecSlot(std::unique_ptr<spec::Drafter> d, const spec::DraftTree& tree, LlamaModel& model, int64_t n_ctx)
      : drafter(std::move(d)), decoder(model, *drafter, tree, n_ctx) {}
  std::unique_ptr<spec::Drafter> drafter;  // before decoder, which refers to it
  spec::SpecDecoder decoder;
  spec::SpecOptions options;  // the request's sampling (temperature 0: exact acceptance)
  std::optional<Sampler> sampler;
};

class SpecEngine final : public Engine {
 public:
  SpecEngine(LlamaModel& model, const spec::DraftTree& tree, int slots, int64_t n_ctx, const DrafterFactory& new_drafter)
      : model_(model) {
    for (int i = 0; i < slots; ++i) slots_.push_back(std::make_unique<SpecSlot>(new_drafter(), tree, model, n_ctx));
  }
  const LlamaConfig& config() const override { return model_.config(); }
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
    const int64_t n_vocab = model_.config().n_vocab;
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
  LlamaModel& model_;
  std::vector<std::unique_ptr<SpecSlot>> slots_;
};

}  // namespace

std::unique_ptr<Engine> make_spec_engine(LlamaModel& model, const spec::DraftTree& tree, int slots, int64_t n_ctx,
                                         const DrafterFactory& new_drafter) {
  return std::make_unique<SpecEngine>(model, tree, slots, n_ctx, new_drafter);
}

// The heads live as long as the drafters that read them (shared, read-only).
std::unique_ptr<Engine> make_spec_engine(LlamaModel& model, spec::DraftHeads heads, const spec::DraftTree& tree,
                                         int slots, int64_t n_ctx) {
  heads.check_base(model);
  IK_CHECK(tree.max_depth <= heads.n_heads(), "the draft tree is {} deep, but the heads file has only {} heads",
           tree.max_depth, heads.n_heads());
  auto shared = std::make_shared<const spec::DraftHeads>(std::move(heads));
  struct Owning : spec::HeadDrafter {
    Owning(std::shared_ptr<const spec::DraftHeads> h, LlamaModel& m, int64_t n)
        : spec::HeadDrafter(*h, m, n), heads(std::move(h)) {}
    std::shared_ptr<const spec::DraftHeads> heads;
  };
  return make_spec_engine(model, tree, slots, n_ctx,
                          [&] { return std::make_unique<Owning>(shared, model, n_ctx); });
}

}  // namespace ik::llm::serve
