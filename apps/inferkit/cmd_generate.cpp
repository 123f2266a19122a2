// inferkit generate: complete a prompt (optionally through the chat template), streaming.
#include <cstdio>
#include <fmt/format.h>
#include <fstream>
#include <sstream>

#include "command.hpp"
#include "core/error.hpp"
#include "llm_common.hpp"

namespace ik::cli {

struct GenerateArgs {
  ModelFlags model;
  SamplingFlags sampling;
  std::string prompt, prompt_file, system;
  bool chat = false;
  bool quiet = false;
};

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  IK_CHECK(in.good(), "cannot read prompt file '{}'", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void print_stats(const llm::GenerateResult& r) {
  fmt::print(stderr, "\n[prompt {} tokens, {:.1f} tok/s | generated {} tokens, {:.1f} tok/s | stop: {}]\n",
             r.prompt_tokens, r.prefill_tok_s(), r.tokens.size(), r.decode_tok_s(), r.stop_reason);
}

static void run_generate(const GenerateArgs& a) {
  std::string prompt = a.prompt_file.empty() ? a.prompt : read_text_file(a.prompt_file);
  IK_CHECK(!prompt.empty(), "empty prompt: give -p TEXT or -f FILE");
  LoadedModel lm = load_model(a.model);
  std::vector<int32_t> ids;
  if (a.chat) {
    std::vector<llm::ChatMessage> msgs;
    if (!a.system.empty()) msgs.push_back({"system", a.system});
    msgs.push_back({"user", prompt});
    ids = lm.tokenizer.encode(lm.tokenizer.apply_chat_template(msgs, true), false, true);
  } else {
    ids = lm.tokenizer.encode(prompt, true, false);
  }
  llm::Session session(*lm.model, lm.tokenizer, lm.ctx);
  session.set_context(ids);
  if (!a.chat && !a.quiet) fmt::print("{}", prompt);
  auto r = session.generate(a.sampling.opt, [](const std::string& piece) {
    fmt::print("{}", piece);
    std::fflush(stdout);
    return true;
  });
  fmt::print("\n");
  if (!a.quiet) print_stats(r);
}

static void add_generate(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  auto* c = app.add_subcommand("generate", "Complete a prompt with a GGUF model, streaming the text");
  a->model.add(c);
  a->sampling.add(c, 0.8f);
  c->add_option("-p,--prompt", a->prompt, "prompt text");
  c->add_option("-f,--file", a->prompt_file, "read the prompt from a file");
  c->add_flag("--chat", a->chat, "wrap the prompt in the model's chat template as a user message");
  c->add_option("--system", a->system, "system message (with --chat)");
  c->add_flag("-q,--quiet", a->quiet, "print only the generated text");
  c->callback([a] { run_generate(*a); });
}

static Register reg("generate", add_generate);

}  // namespace ik::cli
