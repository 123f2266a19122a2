#include "core/csv.hpp"

#include <fmt/format.h>

namespace ik {

static std::vector<std::string> split_cells(const std::string& line) {
  std::vector<std::string> cells(1);
  for (char c : line) {
    if (c == ',') cells.emplace_back();
    else cells.back() += c;
  }
  return cells;
}

std::vector<std::vector<std::string>> read_csv(const std::string& path, const std::vector<std::string>& header) {
  std::ifstream in(path);
  IK_CHECK(in.good(), "cannot read CSV file '{}'", path);
  std::string line;
  IK_CHECK(std::getline(in, line), "{}: empty file (expected the header '{}')", path, fmt::join(header, ","));
  IK_CHECK(split_cells(line) == header, "{}:1: header '{}' is not the expected '{}'", path, line,
           fmt::join(header, ","));
  std::vector<std::vector<std::string>> rows;
  for (int64_t lineno = 2; std::getline(in, line); ++lineno) {
    if (line.empty()) continue;
    auto cells = split_cells(line);
    IK_CHECK(cells.size() == header.size(), "{}:{}: {} cells, expected {}", path, lineno, cells.size(), header.size());
    rows.push_back(std::move(cells));
  }
  return rows;
}

}  // namespace ik
