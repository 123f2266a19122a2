// The key property: greedy speculative decoding reproduces plain greedy decoding token for
// token, for every head type, tree and prompt, with untrained random heads (few acceptances)
// and with an oracle drafter that knows the answer at some nodes (long acceptances, which
// exercise the KV compaction). Plus typical acceptance at a near-zero temperature.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "io/gguf.hpp"
#include "llm/spec/decode.hpp"
#include "spec_test_util.hpp"

using namespace ik;
using namespace ik::llm::spec;

namespace {

llm::LlamaModel& tiny() {
  static llm::LlamaModel m = llm::LlamaModel::from_hf_dir(spec_test::kTinyDir);
  return m;
}

std::vector<int32_t> random_prompt(Rng& rng, int64_t vocab, int len) {
  std::vector<int32_t> p;
  for (int i = 0; i < len; ++i) p.push_back(int32_t(3 + rng.below(uint64_t(vocab - 3))));
  return p;
}

TEST(SpecDecode, RandomHeadsReproduceGreedy) {
  llm::LlamaModel& model = tiny();
  const int64_t V = model.config().n_vocab, ctx = 128;
  Rng rng(1, 0);
  int cases = 0;
  for (HeadArch arch : {HeadArch::Medusa, HeadArch::Hydra, HeadArch::HydraPlusPlus}) {
    DraftHeads heads = spec_test::random_heads(arch, 4, arch == HeadArch::HydraPlusPlus ? 4 : 1, model, 21);
    for (const char* tree_name : {"mc_sim_7b_63", "chain-4", "top2-3", "mc-5"}) {
      HeadDrafter drafter(heads, model, ctx);
      SpecDecoder dec(model, drafter, DraftTree::load(tree_name), ctx);
      for (int trial = 0; trial < 3; ++trial) {
        const auto prompt = random_prompt(rng, V, 1 + int(rng.below(12)));
        const int n = 5 + int(rng.below(30));
        const auto expect = spec_test::plain_greedy(model, prompt, n, ctx);
        llm::spec::SpecOptions opt;
        opt.max_tokens = n;
        opt.sampling.temperature = 0;
        auto r = dec.generate(prompt, opt, {});
        ASSERT_EQ(r.tokens, expect) << head_arch_name(arch) << " " << tree_name << " trial " << trial;
        ++cases;
      }
    }
  }
  EXPECT_EQ(cases, 36);
}

TEST(SpecDecode, OracleDrafterLongAcceptancesReproduceGreedy) {
  llm::LlamaModel& model = tiny();
  const int64_t V = model.config().n_vocab, ctx = 128;
  Rng rng(2, 0);
  for (const char* tree_name : {"mc_sim_7b_63", "chain-6", "top2-4"}) {
    for (int miss : {3, 5, 1000}) {
      const auto prompt = random_prompt(rng, V, 2 + int(rng.below(10)));
      const int n = 40 + int(rng.below(40));
      const auto expect = spec_test::plain_greedy(model, prompt, n + 8, ctx);
      spec_test::OracleDrafter oracle(expect, V, miss);
      oracle.set_prompt_len(int64_t(prompt.size()));
      SpecDecoder dec(model, oracle, DraftTree::load(tree_name), ctx);
      llm::spec::SpecOptions opt;
      opt.max_tokens = n;
      opt.sampling.temperature = 0;
      auto r = dec.generate(prompt, opt, {});
      ASSERT_EQ(r.tokens, std::vector<int32_t>(expect.begin(), expect.begin() + n)) << tree_name << " miss " << miss;
      const double min_accepted = miss == 1000 ? 3.0 : 1.5;
      EXPECT_GT(r.mean_accepted(), min_accepted) << tree_name << " miss " << miss;
      // Typical acceptance at a near-zero temperature accepts only the argmax: same tokens.
      opt.sampling.temperature = 1e-4f;
      opt.sampling.top_k = 0;
      opt.sampling.top_p = 1;
      opt.sampling.min_p = 0;
      r = dec.generate(prompt, opt, {});
      ASSERT_EQ(r.tokens, std::vector<int32_t>(expect.begin(), expect.begin() + n)) << "typical " << tree_name;
      EXPECT_GT(r.mean_accepted(), min_accepted);
    }
  }
}

TEST(SpecDecode, StopsAtEosAndChecksContext) {
  llm::LlamaModel& model = tiny();
  const int64_t ctx = 128;
  const std::vector<int32_t> prompt = {5, 6, 7};
  const auto expect = spec_test::plain_greedy(model, prompt, 20, ctx);
  DraftHeads heads = spec_test::random_heads(HeadArch::Hydra, 4, 1, model, 3);
  HeadDrafter drafter(heads, model, ctx);
  SpecDecoder dec(model, drafter, DraftTree::load("mc-10"), ctx);
  llm::spec::SpecOptions opt;
  opt.max_tokens = 20;
  opt.sampling.temperature = 0;
  auto r = dec.generate(prompt, opt, {expect[6]});
  const size_t first = size_t(std::find(expect.begin(), expect.end(), expect[6]) - expect.begin());
  EXPECT_EQ(r.tokens, std::vector<int32_t>(expect.begin(), expect.begin() + first));
  EXPECT_EQ(r.stop_reason, "eos");
  SpecDecoder small(model, drafter, DraftTree::load("mc_sim_7b_63"), 64);
  EXPECT_THROW(small.generate(prompt, opt, {}), Error);  // 3 + 64 nodes > 64
  DraftHeads two = spec_test::random_heads(HeadArch::Medusa, 2, 1, model, 3);
  HeadDrafter shallow(two, model, ctx);
  SpecDecoder deep(model, shallow, DraftTree::load("chain-3"), ctx);
  EXPECT_THROW(deep.generate(prompt, opt, {}), Error);  // 3 deep, 2 heads
}

// The real model (when present): random heads, several prompts and lengths.
TEST(SpecDecode, SmolLM2ReproducesGreedy) {
  if (!std::filesystem::exists(spec_test::kSmol)) GTEST_SKIP() << "needs " << spec_test::kSmol;
  auto file = std::make_shared<const io::GgufFile>(io::GgufFile::open(spec_test::kSmol));
  llm::LlamaModel model = llm::LlamaModel::from_gguf(file);
  const int64_t V = model.config().n_vocab, ctx = 256;
  Rng rng(4, 0);
  for (HeadArch arch : {HeadArch::Medusa, HeadArch::Hydra, HeadArch::HydraPlusPlus}) {
    DraftHeads heads = spec_test::random_heads(arch, 4, 1, model, 8, 0.05f);
    HeadDrafter drafter(heads, model, ctx);
    SpecDecoder dec(model, drafter, DraftTree::load("mc-12"), ctx);
    for (int trial = 0; trial < 2; ++trial) {
      const auto prompt = random_prompt(rng, V, 3 + int(rng.below(20)));
      const int n = 4 + int(rng.below(12));
      const auto expect = spec_test::plain_greedy(model, prompt, n, ctx);
      llm::spec::SpecOptions opt;
      opt.max_tokens = n;
      opt.sampling.temperature = 0;
      ASSERT_EQ(dec.generate(prompt, opt, {}).tokens, expect) << head_arch_name(arch) << " trial " << trial;
    }
  }
}

}  // namespace
