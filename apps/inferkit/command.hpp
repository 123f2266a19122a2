#pragma once
// Each subcommand lives in its own cmd_*.cpp and registers itself with one line:
//   static ik::cli::Register reg("generate", add_generate);
// main() adds every registered command to the app in name order.
#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace ik::cli {

using AddFn = std::function<void(CLI::App&)>;

struct Register {
  Register(const std::string& name, AddFn add);
};

void add_all(CLI::App& app);

}  // namespace ik::cli
