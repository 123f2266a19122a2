#pragma once
// Flags and loading shared by the LLM subcommands (generate, chat, run, bench, info).
#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "io/gguf.hpp"
#include "llm/model/llama.hpp"
#include "llm/model/llama_gpu.hpp"
#include "llm/runtime/session.hpp"
#include "llm/tokenizer/tokenizer.hpp"

namespace ik::cli {

struct ModelFlags {
  std::string model;     // empty: the default model
  int64_t ctx = 4096;    // capped at the model's training context
  int threads = 0;       // 0: all cores
  bool reference = false;  // f32 math on dequantized weights
  bool allow_ladder = false;  // Ladder Residual files run only tensor-parallel (set by that path)
  void add(CLI::App* c);
};

// --device cpu|cuda|auto. auto: the GPU when one is usable, else the CPU; cuda: the GPU or a
// clear error (no silent fallback when the user asked for it).
struct DeviceFlag {
  std::string name = "auto";
  int ordinal = 0;
  void add(CLI::App* c);
  bool use_cuda() const;  // initialises the GPU when it returns true
};

struct SamplingFlags {
  llm::GenerateOptions opt;
  void add(CLI::App* c, float default_temp);
};

// A loaded model with its tokenizer, ready for sessions.
struct LoadedModel {
  std::shared_ptr<const io::GgufFile> file;  // null for a Hugging Face checkpoint directory
  size_t file_bytes = 0;
  std::unique_ptr<llm::LlamaModel> model;
  std::unique_ptr<llm::GpuLlama> gpu;  // set by open_session on --device cuda
  llm::Tokenizer tokenizer;
  int64_t ctx = 0;
  double load_s = 0;
};

// The default model's path (INFERKIT_MODEL, else the set-up cache); throws with advice if absent.
std::string default_model_path();

// ---- shared by the benchmark and check commands ---------------------------------------------
double now_s();  // steady-clock seconds
// Prints generated text to stdout at once (a TokenTextStream callback); always true.
bool print_text(const std::string& piece);
// max |a - b| / max |b| over n values; infinity when a holds a non-finite value (an unwritten
// or broken output).
double max_rel_diff(const float* a, const float* b, size_t n);
// A fixed, reproducible prompt (the ids bench/engine/run.sh gives llama.cpp).
std::vector<int32_t> bench_prompt(int n, int64_t n_vocab);
// GPU prefill of the prompt into sequence 0 from empty: seconds, best of reps.
double gpu_prefill_s(llm::GpuLlama& g, const std::vector<int32_t>& prompt, int reps);
// GPU decode at batch n: n sequences prefilled with the prompt, then gen_tokens graph-launched
// steps; seconds per step, best of reps.
double gpu_decode_step_s(llm::GpuLlama& g, const std::vector<int32_t>& prompt, int n, int gen_tokens, int reps);
// Seconds per verification pass of a draft tree of `nodes` nodes (llm/spec) after the prompt,
// as speculative decoding calls it: the pass, its greedy tokens back on the host, the KV cache
// cut back to one accepted token. Best of reps, each the mean of `passes` passes.
double gpu_verify_pass_s(llm::GpuLlama& g, const std::vector<int32_t>& prompt, int nodes, int passes, int reps);
// A prompt through sequence 0 of g (logits of every row, or of the last when !all_rows), then
// `steps` greedy tokens through the decode graph.
struct GreedyTrace {
  std::vector<float> logits;
  std::vector<int32_t> tokens;
};
GreedyTrace greedy_trace(llm::GpuLlama& g, const std::vector<int32_t>& prompt, int steps, bool all_rows);
LoadedModel load_model(const ModelFlags& f);
// A session on the device the flag picks (uploading the weights to the GPU once).
std::unique_ptr<llm::Session> open_session(LoadedModel& lm, const DeviceFlag& device);
// The model on the GPU (uploaded on first use) when the device flag selects CUDA, else null:
// --device auto falls back to the CPU with a note, --device cuda throws.
llm::GpuLlama* gpu_model(LoadedModel& lm, const DeviceFlag& device);

}  // namespace ik::cli
