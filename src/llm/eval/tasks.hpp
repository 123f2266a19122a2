#pragma once
// The down-scaling evaluation suite (after Jin et al., "The Cost of Down-Scaling Language
// Models", 2023): task families that separate recalling facts stored in the weights from
// processing information given in the prompt. All are few-shot prompts scored by exact match
// of the greedy completion (up to the first newline) after normalization.
//  - closed_book: "Q: <question>\nA:" (fact recall);
//  - open_book:   the evidence sentence precedes the question;
//  - overriding:  a counterfactual evidence sentence precedes the question; the right answer
//                 is the context's, not the memorized one;
//  - icl_linear, icl_mlp, icl_tree: binary classification of integer vectors by a random
//    linear classifier, 2-layer ReLU network or depth-2 decision tree, learned in context
//    from labelled exemplars (chance = 50%: query labels are balanced).
#include <cstdint>
#include <istream>
#include <string>
#include <vector>

#include "llm/model/llama.hpp"
#include "llm/runtime/session.hpp"
#include "llm/tokenizer/tokenizer.hpp"

namespace ik::llm::eval {

struct QaFact {
  std::string id, relation, question;
  std::vector<std::string> answers;  // accepted answers, the first is canonical
  std::string evidence, cf_answer, cf_evidence, source;
};
// Tab-separated, 8 columns (see data/qa/facts.tsv); '#' lines are comments. Throws
// "FILE:LINE: ..." for a malformed line.
std::vector<QaFact> load_qa(const std::string& path);
// The same from a stream; `path` names it in the errors.
std::vector<QaFact> parse_qa(std::istream& in, const std::string& path);

struct EvalItem {
  std::string family;  // one of families()
  std::string group;   // relation or function kind: items of a group share their exemplars
  std::string prompt;
  std::vector<std::string> answers;
};

const std::vector<std::string>& families();  // closed_book, open_book, overriding, icl_*
bool is_recall_family(const std::string& family);  // closed_book

struct SuiteOptions {
  int qa_shots = 3;          // exemplars per relation (taken out of the evaluated facts)
  int64_t limit = 0;         // items per family (0: all QA facts; function tasks: fn_items)
  uint64_t seed = 1;
  int64_t fn_items = 200;    // function instances per kind when limit is 0
  int fn_exemplars = 16;     // labelled exemplars per function prompt
  int fn_dims = 4;           // input dimension
};
// Items of the requested families (all when empty); deterministic given the options.
std::vector<EvalItem> build_suite(const std::vector<QaFact>& facts, const SuiteOptions& opt,
                                  std::vector<std::string> which = {});
// One family of QA items: the same facts (a seeded sample of `limit`) for every family.
std::vector<EvalItem> qa_items(const std::vector<QaFact>& facts, const std::string& family, int shots,
                               int64_t limit, uint64_t seed);
// Function-learning prompts: kind is "linear", "mlp" or "tree".
std::vector<EvalItem> function_items(const std::string& kind, int64_t n, uint64_t seed, int exemplars, int dims);

// SQuAD-style: lower-case (ASCII), delete punctuation and the articles a/an/the, squeeze spaces.
std::string normalize_answer(const std::string& s);
bool exact_match(const std::string& prediction, const std::vector<std::string>& answers);

struct FamilyResult {
  std::string family;
  int64_t n = 0, correct = 0;
  double accuracy() const { return n ? double(correct) / n : 0.0; }
};
struct EvalOptions {
  int max_tokens = 12;
  int64_t ctx = 1024;
  bool progress = true;
  std::string label = "eval";
};
// Greedy completion of every item; results per family in families() order (only those
// present). predictions (optional) receives each completion.
std::vector<FamilyResult> evaluate(LlamaModel& model, const Tokenizer& tok, const std::vector<EvalItem>& items,
                                   const EvalOptions& opt = {}, std::vector<std::string>* predictions = nullptr);
// The same on a given session (e.g. over the GPU model); opt.ctx must not exceed its context.
std::vector<FamilyResult> evaluate(Session& session, const Tokenizer& tok, const std::vector<EvalItem>& items,
                                   const EvalOptions& opt = {}, std::vector<std::string>* predictions = nullptr);

}  // namespace ik::llm::eval
