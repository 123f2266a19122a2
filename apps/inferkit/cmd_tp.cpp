// Tensor parallelism over MPI ranks (docs/tensor_parallel.md):
//   inferkit tp-perplexity -f text --ladder-last 0,4,8   zero-shot quality of ladder conversion
//   mpirun -np P inferkit generate --tensor-parallel P ...   (generate_tensor_parallel below)
//   mpirun -np P inferkit tp-bench ...                       decode speed of the block variants
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fmt/format.h>
#include <omp.h>

#include "command.hpp"
#include "core/error.hpp"
#include "core/rng.hpp"
#include "dist/comm.hpp"
#include "llm/dist/random_llama.hpp"
#include "llm/dist/tensor_parallel.hpp"
#include "llm_common.hpp"
#include "tp_gpu.hpp"

namespace ik::cli {

using Clock = std::chrono::steady_clock;

std::string read_text_file(const std::string& path);  // cmd_generate.cpp

static double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

static void check_world_size(const dist::Comm& comm, int P) {
  IK_CHECK(comm.size() == P, "--tensor-parallel {} but {} rank(s) are running (start with `mpirun -np {} inferkit ...`)",
           P, comm.size(), P);
}

// Every rank runs the model; rank 0 samples, prints, and broadcasts each token (so all ranks
// stay in step even where their logits could differ in the last bit); -1 means stop.
void generate_tensor_parallel(LoadedModel& lm, const std::vector<int32_t>& prompt, const llm::GenerateOptions& opt,
                              int P, const std::string& echo, bool quiet) {
  dist::MpiSession mpi;
  dist::MpiComm comm;
  check_world_size(comm, P);
  const bool root = comm.rank() == 0;
  llm::TpOptions tp_opt;
  tp_opt.ladder_last = lm.file ? llm::ladder_layers_of(*lm.file) : 0;
  llm::TensorParallelLlama tp(*lm.model, comm, tp_opt);
  IK_CHECK(int64_t(prompt.size()) < lm.ctx, "prompt is {} tokens, which does not fit the context of {}", prompt.size(),
           lm.ctx);
  auto cache = tp.make_cache(lm.ctx);
  const int64_t V = tp.config().n_vocab;
  std::vector<float> logits(V);
  if (root && !echo.empty()) fmt::print("{}", echo);

  auto t0 = Clock::now();
  for (size_t i = 0; i < prompt.size(); i += 256) {
    const int64_t m = std::min<int64_t>(256, int64_t(prompt.size() - i));
    tp.forward(prompt.data() + i, m, cache, logits.data());
  }
  const double prefill_s = seconds_since(t0);

  llm::Sampler sampler(opt.sampling);
  llm::TokenTextStream stream(lm.tokenizer, opt.stop, print_text);
  std::vector<int32_t> history = prompt;
  std::string stop_reason = "length";
  size_t generated = 0;
  const auto& stop_ids = lm.tokenizer.stop_ids();
  t0 = Clock::now();
  for (;;) {
    std::vector<float> next = {-1.0f};
    if (root && (opt.max_tokens < 0 || int(generated) < opt.max_tokens)) {
      const int32_t tok = sampler.sample(logits.data(), V, history);
      bool stop = opt.stop_at_eos && std::find(stop_ids.begin(), stop_ids.end(), tok) != stop_ids.end();
      if (stop) stop_reason = "eos";
      if (!stop) {
        stop = !stream.push(tok);
        if (stop) stop_reason = "stop";
        ++generated;
      }
      if (!stop && cache.n_past + 1 >= cache.n_ctx()) stop = true, stop_reason = "context";
      if (!stop) next[0] = float(tok);  // token ids are exact in a float (< 2^24)
    }
    comm.broadcast(next, 0);
    if (next[0] < 0) break;
    const int32_t tok = int32_t(next[0]);
    history.push_back(tok);
    tp.forward(&tok, 1, cache, logits.data());
  }
  const double decode_s = seconds_since(t0);
  if (!root) return;
  stream.finish();
  fmt::print("\n");
  std::fflush(stdout);
  if (!quiet)
    fmt::print(stderr,
               "\n[tensor-parallel {} | prompt {} tokens, {:.1f} tok/s | generated {} tokens, {:.1f} tok/s | "
               "stop: {} | ladder layers {} | comm wait {:.0f}% (rank 0)]\n",
               P, prompt.size(), prompt.size() / prefill_s, generated, generated / decode_s, stop_reason,
               tp_opt.ladder_last, 100.0 * tp.wait_seconds() / (prefill_s + decode_s));
}

// ---- tp-bench -----------------------------------------------------------------------------

namespace {  // internal: every cmd_*.cpp shares namespace ik::cli (no ODR clashes)

struct TpBenchArgs {
  ModelFlags model;
  std::string random;  // "layers,embd,ff,heads,kv_heads": random weights instead of a file
  std::string random_type = "q8_0";
  std::vector<std::string> variants = {"standard", "ladder", "parallel", "desync"};
  int prompt_tokens = 16, gen_tokens = 32, repeat = 3;
  double timeout = 120;
  std::string device = "cpu";  // cuda: TpGpuBench (tp_gpu.hpp)
  TpGpuBench gpu;
};

struct VariantResult {
  std::string name;
  double ms = 0, wait_ms = 0;  // per token: slowest rank's decode time; its wait in all-reduces
};

}  // namespace

static llm::TpOptions variant_options(const std::string& name, int n_layer) {
  llm::TpOptions o;
  if (name == "ladder") o.ladder_last = n_layer;
  else if (name == "parallel") o.parallel_block = true;
  else if (name == "desync") o.desync = true;
  else IK_CHECK(name == "standard", "unknown variant '{}' (standard, ladder, parallel, desync)", name);
  return o;
}

// One timed decode run: per-token time of the slowest rank and that rank's all-reduce wait.
static VariantResult time_decode(llm::TensorParallelLlama& tp, dist::Comm& comm, const std::string& name,
                                 const TpBenchArgs& a) {
  const int64_t V = tp.config().n_vocab;
  Rng rng(1, 0);
  std::vector<int32_t> prompt(a.prompt_tokens);
  for (auto& t : prompt) t = int32_t(rng.below(uint64_t(V)));
  std::vector<float> logits(V);
  auto cache = tp.make_cache(a.prompt_tokens + a.gen_tokens + 1);
  tp.forward(prompt.data(), int64_t(prompt.size()), cache, logits.data());
  comm.barrier();
  const double wait0 = tp.wait_seconds();
  const auto t0 = Clock::now();
  for (int i = 0; i < a.gen_tokens; ++i) {
    std::vector<float> next = {float(llm::argmax(logits.data(), V))};
    comm.broadcast(next, 0);  // desync ranks disagree: follow rank 0
    const int32_t tok = int32_t(next[0]);
    tp.forward(&tok, 1, cache, logits.data());
  }
  std::vector<float> mine = {float(seconds_since(t0)), float(tp.wait_seconds() - wait0)};
  std::vector<float> all(2 * comm.size());
  comm.all_gather(mine, all);
  VariantResult r{name, 0, 0};
  for (int p = 0; p < comm.size(); ++p)
    if (all[2 * p] * 1e3 / a.gen_tokens > r.ms) r.ms = all[2 * p] * 1e3 / a.gen_tokens, r.wait_ms = all[2 * p + 1] * 1e3 / a.gen_tokens;
  return r;
}

static void run_tp_bench(const TpBenchArgs& a) {
  dist::MpiSession mpi;
  dist::MpiComm comm;
  comm.set_timeout(a.timeout);
  if (a.model.threads > 0) omp_set_num_threads(a.model.threads);
  std::vector<uint8_t> bytes;  // a random model's file (kept alive while the model views it)
  std::shared_ptr<const io::GgufFile> file;
  std::unique_ptr<llm::LlamaModel> model;
  const auto mode = a.model.reference ? llm::WeightMode::Reference : llm::WeightMode::Fast;
  std::string what;
  if (!a.random.empty()) {
    std::vector<int64_t> v;
    for (size_t i = 0, j; i <= a.random.size(); i = j + 1) {
      j = std::min(a.random.find(',', i), a.random.size());
      v.push_back(std::stoll(a.random.substr(i, j - i)));
    }
    IK_CHECK(v.size() == 5 && v[0] > 0 && v[1] > 0 && v[2] > 0 && v[3] > 0 && v[4] > 0 && v[1] % v[3] == 0,
             "--random wants layers,embd,ff,heads,kv_heads (embd divisible by heads), got '{}'", a.random);
    llm::RandomLlamaDims d;
    d.n_layer = int(v[0]), d.head_dim = int(v[1] / v[3]), d.n_ff = v[2], d.n_head = int(v[3]), d.n_kv = int(v[4]);
    d.n_vocab = 32000;
    const auto type = a.random_type == "f32" ? io::DType::F32 : a.random_type == "q4_1" ? io::DType::Q4_1 : io::DType::Q8_0;
    bytes = llm::random_llama_gguf(d, 7, type);
    file = std::make_shared<const io::GgufFile>(io::GgufFile::parse(bytes.data(), bytes.size()));
    what = fmt::format("random {} ({} layers, embd {}, ff {}, heads {}/{}, vocab {})", a.random_type, d.n_layer,
                       d.embd(), d.n_ff, d.n_head, d.n_kv, d.n_vocab);
  } else {
    file = std::make_shared<const io::GgufFile>(io::GgufFile::open(a.model.model.empty() ? default_model_path() : a.model.model));
    what = file->path();
  }
  model = std::make_unique<llm::LlamaModel>(llm::LlamaModel::from_gguf(file, mode));

  // Variants interleaved run by run (a loaded machine drifts); the best run of each is kept.
  std::vector<std::unique_ptr<llm::TensorParallelLlama>> tps;
  std::vector<VariantResult> results;
  for (const auto& v : a.variants) {
    tps.push_back(std::make_unique<llm::TensorParallelLlama>(*model, comm, variant_options(v, int(model->config().n_layer))));
    results.push_back({v, 1e30, 0});
  }
  for (int rep = 0; rep < a.repeat; ++rep)
    for (size_t i = 0; i < tps.size(); ++i) {
      const VariantResult r = time_decode(*tps[i], comm, a.variants[i], a);
      if (r.ms < results[i].ms) results[i] = r;
    }
  if (comm.rank() != 0) return;
  auto find = [&](const std::string& n) -> const VariantResult* {
    for (const auto& r : results)
      if (r.name == n) return &r;
    return nullptr;
  };
  const VariantResult* standard = find("standard");
  const VariantResult* desync = find("desync");
  fmt::print("tp-bench: {} | P = {} | {} threads/rank | prompt {} + decode {} tokens | best of {}\n", what,
             comm.size(), omp_get_max_threads(), a.prompt_tokens, a.gen_tokens, a.repeat);
  fmt::print("{:<10} {:>10} {:>8} {:>12} {:>14} {:>13}\n", "variant", "ms/token", "tok/s", "comm wait %",
             "speedup vs std", "desync / this");
  for (const auto& r : results) {
    fmt::print("{:<10} {:>10.2f} {:>8.1f} {:>12.1f} {:>14} {:>13}\n", r.name, r.ms, 1e3 / r.ms, 100 * r.wait_ms / r.ms,
               standard ? fmt::format("{:.3f}x", standard->ms / r.ms) : "-",
               desync ? fmt::format("{:.3f}", desync->ms / r.ms) : "-");
  }
  std::fflush(stdout);
}

static void add_tp_bench(CLI::App& app) {
  auto a = std::make_shared<TpBenchArgs>();
  auto* c = app.add_subcommand("tp-bench",
                               "Decode speed of tensor-parallel block variants (standard, ladder, parallel, desync) "
                               "under `mpirun -np P`");
  a->model.add(c);
  c->add_option("--random", a->random,
                "random weights instead of a file: layers,embd,ff,heads,kv_heads (e.g. 2,4096,14336,32,8 for two "
                "Llama-3-8B layers)");
  c->add_option("--random-type", a->random_type, "storage of the random matrices")
      ->check(CLI::IsMember({"f32", "q8_0", "q4_1"}));
  c->add_option("--variants", a->variants, "variants to run (comma separated)")
      ->delimiter(',')
      ->check(CLI::IsMember({"standard", "ladder", "parallel", "desync"}));
  c->add_option("--prompt-tokens", a->prompt_tokens, "prompt length before decoding")->check(CLI::Range(1, 4096));
  c->add_option("--gen-tokens", a->gen_tokens, "decode steps timed")->check(CLI::Range(1, 4096));
  c->add_option("--repeat", a->repeat, "runs per variant (best is reported)")->check(CLI::Range(1, 100));
  c->add_option("--timeout", a->timeout, "seconds before a collective that does not complete is an error")
      ->check(CLI::Range(0.1, 3600.0));
  c->add_option("--device", a->device, "cpu: MPI ranks (mpirun -np P); cuda: one forked process per GPU, NCCL")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  c->add_option("--gpus", a->gpu.gpus, "--device cuda: tensor-parallel size (GPUs)")->check(CLI::Range(1, 64));
  c->add_option("--config", a->gpu.config, "--device cuda: random-weight shape (llama3-8b, llama3-70b-8layers, "
                "smollm2-135m, tiny)");
  c->add_option("--layers", a->gpu.layers, "--device cuda: override the shape's layer count")->check(CLI::Range(1, 1000));
  c->add_option("--batch", a->gpu.batches, "--device cuda: decode batch sizes (comma separated)")
      ->delimiter(',')
      ->check(CLI::Range(1, 1024));
  c->add_option("--prefill-tokens", a->gpu.prefill_tokens, "--device cuda: prefill measurement length")
      ->check(CLI::Range(1, 1 << 20));
  c->add_option("--seed", a->gpu.seed, "--device cuda: seed of the random weights");
  c->add_flag("--check", a->gpu.check, "--device cuda: compare each variant on --gpus GPUs with one GPU, no timing");
  c->callback([a, c] {
    if (a->device == "cpu") return run_tp_bench(*a);
    TpGpuBench g = a->gpu;
    g.variants = a->variants;
    if (c->count("--prompt-tokens")) g.prompt_tokens = a->prompt_tokens;
    if (c->count("--gen-tokens")) g.gen_tokens = a->gen_tokens;
    if (c->count("--repeat")) g.repeat = a->repeat;
    g.timeout = a->timeout;
    run_tp_bench_gpu(g);
  });
}

static Register reg("tp-bench", add_tp_bench);

// ---- tp-perplexity: zero-shot quality of a ladder conversion ------------------------------

// llama.cpp's definition (llm/eval/perplexity.hpp): windows of ctx tokens from an empty cache,
// BOS first, the second half scored; here through the tensor-parallel model, so the ladder
// recurrence is the one evaluated.
static double window_nll(llm::TensorParallelLlama& tp, std::vector<int32_t> window, int32_t bos,
                         const int32_t* next_tokens, int64_t* scored) {
  const int64_t ctx = int64_t(window.size()), V = tp.config().n_vocab;
  if (bos >= 0) window[0] = bos;
  auto cache = tp.make_cache(ctx);
  std::vector<float> logits(ctx * V);
  tp.forward(window.data(), ctx, cache, logits.data(), true);
  double nll = 0;
  for (int64_t i = ctx / 2; i <= ctx - 2; ++i) {
    const float* l = logits.data() + i * V;
    const float mx = *std::max_element(l, l + V);
    double sum = 0;
    for (int64_t v = 0; v < V; ++v) sum += std::exp(double(l[v] - mx));
    nll += std::log(sum) + mx - l[next_tokens[i + 1]];  // position i predicts token i+1
    ++*scored;
  }
  return nll;
}

// Perplexity over the whole windows of `tokens` with the last k layers as ladder layers
// (collective over comm's ranks).
double ladder_perplexity(llm::LlamaModel& model, dist::Comm& comm, int k, const std::vector<int32_t>& tokens,
                         int32_t bos, int ctx) {
  llm::TpOptions opt;
  opt.ladder_last = k;
  llm::TensorParallelLlama tp(model, comm, opt);
  double nll = 0;
  int64_t scored = 0;
  for (int64_t w = 0; w + ctx <= int64_t(tokens.size()); w += ctx) {
    const auto first = tokens.begin() + w;
    nll += window_nll(tp, std::vector<int32_t>(first, first + ctx), bos, &*first, &scored);
  }
  return std::exp(nll / double(scored));
}

static void add_tp_perplexity(CLI::App& app) {
  struct Args {
    ModelFlags model;
    std::string text_file;
    std::vector<int> ladder = {0};
    int ctx = 256;
  };
  auto a = std::make_shared<Args>();
  auto* c = app.add_subcommand("tp-perplexity",
                               "Perplexity with the last k layers converted to Ladder Residual (no retraining), "
                               "through the tensor-parallel model (plain or under `mpirun -np P`)");
  a->model.add(c);
  c->add_option("-f,--file", a->text_file, "text file")->required()->check(CLI::ExistingFile);
  c->add_option("--ladder-last", a->ladder, "values of k (comma separated; default: the file's own, 0 for a plain model)")
      ->delimiter(',')
      ->check(CLI::NonNegativeNumber);
  c->add_option("--window", a->ctx, "window length in tokens")->check(CLI::Range(8, 1 << 16));
  c->callback([a, c] {
    dist::MpiSession mpi;
    dist::MpiComm comm;
    ModelFlags flags = a->model;
    flags.allow_ladder = true;  // a converted or retrained file: evaluated with its own k by default
    LoadedModel lm = load_model(flags);
    if (!c->count("--ladder-last") && lm.file) a->ladder = {llm::ladder_layers_of(*lm.file)};
    const std::string text = read_text_file(a->text_file);
    const std::vector<int32_t> tokens = lm.tokenizer.encode(text, false, false);
    // BOS replaces each window's first token only where the model adds one (as `perplexity`).
    const int32_t bos = lm.tokenizer.encode(text, true, false).size() > tokens.size() ? lm.tokenizer.bos_id() : -1;
    const int64_t n_windows = int64_t(tokens.size()) / a->ctx;
    IK_CHECK(n_windows > 0, "the text has {} tokens, fewer than one window of {}", tokens.size(), a->ctx);
    if (comm.rank() == 0)
      fmt::print("tp-perplexity: {} | P = {} | {} windows of {} tokens\n{:>8} {:>12} {:>10}\n", a->model.model,
                 comm.size(), n_windows, a->ctx, "ladder k", "perplexity", "vs first k");
    double base = 0;
    for (int k : a->ladder) {
      const double ppl = ladder_perplexity(*lm.model, comm, k, tokens, bos, a->ctx);
      if (k == a->ladder.front()) base = ppl;
      if (comm.rank() == 0) fmt::print("{:>8} {:>12.3f} {:>9.2f}x\n", k, ppl, ppl / base), std::fflush(stdout);
    }
  });
}

static Register reg_ppl("tp-perplexity", add_tp_perplexity);

}  // namespace ik::cli
