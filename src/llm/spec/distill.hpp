#pragma once
// Self-distillation data for training draft heads: the base model answers a set of prompts
// (greedy, through the chat template), then one forward over prompt + answer records, per
// position, the final-norm hidden state and the teacher's top-k next-token distribution
// (renormalised over the k kept tokens: a truncation that keeps files small).
#include <cstdint>
#include <string>
#include <vector>

#include "llm/model/llama.hpp"
#include "llm/tokenizer/tokenizer.hpp"

namespace ik::llm::spec {

struct DistillData {
  std::string base_name;
  int64_t n_embd = 0, n_vocab = 0;
  int top_k = 0;
  std::vector<int64_t> seq_start;    // per sequence: first row; plus a final end row
  std::vector<int64_t> answer_start; // per sequence: first answer row (training uses rows >= it - 1)
  std::vector<int32_t> tokens;       // [rows]
  std::vector<float> hidden;         // [rows, n_embd]
  std::vector<int32_t> teacher_ids;  // [rows, top_k]: teacher's most likely next tokens at the row
  std::vector<float> teacher_probs;  // [rows, top_k]

  int64_t n_seqs() const { return int64_t(answer_start.size()); }
  int64_t rows() const { return int64_t(tokens.size()); }
  void save(const std::string& path) const;  // GGUF
  static DistillData load(const std::string& path);
};

struct DistillOptions {
  int answer_tokens = 64;  // greedy tokens generated per prompt (fewer at an end token)
  int top_k = 32;
  int batch = 16;          // prompts decoded together (forward_batch)
  int max_prompt_tokens = 96;
};

// Prompts: one per line (empty lines skipped).
std::vector<std::string> read_prompts(const std::string& path);
DistillData build_distill_data(LlamaModel& model, const Tokenizer& tok, const std::vector<std::string>& prompts,
                               const DistillOptions& opt);

}  // namespace ik::llm::spec
