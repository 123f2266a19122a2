#pragma once
// Stop strings in streamed text, shared by Session and the server's scheduler: cut the text at
// the first stop string, and hold back any tail that could still grow into one.
#include <string>
#include <vector>

namespace ik::llm {

// Cuts `text` at the earliest stop string that starts at or after byte `emitted` minus the
// stop's length (earlier text was already searched). Returns whether a stop string was found.
bool cut_at_stop(std::string& text, size_t emitted, const std::vector<std::string>& stops);

// Length of the longest suffix of `text` that is a proper prefix of some stop string: those
// bytes must not be streamed yet.
size_t stop_hold_back(const std::string& text, const std::vector<std::string>& stops);

}  // namespace ik::llm
