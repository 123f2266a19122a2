// inferkit info: a GGUF file's metadata and tensor table.
#include <fmt/format.h>
#include <map>

#include "command.hpp"
#include "io/gguf.hpp"
#include "llm_common.hpp"

namespace ik::cli {

static void run_info(const std::string& path_arg, bool all_tensors) {
  const std::string path = path_arg.empty() ? default_model_path() : path_arg;
  const auto f = io::GgufFile::open(path);
  fmt::print("file: {} ({:.1f} MiB, GGUF v{}, alignment {})\n", path, f.file_size() / 1048576.0, f.version(),
             f.alignment());
  fmt::print("\nmetadata ({} keys):\n", f.metadata_order().size());
  for (const auto& key : f.metadata_order()) {
    const auto& v = f.get(key);
    std::string shown = v.to_display(8);
    if (shown.size() > 160) shown = shown.substr(0, 157) + "...";
    for (auto& ch : shown)
      if (ch == '\n') ch = ' ';
    fmt::print("  {:<45} {:<8} {}\n", key, io::gguf_type_name(v.type), shown);
  }
  if (f.has("tokenizer.ggml.model")) fmt::print("\ntokenizer: {}\n", llm::Tokenizer::from_gguf(f).summary());
  std::map<std::string, std::pair<int, uint64_t>> by_type;
  uint64_t total = 0, params = 0;
  for (const auto& t : f.tensors()) {
    auto& e = by_type[io::dtype_name(t.type)];
    e.first++;
    e.second += t.nbytes;
    total += t.nbytes;
    params += t.n_elements();
  }
  fmt::print("\ntensors: {} ({:.1f}M parameters, {:.1f} MiB)\n", f.tensors().size(), params / 1e6, total / 1048576.0);
  for (const auto& [name, e] : by_type) fmt::print("  {:<8} {:>5} tensors {:>10.2f} MiB\n", name, e.first, e.second / 1048576.0);
  fmt::print("\n  {:<36} {:<8} {:<20} {:>12}\n", "name", "type", "shape", "bytes");
  size_t shown = 0;
  for (const auto& t : f.tensors()) {
    if (!all_tensors && shown == 24) {
      fmt::print("  ... {} more (use --all)\n", f.tensors().size() - shown);
      break;
    }
    fmt::print("  {:<36} {:<8} {:<20} {:>12}\n", t.name, io::dtype_name(t.type), fmt::format("[{}]", fmt::join(t.shape, ", ")),
               t.nbytes);
    ++shown;
  }
}

static void add_info(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto all = std::make_shared<bool>(false);
  auto* c = app.add_subcommand("info", "Show a GGUF model's metadata and tensor table");
  c->add_option("-m,--model", *path, "GGUF file (default: the default model)");
  c->add_flag("--all", *all, "list every tensor");
  c->callback([path, all] { run_info(*path, *all); });
}

static Register reg("info", add_info);

}  // namespace ik::cli
