#pragma once
// Explanation search (prob.md 5b) and the enumeration of effective misconception sets that
// it shares with diagnostic synthesis (5c).
//
// A mask M is "effective" for a program when every flag of M is consulted while evaluating
// under M. Any mask behaves exactly like its effective core (M intersected with the flags its
// run consults), and every effective mask is reached from the empty mask by adding, one at a
// time, a flag consulted by the current run. So growing masks that way enumerates all 2^32
// behaviours of a program while evaluating only the few masks that matter.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "explain/interp.hpp"

namespace ik::explain {

struct Run {
  Mask mask = 0;
  Mask consulted = 0;
  Value value;
  std::string shown;  // show(value)
};

Run run(const Node* root, Mask mask, long max_steps = 1000000);

// Visits effective masks (never containing an `excluded` flag) in order of increasing cost
// (ties by mask value); visit returns false to stop. Stops after max_masks effective masks
// and returns false in that case (true when the enumeration was complete).
bool for_each_effective(const Node* root, Mask excluded, size_t max_masks, long max_steps,
                        const std::function<bool(const Run&)>& visit);

struct Explanation {
  Mask mask = 0;
  int cost = 0;
  std::string output;               // what the program gives under the misconceptions
  std::vector<std::string> steps;   // "<fact>. Hence, <expr> gives <value>."
};

struct ExplainResult {
  std::string program;
  std::string standard_output;
  std::string expected_output;           // shown; empty without --expected
  bool expected_is_standard = false;     // the user's expectation is what JS does
  std::vector<Explanation> explanations;  // cheapest first; grouped by output when printed
  size_t masks_evaluated = 0;
};

enum class SearchMethod { BestFirst, Z3 };

struct ExplainOptions {
  SearchMethod method = SearchMethod::BestFirst;
  std::optional<std::string> expected;  // a JS expression (its standard value) or raw text
  int max_solutions = 6;                // as the reference's loop
  size_t max_masks = 200000;
  long max_steps = 1000000;
};

ExplainResult explain(const std::string& source, const ExplainOptions& options = {});

// The reference's loop done by Z3 (MaxSAT over the 32 flags, search_z3.cpp): the program's
// behaviour as a function of the flags is the table of its effective masks; returns the
// accepted runs, cheapest first. `wanted` tells which outputs count as answers.
std::vector<Run> z3_solutions(const Node* root, const std::function<bool(const std::string&)>& wanted,
                              const ExplainOptions& options, size_t* masks_evaluated);

// The text shown to the user.
std::string format_explanation(const ExplainResult& result);

// The value a user's --expected text denotes, shown by the printing rule.
std::string expected_shown(const std::string& expected);

}  // namespace ik::explain
