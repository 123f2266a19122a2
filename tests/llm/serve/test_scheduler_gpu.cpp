// The continuous-batching scheduler on the GPU engine (label gpu: skipped without a CUDA GPU).
// A seeded random tiny Llama with bf16 weights (the CPU and the GPU hold identical values; the
// CPU runs exact f32 math) served by the scheduler: each request's greedy tokens equal the CPU
// engine's greedy tokens for the same prompt run alone, except after a near-tie (the GPU keeps
// activations in bf16, so a top-two gap within that noise may flip; from there the streams
// differ and the comparison stops, as in tests/llm/model/test_llama_gpu.cpp). Also the
// speculative engine on the GPU (serve --spec --device cuda).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "backend/cuda/cuda.hpp"
#include "llm/model/llama.hpp"
#include "llm/model/llama_gpu.hpp"
#include "llm/serve/scheduler.hpp"
#include "drain.hpp"
#include "../model/logit_compare.hpp"
#include "../spec/spec_test_util.hpp"
#include "core/error.hpp"
#include "llm/serve/engine.hpp"

using namespace ik::llm;
using namespace ik::llm::serve;
namespace cuda = ik::backend::cuda;

namespace {

const std::string kDir = IK_SOURCE_DIR "/tests/io/fixtures/tiny_llama";
constexpr int64_t kCtx = 128;

class ServeSchedulerGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda::available()) GTEST_SKIP() << "no CUDA GPU";
    // The tiny preset (head_dim 64, as the GPU kernels need) with the fixture tokenizer's
    // vocabulary, so every sampled id has a piece.
    tok = Tokenizer::from_hf_json(kDir + "/tokenizer.json", kDir + "/tokenizer_config.json");
    LlamaConfig c = preset_config("tiny");
    c.n_vocab = tok.vocab_size();
    cpu = std::make_unique<LlamaModel>(LlamaModel::random(c, 21, WeightMode::Reference));
  }
  std::unique_ptr<GpuLlama> upload(int slots) { return GpuLlama::upload(*cpu, GpuOptions{0, slots, kCtx, 64}); }

  Tokenizer tok;
  std::unique_ptr<LlamaModel> cpu;
};

std::vector<int32_t> prompt_of(int length, int salt, int64_t n_vocab) {
  std::vector<int32_t> p(length);
  for (int i = 0; i < length; ++i) p[i] = int32_t((i * 37 + salt * 101 + 5) % n_vocab);
  return p;
}

GenRequest greedy(std::vector<int32_t> prompt, int max_tokens) {
  GenRequest r;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  r.stop_at_eos = false;
  r.sampling.temperature = 0;
  r.sampling.top_k = 0;
  r.sampling.top_p = 1;
  r.sampling.min_p = 0;
  return r;
}

// The CPU answer for a request alone: forward() over one KV cache, argmax of the logits after
// llama.cpp's repetition penalty (written out here, independent of the Sampler), and the gap
// between the top two at each token (where bf16 noise may flip the GPU's choice).
struct CpuGreedy {
  std::vector<int32_t> tokens;
  std::vector<float> gap, top;
};

CpuGreedy cpu_greedy(LlamaModel& model, const GenRequest& r) {
  const LlamaConfig& c = model.config();
  KVCache cache(c.n_layer, kCtx, c.kv_dim());
  std::vector<float> logits(c.n_vocab);
  std::vector<int32_t> history = r.prompt;
  model.forward(r.prompt.data(), int64_t(r.prompt.size()), cache, logits.data());
  CpuGreedy out;
  for (int i = 0; i < r.max_tokens; ++i) {
    std::vector<float> l = logits;
    const float pen = r.sampling.repeat_penalty;
    if (pen != 1.0f) {
      std::vector<bool> done(c.n_vocab, false);
      const size_t from = history.size() > size_t(r.sampling.repeat_last_n) ? history.size() - r.sampling.repeat_last_n : 0;
      for (size_t k = from; k < history.size(); ++k) {
        const int32_t t = history[k];
        if (done[t]) continue;
        done[t] = true;
        l[t] = l[t] > 0 ? l[t] / pen : l[t] * pen;
      }
    }
    const int32_t best = int32_t(std::max_element(l.begin(), l.end()) - l.begin());
    float second = -INFINITY;
    for (int64_t v = 0; v < c.n_vocab; ++v)
      if (v != best) second = std::max(second, l[v]);
    out.tokens.push_back(best);
    out.gap.push_back(l[best] - second);
    out.top.push_back(l[best]);
    history.push_back(best);
    model.forward(&best, 1, cache, logits.data());
  }
  return out;
}

// How many leading tokens agree; a difference is allowed only at a CPU near-tie.
size_t expect_greedy_match(const std::vector<int32_t>& got, const CpuGreedy& want, const std::string& what) {
  EXPECT_EQ(got.size(), want.tokens.size()) << what;
  size_t i = 0;
  while (i < got.size() && i < want.tokens.size() && got[i] == want.tokens[i]) ++i;
  if (i < got.size() && i < want.tokens.size()) {
    EXPECT_LT(want.gap[i], 0.02f * std::max(1.0f, std::fabs(want.top[i]))) << what << ": diverged at token " << i;
  }
  return i;
}

}  // namespace

TEST_F(ServeSchedulerGpu, DecodeSlotsMatchCpuForAnySlotSet) {
  // Four sequences of different lengths; decode steps over slot lists that are partial,
  // unordered, single, and full: each row's logits are its own sequence's (CPU forward() per
  // sequence), each draw is its row's argmax (greedy by default), and only the listed
  // sequences advance.
  const LlamaConfig& c = cpu->config();
  auto gpu = upload(4);
  std::vector<std::unique_ptr<KVCache>> caches;
  std::vector<float> ref(c.n_vocab);
  for (int s = 0; s < 4; ++s) {
    const auto p = prompt_of(2 + 7 * s, s, c.n_vocab);
    gpu->forward(s, p.data(), int64_t(p.size()), nullptr);
    caches.push_back(std::make_unique<KVCache>(c.n_layer, kCtx, c.kv_dim()));
    cpu->forward(p.data(), int64_t(p.size()), *caches[s], ref.data());
  }
  const std::vector<std::vector<int32_t>> lists = {{0, 1, 3}, {3, 0}, {2}, {0, 1, 2, 3}, {1, 3}, {0, 1, 3}};
  for (size_t step = 0; step < lists.size(); ++step) {
    const auto& slots = lists[step];
    const int n = int(slots.size());
    std::vector<int32_t> tokens(n), next(n, -1);
    for (int i = 0; i < n; ++i) tokens[i] = int32_t((step * 53 + slots[i] * 11 + 1) % c.n_vocab);
    std::vector<int64_t> before(4);
    for (int s = 0; s < 4; ++s) before[s] = gpu->n_past(s);
    gpu->decode_slots(slots.data(), tokens.data(), n, next.data());
    std::vector<float> got(size_t(n) * c.n_vocab);
    gpu->last_logits(got.data(), n);
    for (int i = 0; i < n; ++i) {
      const int s = slots[i];
      cpu->forward(&tokens[i], 1, *caches[s], ref.data());
      const float* row = got.data() + size_t(i) * c.n_vocab;
      EXPECT_LT(max_rel_diff(row, ref.data(), c.n_vocab), 0.03) << "step " << step << " slot " << s;
      EXPECT_EQ(next[i], int32_t(std::max_element(row, row + c.n_vocab) - row)) << "step " << step << " slot " << s;
    }
    for (int s = 0; s < 4; ++s) {
      const bool listed = std::find(slots.begin(), slots.end(), s) != slots.end();
      EXPECT_EQ(gpu->n_past(s), before[s] + (listed ? 1 : 0)) << "step " << step << " slot " << s;
      EXPECT_EQ(gpu->n_past(s), caches[s]->n_past);
    }
  }
}

TEST_F(ServeSchedulerGpu, ConcurrentGreedyRequestsMatchCpuAlone) {
  // Five requests on four slots with prompts of 3, 17, 1, 40 and 9 tokens, joining at
  // different steps (prefill chunk 8: the 40-token prompt takes five steps while the others
  // decode); request 1 ends early so the decode batch becomes slots {0, 2, 3}, and request 4
  // then reuses slot 1. Request 3 has a repetition penalty: drawn on the host from the GPU's
  // logits. Each result equals the CPU's greedy tokens for the request alone.
  const int64_t V = cpu->config().n_vocab;
  auto gpu = upload(4);
  std::vector<GenRequest> reqs = {greedy(prompt_of(3, 0, V), 20), greedy(prompt_of(17, 1, V), 5),
                                  greedy(prompt_of(1, 2, V), 24), greedy(prompt_of(40, 3, V), 14),
                                  greedy(prompt_of(9, 4, V), 10)};
  reqs[3].sampling.repeat_penalty = 1.5f;
  reqs[3].sampling.repeat_last_n = 16;
  Scheduler sched(*gpu, tok, {.parallel = 4, .n_ctx = kCtx, .prefill_chunk = 8});
  std::vector<std::shared_ptr<Job>> jobs;
  for (size_t i = 0; i < reqs.size(); ++i) {
    jobs.push_back(sched.try_submit(reqs[i]));
    ASSERT_TRUE(jobs.back());
    for (size_t k = 0; k < i; ++k) sched.step();  // later requests arrive mid-flight
  }
  EXPECT_GE(sched.stats().active, 3);
  drain(sched, jobs);
  size_t compared = 0, total = 0;
  uint64_t generated = 0;
  for (size_t i = 0; i < reqs.size(); ++i) {
    const JobResult& r = jobs[i]->result();
    EXPECT_EQ(r.finish_reason, "length") << "request " << i << ": " << r.error;
    EXPECT_EQ(r.prompt_tokens, int(reqs[i].prompt.size()));
    compared += expect_greedy_match(r.tokens, cpu_greedy(*cpu, reqs[i]), "request " + std::to_string(i));
    total += size_t(reqs[i].max_tokens);
    generated += r.tokens.size();
  }
  EXPECT_GE(2 * compared, total);  // near-ties are rare: most tokens were compared
  EXPECT_EQ(sched.stats().generated, generated);
  EXPECT_EQ(sched.stats().active, 0);
}

TEST_F(ServeSchedulerGpu, CancelFreesTheSlot) {
  // Two slots: a long request is cancelled mid-stream; the queued request takes its slot (the
  // GPU sequence rewound to 0) and its tokens are the CPU's for it alone, as are the other's.
  const int64_t V = cpu->config().n_vocab;
  auto gpu = upload(2);
  Scheduler sched(*gpu, tok, {.parallel = 2, .n_ctx = kCtx, .prefill_chunk = 16});
  const GenRequest other = greedy(prompt_of(6, 7, V), 12), queued = greedy(prompt_of(11, 8, V), 10);
  auto a = sched.try_submit(greedy(prompt_of(5, 6, V), 100));
  auto b = sched.try_submit(other);
  auto c = sched.try_submit(queued);
  for (int i = 0; i < 6; ++i) sched.step();
  EXPECT_EQ(sched.stats().active, 2);
  EXPECT_EQ(sched.stats().queued, 1);
  a->cancel();
  drain(sched, {a, b, c});
  EXPECT_EQ(a->result().finish_reason, "cancelled");
  EXPECT_LT(a->result().tokens.size(), 100u);
  EXPECT_EQ(b->result().finish_reason, "length");
  EXPECT_EQ(c->result().finish_reason, "length");
  expect_greedy_match(b->result().tokens, cpu_greedy(*cpu, other), "running request");
  expect_greedy_match(c->result().tokens, cpu_greedy(*cpu, queued), "request in the freed slot");
  EXPECT_EQ(sched.stats().active, 0);
  EXPECT_EQ(sched.stats().queued, 0);
}

TEST_F(ServeSchedulerGpu, ServerThreadOnTheGpu) {
  // start(): steps on the scheduler's own thread (the engine binds the device there).
  const int64_t V = cpu->config().n_vocab;
  auto gpu = upload(3);
  std::vector<GenRequest> reqs;
  for (int i = 0; i < 4; ++i) reqs.push_back(greedy(prompt_of(4 + 5 * i, 10 + i, V), 8));
  Scheduler sched(*gpu, tok, {.parallel = 3, .n_ctx = kCtx});
  sched.start();
  std::vector<std::shared_ptr<Job>> jobs;
  for (const auto& r : reqs) jobs.push_back(sched.try_submit(r));
  for (size_t i = 0; i < jobs.size(); ++i) {
    std::string text;
    while (!jobs[i]->wait(std::chrono::milliseconds(100), text)) {
    }
    EXPECT_EQ(jobs[i]->result().finish_reason, "length") << jobs[i]->result().error;
    EXPECT_EQ(text, jobs[i]->result().text);
  }
  sched.stop();
  for (size_t i = 0; i < jobs.size(); ++i)
    expect_greedy_match(jobs[i]->result().tokens, cpu_greedy(*cpu, reqs[i]), "request " + std::to_string(i));
}

TEST_F(ServeSchedulerGpu, SpeculativeGreedyRequestsMatchCpuAlone) {
  // serve --spec --device cuda: one slot on the GPU, random Medusa / Hydra / Hydra++ heads on
  // mc-15, two greedy requests (the second queued until the first ends). Exact acceptance, so
  // each result is the CPU's greedy tokens for the request alone, up to near-ties.
  const int64_t V = cpu->config().n_vocab;
  auto gpu = upload(1);
  const std::vector<GenRequest> reqs = {greedy(prompt_of(5, 11, V), 20), greedy(prompt_of(30, 12, V), 16)};
  for (auto arch : {spec::HeadArch::Medusa, spec::HeadArch::Hydra, spec::HeadArch::HydraPlusPlus}) {
    auto heads = spec_test::random_heads(arch, 4, arch == spec::HeadArch::HydraPlusPlus ? 2 : 1, *cpu, 7);
    Scheduler sched(make_gpu_spec_engine(*cpu, *gpu, std::move(heads), spec::DraftTree::load("mc-15")), tok,
                    {.parallel = 1, .n_ctx = kCtx, .prefill_chunk = 8});
    std::vector<std::shared_ptr<Job>> jobs;
    for (const auto& r : reqs) jobs.push_back(sched.try_submit(r));
    sched.step();
    EXPECT_EQ(sched.stats().active, 1);
    EXPECT_EQ(sched.stats().queued, 1);
    drain(sched, jobs);
    for (size_t i = 0; i < reqs.size(); ++i) {
      const std::string what = std::string(spec::head_arch_name(arch)) + " request " + std::to_string(i);
      EXPECT_EQ(jobs[i]->result().finish_reason, "length") << what << ": " << jobs[i]->result().error;
      expect_greedy_match(jobs[i]->result().tokens, cpu_greedy(*cpu, reqs[i]), what);
    }
  }
  // Heads for another vocabulary are refused.
  LlamaConfig other = cpu->config();
  other.n_vocab += 1;
  LlamaModel wrong = LlamaModel::random(other, 3, WeightMode::Reference);
  EXPECT_THROW(make_gpu_spec_engine(*cpu, *gpu, spec_test::random_heads(spec::HeadArch::Hydra, 4, 1, wrong, 7),
                                    spec::DraftTree::load("mc-15")),
               ik::Error);
}
