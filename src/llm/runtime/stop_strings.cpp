#include "llm/runtime/stop_strings.hpp"

#include <algorithm>

namespace ik::llm {

bool cut_at_stop(std::string& text, size_t emitted, const std::vector<std::string>& stops) {
  bool stopped = false;
  for (const auto& s : stops) {
    const size_t at = text.find(s, emitted > s.size() ? emitted - s.size() : 0);
    if (at != std::string::npos) {
      text.resize(at);
      stopped = true;
    }
  }
  return stopped;
}

size_t stop_hold_back(const std::string& text, const std::vector<std::string>& stops) {
  size_t hold = 0;
  for (const auto& s : stops)
    for (size_t k = std::min(s.size() - 1, text.size()); k > hold; --k)
      if (text.compare(text.size() - k, k, s, 0, k) == 0) {
        hold = k;
        break;
      }
  return hold;
}

}  // namespace ik::llm
