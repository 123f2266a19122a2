#pragma once
// Pre-tokenizers: split text into the pieces that BPE then encodes one by one. Each kind
// reproduces the regex (or sequence of regexes, as in HF's Sequence of Split/Digits) that
// the model declares, written by hand over Unicode class tables instead of a regex engine.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ik::llm {

enum class PreTokenizer {
  kNone,     // the whole text is one piece (SentencePiece-style models)
  kGpt2,     // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  kSmolLM,   // every \p{N} isolated (HF Digits individual_digits=true), then kGpt2
  kLlama3,   // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
             //  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  kDefault,  // llama.cpp's default BPE sequence: [\p{P}\$\+<=>\^~\|]+, then kGpt2,
             // then \p{N}+, then [0-9][0-9][0-9]
};

// Maps a GGUF `tokenizer.ggml.pre` value to a kind; throws ik::Error naming unknown values.
PreTokenizer pre_tokenizer_from_name(const std::string& name);
const char* pre_tokenizer_name(PreTokenizer kind);

struct ByteRange {
  uint32_t begin, end;
};

// Appends the pieces of `text` (byte ranges into it, in order, covering all of it) to `out`.
void pre_tokenize(PreTokenizer kind, std::string_view text, std::vector<ByteRange>& out);

}  // namespace ik::llm
