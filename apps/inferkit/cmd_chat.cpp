// inferkit chat: a multi-turn REPL that keeps the KV cache between turns, and
// inferkit run: one chat turn with a default prompt (what `make run` shows).
#include <cstdio>
#include <fmt/format.h>
#include <iostream>

#include "command.hpp"
#include "core/error.hpp"
#include "llm/spec/chat.hpp"
#include "llm_common.hpp"

namespace ik::cli {

void print_stats(const llm::GenerateResult& r);
// cmd_hydra.cpp: --spec/--heads/--tree, and the per-turn acceptance line.
std::function<std::unique_ptr<llm::spec::SpecChat>(LoadedModel&, const DeviceFlag&)> add_spec_chat_flags(CLI::App* c);
void print_spec_stats(const llm::spec::SpecChat& chat, const llm::spec::SpecTurn& t);

struct ChatArgs {
  ModelFlags model;
  DeviceFlag device;
  SamplingFlags sampling;
  std::string system;
  std::string prompt;
  std::function<std::unique_ptr<llm::spec::SpecChat>(LoadedModel&, const DeviceFlag&)> spec;
};

// One assistant turn: template the whole conversation, reuse the cached prefix, stream the reply.
static llm::GenerateResult reply(llm::Session& s, std::vector<llm::ChatMessage>& msgs, const llm::GenerateOptions& opt) {
  const auto& tok = s.tokenizer();
  s.set_context(tok.encode(tok.apply_chat_template(msgs, true), false, true));
  auto r = s.generate(opt, print_text);
  fmt::print("\n");
  msgs.push_back({"assistant", r.text});
  return r;
}

// The same turn with speculative decoding (the decoder keeps its own KV cache between turns).
static void reply_spec(llm::spec::SpecChat& chat, const llm::Tokenizer& tok, std::vector<llm::ChatMessage>& msgs,
                       const llm::GenerateOptions& opt) {
  auto t = chat.reply(tok.encode(tok.apply_chat_template(msgs, true), false, true), opt, print_text);
  fmt::print("\n");
  msgs.push_back({"assistant", t.gen.text});
  print_spec_stats(chat, t);
}

static void run_chat(const ChatArgs& a) {
  LoadedModel lm = load_model(a.model);
  std::unique_ptr<llm::spec::SpecChat> spec = a.spec(lm, a.device);
  std::unique_ptr<llm::Session> session = spec ? nullptr : open_session(lm, a.device);
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
    if (spec) reply_spec(*spec, lm.tokenizer, msgs, a.sampling.opt);
    else print_stats(reply(*session, msgs, a.sampling.opt));
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
  a->spec = add_spec_chat_flags(c);
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
