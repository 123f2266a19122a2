#pragma once
// Learned NormalFloat (NFL, FLUTE arXiv 2407.10960): the per-group scales of an
// NF-quantized model are trained on calibration text to minimise next-token NLL through the
// quantized model. The codes (table indices) stay fixed -- the straight-through view of the
// rounding: W_hat = table[q] * s, so dL/ds[r, g] = sum over the group of dL/dW_hat[r, k] *
// table[q[r, k]]. Every other weight is frozen. Adam (lr 1e-4 by default), one epoch, one
// sequence per step. The result is stored exactly like NF (same LUT tensors; the learned
// scales rounded to f16), so it loads and runs with no new inference code.
//
// The gradients come from the reusable training library (src/llm/train: Block, ops, AdamW).
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "llm/quant/lut_format.hpp"

namespace ik::io {
class GgufFile;
}

namespace ik::llm::quant {

struct NflOptions {
  std::string calib_path;        // calibration text, tokenized with the model's tokenizer
  std::vector<int32_t> tokens;   // or the calibration tokens themselves (then calib_path is unused)
  int64_t calib_tokens = 2048;   // use at most this many tokens (one epoch over them)
  int64_t seq_len = 128;         // tokens per training sequence; one Adam step per sequence
  float lr = 1e-4f;
  bool progress = true;
};

struct NflReport {
  int64_t tokens = 0;  // calibration tokens used
  int steps = 0;       // Adam steps (sequences)
  // Mean next-token NLL (nats) of the first and the last quarter of the steps, each measured
  // before that step's update (so on text the scales had not yet been trained on).
  double loss_first = 0, loss_last = 0;
  double seconds = 0;
};

// Read and tokenize the calibration text (at most max_tokens tokens). Throws ik::Error for a
// missing or empty file, or one too short for a single training sequence (seq_len + 1 tokens).
std::vector<int32_t> calibration_tokens(const io::GgufFile& model, const std::string& path, int64_t max_tokens,
                                        int64_t seq_len);

// tensors: the NF-quantized block matrices of `model` (GGUF names, e.g. blk.3.ffn_up.weight,
// all seven per layer). Trains their scales in place (codes and tables untouched).
NflReport learn_nfl_scales(std::shared_ptr<const io::GgufFile> model,
                           std::vector<std::pair<std::string, LutTensor>>& tensors, const NflOptions& opt);

}  // namespace ik::llm::quant
