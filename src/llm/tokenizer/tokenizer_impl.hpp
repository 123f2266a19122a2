#pragma once
// Internals shared by the tokenizer's loaders (GGUF, tokenizer.json) and its encoder.
#include <array>
#include <string>
#include <unordered_map>
#include <vector>

#include "llm/tokenizer/bpe.hpp"
#include "llm/tokenizer/pretokenize.hpp"
#include "llm/tokenizer/tokenizer.hpp"

namespace ik::llm {

// GGUF token types (tokenizer.ggml.token_type), as numbered by llama.cpp.
enum TokenType : int32_t {
  kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6,
};

// Where a SentencePiece-style model puts its "▁" prefix on raw-text fragments.
enum class SpacePrefix {
  kNever,
  kAfterSpecial,      // llama.cpp (GGUF): at the text start and after every special token
  kMetaspaceFirst,    // HF Metaspace "first": text start only, unless it starts with a space
  kMetaspaceAlways,   // HF Metaspace "always": every fragment not starting with a space
  kPrependNormalizer, // HF normalizer Prepend("▁"): every non-empty fragment
};

// Everything a loader reads, in one neutral form; Tokenizer::Impl is built from it.
struct VocabSpec {
  bool byte_level = true;            // false: SentencePiece-style ("▁" for spaces)
  PreTokenizer pre = PreTokenizer::kGpt2;
  bool hf_add_prefix_space = false;  // HF ByteLevel add_prefix_space
  bool ignore_merges = false;        // HF BPE ignore_merges (Llama-3)
  SpacePrefix space_prefix = SpacePrefix::kNever;
  std::vector<std::string> tokens;   // by id
  std::vector<int32_t> types;        // TokenType by id
  std::vector<float> scores;         // SentencePiece scores (when there are no merges)
  std::vector<std::pair<std::string, std::string>> merges;  // best first
  std::vector<bool> skip_on_decode;  // tokens decode(skip_special=true) drops; empty: controls
  int32_t bos = -1, eos = -1, unk = -1, eot = -1, eom = -1;
  bool add_bos = false;
  std::string chat_template;
};

struct Tokenizer::Impl {
  bool byte_level = true;
  PreTokenizer pre = PreTokenizer::kGpt2;
  bool hf_add_prefix_space = false;
  bool ignore_merges = false;
  SpacePrefix space_prefix = SpacePrefix::kNever;
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::vector<std::string> pieces;   // the bytes each token stands for
  std::vector<bool> skip_on_decode;
  std::unordered_map<std::string, int32_t> token_to_id;
  MergeTable merges;
  std::array<int32_t, 256> byte_ids{};  // byte-level: token of each byte; SPM: <0xXX> or -1
  std::vector<int32_t> literal_specials;  // matched literally when parse_special, longest first
  std::array<bool, 256> special_starts{};  // first bytes of literal_specials
  int32_t bos = -1, eos = -1, unk = -1;
  bool add_bos = false;
  std::vector<int32_t> stop_ids;
  std::string chat_template;

  explicit Impl(VocabSpec spec);
  void encode_fragment(std::string_view text, bool at_text_start, bool after_special,
                       std::vector<int32_t>& out) const;
  void encode_byte_level(std::string_view text, std::vector<int32_t>& out) const;
  void encode_sentencepiece(std::string_view text, bool prefix, std::vector<int32_t>& out) const;

 private:
  void build_byte_level_tables(const VocabSpec& spec);
  void build_sentencepiece_tables(const VocabSpec& spec);
  void build_merges_from_list(const std::vector<std::pair<std::string, std::string>>& merges);
  void build_merges_from_scores(const std::vector<float>& scores);
  void collect_stop_ids(const VocabSpec& spec);
};

// GPT-2's byte <-> printable code point table (bytes_to_unicode in GPT-2's encoder.py).
uint32_t byte_to_codepoint(uint8_t b);
int byte_from_codepoint(uint32_t cp);  // -1 if cp is not in the table

}  // namespace ik::llm
