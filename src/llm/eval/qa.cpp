// QA data: loading the facts file and building closed-book, open-book and overriding prompts.
#include <algorithm>
#include <fstream>
#include <map>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "llm/eval/tasks.hpp"

namespace ik::llm::eval {

static std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out(1);
  for (char c : s) {
    if (c == sep) out.emplace_back();
    else out.back() += c;
  }
  return out;
}

std::vector<QaFact> load_qa(const std::string& path) {
  std::ifstream in(path);
  IK_CHECK(in.good(), "cannot read QA file '{}'", path);
  return parse_qa(in, path);
}

std::vector<QaFact> parse_qa(std::istream& in, const std::string& path) {
  std::vector<QaFact> facts;
  std::string line;
  for (int64_t lineno = 1; std::getline(in, line); ++lineno) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    const auto cells = split(line, '\t');
    IK_CHECK(cells.size() == 8, "{}:{}: expected 8 tab-separated fields, found {}", path, lineno, cells.size());
    for (size_t i = 0; i < 7; ++i)
      IK_CHECK(!cells[i].empty(), "{}:{}: field {} is empty", path, lineno, i + 1);
    QaFact f{cells[0], cells[1], cells[2], split(cells[3], '|'), cells[4], cells[5], cells[6], cells[7]};
    for (const auto& a : f.answers) IK_CHECK(!a.empty(), "{}:{}: an empty answer in '{}'", path, lineno, cells[3]);
    IK_CHECK(!exact_match(f.cf_answer, f.answers), "{}:{}: the counterfactual answer '{}' is a true answer", path,
             lineno, f.cf_answer);
    facts.push_back(std::move(f));
  }
  IK_CHECK(!facts.empty(), "QA file '{}' holds no facts", path);
  return facts;
}

// One exemplar or query block of a prompt; answer empty for the query.
static std::string qa_block(const std::string& family, const QaFact& f, bool with_answer) {
  std::string s;
  if (family == "open_book") s += "Context: " + f.evidence + "\n";
  if (family == "overriding") s += "Context: " + f.cf_evidence + "\n";
  s += "Q: " + f.question + "\nA:";
  if (with_answer) s += " " + (family == "overriding" ? f.cf_answer : f.answers[0]) + "\n\n";
  return s;
}

std::vector<EvalItem> qa_items(const std::vector<QaFact>& facts, const std::string& family, int shots,
                               int64_t limit, uint64_t seed) {
  IK_CHECK(family == "closed_book" || family == "open_book" || family == "overriding", "not a QA family: '{}'",
           family);
  // The first `shots` facts of each relation are its exemplars; the rest are evaluated.
  std::map<std::string, std::vector<size_t>> by_relation;
  std::vector<size_t> pool;
  for (size_t i = 0; i < facts.size(); ++i) {
    auto& demo = by_relation[facts[i].relation];
    if (int(demo.size()) < shots) demo.push_back(i);
    else pool.push_back(i);
  }
  Rng rng(seed, 7);
  for (size_t i = pool.size(); i > 1; --i) std::swap(pool[i - 1], pool[rng.below(i)]);
  if (limit > 0 && int64_t(pool.size()) > limit) pool.resize(limit);
  // Grouped by relation so consecutive prompts share their exemplar prefix (KV-cache reuse).
  std::stable_sort(pool.begin(), pool.end(), [&](size_t a, size_t b) {
    return facts[a].relation != facts[b].relation ? facts[a].relation < facts[b].relation : a < b;
  });
  std::vector<EvalItem> out;
  for (size_t i : pool) {
    const QaFact& f = facts[i];
    std::string prompt;
    for (size_t d : by_relation[f.relation]) prompt += qa_block(family, facts[d], true);
    prompt += qa_block(family, f, false);
    out.push_back({family, f.relation, prompt,
                   family == "overriding" ? std::vector<std::string>{f.cf_answer} : f.answers});
  }
  return out;
}

}  // namespace ik::llm::eval
