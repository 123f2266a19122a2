// Scoring a completion against the accepted answers (SQuAD-style normalization).
#include <algorithm>
#include <cctype>

#include "llm/eval/tasks.hpp"

namespace ik::llm::eval {

std::string normalize_answer(const std::string& s) {
  std::string t;
  for (unsigned char c : s) {
    if (c < 128 && std::ispunct(c)) continue;  // "D.C." and "DC" match, as in SQuAD
    t += char(c < 128 ? std::tolower(c) : c);
  }
  std::string out, word;
  auto flush = [&] {
    if (!word.empty() && word != "a" && word != "an" && word != "the") out += (out.empty() ? "" : " ") + word;
    word.clear();
  };
  for (char c : t) {
    if (std::isspace(static_cast<unsigned char>(c))) flush();
    else word += c;
  }
  flush();
  return out;
}

bool exact_match(const std::string& prediction, const std::vector<std::string>& answers) {
  const std::string p = normalize_answer(prediction);
  return std::any_of(answers.begin(), answers.end(), [&](const std::string& a) { return normalize_answer(a) == p; });
}

}  // namespace ik::llm::eval
