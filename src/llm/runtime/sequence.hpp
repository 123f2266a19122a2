#pragma once
// One sequence's model state on some device: the KV cache, the logits of its last token, and
// the next token's draw. Session runs on this interface, so chat and generate are the same
// code on the CPU engine and on the GPU (where the decode step and the draw are one CUDA graph).
#include <cstdint>
#include <memory>
#include <vector>

#include "llm/model/llama.hpp"
#include "llm/runtime/sampler.hpp"

namespace ik::llm {

class GpuLlama;

class Sequence {
 public:
  virtual ~Sequence() = default;
  virtual const LlamaConfig& config() const = 0;
  virtual int64_t n_ctx() const = 0;
  virtual int64_t n_past() const = 0;
  virtual void rewind(int64_t n) = 0;  // forget positions >= n
  // Append tokens (prompt chunks or one decoded token); the last one's logits become current.
  virtual void append(const int32_t* tokens, int64_t n) = 0;
  // Choose how to draw; then next_token() draws from the current logits.
  virtual void set_sampling(const SamplingParams& p) = 0;
  virtual int32_t next_token(const std::vector<int32_t>& history) = 0;
  virtual const std::vector<float>& logits() = 0;  // host copy of the current logits
};

// The CPU engine: LlamaModel::forward over a KVCache, prompts in chunks of `batch`.
std::unique_ptr<Sequence> make_cpu_sequence(LlamaModel& model, int64_t n_ctx, int64_t batch = 256);
// Slot `seq` of a GPU model. Draws on the device when the settings allow it (no repetition
// penalty), else downloads the logits and uses the CPU sampler.
std::unique_ptr<Sequence> make_gpu_sequence(GpuLlama& model, int seq = 0);

}  // namespace ik::llm
