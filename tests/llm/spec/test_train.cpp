// Head training end to end on the tiny random Llama: self-distillation data, a few AdamW steps
// lower the distillation loss for every architecture, the data file round-trips, and the
// trained heads still decode exactly the plain greedy tokens.
#include <gtest/gtest.h>

#include <filesystem>

#include "llm/spec/decode.hpp"
#include "llm/spec/distill.hpp"
#include "llm/spec/train_heads.hpp"
#include "llm/tokenizer/tokenizer.hpp"
#include "spec_test_util.hpp"

using namespace ik;
using namespace ik::llm::spec;

namespace {

TEST(HeadTraining, LossFallsAndTrainedHeadsStayLossless) {
  llm::LlamaModel model = llm::LlamaModel::from_hf_dir(spec_test::kTinyDir);
  llm::Tokenizer tok = llm::Tokenizer::from_hf_json(spec_test::kTinyDir + "/tokenizer.json",
                                                    spec_test::kTinyDir + "/tokenizer_config.json");
  const std::vector<std::string> prompts = {"What is a tree?", "Describe the sea.", "Hello there, who are you?",
                                            "Name three colours.", "Why is the sky blue?", "Count to five."};
  DistillOptions dopt;
  dopt.answer_tokens = 16;
  dopt.top_k = 8;
  DistillData data = build_distill_data(model, tok, prompts, dopt);
  ASSERT_EQ(data.n_seqs(), 6);
  const std::string path = (std::filesystem::temp_directory_path() / "ik_test_distill.gguf").string();
  data.save(path);
  DistillData back = DistillData::load(path);
  std::filesystem::remove(path);
  EXPECT_EQ(back.tokens, data.tokens);
  EXPECT_EQ(back.hidden, data.hidden);
  EXPECT_EQ(back.teacher_probs, data.teacher_probs);
  // Teacher rows are distributions, most likely first.
  for (int64_t r = 0; r < data.rows(); ++r) {
    double sum = 0;
    for (int k = 0; k < data.top_k; ++k) sum += data.teacher_probs[r * data.top_k + k];
    EXPECT_NEAR(sum, 1.0, 1e-4);
    EXPECT_GE(data.teacher_probs[r * data.top_k], data.teacher_probs[r * data.top_k + 1]);
  }

  FrozenBase base(model);
  for (HeadArch arch : {HeadArch::Medusa, HeadArch::Hydra, HeadArch::HydraPlusPlus}) {
    DraftHeads heads = DraftHeads::init(arch, 3, arch == HeadArch::HydraPlusPlus ? 2 : 1, model);
    TrainOptions opt;
    opt.steps = 60;
    opt.lr = 3e-3f;
    opt.warmup = 5;
    opt.dropout = 0.1f;
    opt.sampled_vocab = arch == HeadArch::Hydra ? 64 : 0;  // both the exact and the sampled loss
    std::vector<double> losses;
    train_heads(heads, base, data, opt, [&](int, int, double loss) { losses.push_back(loss); });
    ASSERT_EQ(losses.size(), 60u);
    double first = 0, last = 0;
    for (int i = 0; i < 10; ++i) first += losses[i], last += losses[50 + i];
    EXPECT_LT(last, first - 0.05 * 10) << head_arch_name(arch);
    const auto acc = head_top1(heads, base, data, 200);
    ASSERT_EQ(acc.size(), 3u);
    // Ranks over the whole vocabulary: every position's truth has exactly one rank.
    const int64_t V = model.config().n_vocab;
    const auto ranks = head_rank_accuracy(heads, base, data, 200, int(V));
    ASSERT_EQ(ranks.size(), 3u);
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_DOUBLE_EQ(ranks[i][0], acc[i]) << "rank 0 is top-1";
      double sum = 0;
      for (double p : ranks[i]) sum += p;
      EXPECT_NEAR(sum, 1.0, 1e-9) << "head " << i;
    }

    HeadDrafter drafter(heads, model, 128);
    SpecDecoder dec(model, drafter, DraftTree::load("mc-20"), 128);
    for (const auto& p : prompts) {
      auto ids = tok.encode(p, true, false);
      SpecOptions sopt;
      sopt.max_tokens = 24;
      sopt.sampling.temperature = 0;
      EXPECT_EQ(dec.generate(ids, sopt, {}).tokens, spec_test::plain_greedy(model, ids, 24, 128)) << p;
    }
  }
}

}  // namespace
