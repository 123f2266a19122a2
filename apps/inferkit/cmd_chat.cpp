// inferkit chat: a multi-turn REPL that keeps the KV cache between turns, and
// inferkit run: one chat turn with a default prompt (what `make run` shows).
#include <cstdio>
#include <fmt/format.h>
#include <iostream>

#include "command.hpp"
#include "core/error.hpp"
#include "llm_common.hpp"

namespace ik::cli {

void print_stats(const llm::GenerateResult& r);

struct ChatArgs {
  ModelFlags model;
  DeviceFlag device;
  SamplingFlags sampling;
  std::string system;
  std::string prompt;
};


// One assistant turn: template the whole conversation, reuse the cached prefix, stream the reply.
static llm::GenerateResult reply(llm::Session& s, std::vector<llm::ChatMessage>& msgs, const llm::GenerateOptions& opt) {
  const auto& tok = s.tokenizer();
  s.set_context(tok.encode(tok.apply_chat_template(msgs, true), false, true));
  auto r = s.generate(opt, [](const std::string& piece) {
    fmt::print("{}", piece);
    std::fflush(stdout);
    return true;
  });
  fmt::print("\n");
  msgs.push_back({"assistant", r.text});
  return r;
}

static void run_chat(const ChatArgs& a) {
  LoadedModel lm = load_model(a.model);
  auto session = open_session(lm, a.device);
  std::vector<llm::ChatMessage> msgs;
  if (!a.system.empty()) msgs.push_back({"system", a.system});
  fmt::print(stderr, "chat with {} ({} layers, context {}). Empty line or /exit quits, /reset forgets.\n",
             lm.model->config().name, lm.model->config().n_layer, lm.ctx);
  std::string line;
  while (true) {
    fmt::print(stderr, "> ");
    std::fflush(stderr);
    if (!std::getline(std::cin, line) || line.empty() || line == "/exit") break;
    if (line == "/reset") {
      msgs.resize(a.system.empty() ? 0 : 1);
      continue;
    }
    msgs.push_back({"user", line});
    print_stats(reply(*session, msgs, a.sampling.opt));
  }
}

static void run_default(const ChatArgs& a) {
  LoadedModel lm = load_model(a.model);
  fmt::print(stderr, "model: {} ({:.0f} MiB, loaded in {:.2f}s)\n", lm.model->config().name,
             lm.file_bytes / 1048576.0, lm.load_s);
  auto session = open_session(lm, a.device);
  std::vector<llm::ChatMessage> msgs{{"user", a.prompt}};
  fmt::print("> {}\n", a.prompt);
  print_stats(reply(*session, msgs, a.sampling.opt));
}

static void add_chat(CLI::App& app) {
  auto a = std::make_shared<ChatArgs>();
  auto* c = app.add_subcommand("chat", "Interactive multi-turn chat (keeps the KV cache between turns)");
  a->model.add(c);
  a->device.add(c);
  a->sampling.add(c, 0.7f);
  a->sampling.opt.max_tokens = 512;
  c->add_option("--system", a->system, "system message");
  c->callback([a] { run_chat(*a); });

  auto r = std::make_shared<ChatArgs>();
  r->prompt = "What are three interesting facts about octopuses? Answer briefly.";
  auto* cr = app.add_subcommand("run", "Answer one chat prompt with the default model and report tokens/s");
  r->model.add(cr);
  r->device.add(cr);
  r->sampling.add(cr, 0.0f);
  r->sampling.opt.max_tokens = 200;
  cr->add_option("-p,--prompt", r->prompt, "the user message");
  cr->callback([r] { run_default(*r); });
}

static Register reg("chat", add_chat);

}  // namespace ik::cli
