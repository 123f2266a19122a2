#pragma once
// Minimal CSV writer for study outputs: a header row, then rows of numbers or strings.
#include <fstream>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace ik {

class CsvWriter {
 public:
  CsvWriter(const std::string& path, const std::vector<std::string>& header) : out_(path) {
    IK_CHECK(out_.good(), "cannot write '{}'", path);
    row(header);
  }
  template <typename... T>
  void add(const T&... cells) {
    std::vector<std::string> r;
    (r.push_back(cell(cells)), ...);
    row(r);
  }
  void row(const std::vector<std::string>& cells) {
    for (size_t i = 0; i < cells.size(); ++i) out_ << (i ? "," : "") << cells[i];
    out_ << '\n';
  }

 private:
  static std::string cell(const std::string& s) { return s; }
  static std::string cell(const char* s) { return s; }
  template <typename T>
  static std::string cell(const T& v) { return fmt::format("{}", v); }
  std::ofstream out_;
};

}  // namespace ik
