// perplexity() against transformers on the same GGUF and text (fixture made by
// tools/perplexity_reference.py), on the exact f32 path (WeightMode::Reference).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.hpp"
#include "io/gguf.hpp"
#include "llm/eval/perplexity.hpp"
#include "llm/tokenizer/tokenizer.hpp"

using namespace ik;

namespace {
const std::string kModel = IK_SOURCE_DIR "/.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf";
const std::string kText = IK_SOURCE_DIR "/tests/llm/fixtures/perplexity_text.txt";
const std::string kFixture = IK_SOURCE_DIR "/tests/llm/fixtures/perplexity_reference.json";
}  // namespace

TEST(Perplexity, MatchesTransformers) {
  if (!std::filesystem::exists(kModel)) GTEST_SKIP() << "needs " << kModel << " (run `make setup`)";
  nlohmann::json ref;
  std::ifstream(kFixture) >> ref;
  std::ifstream in(kText, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();

  auto file = std::make_shared<const io::GgufFile>(io::GgufFile::open(kModel));
  auto model = llm::LlamaModel::from_gguf(file, llm::WeightMode::Reference);
  const auto tok = llm::Tokenizer::from_gguf(*file);
  const auto ids = tok.encode(ss.str(), true, false);
  ASSERT_EQ(int64_t(ids.size()), ref["n_tokens"].get<int64_t>()) << "tokenization differs from transformers";

  llm::PerplexityOptions opt;
  opt.progress = false;
  opt.bos = ref["bos"].get<bool>() ? tok.bos_id() : -1;
  const int ctx = ref["ctx"].get<int>();
  const auto r = llm::perplexity(model, ids, ctx, opt);
  EXPECT_EQ(r.n_windows, ref["n_windows"].get<int64_t>());
  EXPECT_EQ(r.n_scored, ref["n_scored"].get<int64_t>());
  const double want = ref["ppl"].get<double>();
  EXPECT_NEAR(r.ppl, want, 0.005 * want) << "ours " << r.ppl << " transformers " << want;
  EXPECT_GT(r.ppl_stderr, 0);

  // One window scores ctx - ctx/2 - 1 tokens; max_windows limits the work.
  opt.max_windows = 1;
  const auto one = llm::perplexity(model, ids, ctx, opt);
  EXPECT_EQ(one.n_scored, ctx - ctx / 2 - 1);
  EXPECT_THROW(llm::perplexity(model, std::vector<int32_t>(ids.begin(), ids.begin() + 10), ctx, opt), Error);
}
