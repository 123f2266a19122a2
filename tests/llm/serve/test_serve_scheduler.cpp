// The continuous-batching scheduler on the tiny random Llama: a request's output must not
// depend on what else is in the batch, and must equal Session's single-sequence generation
// (an independent code path: forward() per sequence instead of the mixed forward_ragged()).
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>

#include "core/error.hpp"
#include "llm/runtime/session.hpp"
#include "llm/serve/scheduler.hpp"
#include "drain.hpp"

using namespace ik::llm;
using namespace ik::llm::serve;

namespace {

const std::string kDir = IK_SOURCE_DIR "/tests/io/fixtures/tiny_llama";

// One OpenMP thread: the tiny model gains nothing from more, and spinning threads on a busy
// CI machine cost seconds.
struct Tiny {
  Tiny() { omp_set_num_threads(1); }
  LlamaModel model = LlamaModel::from_hf_dir(kDir);
  Tokenizer tok = Tokenizer::from_hf_json(kDir + "/tokenizer.json", kDir + "/tokenizer_config.json");
};

Tiny& tiny() {
  static Tiny t;
  return t;
}

GenRequest greedy(const std::string& prompt, int max_tokens) {
  GenRequest r;
  r.prompt = tiny().tok.encode(prompt, true, false);
  r.max_tokens = max_tokens;
  r.stop_at_eos = false;
  r.sampling.temperature = 0;
  return r;
}

// Session's answer for the same request (the reference).
GenerateResult reference(const GenRequest& r, int64_t n_ctx) {
  Session s(tiny().model, tiny().tok, n_ctx);
  s.set_context(r.prompt);
  GenerateOptions o;
  o.max_tokens = r.max_tokens;
  o.stop = r.stop;
  o.stop_at_eos = r.stop_at_eos;
  o.sampling = r.sampling;
  return s.generate(o);
}

const std::vector<std::string> kPrompts = {
    "The quick brown fox", "Once upon a time there was a very long story about many things and places",
    "Hello", "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20", "a b"};

}  // namespace

TEST(ServeScheduler, RaggedForwardEqualsSeparateForwards) {
  // forward_ragged over three sequences (a 4-token prompt chunk on an empty cache, one decode
  // token after 3 cached tokens, a 6-token chunk after 2): the logits of each run's last token
  // and the caches equal those of forward() per sequence (an independent path: one sequence,
  // K/V written straight into the cache). F32 weights: sgemm's blocking depends on M, so equal
  // to a few ulps, not bit for bit.
  LlamaModel& model = tiny().model;
  const auto& c = model.config();
  const std::vector<std::vector<int32_t>> before = {{}, {5, 9, 2}, {7, 1}};
  const std::vector<std::vector<int32_t>> runs = {{3, 4, 8, 1}, {6}, {2, 2, 9, 4, 11, 5}};
  std::vector<std::unique_ptr<KVCache>> mine, ref;
  std::vector<float> want(3 * c.n_vocab), got(2 * c.n_vocab);
  for (int i = 0; i < 3; ++i) {
    mine.push_back(std::make_unique<KVCache>(c.n_layer, 32, c.kv_dim()));
    ref.push_back(std::make_unique<KVCache>(c.n_layer, 32, c.kv_dim()));
    if (!before[i].empty()) {
      model.forward(before[i].data(), int64_t(before[i].size()), *mine[i], nullptr);
      model.forward(before[i].data(), int64_t(before[i].size()), *ref[i], nullptr);
    }
    model.forward(runs[i].data(), int64_t(runs[i].size()), *ref[i], want.data() + i * c.n_vocab);
  }
  std::vector<int32_t> tokens;
  std::vector<int64_t> rows;
  for (const auto& r : runs) {
    tokens.insert(tokens.end(), r.begin(), r.end());
    rows.push_back(int64_t(r.size()));
  }
  KVCache* caches[3] = {mine[0].get(), mine[1].get(), mine[2].get()};
  const uint8_t wants[3] = {1, 0, 1};  // the middle sequence's logits are not needed
  model.forward_ragged(tokens.data(), rows.data(), 3, caches, got.data(), wants);
  float scale = 0;
  for (float w : want) scale = std::max(scale, std::fabs(w));
  ASSERT_GT(scale, 0.1f);  // the tolerance below is small against the logits
  for (int64_t v = 0; v < c.n_vocab; ++v) {
    EXPECT_NEAR(got[v], want[v], 1e-4f) << v;
    EXPECT_NEAR(got[c.n_vocab + v], want[2 * c.n_vocab + v], 1e-4f) << v;
  }
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(mine[i]->n_past, ref[i]->n_past);
    for (int64_t l = 0; l < c.n_layer; ++l)
      for (int64_t k = 0; k < mine[i]->n_past * c.kv_dim(); ++k) {
        ASSERT_NEAR(mine[i]->k(l)[k], ref[i]->k(l)[k], 1e-4f) << "seq " << i << " layer " << l;
        ASSERT_NEAR(mine[i]->v(l)[k], ref[i]->v(l)[k], 1e-4f) << "seq " << i << " layer " << l;
      }
  }
}

TEST(ServeScheduler, AloneEqualsSession) {
  SchedulerOptions o{.parallel = 1, .n_ctx = 128, .prefill_chunk = 7};
  Scheduler sched(tiny().model, tiny().tok, o);
  for (const auto& p : kPrompts) {
    const GenRequest r = greedy(p, 20);
    auto job = sched.try_submit(r);
    const auto text = drain(sched, {job});
    const auto ref = reference(r, o.n_ctx);
    EXPECT_EQ(job->result().tokens, ref.tokens) << p;
    EXPECT_EQ(text[0], ref.text) << p;
    EXPECT_EQ(job->result().text, ref.text);
    EXPECT_EQ(job->result().finish_reason, "length");
    EXPECT_EQ(job->result().prompt_tokens, int(r.prompt.size()));
  }
}

TEST(ServeScheduler, BatchedEqualsAlone) {
  // Greedy and seeded sampling: each sequence's result is the same alone and in a batch
  // where others join and leave at different steps (3 slots, 5 requests, staggered).
  for (float temp : {0.0f, 0.9f}) {
    std::vector<GenRequest> reqs;
    for (size_t i = 0; i < kPrompts.size(); ++i) {
      GenRequest r = greedy(kPrompts[i], 10 + 7 * int(i));
      r.sampling.temperature = temp;
      r.sampling.top_k = 0;
      r.sampling.min_p = 0;
      r.sampling.seed = 100 + i;
      reqs.push_back(r);
    }
    std::vector<JobResult> alone;
    {
      Scheduler sched(tiny().model, tiny().tok, {.parallel = 1, .n_ctx = 128, .prefill_chunk = 5});
      for (const auto& r : reqs) {
        auto job = sched.try_submit(r);
        drain(sched, {job});
        alone.push_back(job->result());
      }
    }
    Scheduler sched(tiny().model, tiny().tok, {.parallel = 3, .n_ctx = 128, .prefill_chunk = 5});
    std::vector<std::shared_ptr<Job>> jobs;
    for (size_t i = 0; i < reqs.size(); ++i) {
      jobs.push_back(sched.try_submit(reqs[i]));
      for (size_t k = 0; k < i; ++k) sched.step();  // later requests arrive mid-flight
    }
    EXPECT_GE(sched.stats().active, 2);
    drain(sched, jobs);
    for (size_t i = 0; i < reqs.size(); ++i) {
      EXPECT_EQ(jobs[i]->result().tokens, alone[i].tokens) << "temp " << temp << " request " << i;
      EXPECT_EQ(jobs[i]->result().text, alone[i].text);
      EXPECT_EQ(int(jobs[i]->result().tokens.size()), reqs[i].max_tokens);
    }
    EXPECT_EQ(sched.stats().active, 0);
  }
}

TEST(ServeScheduler, StopStringsMatchSession) {
  const GenRequest plain = greedy(kPrompts[1], 30);
  const auto full = reference(plain, 128);
  ASSERT_GT(full.text.size(), 12u);
  GenRequest r = plain;
  r.stop = {full.text.substr(full.text.size() / 2, 3), "\x01never"};
  Scheduler sched(tiny().model, tiny().tok, {.parallel = 2, .n_ctx = 128});
  auto other = sched.try_submit(greedy(kPrompts[0], 30));
  auto job = sched.try_submit(r);
  const auto text = drain(sched, {job, other});
  const auto ref = reference(r, 128);
  EXPECT_EQ(ref.stop_reason, "stop");
  EXPECT_EQ(job->result().finish_reason, "stop");
  EXPECT_EQ(text[0], ref.text);
  EXPECT_EQ(full.text.substr(0, ref.text.size()), ref.text);
  EXPECT_EQ(text[0].find(r.stop[0]), std::string::npos);
}

TEST(ServeScheduler, ContextFullEndsWithLength) {
  const int64_t n_ctx = 64;
  GenRequest r = greedy(kPrompts[3], -1);
  ASSERT_LT(int64_t(r.prompt.size()), n_ctx);
  Scheduler sched(tiny().model, tiny().tok, {.parallel = 2, .n_ctx = n_ctx});
  auto job = sched.try_submit(r);
  drain(sched, {job});
  const auto ref = reference(r, n_ctx);
  EXPECT_EQ(job->result().finish_reason, "length");
  EXPECT_EQ(ref.stop_reason, "context");
  EXPECT_EQ(job->result().tokens, ref.tokens);
  EXPECT_EQ(int64_t(r.prompt.size() + job->result().tokens.size()), n_ctx);
}

TEST(ServeScheduler, PrefillDoesNotStarveRunningStreams) {
  // A running stream gains one token per step while a long prompt is prefilled in chunks.
  Scheduler sched(tiny().model, tiny().tok, {.parallel = 2, .n_ctx = 128, .prefill_chunk = 4});
  auto running = sched.try_submit(greedy("Hello", 100));
  for (int i = 0; i < 3; ++i) sched.step();
  std::string sink;
  GenRequest long_prompt = greedy(kPrompts[1] + " " + kPrompts[3], 5);
  const size_t chunks = (long_prompt.prompt.size() + 3) / 4;
  ASSERT_GE(chunks, 5u);
  auto late = sched.try_submit(long_prompt);
  running->wait(std::chrono::milliseconds(0), sink);
  const auto tokens_before = sched.stats().generated;
  for (size_t i = 0; i < chunks; ++i) sched.step();
  // Each step: one chunk of the long prompt plus one token of the running stream, in one
  // forward pass; the last chunk also samples the late request's first token.
  EXPECT_EQ(sched.stats().generated - tokens_before, chunks + 1);
  EXPECT_EQ(sched.stats().active, 2);
  drain(sched, {running, late});
  EXPECT_EQ(late->result().tokens.size(), 5u);
}

TEST(ServeScheduler, PromptsPrefilledTogetherEqualOneAtATime) {
  // Five requests arrive at once: one step prefills every prompt in a single forward pass
  // (with nothing else running) and samples each first token; the results are those of each
  // request run alone. Greedy and seeded sampling.
  for (float temp : {0.0f, 0.9f}) {
    std::vector<GenRequest> reqs;
    int64_t prompt_tokens = 0;
    for (size_t i = 0; i < kPrompts.size(); ++i) {
      GenRequest r = greedy(kPrompts[i], 6 + 3 * int(i));
      r.sampling.temperature = temp;
      r.sampling.seed = 7 + i;
      prompt_tokens += int64_t(r.prompt.size());
      reqs.push_back(r);
    }
    std::vector<JobResult> alone;
    {
      Scheduler sched(tiny().model, tiny().tok, {.parallel = 1, .n_ctx = 128});
      for (const auto& r : reqs) {
        auto job = sched.try_submit(r);
        drain(sched, {job});
        alone.push_back(job->result());
      }
    }
    Scheduler sched(tiny().model, tiny().tok, {.parallel = 5, .n_ctx = 128, .prefill_chunk = prompt_tokens});
    std::vector<std::shared_ptr<Job>> jobs;
    for (const auto& r : reqs) jobs.push_back(sched.try_submit(r));
    sched.step();
    EXPECT_EQ(sched.stats().steps, 1u);
    EXPECT_EQ(sched.stats().generated, reqs.size());  // every prompt done in that one step
    drain(sched, jobs);
    // Each later step decodes all five together: the longest request needs max_tokens steps.
    EXPECT_EQ(sched.stats().steps, uint64_t(reqs.back().max_tokens));
    for (size_t i = 0; i < reqs.size(); ++i) {
      EXPECT_EQ(jobs[i]->result().tokens, alone[i].tokens) << "temp " << temp << " request " << i;
      EXPECT_EQ(jobs[i]->result().text, alone[i].text);
    }
  }
}

TEST(ServeScheduler, PrefillBudgetGoesToTheOldestPrompt) {
  // A budget of 6 prompt tokens per step with two waiting prompts: the older one is prefilled
  // first (its first token comes before the newer one's), the newer one takes the rest.
  const GenRequest older = greedy(kPrompts[1], 3), newer = greedy(kPrompts[3], 3);
  const int64_t budget = 6;
  Scheduler sched(tiny().model, tiny().tok, {.parallel = 2, .n_ctx = 128, .prefill_chunk = budget});
  auto a = sched.try_submit(older);
  auto b = sched.try_submit(newer);
  const int64_t steps_a = (int64_t(older.prompt.size()) + budget - 1) / budget;
  for (int64_t i = 0; i + 1 < steps_a; ++i) sched.step();
  EXPECT_EQ(sched.stats().generated, 0u);
  sched.step();  // the older prompt's last chunk: its first token
  EXPECT_EQ(sched.stats().generated, 1u);
  drain(sched, {a, b});
  EXPECT_EQ(a->result().tokens, reference(older, 128).tokens);
  EXPECT_EQ(b->result().tokens, reference(newer, 128).tokens);
}

TEST(ServeScheduler, CancelFreesTheSlot) {
  Scheduler sched(tiny().model, tiny().tok, {.parallel = 1, .n_ctx = 128});
  auto a = sched.try_submit(greedy("Hello", 100));
  auto b = sched.try_submit(greedy("a b", 3));
  for (int i = 0; i < 4; ++i) sched.step();
  EXPECT_EQ(sched.stats().active, 1);
  EXPECT_EQ(sched.stats().queued, 1);
  a->cancel();
  drain(sched, {a, b});
  EXPECT_EQ(a->result().finish_reason, "cancelled");
  EXPECT_LT(a->result().tokens.size(), 100u);
  EXPECT_EQ(b->result().finish_reason, "length");
  EXPECT_EQ(b->result().tokens.size(), 3u);
  EXPECT_EQ(sched.stats().active, 0);
}

TEST(ServeScheduler, QueueLimitAndBadRequests) {
  Scheduler sched(tiny().model, tiny().tok, {.parallel = 1, .n_ctx = 32, .max_queue = 2});
  EXPECT_TRUE(sched.try_submit(greedy("a", 2)));
  EXPECT_TRUE(sched.try_submit(greedy("b", 2)));
  EXPECT_FALSE(sched.try_submit(greedy("c", 2)));  // full
  GenRequest too_long = greedy(kPrompts[3] + kPrompts[3], 2);
  EXPECT_THROW(sched.try_submit(too_long), ik::Error);
  GenRequest empty = greedy("", 2);
  empty.prompt.clear();
  EXPECT_THROW(sched.try_submit(empty), ik::Error);
  GenRequest bad_temp = greedy("a", 2);
  bad_temp.sampling.temperature = -1;
  EXPECT_THROW(sched.try_submit(bad_temp), ik::Error);
}

TEST(ServeScheduler, ThreadServesConcurrentSubmitters) {
  std::vector<std::string> expected;  // computed first: the model is not shared across threads
  for (const auto& p : kPrompts) expected.push_back(reference(greedy(p, 12), 128).text);
  Scheduler sched(tiny().model, tiny().tok, {.parallel = 4, .n_ctx = 128});
  sched.start();
  std::vector<std::shared_ptr<Job>> jobs;
  for (const auto& p : kPrompts) jobs.push_back(sched.try_submit(greedy(p, 12)));
  for (size_t i = 0; i < jobs.size(); ++i) {
    std::string text;
    while (!jobs[i]->wait(std::chrono::milliseconds(100), text)) {
    }
    EXPECT_EQ(text, expected[i]);
  }
  sched.stop();
  // After stop, a queued job ends as cancelled instead of hanging.
  auto late = sched.try_submit(greedy("a", 2));
  sched.stop();
  std::string t;
  EXPECT_TRUE(late->wait(std::chrono::milliseconds(0), t));
  EXPECT_EQ(late->result().finish_reason, "cancelled");
}
