// libFuzzer target: arbitrary bytes as a QA facts file (`study downscale --qa`); ik::Error is fine.
#include <cstddef>
#include <cstdint>
#include <sstream>

#include "core/error.hpp"
#include "llm/eval/tasks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  try {
    const auto facts = ik::llm::eval::parse_qa(in, "fuzz.tsv");
    // The prompts of every family are built from what parsed (3 exemplars per relation).
    for (const char* family : {"closed_book", "open_book", "overriding"}) ik::llm::eval::qa_items(facts, family, 3, 0, 1);
  } catch (const ik::Error&) {
  }
  return 0;
}
