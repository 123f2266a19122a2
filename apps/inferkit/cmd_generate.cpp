// inferkit generate: complete a prompt (optionally through the chat template), streaming.
#include <cstdio>
#include <fmt/format.h>
#include <fstream>
#include <sstream>

#include "command.hpp"
#include "dist/launch.hpp"
#include "core/error.hpp"
#include "llm_common.hpp"

namespace ik::cli {

struct GenerateArgs {
  ModelFlags model;
  DeviceFlag device;
  SamplingFlags sampling;
  std::string prompt, prompt_file, system;
  bool chat = false;
  bool quiet = false;
  int tensor_parallel = 0;  // > 0: shard the model over that many MPI ranks (cmd_tp.cpp)
  int context_parallel = 0;  // > 0: striped prefill, KV cache spread over that many MPI ranks (cmd_cp_generate.cpp)
  int64_t kv_capacity = 0;   // KV rows per rank with --context-parallel (0: ctx / P)
  // cmd_hydra.cpp: --spec/--heads/--tree; runs speculative decoding when --spec is given.
  std::function<bool(LoadedModel&, const DeviceFlag&, const std::vector<int32_t>&, const llm::GenerateOptions&, bool)>
      spec;
};

// cmd_hydra.cpp: adds --spec/--heads/--tree and returns the runner for GenerateArgs::spec.
std::function<bool(LoadedModel&, const DeviceFlag&, const std::vector<int32_t>&, const llm::GenerateOptions&, bool)>
add_spec_flags(CLI::App* c);

// cmd_tp.cpp: the decode loop over a tensor-parallel model (rank 0 prints).
void generate_tensor_parallel(LoadedModel& lm, const std::vector<int32_t>& prompt, const llm::GenerateOptions& opt,
                              int P, const std::string& echo, bool quiet);
// cmd_cp_generate.cpp: generation with the KV cache distributed over context-parallel ranks.
void run_cp_generate(LoadedModel& lm, const std::vector<int32_t>& ids, const llm::GenerateOptions& opt, int ranks,
                     int64_t kv_capacity, int threads, bool quiet, const std::string& echo);
void run_cp_generate_gpu(LoadedModel& lm, const std::vector<int32_t>& ids, const llm::GenerateOptions& opt,
                         dist::LocalRanks& ranks, int64_t kv_capacity, bool quiet, const std::string& echo);

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
  ModelFlags model_flags = a.model;
  model_flags.allow_ladder = a.tensor_parallel > 0;
  // Context parallelism on GPUs: one process per GPU, forked first (neither CUDA nor an OpenMP
  // thread pool survives a fork; every rank then maps the same model file).
  const bool cp_gpu = a.context_parallel > 0 && a.device.name == "cuda";
  dist::LocalRanks ranks = cp_gpu ? dist::spawn_local_ranks(a.context_parallel) : dist::LocalRanks{};
  LoadedModel lm = load_model(model_flags);
  std::vector<int32_t> ids;
  if (a.chat) {
    std::vector<llm::ChatMessage> msgs;
    if (!a.system.empty()) msgs.push_back({"system", a.system});
    msgs.push_back({"user", prompt});
    ids = lm.tokenizer.encode(lm.tokenizer.apply_chat_template(msgs, true), false, true);
  } else {
    ids = lm.tokenizer.encode(prompt, true, false);
  }
  if (a.tensor_parallel > 0)
    return generate_tensor_parallel(lm, ids, a.sampling.opt, a.tensor_parallel, a.chat || a.quiet ? "" : prompt,
                                    a.quiet);
  if (cp_gpu) return run_cp_generate_gpu(lm, ids, a.sampling.opt, ranks, a.kv_capacity, a.quiet, a.chat || a.quiet ? "" : prompt);
  if (a.context_parallel > 0)
    return run_cp_generate(lm, ids, a.sampling.opt, a.context_parallel, a.kv_capacity, a.model.threads, a.quiet,
                           a.chat ? "" : prompt);
  if (a.spec && a.spec(lm, a.device, ids, a.sampling.opt, a.quiet)) return;
  auto session = open_session(lm, a.device);
  session->set_context(ids);
  if (!a.chat && !a.quiet) fmt::print("{}", prompt);
  auto r = session->generate(a.sampling.opt, print_text);
  fmt::print("\n");
  if (!a.quiet) print_stats(r);
}

static void add_generate(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  auto* c = app.add_subcommand("generate", "Complete a prompt with a GGUF model, streaming the text");
  a->model.add(c);
  a->device.add(c);
  a->sampling.add(c, 0.8f);
  c->add_option("-p,--prompt", a->prompt, "prompt text");
  c->add_option("-f,--file", a->prompt_file, "read the prompt from a file");
  c->add_flag("--chat", a->chat, "wrap the prompt in the model's chat template as a user message");
  c->add_option("--system", a->system, "system message (with --chat)");
  c->add_flag("-q,--quiet", a->quiet, "print only the generated text");
  c->add_option("--tensor-parallel", a->tensor_parallel,
                "shard the model over P MPI ranks (run as `mpirun -np P inferkit generate --tensor-parallel P ...`)")
      ->check(CLI::Range(1, 1024));
  c->add_option("--context-parallel", a->context_parallel,
                "spread the prompt and KV cache over P MPI ranks, striped attention (`mpirun -np P inferkit generate "
                "--context-parallel P ...`); with --device cuda over P GPUs (forked processes, NCCL)")
      ->check(CLI::Range(1, 1024))
      ->excludes("--tensor-parallel");
  c->add_option("--kv-capacity", a->kv_capacity, "KV-cache rows per rank with --context-parallel (default: ctx / P)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 40));
  a->spec = add_spec_flags(c);
  c->callback([a] { run_generate(*a); });
}

static Register reg("generate", add_generate);

}  // namespace ik::cli
