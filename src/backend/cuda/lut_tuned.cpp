// The tuned lookup-table GEMM configurations: the table `inferkit bench-flute --tune` writes
// (lut_tuned.inc, compiled in), or the same format read at run time from IK_LUT_TUNED=FILE, so
// that a fresh tuning run can be measured before it is built in. Plain host code, built with
// and without CUDA.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>

#include "backend/cuda/lut_gemm.hpp"
#include "core/error.hpp"

namespace ik::backend::cuda {

namespace {
constexpr LutTunedEntry kTuned[] = {
#include "backend/cuda/lut_tuned.inc"
};

const std::vector<LutTunedEntry>& tuned_table() {
  static const std::vector<LutTunedEntry> table = [] {
    const char* path = std::getenv("IK_LUT_TUNED");
    if (!path || !*path) return std::vector<LutTunedEntry>(std::begin(kTuned), std::end(kTuned));
    std::ifstream in(path);
    if (!in) fail("IK_LUT_TUNED: cannot open {}", path);
    std::stringstream text;
    text << in.rdbuf();
    return parse_lut_tuned(text.str(), path);
  }();
  return table;
}
}  // namespace

std::vector<LutTunedEntry> parse_lut_tuned(const std::string& text, const std::string& name) {
  std::vector<LutTunedEntry> entries;
  std::istringstream in(text);
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line.compare(first, 2, "//") == 0) continue;
    LutTunedEntry e;
    int used = 0;
    const int got = std::sscanf(line.c_str() + first, " {%d , %d , %d , %d , %d , %d , %d , %d , %d , %d } ,%n", &e.n,
                                &e.k, &e.bits, &e.group, &e.nt, &e.warps, &e.unit_chunks, &e.stages, &e.blocks_per_sm,
                                &e.row_blocks_per_warp, &used);
    if (got != 10 || used == 0 || line.find_first_not_of(" \t\r", first + used) != std::string::npos)
      fail("{} line {}: expected {{n, k, bits, group, nt, warps, unit_chunks, stages, blocks_per_sm, "
           "row_blocks_per_warp}},",
           name, number);
    entries.push_back(e);
  }
  return entries;
}

LutKernelConfig tuned_lut_config(int n, int k, int bits, int group, int nt) {
  for (const LutTunedEntry& e : tuned_table())
    if (e.n == n && e.k == k && e.bits == bits && e.group == group && e.nt == nt)
      return {e.warps, e.unit_chunks, e.stages, e.blocks_per_sm, std::max(e.row_blocks_per_warp, 1)};
  return {};
}

}  // namespace ik::backend::cuda
