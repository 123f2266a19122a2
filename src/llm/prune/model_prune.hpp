#pragma once
// Pruning a whole Llama model in memory: which matrices, their calibration statistics
// (gathered through LlamaModel::on_matmul_input), and swapping pruned weights in and out.
// Pruned matrices are stored as Q8_0 (F32 when the model runs in Reference mode): a pruned
// weight stays exactly zero after quantization.
#include <map>
#include <string>
#include <vector>

#include "io/gguf.hpp"
#include "llm/model/llama.hpp"
#include "llm/tokenizer/tokenizer.hpp"
#include "llm/prune/prune.hpp"

namespace ik::llm::prune {

enum class Only { all, attn, mlp };
Only only_from_name(const std::string& name);  // "all", "attn", "mlp"

struct Target {
  int layer = 0;
  std::string name;   // GGUF tensor name, e.g. "blk.3.ffn_down.weight"
  std::string input;  // which calibration input feeds it: "qkv", "o", "gate_up", "down"
  backend::WeightMatrix* weight = nullptr;
};
std::vector<Target> targets(LlamaModel& model, Only only);

// Input statistics per (layer, input), from one pass of the unpruned model over the
// calibration windows (not layer-by-layer sequential as in the papers: one pass serves
// every method and sparsity of a sweep).
struct Calibration {
  std::map<std::pair<int, std::string>, InputStats> stats;
  int64_t tokens = 0;
  const InputStats& at(int layer, const std::string& input) const;
};
// full: keep X^T X (SparseGPT); otherwise only its diagonal (Wanda).
Calibration calibrate(LlamaModel& model, const std::vector<std::vector<int32_t>>& windows, bool full,
                      bool progress = true);
// Calibration from a text file: its tokens cut into windows (see calibration_windows); the
// window is capped at max_ctx. Throws "cannot read calibration file" when it is missing.
Calibration calibrate_from_text(LlamaModel& model, const Tokenizer& tok, const std::string& path, int64_t window,
                                int64_t n_windows, bool full, bool progress = true);
// Default calibration text: English prose present on every Debian system (base-files).
inline constexpr const char* kDefaultCalibText = "/usr/share/common-licenses/GPL-3";
// Tokens of a calibration text cut into `n_windows` windows of `window` tokens (fewer if the
// text is short; throws if it cannot fill one).
std::vector<std::vector<int32_t>> calibration_windows(const std::vector<int32_t>& tokens, int64_t window,
                                                      int64_t n_windows);

// The model's weights as loaded, to put back after a pruned evaluation.
class WeightBackup {
 public:
  explicit WeightBackup(LlamaModel& model);
  void restore(LlamaModel& model) const;

 private:
  std::vector<LlamaLayer> layers_;
};

struct PruneStats {
  int64_t pruned = 0, total = 0;  // over the target matrices
  double seconds = 0;
};
// Prunes the target matrices in place (each gets its own Q8_0 or F32 storage, which a file
// writer can copy as is); calib may be null for magnitude.
PruneStats prune_model(LlamaModel& model, Method method, const Pattern& pattern, Only only, const Calibration* calib,
                       bool progress = true);

// A copy of `src` (the file the model was loaded from) whose target matrices are the model's
// current (pruned) ones, stored as the model holds them (Q8_0 or F32); every other tensor and
// all metadata are copied as stored. Adds inferkit.prune.* keys describing the pruning.
void write_pruned_gguf(const io::GgufFile& src, LlamaModel& model, Only only, const std::string& description,
                       const std::string& path);

}  // namespace ik::llm::prune
