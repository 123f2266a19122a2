// inferkit perplexity: llama.cpp-style perplexity of a model on a text file.
#include <fmt/format.h>
#include <fstream>
#include <sstream>

#include "command.hpp"
#include "core/error.hpp"
#include "llm/eval/perplexity.hpp"
#include "llm_common.hpp"

namespace ik::cli {

struct PerplexityArgs {
  ModelFlags model;
  std::string text_file;
  int64_t max_windows = 0;
  int64_t offset = 0, bytes = 0;
};

static std::string read_text_slice(const std::string& path, int64_t offset, int64_t bytes) {
  std::ifstream in(path, std::ios::binary);
  IK_CHECK(in.good(), "cannot read text file '{}'", path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  IK_CHECK(offset <= int64_t(s.size()), "--offset {} is past the end of '{}' ({} bytes)", offset, path, s.size());
  s = s.substr(size_t(offset), bytes > 0 ? size_t(bytes) : std::string::npos);
  IK_CHECK(!s.empty(), "text file '{}' is empty", path);
  return s;
}

static void run_perplexity(const PerplexityArgs& a) {
  const std::string text = read_text_slice(a.text_file, a.offset, a.bytes);
  LoadedModel lm = load_model(a.model);
  // llama.cpp tokenizes with the model's BOS (if it adds one) and puts BOS at every window start.
  const auto plain = lm.tokenizer.encode(text, false, false);
  const auto tokens = lm.tokenizer.encode(text, true, false);
  llm::PerplexityOptions opt;
  opt.bos = tokens.size() > plain.size() ? lm.tokenizer.bos_id() : -1;
  opt.max_windows = a.max_windows;
  const int ctx = int(lm.ctx);
  fmt::print(stderr, "{} tokens, {} windows of {} (BOS per window: {})\n", tokens.size(), tokens.size() / ctx, ctx,
             opt.bos >= 0 ? "yes" : "no");
  const auto r = llm::perplexity(*lm.model, tokens, ctx, opt);
  fmt::print("perplexity {:.4f} +/- {:.4f} ({} tokens scored in {} windows of {}, {:.1f} s, {:.0f} tok/s)\n", r.ppl,
             r.ppl_stderr, r.n_scored, r.n_windows, ctx, r.seconds, r.n_windows * ctx / r.seconds);
}

static void add_perplexity(CLI::App& app) {
  auto* c = app.add_subcommand("perplexity",
                               "Perplexity on a text file, as llama.cpp defines it (non-overlapping windows of "
                               "--ctx tokens, the second half of each scored)");
  auto a = std::make_shared<PerplexityArgs>();
  a->model.ctx = 512;
  a->model.add(c);
  c->add_option("-f,--file", a->text_file, "text file")->required()->check(CLI::ExistingFile);
  c->add_option("--max-windows", a->max_windows, "evaluate at most this many windows (0: all)")
      ->check(CLI::NonNegativeNumber);
  c->add_option("--offset", a->offset, "start at this byte of the file")->check(CLI::NonNegativeNumber);
  c->add_option("--bytes", a->bytes, "read at most this many bytes (0: to the end)")->check(CLI::NonNegativeNumber);
  c->callback([a] { run_perplexity(*a); });
}

static Register reg("perplexity", add_perplexity);

}  // namespace ik::cli
