#pragma once
// What the scheduler drives: `slots` sequences, each with its own KV cache and its own draws,
// on the CPU engine (LlamaModel) or the GPU engine (GpuLlama). The scheduling (admission,
// prompt chunks, stop rules, cancellation, counts) is the scheduler's alone; an engine only
// runs one step's work and draws the tokens.
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "llm/model/llama.hpp"
#include "llm/runtime/sampler.hpp"
#include "llm/spec/tree.hpp"

namespace ik::llm {
class GpuLlama;
}
namespace ik::llm::spec {
class Drafter;
struct DraftHeads;
}

namespace ik::llm::serve {

// One sequence's work in a step: tokens appended to its cache (a prompt chunk, or the token
// sampled last step), and whether to draw its next token from the last row's logits.
struct EngineRun {
  int slot = 0;
  const int32_t* tokens = nullptr;
  int64_t n = 0;
  bool samples = false;
  const std::vector<int32_t>* history = nullptr;  // the slot's tokens so far (repetition penalty)
};

class Engine {
 public:
  virtual ~Engine() = default;
  virtual const LlamaConfig& config() const = 0;
  // A new request on `slot`: its cache emptied, its draws seeded afresh from `p`.
  virtual void reset(int slot, const SamplingParams& p) = 0;
  virtual int64_t n_past(int slot) const = 0;
  // Called on the thread that will run the steps (Scheduler::start's): the GPU engine makes
  // its device current there.
  virtual void bind_to_thread() {}
  // Throws ik::Error for sampling settings this engine cannot honour (checked at submission).
  virtual void check(const SamplingParams&) const {}
  // Runs one step (at most one run per slot); drawn receives, per run that samples and in the
  // order of the runs, the tokens the run yields: one drawn token for the plain engines; for the
  // speculative engine the accepted draft tokens (already in the slot's cache) and then one
  // drawn token (not yet in the cache, as a plain engine's).
  virtual void step(const std::vector<EngineRun>& runs, std::vector<std::vector<int32_t>>& drawn) = 0;
};

// One LlamaModel::forward_ragged pass per step; draws with the CPU Sampler.
std::unique_ptr<Engine> make_cpu_engine(LlamaModel& model, int slots, int64_t n_ctx);
// Sequences 0..slots-1 of a GPU model (at least `slots` sequences of at least n_ctx positions):
// each prompt chunk is a forward() call of its sequence, then the one-token runs are one
// captured decode step (GpuLlama::decode_slots) that also draws on the device. Requests with a
// repetition penalty are drawn on the host (CPU Sampler on the downloaded logits), their
// tokens run one forward() each.
std::unique_ptr<Engine> make_gpu_engine(GpuLlama& model, int slots, int64_t n_ctx);

// Speculative decoding (spec_engine.cpp): each slot has its own SpecDecoder over `model` (own KV
// cache, own drafter state, e.g. the Hydra++ prefix cache); the heads are shared, read-only. A
// decode run is one tree verification yielding the accepted draft tokens and the next draw;
// greedy requests use exact acceptance (the plain engine's tokens), sampled ones typical
// acceptance. Slots are stepped one after another: tree verifications of different requests
// are not batched into one forward.
std::unique_ptr<Engine> make_spec_engine(LlamaModel& model, spec::DraftHeads heads, const spec::DraftTree& tree,
                                         int slots, int64_t n_ctx);
// The same with any drafter (one per slot, made by `new_drafter`; tests use an oracle).
using DrafterFactory = std::function<std::unique_ptr<spec::Drafter>()>;
std::unique_ptr<Engine> make_spec_engine(LlamaModel& model, const spec::DraftTree& tree, int slots, int64_t n_ctx,
                                         const DrafterFactory& new_drafter);
// Speculative decoding on one GPU: a single slot (sequence 0 of `gpu`, the model uploaded from
// `model`), its heads on the device; requests are served one at a time.
std::unique_ptr<Engine> make_gpu_spec_engine(LlamaModel& model, GpuLlama& gpu, spec::DraftHeads heads,
                                             const spec::DraftTree& tree);

}  // namespace ik::llm::serve
