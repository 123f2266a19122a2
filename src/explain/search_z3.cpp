// Explanation search as the reference does it (js-wat.rkt): repeatedly minimize the cost of
// the flags subject to "the output is wanted", blocking each answer's supersets that predict
// the same output. Rosette gets the flags-to-output function by symbolic execution; here
// it is the table of effective masks (search.hpp): M behaves like the effective mask E
// exactly when M agrees with E on the flags E's run consults.
#include <z3++.h>

#include <algorithm>

#include "core/error.hpp"
#include "explain/search.hpp"

namespace ik::explain {

std::vector<Run> z3_solutions(const Node* root, const std::function<bool(const std::string&)>& wanted,
                              const ExplainOptions& options, size_t* masks_evaluated) {
  std::vector<Run> table;
  bool complete = for_each_effective(root, 0, options.max_masks, options.max_steps, [&](const Run& r) {
    table.push_back(r);
    return true;
  });
  if (!complete) fail("the Z3 search needs the complete table of misconception sets (more than {})", options.max_masks);
  if (masks_evaluated) *masks_evaluated = table.size();

  z3::context ctx;
  std::vector<z3::expr> held;
  for (int m = 0; m < kNumMis; m++) held.push_back(ctx.bool_const(mis_info(m).name));
  auto behaves_like = [&](const Run& e) {
    z3::expr_vector agree(ctx);
    for (int f = 0; f < kNumMis; f++)
      if (e.consulted & bit(f)) agree.push_back((e.mask & bit(f)) ? held[f] : !held[f]);
    return agree.empty() ? ctx.bool_val(true) : z3::mk_and(agree);
  };
  auto outputs = [&](const std::function<bool(const std::string&)>& pick) {
    z3::expr_vector any(ctx);
    for (const Run& e : table)
      if (pick(e.shown)) any.push_back(behaves_like(e));
    return any.empty() ? ctx.bool_val(false) : z3::mk_or(any);
  };

  z3::optimize opt(ctx);
  opt.add(outputs(wanted));
  for (int m = 0; m < kNumMis; m++) opt.add_soft(!held[m], mis_info(m).cost);
  std::vector<Run> accepted;
  while (static_cast<int>(accepted.size()) < options.max_solutions && opt.check() == z3::sat) {
    z3::model model = opt.get_model();
    Mask mask = 0;
    for (int m = 0; m < kNumMis; m++)
      if (model.eval(held[m], true).is_true()) mask |= bit(m);
    Run r = run(root, mask, options.max_steps);
    accepted.push_back(r);
    // Block: same output and a superset of this answer.
    z3::expr_vector superset(ctx);
    for (int m = 0; m < kNumMis; m++)
      if (mask & bit(m)) superset.push_back(held[m]);
    z3::expr same = outputs([&](const std::string& s) { return s == r.shown; });
    opt.add(!(same && (superset.empty() ? ctx.bool_val(true) : z3::mk_and(superset))));
  }
  std::stable_sort(accepted.begin(), accepted.end(), [](const Run& a, const Run& b) {
    return std::make_pair(mask_cost(a.mask), a.mask) < std::make_pair(mask_cost(b.mask), b.mask);
  });
  return accepted;
}

}  // namespace ik::explain
