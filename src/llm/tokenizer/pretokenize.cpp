#include "llm/tokenizer/pretokenize.hpp"

#include "core/error.hpp"
#include "llm/tokenizer/unicode.hpp"

namespace ik::llm {

namespace {

// The text decoded once: code points, their classes and their byte offsets.
struct Decoded {
  std::vector<uint32_t> cp;
  std::vector<uint8_t> fl;
  std::vector<uint32_t> off;  // off[i] = byte offset of code point i; off[n] = text size

  explicit Decoded(std::string_view s) {
    cp.reserve(s.size());
    fl.reserve(s.size());
    off.reserve(s.size() + 1);
    for (size_t i = 0; i < s.size();) {
      size_t len = unicode::utf8_len(s, i);
      uint32_t c = unicode::utf8_decode(s, i, len);
      cp.push_back(c);
      fl.push_back(len == 1 && c >= 0x80 ? 0 : unicode::flags(c));  // invalid byte: no class
      off.push_back(static_cast<uint32_t>(i));
      i += len;
    }
    off.push_back(static_cast<uint32_t>(s.size()));
  }
  bool L(size_t i) const { return fl[i] & unicode::kLetter; }
  bool N(size_t i) const { return fl[i] & unicode::kNumber; }
  bool S(size_t i) const { return fl[i] & unicode::kSpace; }
  bool other(size_t i) const {  // [^\s\p{L}\p{N}]
    return !(fl[i] & (unicode::kLetter | unicode::kNumber | unicode::kSpace));
  }
  bool crlf(size_t i) const { return cp[i] == '\r' || cp[i] == '\n'; }
};

// Code-point index ranges [a, b) of the text, refined stage by stage.
struct Span {
  size_t a, b;
};

// A matcher returns the length (in code points) of the regex match starting at `pos`
// within [pos, end), or 0 when the regex does not match there.
using Matcher = size_t (*)(const Decoded&, size_t pos, size_t end);

// Length of the whitespace alternatives `\s+(?!\S)|\s+` at pos (pos is whitespace).
size_t match_space_run(const Decoded& d, size_t pos, size_t end) {
  size_t q = pos;
  while (q < end && d.S(q)) ++q;
  if (q == end) return q - pos;          // run reaches the end: (?!\S) holds
  return q - pos >= 2 ? q - pos - 1 : 1;  // leave the last space to prefix the next word
}

size_t match_gpt2(const Decoded& d, size_t pos, size_t end) {
  const uint32_t c = d.cp[pos];
  if (c == '\'' && pos + 1 < end) {  // 's|'t|'re|'ve|'m|'ll|'d (case-sensitive)
    const uint32_t n = d.cp[pos + 1];
    if (n == 's' || n == 't' || n == 'm' || n == 'd') return 2;
    if (pos + 2 < end) {
      const uint32_t n2 = d.cp[pos + 2];
      if ((n == 'r' && n2 == 'e') || (n == 'v' && n2 == 'e') || (n == 'l' && n2 == 'l')) return 3;
    }
  }
  size_t p = pos + (c == ' ' && pos + 1 < end ? 1 : 0);  // the optional leading space
  if (d.L(p)) {
    while (p < end && d.L(p)) ++p;
    return p - pos;
  }
  if (d.N(p)) {
    while (p < end && d.N(p)) ++p;
    return p - pos;
  }
  if (d.other(p)) {
    while (p < end && d.other(p)) ++p;
    return p - pos;
  }
  if (d.S(pos)) return match_space_run(d, pos, end);
  return 0;
}

uint32_t ascii_lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

size_t match_llama3(const Decoded& d, size_t pos, size_t end) {
  const uint32_t c = d.cp[pos];
  if (c == '\'' && pos + 1 < end) {  // (?i:'s|'t|'re|'ve|'m|'ll|'d)
    uint32_t n = ascii_lower(d.cp[pos + 1]);
    if (n == 0x17F) n = 's';  // LATIN SMALL LETTER LONG S case-folds to 's'
    if (n == 's' || n == 't' || n == 'm' || n == 'd') return 2;
    if (pos + 2 < end) {
      const uint32_t n2 = ascii_lower(d.cp[pos + 2]);
      if ((n == 'r' && n2 == 'e') || (n == 'v' && n2 == 'e') || (n == 'l' && n2 == 'l')) return 3;
    }
  }
  // [^\r\n\p{L}\p{N}]?\p{L}+
  size_t p = pos;
  if (!d.crlf(p) && !d.L(p) && !d.N(p) && p + 1 < end && d.L(p + 1)) ++p;
  if (d.L(p)) {
    while (p < end && d.L(p)) ++p;
    return p - pos;
  }
  // \p{N}{1,3}
  if (d.N(pos)) {
    p = pos;
    while (p < end && p - pos < 3 && d.N(p)) ++p;
    return p - pos;
  }
  // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
  p = pos + (c == ' ' && pos + 1 < end ? 1 : 0);
  if (d.other(p)) {
    while (p < end && d.other(p)) ++p;
    while (p < end && d.crlf(p)) ++p;
    return p - pos;
  }
  if (!d.S(pos)) return 0;
  // \s*[\r\n]+ : the whitespace run up to and including its last line break
  size_t q = pos;
  size_t after_last_break = 0;
  while (q < end && d.S(q)) {
    if (d.crlf(q)) after_last_break = q + 1;
    ++q;
  }
  if (after_last_break) return after_last_break - pos;
  return match_space_run(d, pos, end);
}

size_t match_number(const Decoded& d, size_t pos, size_t) { return d.N(pos) ? 1 : 0; }

size_t match_numbers(const Decoded& d, size_t pos, size_t end) {
  size_t p = pos;
  while (p < end && d.N(p)) ++p;
  return p - pos;
}

size_t match_three_ascii_digits(const Decoded& d, size_t pos, size_t end) {
  if (pos + 3 > end) return 0;
  for (size_t k = 0; k < 3; ++k)
    if (d.cp[pos + k] < '0' || d.cp[pos + k] > '9') return 0;
  return 3;
}

size_t match_punct_run(const Decoded& d, size_t pos, size_t end) {  // [\p{P}\$\+<=>\^~\|]+
  size_t p = pos;
  while (p < end) {
    const uint32_t c = d.cp[p];
    const bool sym = c == '$' || c == '+' || c == '<' || c == '=' || c == '>' || c == '^' ||
                     c == '~' || c == '|';
    if (!sym && !(d.fl[p] & unicode::kPunct)) break;
    ++p;
  }
  return p - pos;
}

// HF Split(behavior=Isolated): every match becomes a piece, and so does every gap between.
void split_isolated(const Decoded& d, Matcher match, const std::vector<Span>& in,
                    std::vector<Span>& out) {
  out.clear();
  for (const Span& s : in) {
    size_t gap = s.a;
    for (size_t pos = s.a; pos < s.b;) {
      const size_t n = match(d, pos, s.b);
      if (n == 0) {
        ++pos;
        continue;
      }
      if (gap < pos) out.push_back({gap, pos});
      out.push_back({pos, pos + n});
      pos += n;
      gap = pos;
    }
    if (gap < s.b) out.push_back({gap, s.b});
  }
}

}  // namespace

PreTokenizer pre_tokenizer_from_name(const std::string& name) {
  if (name == "smollm" || name == "starcoder" || name == "refact") return PreTokenizer::kSmolLM;
  if (name == "gpt2" || name == "gpt-2") return PreTokenizer::kGpt2;
  if (name == "llama-bpe" || name == "llama3" || name == "llama-v3") return PreTokenizer::kLlama3;
  if (name == "default" || name.empty()) return PreTokenizer::kDefault;
  fail("unsupported tokenizer pre-tokenizer '{}' (supported: smollm, gpt2, llama-bpe, default)",
       name);
}

const char* pre_tokenizer_name(PreTokenizer kind) {
  switch (kind) {
    case PreTokenizer::kNone: return "none";
    case PreTokenizer::kGpt2: return "gpt2";
    case PreTokenizer::kSmolLM: return "smollm";
    case PreTokenizer::kLlama3: return "llama-bpe";
    case PreTokenizer::kDefault: return "default";
  }
  return "?";
}

void pre_tokenize(PreTokenizer kind, std::string_view text, std::vector<ByteRange>& out) {
  if (text.empty()) return;
  if (kind == PreTokenizer::kNone) {
    out.push_back({0, static_cast<uint32_t>(text.size())});
    return;
  }
  const Decoded d(text);
  std::vector<Span> cur{{0, d.cp.size()}}, next;
  auto stage = [&](Matcher m) {
    split_isolated(d, m, cur, next);
    cur.swap(next);
  };
  switch (kind) {
    case PreTokenizer::kGpt2: stage(match_gpt2); break;
    case PreTokenizer::kSmolLM: stage(match_number); stage(match_gpt2); break;
    case PreTokenizer::kLlama3: stage(match_llama3); break;
    case PreTokenizer::kDefault:
      stage(match_punct_run);
      stage(match_gpt2);
      stage(match_numbers);
      stage(match_three_ascii_digits);
      break;
    case PreTokenizer::kNone: break;
  }
  for (const Span& s : cur) out.push_back({d.off[s.a], d.off[s.b]});
}

}  // namespace ik::llm
