// Tokenizer core: tables built from a VocabSpec, encode (special-token split, pre-tokenizer,
// BPE) and decode. The loaders are in tokenizer_gguf.cpp and tokenizer_hf.cpp.
#include <algorithm>
#include <cstdlib>

#include "core/error.hpp"
#include "llm/tokenizer/chat_template.hpp"
#include "llm/tokenizer/tokenizer_impl.hpp"
#include "llm/tokenizer/unicode.hpp"

namespace ik::llm {

namespace {
const char* const kSpmSpace = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK "▁"

bool printable_byte(int b) {  // bytes GPT-2 keeps as their own code point
  return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

std::array<uint32_t, 256> make_byte_to_cp() {
  std::array<uint32_t, 256> t{};
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b) t[b] = printable_byte(b) ? b : next++;
  return t;
}
const std::array<uint32_t, 256> kByteToCp = make_byte_to_cp();

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
    s.replace(pos, from.size(), to);
  return s;
}

// The bytes a byte-level token stands for; tokens with characters outside the byte table
// (added tokens such as "<|im_start|>" are all inside it, but not every one) keep their text.
std::string byte_level_piece(const std::string& token) {
  std::string bytes;
  for (size_t i = 0; i < token.size();) {
    const size_t len = unicode::utf8_len(token, i);
    const int b = byte_from_codepoint(unicode::utf8_decode(token, i, len));
    if (b < 0) return token;
    bytes += static_cast<char>(b);
    i += len;
  }
  return bytes;
}

int parse_byte_token(const std::string& t) {  // "<0x41>" -> 0x41, else -1
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  return static_cast<int>(std::strtol(t.substr(3, 2).c_str(), nullptr, 16));
}
}  // namespace

uint32_t byte_to_codepoint(uint8_t b) { return kByteToCp[b]; }

int byte_from_codepoint(uint32_t cp) {
  if (cp < 256 && printable_byte(static_cast<int>(cp))) return static_cast<int>(cp);
  if (cp >= 256 && cp < 256 + 68) {  // 68 = bytes that are not printable
    for (int b = 0; b < 256; ++b)
      if (kByteToCp[b] == cp) return b;
  }
  return -1;
}

// ---------------------------------------------------------------------------------------
// Building the tables

Tokenizer::Impl::Impl(VocabSpec spec)
    : byte_level(spec.byte_level),
      pre(spec.pre),
      hf_add_prefix_space(spec.hf_add_prefix_space),
      ignore_merges(spec.ignore_merges),
      space_prefix(spec.space_prefix),
      tokens(std::move(spec.tokens)),
      types(std::move(spec.types)),
      bos(spec.bos),
      eos(spec.eos),
      unk(spec.unk),
      add_bos(spec.add_bos),
      chat_template(std::move(spec.chat_template)) {
  const int32_t n = static_cast<int32_t>(tokens.size());
  IK_CHECK(n > 0, "tokenizer has an empty vocabulary");
  if (types.empty()) types.assign(n, kNormal);
  IK_CHECK(static_cast<int32_t>(types.size()) == n,
           "tokenizer has {} tokens but {} token types", n, types.size());
  for (int32_t id : {bos, eos, unk})
    IK_CHECK(id < n, "special token id {} out of range (vocabulary of {})", id, n);
  token_to_id.reserve(n);
  for (int32_t i = 0; i < n; ++i) token_to_id.emplace(tokens[i], i);
  byte_ids.fill(-1);
  if (byte_level)
    build_byte_level_tables(spec);
  else
    build_sentencepiece_tables(spec);

  skip_on_decode = spec.skip_on_decode;
  if (skip_on_decode.empty()) {
    skip_on_decode.resize(n);
    for (int32_t i = 0; i < n; ++i) skip_on_decode[i] = types[i] == kControl || types[i] == kUnknown;
  }
  for (int32_t i = 0; i < n; ++i) {
    const int32_t t = types[i];
    if ((t == kControl || t == kUserDefined || t == kUnknown) && !tokens[i].empty())
      literal_specials.push_back(i);
  }
  std::stable_sort(literal_specials.begin(), literal_specials.end(), [&](int32_t a, int32_t b) {
    return tokens[a].size() > tokens[b].size();
  });
  for (int32_t id : literal_specials) special_starts[static_cast<uint8_t>(tokens[id][0])] = true;
  collect_stop_ids(spec);
}

void Tokenizer::Impl::build_byte_level_tables(const VocabSpec& spec) {
  pieces.resize(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i)
    pieces[i] = types[i] == kNormal || types[i] == kByte ? byte_level_piece(tokens[i]) : tokens[i];
  for (int b = 0; b < 256; ++b) {
    std::string ch;
    unicode::utf8_append(ch, kByteToCp[b]);
    auto it = token_to_id.find(ch);
    if (it != token_to_id.end()) byte_ids[b] = it->second;
  }
  build_merges_from_list(spec.merges);
}

void Tokenizer::Impl::build_sentencepiece_tables(const VocabSpec& spec) {
  pieces.resize(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int b = types[i] == kByte || types[i] == kNormal ? parse_byte_token(tokens[i]) : -1;
    if (b >= 0) {
      pieces[i] = std::string(1, static_cast<char>(b));
      if (byte_ids[b] < 0) byte_ids[b] = static_cast<int32_t>(i);
      types[i] = kByte;  // HF vocabularies do not mark byte tokens
    } else {
      pieces[i] = types[i] == kNormal || types[i] == kUserDefined
                      ? replace_all(tokens[i], kSpmSpace, " ")
                      : tokens[i];
    }
  }
  if (!spec.merges.empty())
    build_merges_from_list(spec.merges);
  else
    build_merges_from_scores(spec.scores);
}

void Tokenizer::Impl::build_merges_from_list(
    const std::vector<std::pair<std::string, std::string>>& list) {
  merges.reserve(list.size());
  for (size_t rank = 0; rank < list.size(); ++rank) {
    const auto& [left, right] = list[rank];
    auto l = token_to_id.find(left), r = token_to_id.find(right),
         res = token_to_id.find(left + right);
    if (l == token_to_id.end() || r == token_to_id.end() || res == token_to_id.end()) continue;
    merges.add(l->second, r->second, static_cast<int32_t>(rank), res->second);
  }
}

// SentencePiece BPE merges the adjacent pair whose concatenation is the vocabulary piece
// with the highest score. Every split of a piece into two pieces is such a pair.
void Tokenizer::Impl::build_merges_from_scores(const std::vector<float>& scores) {
  IK_CHECK(scores.size() == tokens.size(),
           "SentencePiece tokenizer needs one score per token ({} scores, {} tokens)",
           scores.size(), tokens.size());
  std::vector<float> distinct(scores);
  std::sort(distinct.begin(), distinct.end(), std::greater<float>());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  auto rank_of = [&](float s) {  // equal scores share a rank: ties go leftmost
    return static_cast<int32_t>(
        std::lower_bound(distinct.begin(), distinct.end(), s, std::greater<float>()) -
        distinct.begin());
  };
  auto mergeable = [&](int32_t id) { return types[id] == kNormal || types[id] == kUserDefined; };
  for (int32_t id = 0; id < static_cast<int32_t>(tokens.size()); ++id) {
    const std::string& t = tokens[id];
    if (!mergeable(id)) continue;
    for (size_t k = unicode::utf8_len(t, 0); k < t.size(); k += unicode::utf8_len(t, k)) {
      auto l = token_to_id.find(t.substr(0, k)), r = token_to_id.find(t.substr(k));
      if (l == token_to_id.end() || r == token_to_id.end()) continue;
      if (!mergeable(l->second) || !mergeable(r->second)) continue;
      merges.add(l->second, r->second, rank_of(scores[id]), id);
    }
  }
}

void Tokenizer::Impl::collect_stop_ids(const VocabSpec& spec) {
  static const char* const kEndOfTurn[] = {"<|im_end|>", "<|endoftext|>", "<|eot_id|>",
                                           "<|eom_id|>", "<|end|>",       "<end_of_turn>",
                                           "<|end_of_text|>", "</s>"};
  for (int32_t id : {spec.eos, spec.eot, spec.eom})
    if (id >= 0) stop_ids.push_back(id);
  for (const char* text : kEndOfTurn) {
    auto it = token_to_id.find(text);
    if (it != token_to_id.end() && types[it->second] == kControl) stop_ids.push_back(it->second);
  }
  std::sort(stop_ids.begin(), stop_ids.end());
  stop_ids.erase(std::unique(stop_ids.begin(), stop_ids.end()), stop_ids.end());
}

// ---------------------------------------------------------------------------------------
// Encoding

void Tokenizer::Impl::encode_byte_level(std::string_view text, std::vector<int32_t>& out) const {
  std::vector<ByteRange> words;
  pre_tokenize(pre, text, words);
  std::vector<int32_t> ids;
  std::string mapped;
  for (const ByteRange& w : words) {
    const std::string_view word = text.substr(w.begin, w.end - w.begin);
    if (ignore_merges) {  // Llama-3: a word that is itself a token is not merged from bytes
      mapped.clear();
      for (char c : word) unicode::utf8_append(mapped, kByteToCp[static_cast<uint8_t>(c)]);
      auto it = token_to_id.find(mapped);
      if (it != token_to_id.end()) {
        out.push_back(it->second);
        continue;
      }
    }
    ids.clear();
    for (char c : word) {
      const int32_t id = byte_ids[static_cast<uint8_t>(c)];
      if (id >= 0) ids.push_back(id);  // a byte missing from the vocabulary is dropped
    }
    bpe_merge(ids, merges);
    out.insert(out.end(), ids.begin(), ids.end());
  }
}

void Tokenizer::Impl::encode_sentencepiece(std::string_view text, bool prefix,
                                           std::vector<int32_t>& out) const {
  std::string s = prefix ? kSpmSpace : "";
  for (char c : text) {
    if (c == ' ')
      s += kSpmSpace;
    else
      s += c;
  }
  std::vector<int32_t> ids;
  std::string ch;
  for (size_t i = 0; i < s.size();) {
    const size_t len = unicode::utf8_len(s, i);
    ch.assign(s, i, len);
    auto it = token_to_id.find(ch);
    if (it != token_to_id.end() && types[it->second] != kControl) {
      ids.push_back(it->second);
    } else {  // unknown character: its bytes as <0xXX> tokens, or <unk>
      for (size_t k = 0; k < len; ++k) {
        const int32_t b = byte_ids[static_cast<uint8_t>(s[i + k])];
        if (b >= 0) {
          ids.push_back(b);
        } else {
          if (unk >= 0) ids.push_back(unk);
          break;
        }
      }
    }
    i += len;
  }
  bpe_merge(ids, merges);
  out.insert(out.end(), ids.begin(), ids.end());
}

void Tokenizer::Impl::encode_fragment(std::string_view text, bool at_text_start,
                                      bool after_special, std::vector<int32_t>& out) const {
  if (byte_level) {
    if (hf_add_prefix_space && !text.empty() && text[0] != ' ') {
      std::string prefixed(1, ' ');
      prefixed.append(text);
      encode_byte_level(prefixed, out);
      return;
    }
    encode_byte_level(text, out);
    return;
  }
  const bool starts_with_space = !text.empty() && text[0] == ' ';
  bool prefix = false;
  switch (space_prefix) {
    case SpacePrefix::kNever: break;
    case SpacePrefix::kAfterSpecial: prefix = after_special; break;
    case SpacePrefix::kMetaspaceFirst: prefix = at_text_start && !starts_with_space; break;
    case SpacePrefix::kMetaspaceAlways: prefix = !starts_with_space; break;
    case SpacePrefix::kPrependNormalizer: prefix = !text.empty(); break;
  }
  if (text.empty()) return;
  encode_sentencepiece(text, prefix, out);
}

std::vector<int32_t> Tokenizer::encode(const std::string& text, bool add_special,
                                       bool parse_special) const {
  IK_CHECK(impl_, "tokenizer used before it was loaded");
  const Impl& t = *impl_;
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (add_special && t.add_bos && t.bos >= 0) out.push_back(t.bos);
  if (!parse_special || t.literal_specials.empty()) {
    t.encode_fragment(text, true, true, out);
    return out;
  }
  // Split on special tokens written literally: leftmost, longest first.
  size_t fragment_start = 0;
  bool after_special = true;
  for (size_t pos = 0; pos < text.size();) {
    int32_t found = -1;
    if (!t.special_starts[static_cast<uint8_t>(text[pos])]) {
      ++pos;
      continue;
    }
    for (int32_t id : t.literal_specials) {
      const std::string& s = t.tokens[id];
      if (s[0] == text[pos] && text.compare(pos, s.size(), s) == 0) {
        found = id;
        break;
      }
    }
    if (found < 0) {
      ++pos;
      continue;
    }
    if (pos > fragment_start)
      t.encode_fragment(std::string_view(text).substr(fragment_start, pos - fragment_start),
                        fragment_start == 0, after_special, out);
    out.push_back(found);
    after_special = true;
    pos += t.tokens[found].size();
    fragment_start = pos;
  }
  if (fragment_start < text.size())
    t.encode_fragment(std::string_view(text).substr(fragment_start), fragment_start == 0,
                      after_special, out);
  return out;
}

// ---------------------------------------------------------------------------------------
// Decoding and queries

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  IK_CHECK(impl_, "tokenizer used before it was loaded");
  std::string out;
  for (int32_t id : ids) {
    IK_CHECK(id >= 0 && id < vocab_size(), "token id {} out of range (vocabulary of {})", id,
             vocab_size());
    if (skip_special && impl_->skip_on_decode[id]) continue;
    out += impl_->pieces[id];
  }
  // SentencePiece models drop the space their prefix added.
  if (!impl_->byte_level && impl_->space_prefix != SpacePrefix::kNever && !out.empty() &&
      out[0] == ' ')
    out.erase(0, 1);
  return out;
}

std::string Tokenizer::token_to_piece(int32_t id) const {
  IK_CHECK(impl_ && id >= 0 && id < vocab_size(), "token id {} out of range", id);
  return impl_->pieces[id];
}

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

int32_t Tokenizer::vocab_size() const {
  return impl_ ? static_cast<int32_t>(impl_->tokens.size()) : 0;
}
int32_t Tokenizer::bos_id() const { return impl_ ? impl_->bos : -1; }
int32_t Tokenizer::eos_id() const { return impl_ ? impl_->eos : -1; }
const std::vector<int32_t>& Tokenizer::stop_ids() const {
  static const std::vector<int32_t> none;
  return impl_ ? impl_->stop_ids : none;
}
bool Tokenizer::is_special(int32_t id) const {
  if (!impl_ || id < 0 || id >= vocab_size()) return false;
  const int32_t t = impl_->types[id];
  return t == kControl || t == kUnknown || impl_->skip_on_decode[id];
}

std::string Tokenizer::apply_chat_template(const std::vector<ChatMessage>& messages,
                                           bool add_generation_prompt) const {
  IK_CHECK(impl_, "tokenizer used before it was loaded");
  const Impl& t = *impl_;
  const std::string bos_text = t.bos >= 0 ? t.tokens[t.bos] : "";
  const std::string eos_text = t.eos >= 0 ? t.tokens[t.eos] : "";
  return render_chat_template(t.chat_template, messages, add_generation_prompt, bos_text,
                              eos_text);
}

const std::string& Tokenizer::chat_template() const {
  static const std::string none;
  return impl_ ? impl_->chat_template : none;
}

std::string Tokenizer::summary() const {
  if (!impl_) return "no tokenizer";
  const Impl& t = *impl_;
  const std::string kind = t.byte_level ? fmt::format("byte-level BPE (pre {})",
                                                      pre_tokenizer_name(t.pre))
                                        : std::string("SentencePiece BPE");
  return fmt::format("{}, {} tokens, {} merges, chat template {}", kind, t.tokens.size(),
                     t.merges.size(),
                     t.chat_template.empty()
                         ? "none (chatml)"
                         : chat_family_name(detect_chat_family(t.chat_template)));
}

// ---------------------------------------------------------------------------------------

std::string Utf8Streamer::push(const std::string& piece) {
  pending_ += piece;
  const size_t hold = unicode::utf8_incomplete_tail(pending_);
  std::string ready = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return ready;
}

std::string Utf8Streamer::flush() {
  std::string rest;
  rest.swap(pending_);
  return rest;
}

}  // namespace ik::llm
