#pragma once
// Diagnostic-program synthesis (prob.md 5c): for a misconception m, the smallest program p
// whose output under a set of misconceptions M equals its output under {m} exactly when
// m is in M, for every M (all 2^32, minus the prerequisites of m, which are assumed absent).
// Candidates are enumerated by size; the for-all over M is checked exactly through the
// effective masks of p (search.hpp).
#include <string>
#include <vector>

#include "explain/misconceptions.hpp"

namespace ik::explain {

struct Diagnostic {
  int mis = 0;
  bool found = false;
  std::string program;
  std::string standard_output;  // what people without m see
  std::string mis_output;       // what people with m predict
  int size = 0;                 // number of AST nodes
};

struct DiagnoseStats {
  size_t programs_tried = 0;
  size_t full_checks = 0;  // candidates that reached the exact for-all check
  double seconds = 0;
};

// Synthesizes diagnostics for all targets in one pass over the programs (size <= max_size).
std::vector<Diagnostic> diagnose(const std::vector<int>& targets, int max_size = 5, DiagnoseStats* stats = nullptr);

// True when `source` separates exactly the holders of m (the exact check used above).
bool is_diagnostic(const std::string& source, int m);

}  // namespace ik::explain
