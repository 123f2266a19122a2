#include "llm_common.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fmt/format.h>
#include <cstdlib>
#include <filesystem>
#include <omp.h>

#include "backend/cuda/cuda.hpp"
#include "core/error.hpp"
#include "llm/dist/tensor_parallel.hpp"

#ifndef IK_DEFAULT_MODEL
#define IK_DEFAULT_MODEL ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
#endif

namespace ik::cli {

void ModelFlags::add(CLI::App* c) {
  c->add_option("-m,--model", model, "GGUF model file (default: SmolLM2-135M-Instruct from `make setup`)");
  c->add_option("-c,--ctx", ctx, "context size in tokens (capped at the model's)")->check(CLI::Range(16, 1 << 20));
  c->add_option("-t,--threads", threads, "CPU threads (0: all cores)")->check(CLI::Range(0, 1024));
  c->add_flag("--reference", reference, "exact f32 math on dequantized weights (slow; the path tested against transformers)");
}

void DeviceFlag::add(CLI::App* c) {
  c->add_option("--device", name, "where to run: cpu, cuda or auto (the GPU when one is usable)")
      ->check(CLI::IsMember({"cpu", "cuda", "auto"}));
  c->add_option("--gpu", ordinal, "which CUDA device")->check(CLI::Range(0, 63));
}

bool DeviceFlag::use_cuda() const {
  if (name == "cpu") return false;
  if (name == "auto" && !backend::cuda::available()) return false;
  backend::cuda::init(ordinal);  // throws naming the problem (no GPU, old driver, bad ordinal)
  return true;
}

void SamplingFlags::add(CLI::App* c, float default_temp) {
  opt.sampling.temperature = default_temp;
  auto& s = opt.sampling;
  c->add_option("-n,--max-tokens", opt.max_tokens, "tokens to generate (-1: until EOS or the context is full)")
      ->check(CLI::Range(-1, 1 << 24));
  c->add_option("--temp", s.temperature, "temperature (0: greedy)")->check(CLI::Range(0.0, 100.0));
  c->add_option("--top-k", s.top_k, "keep the k most likely tokens (0: off)")->check(CLI::Range(0, 1 << 24));
  c->add_option("--top-p", s.top_p, "nucleus sampling mass (1: off)")->check(CLI::Range(1e-6, 1.0));
  c->add_option("--min-p", s.min_p, "drop tokens below min-p times the top probability (0: off)")->check(CLI::Range(0.0, 0.999));
  c->add_option("--repeat-penalty", s.repeat_penalty, "penalty on recent tokens (1: off)")->check(CLI::Range(0.01, 100.0));
  c->add_option("--repeat-last-n", s.repeat_last_n, "how many recent tokens the penalty sees")->check(CLI::Range(0, 1 << 20));
  c->add_option("-s,--seed", s.seed, "random seed (same seed, same text)");
  c->add_option("--stop", opt.stop, "stop string (repeatable)");
  c->add_flag("--ignore-eos", [this](int64_t) { opt.stop_at_eos = false; }, "keep generating past end-of-sequence tokens");
}

std::string default_model_path() {
  if (const char* env = std::getenv("INFERKIT_MODEL"); env && *env) return env;
  for (const std::string& base : {std::string("."), std::string(IK_SOURCE_DIR)}) {
    const std::string p = base + "/" + IK_DEFAULT_MODEL;
    if (std::filesystem::exists(p)) return p;
  }
  fail("no model given (-m) and the default model is missing: run `make setup` (or set INFERKIT_MODEL)");
}

LoadedModel load_model(const ModelFlags& f) {
  if (f.threads > 0) omp_set_num_threads(f.threads);
  const auto t0 = std::chrono::steady_clock::now();
  LoadedModel lm;
  const std::string path = f.model.empty() ? default_model_path() : f.model;
  const auto mode = f.reference ? llm::WeightMode::Reference : llm::WeightMode::Fast;
  if (std::filesystem::is_directory(path)) {  // a Hugging Face checkpoint
    lm.model = std::make_unique<llm::LlamaModel>(llm::LlamaModel::from_hf_dir(path, mode));
    const auto dir = std::filesystem::path(path);
    lm.tokenizer = llm::Tokenizer::from_hf_json((dir / "tokenizer.json").string(),
                                                std::filesystem::exists(dir / "tokenizer_config.json")
                                                    ? (dir / "tokenizer_config.json").string()
                                                    : std::string());
  } else {
    lm.file = std::make_shared<const io::GgufFile>(io::GgufFile::open(path));
    lm.model = std::make_unique<llm::LlamaModel>(llm::LlamaModel::from_gguf(lm.file, mode));
    lm.tokenizer = llm::Tokenizer::from_gguf(*lm.file);
    // The plain engine computes the standard block: refuse rather than silently change the model.
    IK_CHECK(f.allow_ladder || llm::ladder_layers_of(*lm.file) == 0,
             "'{}' has Ladder Residual layers (inferkit.ladder_layers = {}): run it with --tensor-parallel P "
             "(P = 1 works without mpirun)",
             path, llm::ladder_layers_of(*lm.file));
  }
  lm.file_bytes = lm.file ? lm.file->file_size() : 0;
  lm.ctx = std::min<int64_t>(f.ctx, lm.model->config().n_ctx_train);
  lm.load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return lm;
}

llm::GpuLlama* gpu_model(LoadedModel& lm, const DeviceFlag& device) {
  if (!device.use_cuda()) return nullptr;
  if (!lm.gpu) {
    llm::GpuOptions opt;
    opt.device = device.ordinal;
    opt.n_ctx = lm.ctx;
    try {
      lm.gpu = llm::GpuLlama::upload(*lm.model, opt);
    } catch (const Error& e) {
      if (device.name == "cuda") throw;  // asked for explicitly: no silent fallback
      fmt::print(stderr, "note: running on the CPU: {}\n", e.what());
      return nullptr;
    }
  }
  return lm.gpu.get();
}

std::unique_ptr<llm::Session> open_session(LoadedModel& lm, const DeviceFlag& device) {
  if (llm::GpuLlama* gpu = gpu_model(lm, device)) return std::make_unique<llm::Session>(llm::make_gpu_sequence(*gpu), lm.tokenizer);
  return std::make_unique<llm::Session>(*lm.model, lm.tokenizer, lm.ctx);
}

// ---- shared by the benchmark and check commands ---------------------------------------------

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// 100 + 37 i, cycling through the vocabulary above the special tokens.
std::vector<int32_t> bench_prompt(int n, int64_t n_vocab) {
  std::vector<int32_t> p(n);
  for (int i = 0; i < n; ++i) p[i] = int32_t(100 + (int64_t(i) * 37) % (n_vocab - 100));
  return p;
}

double gpu_decode_step_s(llm::GpuLlama& g, const std::vector<int32_t>& prompt, int n, int gen_tokens, int reps) {
  double best = 1e30;
  for (int rep = 0; rep < reps; ++rep) {
    for (int s = 0; s < n; ++s) {
      g.set_n_past(s, 0);
      g.forward(s, prompt.data(), int64_t(prompt.size()), nullptr);
    }
    std::vector<int32_t> tok(n, prompt.back()), next(n);
    g.decode(tok.data(), n, next.data());  // captures the graph for this batch size once
    const double t0 = now_s();
    for (int i = 0; i < gen_tokens; ++i) {
      g.decode(next.data(), n, tok.data());
      std::swap(tok, next);
    }
    best = std::min(best, (now_s() - t0) / gen_tokens);
  }
  return best;
}

double gpu_verify_pass_s(llm::GpuLlama& g, const std::vector<int32_t>& prompt, int nodes, int passes, int reps) {
  // A causal mask over the nodes: the pass costs the same whatever the tree's shape.
  std::vector<uint8_t> mask(size_t(nodes) * nodes, 0);
  for (int i = 0; i < nodes; ++i)
    for (int j = 0; j <= i; ++j) mask[size_t(i) * nodes + j] = 1;
  const auto P = int64_t(prompt.size());
  std::vector<int32_t> tokens(nodes), positions(nodes), greedy(nodes);
  for (int i = 0; i < nodes; ++i) tokens[i] = prompt[size_t(i) % prompt.size()];
  double best = 1e30;
  for (int rep = 0; rep < reps; ++rep) {
    g.set_n_past(0, 0);
    g.forward(0, prompt.data(), P, nullptr);
    double total = 0;
    for (int pass = 0; pass <= passes; ++pass) {  // pass 0 captures the graph
      const int64_t base = g.n_past(0);
      for (int i = 0; i < nodes; ++i) positions[i] = int32_t(base + i);
      const double t0 = now_s();
      g.verify_tree(tokens.data(), nodes, positions.data(), mask.data(), greedy.data(), nullptr);
      if (pass > 0) total += now_s() - t0;
      g.keep_rows(0, base, {base});  // the accepted path: one token
    }
    best = std::min(best, total / passes);
  }
  return best;
}

bool print_text(const std::string& piece) {
  fmt::print("{}", piece);
  std::fflush(stdout);
  return true;
}

double gpu_prefill_s(llm::GpuLlama& g, const std::vector<int32_t>& prompt, int reps) {
  double best = 1e30;
  for (int rep = 0; rep < reps; ++rep) {
    g.set_n_past(0, 0);
    const double t0 = now_s();
    g.forward(0, prompt.data(), int64_t(prompt.size()), nullptr);
    backend::cuda::sync();
    best = std::min(best, now_s() - t0);
  }
  return best;
}

double max_rel_diff(const float* a, const float* b, size_t n) {
  double d = 0, m = 1e-20;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    d = std::max(d, double(std::fabs(a[i] - b[i])));
    m = std::max(m, double(std::fabs(b[i])));
  }
  return d / m;
}

GreedyTrace greedy_trace(llm::GpuLlama& g, const std::vector<int32_t>& prompt, int steps, bool all_rows) {
  const int64_t m = int64_t(prompt.size()), V = g.config().n_vocab;
  GreedyTrace t;
  t.logits.resize(size_t(all_rows ? m : 1) * V);
  g.forward(0, prompt.data(), m, t.logits.data(), all_rows);
  int32_t tok = g.sample_last(0), next = 0;
  for (int i = 0; i < steps; ++i) {
    t.tokens.push_back(tok);
    g.decode(&tok, 1, &next);
    tok = next;
  }
  return t;
}

}  // namespace ik::cli
