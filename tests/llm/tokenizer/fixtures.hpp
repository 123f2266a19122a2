#pragma once
// Reading the reference fixtures written by tools/make_tokenizer_fixtures.py.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ik::llm::testing {

inline std::string fixture_path(const std::string& name) {
  return std::string(IK_SOURCE_DIR) + "/tests/llm/tokenizer/fixtures/" + name;
}

inline nlohmann::json read_fixture(const std::string& name) {
  std::ifstream in(fixture_path(name));
  if (!in) throw std::runtime_error("missing fixture " + fixture_path(name));
  return nlohmann::json::parse(in);
}

inline std::vector<std::string> corpus() {
  return read_fixture("corpus.json")["strings"].get<std::vector<std::string>>();
}

inline std::vector<std::vector<int32_t>> fixture_ids(const std::string& name) {
  return read_fixture(name)["ids"].get<std::vector<std::vector<int32_t>>>();
}

// The default model (set up by `make run` / CI); IK_SMOLLM2_GGUF overrides the location.
inline std::string smollm2_gguf_path() {
  if (const char* env = std::getenv("IK_SMOLLM2_GGUF")) return env;
  return std::string(IK_SOURCE_DIR) + "/.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

// Printable form of a test string for failure messages.
inline std::string show(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else out += static_cast<char>(c);
  }
  return out + "\"";
}

}  // namespace ik::llm::testing
