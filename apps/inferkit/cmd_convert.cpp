// inferkit convert: write a converted copy of a GGUF model (so far: Ladder Residual layers).
#include <fmt/format.h>

#include "command.hpp"
#include "core/error.hpp"
#include "llm/dist/tensor_parallel.hpp"

namespace ik::cli {

namespace {  // internal: every cmd_*.cpp shares namespace ik::cli (no ODR clashes)
struct ConvertArgs {
  std::string in, out;
  int ladder_last = -1;
};
}  // namespace

static void add_convert(CLI::App& app) {
  auto a = std::make_shared<ConvertArgs>();
  auto* c = app.add_subcommand("convert",
                               "Write a converted copy of a GGUF model: --ladder-last K marks the last K layers as "
                               "Ladder Residual layers (metadata inferkit.ladder_layers; weights unchanged, not retrained)");
  c->add_option("-m,--model", a->in, "input GGUF model")->required()->check(CLI::ExistingFile);
  c->add_option("-o,--output", a->out, "output GGUF file")->required();
  c->add_option("--ladder-last", a->ladder_last, "number of last layers to convert to ladder layers (0: standard)")
      ->required()
      ->check(CLI::NonNegativeNumber);
  c->callback([a] {
    llm::convert_to_ladder(a->in, a->out, a->ladder_last);
    fmt::print("wrote {} (last {} layers are ladder layers)\n", a->out, a->ladder_last);
  });
}

static Register reg("convert", add_convert);

}  // namespace ik::cli
