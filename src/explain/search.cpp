#include "explain/search.hpp"

#include <queue>
#include <set>
#include <unordered_set>

#include "core/error.hpp"

namespace ik::explain {

Run run(const Node* root, Mask mask, long max_steps) {
  Interpreter interp(mask, max_steps);
  Run r;
  r.mask = mask;
  r.value = interp.eval(root);
  r.consulted = interp.consulted();
  r.shown = show(r.value);
  return r;
}

bool for_each_effective(const Node* root, Mask excluded, size_t max_masks, long max_steps,
                        const std::function<bool(const Run&)>& visit) {
  using Item = std::pair<int, Mask>;
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> frontier;
  std::unordered_set<Mask> seen{0};
  frontier.push({0, 0});
  size_t visited = 0;
  while (!frontier.empty()) {
    Mask mask = frontier.top().second;
    frontier.pop();
    Run r = run(root, mask, max_steps);
    if ((mask & r.consulted) != mask) continue;  // not effective: its core was visited already
    if (++visited > max_masks) return false;
    if (!visit(r)) return true;
    for (int m = 0; m < kNumMis; m++) {
      Mask next = mask | bit(m);
      if ((r.consulted & bit(m)) && !(mask & bit(m)) && !(excluded & bit(m)) && seen.insert(next).second)
        frontier.push({mask_cost(next), next});
    }
  }
  return true;
}

std::string expected_shown(const std::string& expected) {
  if (expected == "TypeError" || expected == "error") return "TypeError";
  try {
    return show(evaluate_source(expected));
  } catch (const Error&) {
    return quote(expected);  // not an expression of the subset: take it as the string itself
  }
}

// Replays the standard evaluation and, at each expression where a held misconception
// changes a rule, states the correct fact and what the expression really gives.
static std::vector<std::string> causal_steps(const Program& prog, Mask mask, long max_steps) {
  std::vector<Firing> firings;
  Interpreter wrong(mask, max_steps);
  wrong.firings = &firings;
  wrong.eval(prog.root);
  std::map<const Node*, Value> values;
  Interpreter standard(0, max_steps);
  standard.node_values = &values;
  standard.eval(prog.root);
  std::vector<std::string> steps;
  std::set<std::pair<int, const Node*>> said;
  for (const Firing& f : firings) {
    if (!said.insert({f.mis, f.node}).second) continue;
    std::string text = std::string(mis_info(f.mis).fact) + ".";
    auto it = values.find(f.node);
    if (f.node && it != values.end()) {
      std::string expr = prog.source.substr(f.node->begin, f.node->end - f.node->begin);
      text += fmt::format(" Hence, {} gives {}.", expr, show(it->second));
    }
    steps.push_back(text);
  }
  return steps;
}

ExplainResult explain(const std::string& source, const ExplainOptions& options) {
  Program prog = parse(source);
  ExplainResult result;
  result.program = source;
  Run standard = run(prog.root, 0, options.max_steps);
  result.standard_output = standard.shown;
  std::optional<std::string> want;
  if (options.expected) {
    want = expected_shown(*options.expected);
    result.expected_output = *want;
    if (*want == standard.shown) {
      result.expected_is_standard = true;
      return result;
    }
  }
  auto wanted = [&](const std::string& shown) { return want ? shown == *want : shown != standard.shown; };
  std::vector<Run> accepted;
  if (options.method == SearchMethod::Z3) {
    accepted = z3_solutions(prog.root, wanted, options, &result.masks_evaluated);
  } else {
    for_each_effective(prog.root, 0, options.max_masks, options.max_steps, [&](const Run& r) {
      result.masks_evaluated++;
      if (!wanted(r.shown)) return true;
      // Not a superset of an earlier answer that predicts the same output.
      for (const Run& a : accepted)
        if ((a.mask & r.mask) == a.mask && a.shown == r.shown) return true;
      accepted.push_back(r);
      return static_cast<int>(accepted.size()) < options.max_solutions;
    });
  }
  for (const Run& a : accepted) {
    Explanation e;
    e.mask = a.mask;
    e.cost = mask_cost(a.mask);
    e.output = a.shown;
    e.steps = causal_steps(prog, a.mask, options.max_steps);
    result.explanations.push_back(std::move(e));
  }
  return result;
}

std::string format_explanation(const ExplainResult& r) {
  std::string out = fmt::format("{}  gives  {}\n", r.program, r.standard_output);
  if (r.expected_is_standard) return out + "That is what you expected: no misconception needed.\n";
  if (r.explanations.empty())
    return out + (r.expected_output.empty() ? "No set of the 32 known misconceptions predicts another output.\n"
                                            : "No set of the 32 known misconceptions predicts " + r.expected_output + ".\n");
  // Group by predicted output, in order of the cheapest explanation of each output.
  std::vector<std::string> outputs;
  for (auto& e : r.explanations)
    if (std::find(outputs.begin(), outputs.end(), e.output) == outputs.end()) outputs.push_back(e.output);
  for (auto& o : outputs) {
    out += fmt::format("\nIf you expected {}:\n", o);
    for (auto& e : r.explanations) {
      if (e.output != o) continue;
      out += fmt::format("  * you may believe: ");
      bool first = true;
      for (int m = 0; m < kNumMis; m++)
        if (e.mask & bit(m)) out += (first ? "" : "; ") + std::string(mis_info(m).wrong), first = false;
      out += fmt::format("  [{}, cost {}]\n", mask_names(e.mask), e.cost);
      for (auto& s : e.steps) out += "    - " + s + "\n";
    }
  }
  return out;
}

}  // namespace ik::explain
