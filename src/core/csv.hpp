#pragma once
// Minimal CSV for study outputs: a header row, then rows of numbers or strings (no quoting:
// cells never hold commas).
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
    out_ << std::endl;  // flushed: a killed long sweep keeps every finished row (study --resume)
  }

 private:
  static std::string cell(const std::string& s) { return s; }
  static std::string cell(const char* s) { return s; }
  template <typename T>
  static std::string cell(const T& v) { return fmt::format("{}", v); }
  std::ofstream out_;
};

// The rows of a CSV file written by CsvWriter, header excluded; checks the header and the
// width of every row ("FILE:LINE: ..." on a mismatch).
std::vector<std::vector<std::string>> read_csv(const std::string& path, const std::vector<std::string>& header);

}  // namespace ik
