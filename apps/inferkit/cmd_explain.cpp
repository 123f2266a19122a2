// inferkit explain: why does this JavaScript expression give that? (WatChat, docs/explain.md)
#include <chrono>
#include <fmt/format.h>

#include "command.hpp"
#include "core/error.hpp"
#include "explain/diagnose.hpp"
#include "explain/interp.hpp"
#include "explain/random_program.hpp"
#include "explain/search.hpp"

namespace {

struct ExplainArgs {
  std::string program;
  std::string expected;
  std::string diagnose;
  bool diagnose_all = false;
  bool list = false;
  std::string eval_mis;  // --eval-under
  bool eval = false;
  size_t random_programs = 0;
  uint64_t seed = 1;
  int max_size = 5;
  int max_solutions = 6;
  long max_steps = 1000000;
  std::string search = "best-first";
};

void print_diagnostics(const std::vector<int>& targets, int max_size) {
  ik::explain::DiagnoseStats stats;
  auto found = ik::explain::diagnose(targets, max_size, &stats);
  int ok = 0;
  for (auto& d : found) {
    const auto& info = ik::explain::mis_info(d.mis);
    if (!d.found) {
      fmt::print("{:<24} (none found up to size {})\n", info.name, max_size);
      continue;
    }
    ok++;
    fmt::print("{:<24} {:<28} standard: {:<20} with it: {}\n", info.name, d.program, d.standard_output, d.mis_output);
  }
  fmt::print("found {}/{} diagnostics; {} programs tried, {} exact checks, {:.2f} s\n", ok, targets.size(),
             stats.programs_tried, stats.full_checks, stats.seconds);
}

void run_explain(const ExplainArgs& a) {
  using namespace ik::explain;
  if (a.list) {
    for (int m = 0; m < kNumMis; m++) {
      const auto& info = mis_info(m);
      fmt::print("{:<24} cost {:>2}  {}\n", info.name, info.cost, info.fact);
    }
    return;
  }
  if (a.random_programs) {
    for (auto& p : random_programs(a.random_programs, a.seed)) fmt::print("{}\n", p);
    return;
  }
  if (a.diagnose_all) {
    std::vector<int> all;
    for (int m = 0; m < kNumMis; m++) all.push_back(m);
    print_diagnostics(all, a.max_size);
    return;
  }
  if (!a.diagnose.empty()) {
    print_diagnostics({parse_mis(a.diagnose)}, a.max_size);
    return;
  }
  if (a.program.empty()) ik::fail("give a program, e.g. inferkit explain '[] + {{}}', or --diagnose M / --diagnose-all");
  if (a.eval || !a.eval_mis.empty()) {
    fmt::print("{}\n", show(evaluate_source(a.program, parse_mask(a.eval_mis), a.max_steps)));
    return;
  }
  ExplainOptions options;
  if (!a.expected.empty()) options.expected = a.expected;
  options.max_solutions = a.max_solutions;
  options.max_steps = a.max_steps;
  if (a.search == "z3") options.method = SearchMethod::Z3;
  auto t0 = std::chrono::steady_clock::now();
  ExplainResult r = explain(a.program, options);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  fmt::print("{}", format_explanation(r));
  fmt::print("\n({} misconception sets evaluated in {:.2f} ms)\n", r.masks_evaluated, ms);
}

void add_explain(CLI::App& app) {
  auto a = std::make_shared<ExplainArgs>();
  auto* c = app.add_subcommand("explain",
                               "Explain a surprising JavaScript expression by the misconceptions that predict "
                               "what you expected (WatChat); synthesize diagnostic programs");
  c->add_option("program", a->program, "A JavaScript expression of the subset, e.g. '[] + {}'");
  c->add_option("--expected", a->expected,
                "What you expected, as a JS expression ('\"[][]\"', 'true', '[1,2,3]') or raw text; "
                "TypeError for an error");
  c->add_option("--diagnose", a->diagnose, "Synthesize a program that separates the holders of misconception M");
  c->add_flag("--diagnose-all", a->diagnose_all, "Synthesize diagnostic programs for all 32 misconceptions");
  c->add_flag("--list", a->list, "List the 32 misconceptions with their costs");
  c->add_flag("--eval", a->eval, "Only print what the program gives in standard JavaScript");
  c->add_option("--eval-under", a->eval_mis, "Print what the program gives under misconceptions 'a,b,...'");
  c->add_option("--random-programs", a->random_programs,
                "Print N random programs of the subset (the conformance generator)")
      ->check(CLI::Range(size_t(1), size_t(100000000)));
  c->add_option("--seed", a->seed, "Seed for --random-programs")->capture_default_str();
  c->add_option("--max-size", a->max_size, "Largest diagnostic program (AST nodes)")
      ->check(CLI::Range(1, 6))
      ->capture_default_str();
  c->add_option("--max-solutions", a->max_solutions, "Most explanations to list")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  c->add_option("--search", a->search, "Explanation search: best-first enumeration or z3 (MaxSAT, as the reference)")
      ->check(CLI::IsMember({"best-first", "z3"}))
      ->capture_default_str();
  c->add_option("--max-steps", a->max_steps, "Evaluation step limit")
      ->check(CLI::Range(1L, 1000000000L))
      ->capture_default_str();
  c->callback([a] { run_explain(*a); });
}

ik::cli::Register reg("explain", add_explain);

}  // namespace
