// libFuzzer target: arbitrary bytes as a draft-tree spec (`--tree FILE`); ik::Error is fine.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.hpp"
#include "llm/spec/tree.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto tree = ik::llm::spec::DraftTree::parse(std::string(reinterpret_cast<const char*>(data), size));
    (void)tree.n_nodes();
  } catch (const ik::Error&) {
  }
  return 0;
}
