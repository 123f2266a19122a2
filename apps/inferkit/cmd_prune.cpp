// inferkit prune: one-shot pruning (magnitude, Wanda, SparseGPT) of a GGUF model's linear
// layers, written as a new GGUF whose pruned matrices are Q8_0 (zeros stay exact).
#include <filesystem>
#include <fmt/format.h>
#include <optional>

#include "command.hpp"
#include "core/error.hpp"
#include "llm/prune/model_prune.hpp"
#include "llm_common.hpp"

namespace ik::cli {

struct PruneArgs {
  ModelFlags model;
  std::string output, method = "wanda", nm, only = "all", calib = llm::prune::kDefaultCalibText;
  double sparsity = 0.5;
  int64_t calib_windows = 8, calib_window = 256;
  CLI::Option* sparsity_opt = nullptr;
};

static void run_prune(const PruneArgs& a) {
  using namespace llm::prune;
  const Method method = method_from_name(a.method);
  const Only only = only_from_name(a.only);
  Pattern pattern{a.sparsity};
  if (!a.nm.empty()) {
    IK_CHECK(a.sparsity_opt->count() == 0, "give --sparsity or --nm, not both");
    pattern = parse_nm(a.nm);
  }
  check_pattern(pattern, pattern.nm() ? pattern.m : 1);
  if (method != Method::magnitude)
    IK_CHECK(std::filesystem::is_regular_file(a.calib), "cannot read calibration file '{}'", a.calib);
  LoadedModel lm = load_model(a.model);
  IK_CHECK(lm.file, "prune reads and writes GGUF files (got a checkpoint directory)");
  std::optional<Calibration> calib;
  if (method != Method::magnitude)
    calib = calibrate_from_text(*lm.model, lm.tokenizer, a.calib, a.calib_window, a.calib_windows,
                                method == Method::sparsegpt);
  const auto st = prune_model(*lm.model, method, pattern, only, calib ? &*calib : nullptr);
  const std::string desc = fmt::format("{} {} ({})", method_name(method), pattern.describe(), a.only);
  write_pruned_gguf(*lm.file, *lm.model, only, desc, a.output);
  // The output must load in the engine.
  auto out = std::make_shared<const io::GgufFile>(io::GgufFile::open(a.output));
  llm::LlamaModel::from_gguf(out);
  fmt::print("{}: {:.2f}% of {} target weights are zero, pruned in {:.1f}s; wrote {} ({:.1f} MiB, pruned matrices "
             "{}), reloads OK\n",
             desc, 100.0 * st.pruned / st.total, st.total, st.seconds, a.output, out->file_size() / 1048576.0,
             lm.model->mode() == llm::WeightMode::Reference ? "F32" : "Q8_0");
}

static void add_prune(CLI::App& app) {
  auto a = std::make_shared<PruneArgs>();
  auto* c = app.add_subcommand("prune", "Prune a GGUF model's linear layers (magnitude, Wanda, SparseGPT)");
  a->model.add(c);
  c->add_option("--calib", a->calib, "calibration text for wanda/sparsegpt")->capture_default_str();
  c->add_option("--calib-windows", a->calib_windows, "calibration windows")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  c->add_option("--calib-window", a->calib_window, "tokens per calibration window")
      ->check(CLI::Range(16, 1 << 16))
      ->capture_default_str();
  c->add_option("-o,--output", a->output, "output GGUF file")->required();
  c->add_option("--method", a->method, "magnitude | wanda | sparsegpt")
      ->check(CLI::IsMember({"magnitude", "wanda", "sparsegpt"}))
      ->capture_default_str();
  a->sparsity_opt = c->add_option("--sparsity", a->sparsity, "fraction of each output row's weights to prune, in [0, 1)")
                        ->capture_default_str();
  c->add_option("--nm", a->nm, "N:M pattern instead of --sparsity (e.g. 2:4: prune 2 of every 4 inputs)");
  c->add_option("--only", a->only, "which matrices: all | attn | mlp")
      ->check(CLI::IsMember({"all", "attn", "mlp"}))
      ->capture_default_str();
  c->callback([a] { run_prune(*a); });
}

static Register reg("prune", add_prune);

}  // namespace ik::cli
