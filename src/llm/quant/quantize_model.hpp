#pragma once
// `inferkit quantize`: rewrite a GGUF model with its transformer-block matrices in a LUT
// format (lut_format.hpp). Everything else (embeddings, norms, output head, all metadata)
// is copied through unchanged.
#include <string>

#include "llm/quant/nfl.hpp"

namespace ik::llm::quant {

struct QuantizeOptions {
  int bits = 4;
  int group = 128;
  std::string table = "nf";  // nf | int | kmeans | nfl (NF codes, scales trained: nfl.hpp)
  bool ragged = false;       // allow a shorter last group when group does not divide K
  bool progress = true;
  NflOptions nfl;  // --table nfl: calibration text and training settings
};

struct QuantizeReport {
  int tensors_quantized = 0;
  int tensors_copied = 0;
  double rel_rmse = 0;  // sqrt(sum (W_hat - W)^2 / sum W^2) over the quantized matrices
  size_t bytes_before = 0, bytes_after = 0;  // of the quantized matrices
  NflReport nfl;  // --table nfl only
};

// Throws ik::Error for bad settings (listing what is valid), an input that is already LUT
// quantized (refused: requantizing would stack two rounding errors), or I/O problems.
QuantizeReport quantize_model(const std::string& in_path, const std::string& out_path, const QuantizeOptions& opt);

// Whether a tensor of a Llama GGUF is one of the block matrices this quantizes.
bool is_block_matrix(const std::string& name);

}  // namespace ik::llm::quant
