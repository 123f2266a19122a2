// Building the suite and scoring greedy completions by normalized exact match.
#include <algorithm>

#include "core/error.hpp"
#include "core/progress.hpp"
#include "llm/eval/tasks.hpp"
#include "llm/runtime/session.hpp"

namespace ik::llm::eval {

const std::vector<std::string>& families() {
  static const std::vector<std::string> f = {"closed_book", "open_book", "overriding",
                                             "icl_linear",  "icl_mlp",   "icl_tree"};
  return f;
}

bool is_recall_family(const std::string& family) { return family == "closed_book"; }

std::vector<EvalItem> build_suite(const std::vector<QaFact>& facts, const SuiteOptions& opt,
                                  std::vector<std::string> which) {
  if (which.empty()) which = families();
  std::vector<EvalItem> out;
  for (const auto& fam : which) {
    IK_CHECK(std::find(families().begin(), families().end(), fam) != families().end(),
             "unknown task family '{}' (choices: {})", fam, fmt::join(families(), ", "));
    std::vector<EvalItem> items;
    if (fam.rfind("icl_", 0) == 0)
      items = function_items(fam.substr(4), opt.limit > 0 ? opt.limit : opt.fn_items, opt.seed, opt.fn_exemplars,
                             opt.fn_dims);
    else
      items = qa_items(facts, fam, opt.qa_shots, opt.limit, opt.seed);
    out.insert(out.end(), items.begin(), items.end());
  }
  return out;
}

std::vector<FamilyResult> evaluate(LlamaModel& model, const Tokenizer& tok, const std::vector<EvalItem>& items,
                                   const EvalOptions& opt, std::vector<std::string>* predictions) {
  Session session(model, tok, opt.ctx);  // a fresh cache: the weights may have changed
  return evaluate(session, tok, items, opt, predictions);
}

std::vector<FamilyResult> evaluate(Session& session, const Tokenizer& tok, const std::vector<EvalItem>& items,
                                   const EvalOptions& opt, std::vector<std::string>* predictions) {
  GenerateOptions gen;
  gen.max_tokens = opt.max_tokens;
  gen.stop = {"\n"};
  gen.sampling.temperature = 0;  // greedy
  std::vector<FamilyResult> res;
  for (const auto& f : families()) res.push_back({f});
  Progress bar(opt.label, items.size(), opt.progress);
  for (const EvalItem& item : items) {
    const auto ids = tok.encode(item.prompt, true, false);
    IK_CHECK(int64_t(ids.size()) + opt.max_tokens <= opt.ctx, "a {} prompt of {} tokens does not fit the context {}",
             item.family, ids.size(), opt.ctx);
    session.set_context(ids);
    const std::string text = session.generate(gen).text;
    auto it = std::find_if(res.begin(), res.end(), [&](const FamilyResult& r) { return r.family == item.family; });
    IK_CHECK(it != res.end(), "unknown task family '{}'", item.family);
    it->n++;
    it->correct += exact_match(text, item.answers);
    if (predictions) predictions->push_back(text);
    bar.advance();
  }
  bar.finish();
  res.erase(std::remove_if(res.begin(), res.end(), [](const FamilyResult& r) { return r.n == 0; }), res.end());
  return res;
}

}  // namespace ik::llm::eval
