// `inferkit serve --spec`: the scheduler over the speculative engine (one SpecDecoder per slot).
// With greedy requests every request's tokens and text equal the plain scheduler's (an
// independent path: forward_ragged, one token per step), with several requests in flight, for
// Medusa/Hydra/Hydra++ heads and for an oracle drafter whose long accepted paths the scheduler
// must cut at max_tokens and at stop strings.
#include <gtest/gtest.h>

#include <map>

#include "../spec/spec_test_util.hpp"
#include "core/error.hpp"
#include "core/rng.hpp"
#include "llm/serve/scheduler.hpp"
#include "drain.hpp"
#include "llm/spec/decode.hpp"

using namespace ik;
using namespace ik::llm;
using namespace ik::llm::serve;

namespace {

// The tiny fixture's shape with seeded random weights and an untied output matrix (the fixture
// itself answers every prompt with one repeated token: see tests/llm/spec/test_chat.cpp).
LlamaModel& tiny() {
  static LlamaModel m = [] {
    LlamaConfig cfg = LlamaModel::from_hf_dir(spec_test::kTinyDir).config();
    cfg.tied_embeddings = false;
    return LlamaModel::random(cfg, 11);
  }();
  return m;
}

const Tokenizer& tok() {
  static Tokenizer t =
      Tokenizer::from_hf_json(spec_test::kTinyDir + "/tokenizer.json", spec_test::kTinyDir + "/tokenizer_config.json");
  return t;
}

const int64_t kCtx = 96;
const std::vector<std::string> kPrompts = {"The quick brown fox", "Once upon a time there was a story about places",
                                           "1 2 3 4 5 6 7"};

GenRequest greedy(const std::string& prompt, int max_tokens) {
  GenRequest r;
  r.prompt = tok().encode(prompt, true, false);
  r.max_tokens = max_tokens;
  r.stop_at_eos = false;
  r.sampling.temperature = 0;
  return r;
}

// The requests submitted together (later ones a step apart) on a scheduler; their results.
std::vector<JobResult> run_all(Scheduler& sched, const std::vector<GenRequest>& reqs, std::vector<std::string>* streamed,
                             uint64_t* steps = nullptr) {
  std::vector<std::shared_ptr<Job>> jobs;
  for (const auto& r : reqs) {
    jobs.push_back(sched.try_submit(r));
    sched.step();
  }
  auto text = drain(sched, jobs);
  if (streamed) *streamed = text;
  if (steps) *steps = sched.stats().steps;
  std::vector<JobResult> out;
  for (const auto& j : jobs) out.push_back(j->result());
  return out;
}

std::vector<JobResult> plain(const std::vector<GenRequest>& reqs, std::vector<std::string>* streamed = nullptr,
                             uint64_t* steps = nullptr, int64_t n_ctx = kCtx) {
  Scheduler sched(tiny(), tok(), {.parallel = 3, .n_ctx = n_ctx, .prefill_chunk = 16});
  return run_all(sched, reqs, streamed, steps);
}

// Knows every request's plain greedy continuation: finds the one whose token at the current
// position is the root, and proposes its next tokens on the rank-0 path (missing every `miss`-th
// call), random tokens elsewhere. It never sees the tokens, only counts positions.
class OracleDrafter : public spec::Drafter {
 public:
  OracleDrafter(std::vector<std::vector<int32_t>> truths, int miss) : truths_(std::move(truths)), miss_(miss) {}
  void reset() override {
    seen_ = 0;
    truth_ = nullptr;
  }
  void observe(const float*, int64_t m) override { seen_ += m; }
  void propose(const spec::DraftTree& tree, int32_t* tokens) override {
    ++calls_;
    // The request's continuation: the one followed so far while it matches, else the first
    // that matches (the requests' outputs share tokens).
    auto matches = [&](const std::vector<int32_t>* t) {
      return t && seen_ < int64_t(t->size()) && (*t)[size_t(seen_)] == tokens[0];
    };
    if (!matches(truth_)) {
      truth_ = nullptr;
      for (const auto& t : truths_)
        if (!truth_ && matches(&t)) truth_ = &t;
    }
    const std::vector<int32_t>* truth = truth_;
    for (int n = 1; n < tree.n_nodes(); ++n) {
      bool on_zero_path = true;
      for (int a = n; a > 0; a = tree.parent[a]) on_zero_path &= tree.rank[a] == 0;
      const int64_t idx = seen_ + tree.depth[n];
      const bool hit = truth && on_zero_path && idx < int64_t(truth->size()) && calls_ % miss_ != 0;
      tokens[n] = hit ? (*truth)[size_t(idx)] : int32_t(rng_.below(uint64_t(tiny().config().n_vocab)));
    }
  }

 private:
  std::vector<std::vector<int32_t>> truths_;
  const std::vector<int32_t>* truth_ = nullptr;
  int64_t seen_ = 0;
  int miss_, calls_ = 0;
  Rng rng_{5, 0};
};

// A scheduler on the speculative engine with oracle drafters that know `reqs`' plain outputs.
std::unique_ptr<Scheduler> oracle_scheduler(const std::vector<GenRequest>& reqs, const std::vector<JobResult>& want,
                                            const char* tree, int miss, int64_t n_ctx = kCtx) {
  std::vector<std::vector<int32_t>> truths;
  for (size_t i = 0; i < reqs.size(); ++i) {
    truths.push_back(reqs[i].prompt);
    truths.back().insert(truths.back().end(), want[i].tokens.begin(), want[i].tokens.end());
  }
  auto engine = make_spec_engine(tiny(), spec::DraftTree::load(tree), 3, n_ctx,
                                 [&] { return std::make_unique<OracleDrafter>(truths, miss); });
  return std::make_unique<Scheduler>(std::move(engine), tok(),
                                     SchedulerOptions{.parallel = 3, .n_ctx = n_ctx, .prefill_chunk = 16});
}

std::vector<GenRequest> three_requests(int base_tokens) {
  std::vector<GenRequest> reqs;
  for (size_t i = 0; i < kPrompts.size(); ++i) reqs.push_back(greedy(kPrompts[i], base_tokens + 5 * int(i)));
  return reqs;
}

}  // namespace

TEST(ServeSpec, HeadsGreedyEqualsPlainScheduler) {
  const auto reqs = three_requests(12);
  std::vector<std::string> want_text;
  const auto want = plain(reqs, &want_text);
  // Prefill chunks of 16 tokens, and of 1 (every prompt's last token is then a 1-token run,
  // which the speculative engine verifies like a decode run).
  for (int64_t chunk : {16, 1})
  for (auto arch : {spec::HeadArch::Medusa, spec::HeadArch::Hydra, spec::HeadArch::HydraPlusPlus}) {
    auto heads = spec_test::random_heads(arch, 4, arch == spec::HeadArch::HydraPlusPlus ? 4 : 1, tiny(), 3);
    Scheduler sched(make_spec_engine(tiny(), std::move(heads), spec::DraftTree::load("mc-15"), 3, kCtx), tok(),
                    {.parallel = 3, .n_ctx = kCtx, .prefill_chunk = chunk});
    std::vector<std::string> text;
    const auto got = run_all(sched, reqs, &text);
    for (size_t i = 0; i < reqs.size(); ++i) {
      const std::string where =
          std::string(spec::head_arch_name(arch)) + " chunk " + std::to_string(chunk) + " request " + std::to_string(i);
      EXPECT_EQ(got[i].tokens, want[i].tokens) << where;
      EXPECT_EQ(got[i].text, want[i].text) << where;
      EXPECT_EQ(text[i], want_text[i]) << where;
      EXPECT_EQ(got[i].finish_reason, "length") << where;
      EXPECT_EQ(int(got[i].tokens.size()), reqs[i].max_tokens) << where;
    }
    EXPECT_EQ(sched.stats().active, 0);
    EXPECT_EQ(sched.stats().generated, uint64_t(12 + 17 + 22));
  }
}

TEST(ServeSpec, LongAcceptancesAreCutAtMaxTokens) {
  // The oracle's paths are accepted several tokens at a time; the limits (12, 17, 22 tokens)
  // fall inside a step's accepted path, and the scheduler must stop exactly there.
  const auto reqs = three_requests(12);
  auto longer = reqs;
  for (auto& r : longer) r.max_tokens += 8;  // the oracle knows past the limit
  const auto truth = plain(longer);
  uint64_t plain_steps = 0;
  const auto want = plain(reqs, nullptr, &plain_steps);
  for (const char* tree : {"mc-15", "chain-5"})
    for (int miss : {3, 1000}) {
      auto sched = oracle_scheduler(longer, truth, tree, miss);
      std::vector<std::string> text;
      uint64_t steps = 0;
      const auto got = run_all(*sched, reqs, &text, &steps);
      int total = 0;
      for (size_t i = 0; i < reqs.size(); ++i) {
        const std::string where = std::string(tree) + " miss " + std::to_string(miss) + " request " + std::to_string(i);
        EXPECT_EQ(got[i].tokens, want[i].tokens) << where;
        EXPECT_EQ(text[i], want[i].text) << where;
        EXPECT_EQ(got[i].finish_reason, "length") << where;
        total += int(got[i].tokens.size());
      }
      // Far fewer steps than the plain scheduler's one per token of the longest request.
      const uint64_t most = miss == 1000 ? plain_steps / 2 : plain_steps * 2 / 3;
      EXPECT_LE(steps, most) << tree << " miss " << miss << " for " << total << " tokens";
    }
}

TEST(ServeSpec, StopStringsCutInsideAcceptedPaths) {
  auto reqs = three_requests(30);
  const auto full = plain(reqs);
  for (size_t i = 0; i < reqs.size(); ++i) {
    ASSERT_GT(full[i].text.size(), 12u);
    reqs[i].stop = {full[i].text.substr(full[i].text.size() / 2, 3), "\x01never"};
  }
  std::vector<std::string> want_text;
  const auto want = plain(reqs, &want_text);
  for (size_t i = 0; i < reqs.size(); ++i) ASSERT_EQ(want[i].finish_reason, "stop");
  auto sched = oracle_scheduler(reqs, full, "mc-15", 1000);
  std::vector<std::string> text;
  const auto got = run_all(*sched, reqs, &text);
  for (size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(got[i].finish_reason, "stop") << i;
    EXPECT_EQ(got[i].text, want[i].text) << i;
    EXPECT_EQ(text[i], want_text[i]) << i;
    EXPECT_EQ(text[i].find(reqs[i].stop[0]), std::string::npos) << i;
    EXPECT_EQ(got[i].tokens, want[i].tokens) << i;
  }
}

TEST(ServeSpec, FullContextEndsWhereThePlainSchedulerEnds) {
  // No max_tokens: the context ends each request. With up to 6 tokens accepted per step the
  // scheduler must still stop at the token where the plain one stops; six context sizes put
  // the end at every offset inside a chain-5 step.
  auto reqs = three_requests(0);
  for (auto& r : reqs) r.max_tokens = -1;
  for (int64_t n_ctx = 90; n_ctx < 96; ++n_ctx) {
    std::vector<std::string> want_text;
    const auto want = plain(reqs, &want_text, nullptr, n_ctx);
    auto sched = oracle_scheduler(reqs, want, "chain-5", 1000, n_ctx);
    std::vector<std::string> text;
    const auto got = run_all(*sched, reqs, &text);
    for (size_t i = 0; i < reqs.size(); ++i) {
      const std::string where = "context " + std::to_string(n_ctx) + " request " + std::to_string(i);
      EXPECT_EQ(want[i].finish_reason, "length");
      EXPECT_EQ(int64_t(reqs[i].prompt.size() + want[i].tokens.size()), n_ctx) << where;
      EXPECT_EQ(got[i].tokens, want[i].tokens) << where;
      EXPECT_EQ(text[i], want_text[i]) << where;
      EXPECT_EQ(got[i].finish_reason, "length") << where;
    }
  }
}

TEST(ServeSpec, CancelFreesTheSlot) {
  auto heads = spec_test::random_heads(spec::HeadArch::Hydra, 4, 1, tiny(), 4);
  Scheduler sched(make_spec_engine(tiny(), std::move(heads), spec::DraftTree::load("mc-15"), 1, kCtx), tok(),
                  {.parallel = 1, .n_ctx = kCtx, .prefill_chunk = 16});
  auto first = sched.try_submit(greedy(kPrompts[0], 40));
  auto second = sched.try_submit(greedy(kPrompts[1], 10));
  for (int i = 0; i < 4; ++i) sched.step();
  EXPECT_EQ(sched.stats().active, 1);
  EXPECT_EQ(sched.stats().queued, 1);
  first->cancel();
  const auto text = drain(sched, {first, second});
  EXPECT_EQ(first->result().finish_reason, "cancelled");
  EXPECT_LT(first->result().tokens.size(), 40u);
  // The freed slot served the queued request from a clean cache: the plain scheduler's answer.
  const auto want = plain({greedy(kPrompts[1], 10)});
  EXPECT_EQ(second->result().tokens, want[0].tokens);
  EXPECT_EQ(second->result().finish_reason, "length");
  EXPECT_EQ(sched.stats().active, 0);
}

TEST(ServeSpec, SampledRequestsRunAndRepetitionPenaltyIsRefused) {
  auto heads = spec_test::random_heads(spec::HeadArch::HydraPlusPlus, 4, 4, tiny(), 6);
  Scheduler sched(make_spec_engine(tiny(), std::move(heads), spec::DraftTree::load("mc-15"), 2, kCtx), tok(),
                  {.parallel = 2, .n_ctx = kCtx});
  GenRequest r = greedy(kPrompts[0], 20);
  r.sampling.temperature = 0.8f;
  r.sampling.seed = 7;
  const auto got = run_all(sched, {r, r}, nullptr);
  // The same seed on two slots: the same tokens (each slot's draws and cache are its own).
  EXPECT_EQ(got[0].tokens.size(), 20u);
  EXPECT_EQ(got[0].tokens, got[1].tokens);
  r.sampling.repeat_penalty = 1.1f;
  try {
    sched.try_submit(r);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("repetition penalty"), std::string::npos) << e.what();
  }
}
