#pragma once
// UTF-8 decoding and the character classes the pre-tokenizer regexes need.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ik::llm::unicode {

enum Flags : uint8_t { kLetter = 1, kNumber = 2, kPunct = 4, kSpace = 8 };

struct CodepointRun {
  uint32_t first;  // the run lasts until the next run's first code point
  uint8_t flags;
};
extern const CodepointRun kRuns[];  // generated: unicode_tables.cpp
extern const size_t kNumRuns;

uint8_t flags(uint32_t cp);
inline bool is_letter(uint32_t cp) { return flags(cp) & kLetter; }
inline bool is_number(uint32_t cp) { return flags(cp) & kNumber; }
inline bool is_space(uint32_t cp) { return flags(cp) & kSpace; }

// Length of the UTF-8 sequence starting at s[i] (1 for an invalid byte, so that
// malformed input still advances one byte at a time), and its code point.
size_t utf8_len(std::string_view s, size_t i);
uint32_t utf8_decode(std::string_view s, size_t i, size_t len);
void utf8_append(std::string& out, uint32_t cp);

// Number of bytes at the end of `s` that form an incomplete (but so far valid) UTF-8 sequence.
size_t utf8_incomplete_tail(std::string_view s);

}  // namespace ik::llm::unicode
