// inferkit: one binary, git-style subcommands. Errors from the libraries arrive as
// ik::Error and leave as a one-line message and exit code 1; flag errors exit 2 (CLI11's own).
#include <cstdio>
#include <exception>
#include <fmt/format.h>
#include <map>

#include "command.hpp"
#include "core/error.hpp"

namespace ik::cli {

static std::map<std::string, AddFn>& registry() {
  static std::map<std::string, AddFn> r;
  return r;
}

Register::Register(const std::string& name, AddFn add) { registry()[name] = std::move(add); }

void add_all(CLI::App& app) {
  for (auto& [name, add] : registry()) add(app);
}

}  // namespace ik::cli

int main(int argc, char** argv) {
  CLI::App app{"inferkit: fast LLM inference and probabilistic reasoning"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "inferkit 0.1.0");
  // Flag errors: one line, exit code 2 (as for any usage error).
  app.failure_message([](const CLI::App*, const CLI::Error& e) { return fmt::format("error: {}\n", e.what()); });
  ik::cli::add_all(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const ik::Error& e) {
    std::fflush(stdout);
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}
