// inferkit quantize: rewrite a GGUF model's block matrices in a lookup-table format
// (FLUTE's W_hat = table[Q] * s, see docs/quantization.md).
#include <cstdlib>
#include <filesystem>
#include <fmt/format.h>

#include "command.hpp"
#include "core/error.hpp"
#include "llm/quant/quantize_model.hpp"

namespace ik::cli {

struct QuantizeArgs {
  std::string in, out, calib;
  llm::quant::QuantizeOptions opt;
};

static void run_quantize(QuantizeArgs a) {
  if (a.opt.table == "nfl") {
    IK_CHECK(!a.calib.empty(), "--table nfl needs calibration text (--calib FILE)");
    IK_CHECK(std::filesystem::exists(a.calib), "calibration file '{}' does not exist", a.calib);
    IK_CHECK(std::filesystem::file_size(a.calib) > 0, "calibration file '{}' is empty", a.calib);
    a.opt.nfl.calib_path = a.calib;
  } else {
    IK_CHECK(a.calib.empty(), "--calib is only used with --table nfl");
  }
  const auto rep = llm::quant::quantize_model(a.in, a.out, a.opt);
  if (a.opt.table == "nfl")
    fmt::print("nfl: {} steps over {} calibration tokens in {:.0f} s; next-token loss {:.4f} (first quarter) -> "
               "{:.4f} (last quarter)\n",
               rep.nfl.steps, rep.nfl.tokens, rep.nfl.seconds, rep.nfl.loss_first, rep.nfl.loss_last);
  fmt::print("quantized {} matrices to {}-bit {} tables, group {} ({} other tensors copied)\n", rep.tensors_quantized,
             a.opt.bits, a.opt.table, a.opt.group, rep.tensors_copied);
  fmt::print("matrices: {:.1f} MiB -> {:.1f} MiB ({} bits + f16 scale per {} weights), relative RMS error {:.4f}\n",
             rep.bytes_before / 1048576.0, rep.bytes_after / 1048576.0, a.opt.bits, a.opt.group, rep.rel_rmse);
  fmt::print("wrote {}\n", a.out);
}

static void add_quantize(CLI::App& app) {
  auto* c = app.add_subcommand("quantize",
                               "Quantize a GGUF model's block matrices to a lookup-table format (NF, uniform int, "
                               "a k-means table per tensor, or NF with learned scales)");
  auto a = std::make_shared<QuantizeArgs>();
  c->add_option("-m,--model", a->in, "input GGUF model")->required()->check(CLI::ExistingFile);
  c->add_option("-o,--output", a->out, "output GGUF file")->required();
  c->add_option("--bits", a->opt.bits, "bits per weight code: 2, 3 or 4")->capture_default_str();
  c->add_option("--group", a->opt.group, "inputs sharing one scale: 32, 64, 128 or 256")->capture_default_str();
  c->add_option("--table", a->opt.table,
                "value table: nf (NormalFloat), int (uniform), kmeans (fitted per tensor), nfl (NF with group "
                "scales trained on --calib text)")
      ->check(CLI::IsMember({"nf", "int", "kmeans", "nfl"}))
      ->capture_default_str();
  c->add_flag("--ragged", a->opt.ragged,
              "allow a shorter last group per row when the group does not divide K (e.g. K = 576, G = 128)");
  c->add_option("--calib", a->calib, "calibration text (only for --table nfl)");
  c->add_option("--calib-tokens", a->opt.nfl.calib_tokens, "nfl: calibration tokens to train on (one epoch)")
      ->check(CLI::Range(int64_t(3), int64_t(1) << 30))
      ->capture_default_str();
  c->add_option("--calib-ctx", a->opt.nfl.seq_len, "nfl: tokens per training sequence (one Adam step each)")
      ->check(CLI::Range(int64_t(2), int64_t(1) << 20))
      ->capture_default_str();
  c->add_option("--lr", a->opt.nfl.lr, "nfl: Adam learning rate of the scales")
      ->check(CLI::Validator(
          [](std::string& v) {
            char* end = nullptr;
            const double x = std::strtod(v.c_str(), &end);
            return *end == 0 && x > 0 && x <= 1 ? std::string() : "must be a number in (0, 1], got " + v;
          },
          "(0,1]"))
      ->capture_default_str();
  c->add_flag("--no-progress", [a](int64_t) { a->opt.progress = false; }, "no progress bar");
  c->callback([a] { run_quantize(*a); });
}

static Register reg("quantize", add_quantize);

}  // namespace ik::cli
