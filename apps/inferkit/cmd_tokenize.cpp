// inferkit tokenize: the token ids (and pieces) a model's tokenizer gives a text.
#include <fmt/format.h>

#include "command.hpp"
#include "llm_common.hpp"

namespace ik::cli {

std::string read_text_file(const std::string& path);

struct TokenizeArgs {
  std::string model, prompt, file;
  bool add_special = false, no_parse_special = false, pieces = false;
};

static void run_tokenize(const TokenizeArgs& a) {
  const std::string path = a.model.empty() ? default_model_path() : a.model;
  const auto f = io::GgufFile::open(path);
  const auto tok = llm::Tokenizer::from_gguf(f);
  const std::string text = a.file.empty() ? a.prompt : read_text_file(a.file);
  const auto ids = tok.encode(text, a.add_special, !a.no_parse_special);
  fmt::print(stderr, "{}\n{} tokens\n", tok.summary(), ids.size());
  if (!a.pieces) {
    fmt::print("[{}]\n", fmt::join(ids, ", "));
    return;
  }
  for (int32_t id : ids) fmt::print("{:>7} {:?}\n", id, tok.token_to_piece(id));
}

static void add_tokenize(CLI::App& app) {
  auto a = std::make_shared<TokenizeArgs>();
  auto* c = app.add_subcommand("tokenize", "Print the token ids of a text under a model's tokenizer");
  c->add_option("-m,--model", a->model, "GGUF file (default: the default model)");
  c->add_option("-p,--prompt", a->prompt, "text to tokenize");
  c->add_option("-f,--file", a->file, "read the text from a file");
  c->add_flag("--add-special", a->add_special, "prepend BOS when the model asks for it");
  c->add_flag("--no-parse-special", a->no_parse_special, "treat special-token text as plain text");
  c->add_flag("--pieces", a->pieces, "one token per line with its text");
  c->callback([a] { run_tokenize(*a); });
}

static Register reg("tokenize", add_tokenize);

}  // namespace ik::cli
