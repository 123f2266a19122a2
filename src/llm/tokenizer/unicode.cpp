#include "llm/tokenizer/unicode.hpp"

#include <algorithm>
#include <array>

namespace ik::llm::unicode {

namespace {
// Code points below 0x800 (ASCII, Latin, Greek, Cyrillic, ...) are looked up directly.
constexpr uint32_t kFastLimit = 0x800;

std::array<uint8_t, kFastLimit> make_fast_table() {
  std::array<uint8_t, kFastLimit> t{};
  size_t run = 0;
  for (uint32_t cp = 0; cp < kFastLimit; ++cp) {
    while (run + 1 < kNumRuns && kRuns[run + 1].first <= cp) ++run;
    t[cp] = kRuns[run].flags;
  }
  return t;
}
}  // namespace

uint8_t flags(uint32_t cp) {
  static const std::array<uint8_t, kFastLimit> fast = make_fast_table();
  if (cp < kFastLimit) return fast[cp];
  const CodepointRun* end = kRuns + kNumRuns;
  const CodepointRun* it = std::upper_bound(
      kRuns, end, cp, [](uint32_t c, const CodepointRun& r) { return c < r.first; });
  return it == kRuns ? 0 : (it - 1)->flags;
}

size_t utf8_len(std::string_view s, size_t i) {
  const auto b = static_cast<uint8_t>(s[i]);
  size_t n = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 1;
  if (i + n > s.size()) return 1;
  for (size_t k = 1; k < n; ++k)
    if ((static_cast<uint8_t>(s[i + k]) & 0xC0) != 0x80) return 1;
  return n;
}

uint32_t utf8_decode(std::string_view s, size_t i, size_t len) {
  const auto b = static_cast<uint8_t>(s[i]);
  if (len == 1) return b;  // ASCII, or an invalid byte taken as itself
  uint32_t cp = b & (0x7F >> len);
  for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3F);
  return cp;
}

void utf8_append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

size_t utf8_incomplete_tail(std::string_view s) {
  // Look back at most 3 bytes for a lead byte whose sequence runs past the end.
  for (size_t back = 1; back <= 3 && back <= s.size(); ++back) {
    const auto b = static_cast<uint8_t>(s[s.size() - back]);
    if ((b & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    const size_t need = (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

}  // namespace ik::llm::unicode
