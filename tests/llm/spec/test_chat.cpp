// Speculative decoding in a multi-turn chat (`inferkit chat --spec`): with greedy acceptance
// every turn is token for token (and byte for byte) the reply of plain greedy chat on a Session,
// while the decoder's KV cache (and the Hydra++ prefix layer's) carries over between turns.
#include <gtest/gtest.h>

#include <filesystem>
#include <unistd.h>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "llm/runtime/session.hpp"
#include "llm/spec/chat.hpp"
#include "spec_test_util.hpp"

using namespace ik;
using namespace ik::llm::spec;

namespace {

// The tiny fixture's shape with seeded random weights and an untied output matrix: the fixture
// itself (tied, small weights) answers every prompt with one repeated token, which would make
// the comparison with plain chat nearly vacuous.
llm::LlamaModel& tiny() {
  static llm::LlamaModel m = [] {
    llm::LlamaConfig cfg = llm::LlamaModel::from_hf_dir(spec_test::kTinyDir).config();
    cfg.tied_embeddings = false;
    return llm::LlamaModel::random(cfg, 11);
  }();
  return m;
}

const llm::Tokenizer& tiny_tok() {
  static llm::Tokenizer t =
      llm::Tokenizer::from_hf_json(spec_test::kTinyDir + "/tokenizer.json", spec_test::kTinyDir + "/tokenizer_config.json");
  return t;
}

std::vector<int32_t> templated(const std::vector<llm::ChatMessage>& msgs) {
  return tiny_tok().encode(tiny_tok().apply_chat_template(msgs, true), false, true);
}

DraftHeads heads_for(HeadArch arch, uint64_t seed) {
  return spec_test::random_heads(arch, 4, arch == HeadArch::HydraPlusPlus ? 4 : 1, tiny(), seed);
}

// Two turns of plain chat and of speculative chat side by side; every turn must agree.
void expect_same_two_turns(HeadArch arch, const char* tree, const llm::GenerateOptions& opt, uint64_t seed) {
  const int64_t ctx = 128;
  llm::Session plain(tiny(), tiny_tok(), ctx);
  SpecChat spec(tiny(), tiny_tok(), heads_for(arch, seed), DraftTree::load(tree), ctx);
  std::vector<llm::ChatMessage> msgs = {{"user", "Hello there, how are you?"}};
  size_t previous_context = 0;
  for (const char* next_user : {"Tell me more.", ""}) {
    const auto context = templated(msgs);
    plain.set_context(context);
    std::string plain_streamed, spec_streamed;
    auto p = plain.generate(opt, [&](const std::string& s) { plain_streamed += s; return true; });
    auto s = spec.reply(context, opt, [&](const std::string& s) { spec_streamed += s; return true; });
    const std::string where = std::string(head_arch_name(arch)) + " " + tree + " turn " + (*next_user ? "1" : "2");
    ASSERT_EQ(s.gen.tokens, p.tokens) << where;
    EXPECT_EQ(s.gen.text, p.text) << where;
    EXPECT_EQ(spec_streamed, plain_streamed) << where;
    EXPECT_EQ(s.gen.stop_reason, p.stop_reason) << where;
    EXPECT_GE(s.steps, 1);
    EXPECT_LE(s.steps, int(s.gen.tokens.size()) + 1);
    // The second turn reuses the cached first turn: only the new tail is prefilled.
    if (previous_context) EXPECT_LE(size_t(s.gen.prompt_tokens), context.size() - previous_context) << where;
    else EXPECT_EQ(size_t(s.gen.prompt_tokens), context.size());
    previous_context = context.size();
    msgs.push_back({"assistant", p.text});
    msgs.push_back({"user", next_user});
  }
}

llm::GenerateOptions greedy(int max_tokens) {
  llm::GenerateOptions opt;
  opt.max_tokens = max_tokens;
  opt.sampling.temperature = 0;
  return opt;
}

TEST(SpecChat, TwoTurnsGreedyMatchPlainChat) {
  for (HeadArch arch : {HeadArch::Medusa, HeadArch::Hydra, HeadArch::HydraPlusPlus})
    for (const char* tree : {"mc-15", "chain-4"}) expect_same_two_turns(arch, tree, greedy(14), 5);
}

// Knows the plain reply of the current turn: proposes it on the rank-0 path of the tree (missing
// every `miss`-th level), random tokens elsewhere, so that long paths are accepted and the KV
// cache is compacted, cut mid-step and continued across turns.
class OracleDrafter : public Drafter {
 public:
  OracleDrafter(int64_t vocab, int miss) : vocab_(vocab), miss_(miss) {}
  std::vector<int32_t> truth;  // this turn's context followed by the expected reply
  void reset() override { seen_ = 0; }
  void rewind(int64_t n) override { seen_ = n; }
  void observe(const float*, int64_t m) override { seen_ += m; }
  void propose(const DraftTree& tree, int32_t* tokens) override {
    ++calls_;
    for (int n = 1; n < tree.n_nodes(); ++n) {
      bool on_zero_path = true;
      for (int a = n; a > 0; a = tree.parent[a]) on_zero_path &= tree.rank[a] == 0;
      const int64_t idx = seen_ + tree.depth[n];
      const bool hit = on_zero_path && idx < int64_t(truth.size()) && (calls_ + tree.depth[n]) % miss_ != 0;
      tokens[n] = hit ? truth[size_t(idx)] : int32_t(rng_.below(uint64_t(vocab_)));
    }
  }

 private:
  int64_t vocab_, seen_ = 0;
  int miss_, calls_ = 0;
  Rng rng_{5, 0};
};

TEST(SpecChat, LongAcceptancesAcrossTurnsMatchPlainChat) {
  const int64_t ctx = 128;
  // In mc-15 the accepted path's rows are scattered (compaction moves them); in a chain they
  // are in place already.
  for (const char* tree : {"mc-15", "chain-5"})
  for (int miss : {3, 1000}) {
    llm::Session plain(tiny(), tiny_tok(), ctx);
    OracleDrafter oracle(tiny().config().n_vocab, miss);
    SpecDecoder dec(tiny(), oracle, DraftTree::load(tree), ctx);
    std::vector<llm::ChatMessage> msgs = {{"user", "2+2?"}};
    int tokens = 0, steps = 0;
    for (const char* next_user : {"3+3?", "Ok.", ""}) {
      const auto context = templated(msgs);
      plain.set_context(context);
      const auto p = plain.generate(greedy(11));
      oracle.truth = context;
      oracle.truth.insert(oracle.truth.end(), p.tokens.begin(), p.tokens.end());
      SpecOptions opt;
      opt.max_tokens = 11;  // turns end mid-step
      opt.sampling.temperature = 0;
      const auto r = dec.continue_from(context, opt, tiny_tok().stop_ids());
      ASSERT_EQ(r.tokens, p.tokens) << tree << " miss " << miss << " before '" << next_user << "'";
      EXPECT_EQ(r.stop_reason == "eos", p.stop_reason == "eos");
      tokens += int(r.tokens.size());
      steps += r.steps;
      msgs.push_back({"assistant", p.text});
      msgs.push_back({"user", next_user});
    }
    EXPECT_GT(double(tokens) / steps, miss == 1000 ? 3.0 : 1.5) << tree << " miss " << miss;
  }
}

TEST(SpecChat, StopStringsAndNoEosMatchPlainChat) {
  // A stop string taken from the middle of the plain first reply: both must cut there.
  llm::Session plain(tiny(), tiny_tok(), 128);
  plain.set_context(templated({{"user", "Hello there, how are you?"}}));
  const auto first = plain.generate(greedy(14));
  ASSERT_GE(first.text.size(), 6u);
  auto opt = greedy(14);
  opt.stop = {first.text.substr(first.text.size() / 2, 3)};
  plain.set_context(templated({{"user", "Hello there, how are you?"}}));
  ASSERT_EQ(plain.generate(opt).stop_reason, "stop");  // the case below does stop on it
  for (HeadArch arch : {HeadArch::Medusa, HeadArch::Hydra, HeadArch::HydraPlusPlus})
    expect_same_two_turns(arch, "mc-15", opt, 6);
  opt = greedy(10);
  opt.stop_at_eos = false;
  expect_same_two_turns(HeadArch::Hydra, "top2-3", opt, 7);
}

TEST(SpecChat, NearZeroTemperatureTypicalAcceptanceMatchesGreedy) {
  auto opt = greedy(14);
  opt.sampling.temperature = 1e-4f;
  opt.sampling.top_k = 0;
  opt.sampling.top_p = 1;
  opt.sampling.min_p = 0;
  // Plain chat at the same temperature samples the argmax too (the probability of anything else
  // underflows), so both sides are greedy.
  expect_same_two_turns(HeadArch::HydraPlusPlus, "mc-15", opt, 8);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(SpecChat, BadHeadsGiveOneLineErrors) {
  const auto dir = std::filesystem::temp_directory_path() / ("ik_spec_chat_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string good = (dir / "hydra.gguf").string(), other = (dir / "other.gguf").string();
  heads_for(HeadArch::Hydra, 9).save(good);
  DraftHeads foreign = heads_for(HeadArch::Hydra, 9);
  foreign.base.name = "some-other-model";
  foreign.base.n_layer += 1;
  foreign.save(other);

  EXPECT_EQ(load_heads_for("hydra", good, tiny()).arch, HeadArch::Hydra);
  const std::string no_heads = error_of([] { load_heads_for("hydra", "", tiny()); });
  const std::string wrong_arch = error_of([&] { load_heads_for("medusa", good, tiny()); });
  const std::string wrong_base = error_of([&] { load_heads_for("hydra", other, tiny()); });
  EXPECT_NE(no_heads.find("--spec hydra needs --heads FILE"), std::string::npos) << no_heads;
  EXPECT_NE(wrong_arch.find("holds hydra heads"), std::string::npos) << wrong_arch;
  EXPECT_NE(wrong_base.find("some-other-model"), std::string::npos) << wrong_base;
  for (const auto& m : {no_heads, wrong_arch, wrong_base}) EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  std::filesystem::remove_all(dir);
}

}  // namespace
