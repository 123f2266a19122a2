#pragma once
// ik::Error: the one exception type at library boundaries. Its message is a single line
// that names the problem; the CLI prints it and exits non-zero.
#include <fmt/format.h>
#include <stdexcept>
#include <string>

namespace ik {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace ik

// IK_CHECK(cond, "fmt", args...): throw ik::Error with the formatted message when cond is false.
#define IK_CHECK(cond, ...)          \
  do {                               \
    if (!(cond)) ::ik::fail(__VA_ARGS__); \
  } while (0)
