// Pre-tokenizer splits against the `tokenizers` library's own Split/Digits pre-tokenizers
// running the same regexes (fixtures/pretok_splits.json).
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "fixtures.hpp"
#include "llm/tokenizer/pretokenize.hpp"

namespace ik::llm {
namespace {

using testing::show;

void expect_same_splits(PreTokenizer kind, const std::string& key) {
  const auto strings = testing::corpus();
  const auto fx = testing::read_fixture("pretok_splits.json");
  const auto expected = fx["splits"][key].get<std::vector<std::vector<uint32_t>>>();
  ASSERT_GE(expected.size(), 300u);
  size_t mismatches = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    std::vector<ByteRange> pieces;
    pre_tokenize(kind, strings[i], pieces);
    std::vector<uint32_t> lengths;
    for (const ByteRange& r : pieces) lengths.push_back(r.end - r.begin);
    if (lengths != expected[i] && ++mismatches <= 5)
      ADD_FAILURE() << key << " splits differ on string " << i << " " << show(strings[i]);
  }
  EXPECT_EQ(mismatches, 0u) << "of " << expected.size() << " strings";
}

TEST(PreTokenize, Gpt2MatchesTokenizers) { expect_same_splits(PreTokenizer::kGpt2, "gpt2"); }
TEST(PreTokenize, Llama3MatchesTokenizers) { expect_same_splits(PreTokenizer::kLlama3, "llama3"); }
TEST(PreTokenize, SmolLMMatchesTokenizers) { expect_same_splits(PreTokenizer::kSmolLM, "smollm"); }
TEST(PreTokenize, DefaultMatchesTokenizers) {
  expect_same_splits(PreTokenizer::kDefault, "default");
}

TEST(PreTokenize, PiecesCoverTheText) {
  const std::string s = "Hello  world\n\n 123 don't 👍🏽";
  for (PreTokenizer k : {PreTokenizer::kGpt2, PreTokenizer::kLlama3, PreTokenizer::kSmolLM,
                         PreTokenizer::kDefault, PreTokenizer::kNone}) {
    std::vector<ByteRange> pieces;
    pre_tokenize(k, s, pieces);
    std::string joined;
    for (const ByteRange& r : pieces) joined += s.substr(r.begin, r.end - r.begin);
    EXPECT_EQ(joined, s) << pre_tokenizer_name(k);
  }
}

TEST(PreTokenize, NamesFromGguf) {
  EXPECT_EQ(pre_tokenizer_from_name("smollm"), PreTokenizer::kSmolLM);
  EXPECT_EQ(pre_tokenizer_from_name("gpt2"), PreTokenizer::kGpt2);
  EXPECT_EQ(pre_tokenizer_from_name("llama-bpe"), PreTokenizer::kLlama3);
  EXPECT_EQ(pre_tokenizer_from_name("llama3"), PreTokenizer::kLlama3);
  EXPECT_EQ(pre_tokenizer_from_name("default"), PreTokenizer::kDefault);
  EXPECT_THROW(pre_tokenizer_from_name("no-such-pre"), ik::Error);
}

}  // namespace
}  // namespace ik::llm
