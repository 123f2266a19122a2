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
LoadedModel load_model(const ModelFlags& f);
// A session on the device the flag picks (uploading the weights to the GPU once).
std::unique_ptr<llm::Session> open_session(LoadedModel& lm, const DeviceFlag& device);

}  // namespace ik::cli
