// The tuned lookup-table GEMM configurations: the table `inferkit bench-flute --tune` writes
// (lut_tuned.inc, compiled in), or the same format read at run time from IK_LUT_TUNED=FILE, so
// that a fresh tuning run can be measured before it is built in. Plain host code, built with
// and without CUDA.
#include <algorithm>
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

// "{a, b, ..., j}," with ten non-negative ints (spaces allowed around each), nothing after.
bool parse_line(const std::string& line, LutTunedEntry& e) {
  int* fields[] = {&e.n,     &e.k,           &e.bits,   &e.group,         &e.nt,
                   &e.warps, &e.unit_chunks, &e.stages, &e.blocks_per_sm, &e.row_blocks_per_warp};
  size_t i = 0;
  auto skip_spaces = [&] {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
  };
  auto expect = [&](char c) {
    skip_spaces();
    if (i >= line.size() || line[i] != c) return false;
    ++i;
    return true;
  };
  if (!expect('{')) return false;
  for (size_t f = 0; f < std::size(fields); ++f) {
    if (f > 0 && !expect(',')) return false;
    skip_spaces();
    long long v = 0;
    const size_t start = i;
    while (i < line.size() && line[i] >= '0' && line[i] <= '9' && v <= 1000000000) v = v * 10 + (line[i++] - '0');
    if (i == start || v > 1000000000 || (i < line.size() && line[i] >= '0' && line[i] <= '9')) return false;
    *fields[f] = int(v);
  }
  if (!expect('}') || !expect(',')) return false;
  skip_spaces();
  return i == line.size();
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
    if (!parse_line(line, e))
      fail("{} line {}: expected {{n, k, bits, group, nt, warps, unit_chunks, stages, blocks_per_sm, "
           "row_blocks_per_warp}}, (ten non-negative integers)",
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
