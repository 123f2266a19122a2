// inferkit serve: an OpenAI-compatible HTTP server with continuous batching.
#include <csignal>
#include <filesystem>
#include <fmt/format.h>
#include <pthread.h>
#include <thread>

#include "command.hpp"
#include "core/error.hpp"
#include "llm/serve/http_server.hpp"
#include "llm/spec/chat.hpp"
#include "llm_common.hpp"

namespace ik::cli {

struct ServeArgs {
  ModelFlags model;
  DeviceFlag device;
  std::string spec, heads, tree = "mc-15";  // speculative decoding
  llm::serve::ServerOptions server;
  llm::serve::SchedulerOptions scheduler;
};

// With --spec: on the GPU with --device cuda (one slot), else the CPU speculative engine (a
// decoder and KV cache per slot, the heads shared). Without: the GPU engine when --device picks
// the GPU (weights uploaded once, a KV cache per slot), else the CPU engine. `where` names the
// device for the banner.
static std::unique_ptr<llm::serve::Engine> make_engine(LoadedModel& lm, const ServeArgs& a, std::string& where) {
  where = "the CPU";
  if (!a.spec.empty()) {
    auto heads = llm::spec::load_heads_for(a.spec, a.heads, *lm.model);
    const auto tree = llm::spec::DraftTree::load(a.tree);
    if (a.device.name == "cuda") {
      llm::GpuLlama* gpu = gpu_model(lm, a.device);  // asked for explicitly: throws rather than falling back
      where = fmt::format("{} (cuda:{}), speculative: {} heads, {} tree", gpu->device().name, a.device.ordinal, a.spec,
                          a.tree);
      return llm::serve::make_gpu_spec_engine(*lm.model, *gpu, std::move(heads), tree);
    }
    where = fmt::format("the CPU, speculative: {} heads, {} tree", a.spec, a.tree);
    return llm::serve::make_spec_engine(*lm.model, std::move(heads), tree, a.scheduler.parallel, a.scheduler.n_ctx);
  }
  if (!a.device.use_cuda()) return llm::serve::make_cpu_engine(*lm.model, a.scheduler.parallel, a.scheduler.n_ctx);
  llm::GpuOptions opt;
  opt.device = a.device.ordinal;
  opt.n_seq = a.scheduler.parallel;
  opt.n_ctx = a.scheduler.n_ctx;
  try {
    lm.gpu = llm::GpuLlama::upload(*lm.model, opt);
  } catch (const Error& e) {
    if (a.device.name == "cuda") throw;  // asked for explicitly: no silent fallback
    fmt::print(stderr, "note: running on the CPU: {}\n", e.what());
    return llm::serve::make_cpu_engine(*lm.model, a.scheduler.parallel, a.scheduler.n_ctx);
  }
  where = fmt::format("{} (cuda:{})", lm.gpu->device().name, a.device.ordinal);
  return llm::serve::make_gpu_engine(*lm.gpu, a.scheduler.parallel, a.scheduler.n_ctx);
}

static void run_serve(ServeArgs a) {
  // SIGINT/SIGTERM are taken by one thread (sigwait) that stops the server cleanly; a client
  // closing its socket must not kill the process (SIGPIPE).
  std::signal(SIGPIPE, SIG_IGN);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);  // inherited by every thread started below

  if (a.spec.empty()) IK_CHECK(a.heads.empty(), "--heads needs --spec medusa|hydra|hydra++");
  else IK_CHECK(!a.heads.empty(), "--spec {} needs --heads FILE (train one with `inferkit hydra train`)", a.spec);
  // --spec: --device cuda runs one slot on the GPU, auto and cpu the CPU engine (make_engine).
  IK_CHECK(a.spec.empty() || a.device.name != "cuda" || a.scheduler.parallel == 1,
           "--spec on the GPU serves one request at a time: use --parallel 1 (or --device cpu for {} slots)",
           a.scheduler.parallel);
  LoadedModel lm = load_model(a.model);
  a.scheduler.n_ctx = lm.ctx;
  if (a.server.model_name.empty())
    a.server.model_name = std::filesystem::path(a.model.model.empty() ? default_model_path() : a.model.model).stem().string();
  std::string where;
  llm::serve::Scheduler scheduler(make_engine(lm, a, where), lm.tokenizer, a.scheduler);
  llm::serve::HttpServer server(scheduler, lm.tokenizer, a.server);
  const int port = server.bind();
  scheduler.start();
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    server.stop();
  });
  fmt::print(stderr, "inferkit serve: {} ({} slots x {} tokens of context, on {}) on http://{}:{}\n",
             a.server.model_name, a.scheduler.parallel, a.scheduler.n_ctx, where, a.server.host, port);
  server.run();
  fmt::print(stderr, "inferkit serve: stopped\n");
  kill(getpid(), SIGTERM);  // release the waiter if the server stopped on its own
  waiter.join();
  scheduler.stop();
}

static void add_serve(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  a->server.model_name.clear();
  auto* c = app.add_subcommand("serve", "OpenAI-compatible HTTP server (chat, completions, streaming) with continuous batching");
  a->model.add(c);
  a->device.add(c);
  c->add_option("--host", a->server.host, "address to listen on")->capture_default_str();
  c->add_option("--port", a->server.port, "port (0: any free port, printed at start)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  c->add_option("--parallel", a->scheduler.parallel, "sequences decoded together (slots, each with its own KV cache)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  c->add_option("--prefill-chunk", a->scheduler.prefill_chunk, "prompt tokens prefilled per step between decode steps")
      ->check(CLI::Range(1, 1 << 16))
      ->capture_default_str();
  c->add_option("--max-queue", a->scheduler.max_queue, "requests waiting for a slot before 503 answers")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  c->add_option("--http-threads", a->server.http_threads, "connections served at once")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  c->add_option("--max-body", a->server.max_body_bytes, "largest request body in bytes (413 beyond)")
      ->check(CLI::Range(1024, 1 << 30))
      ->capture_default_str();
  c->add_option("--spec", a->spec, "speculative decoding with draft heads: medusa, hydra or hydra++ (greedy requests "
                "give the plain output, sampled ones use typical acceptance; on the GPU with --device cuda "
                "and --parallel 1, else on the CPU)")
      ->check(CLI::IsMember({"medusa", "hydra", "hydra++"}));
  c->add_option("--heads", a->heads, "draft-heads file for --spec (from `inferkit hydra train`)")->check(CLI::ExistingFile);
  c->add_option("--tree", a->tree, "draft tree for --spec: mc_sim_7b_63, mc-N, chain-N, top2-N, or a file of paths")
      ->capture_default_str();
  c->add_option("--model-name", a->server.model_name, "model id reported by /v1/models (default: the file name)");
  c->callback([a] { run_serve(*a); });
}

static Register reg("serve", add_serve);

}  // namespace ik::cli
