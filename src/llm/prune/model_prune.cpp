#include "llm/prune/model_prune.hpp"

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.hpp"
#include "core/progress.hpp"

namespace ik::llm::prune {

using backend::WeightMatrix;

Only only_from_name(const std::string& name) {
  if (name == "all") return Only::all;
  if (name == "attn") return Only::attn;
  if (name == "mlp") return Only::mlp;
  fail("unknown --only '{}' (choices: all, attn, mlp)", name);
}

std::vector<Target> targets(LlamaModel& model, Only only) {
  std::vector<Target> out;
  for (int l = 0; l < int(model.config().n_layer); ++l) {
    LlamaLayer& L = model.layer(l);
    const std::string p = "blk." + std::to_string(l) + ".";
    if (only != Only::mlp) {
      out.push_back({l, p + "attn_q.weight", "qkv", &L.wq});
      out.push_back({l, p + "attn_k.weight", "qkv", &L.wk});
      out.push_back({l, p + "attn_v.weight", "qkv", &L.wv});
      out.push_back({l, p + "attn_output.weight", "o", &L.wo});
    }
    if (only != Only::attn) {
      out.push_back({l, p + "ffn_gate.weight", "gate_up", &L.w_gate});
      out.push_back({l, p + "ffn_up.weight", "gate_up", &L.w_up});
      out.push_back({l, p + "ffn_down.weight", "down", &L.w_down});
    }
  }
  return out;
}

const InputStats& Calibration::at(int layer, const std::string& input) const {
  auto it = stats.find({layer, input});
  IK_CHECK(it != stats.end(), "no calibration statistics for layer {} input '{}'", layer, input);
  return it->second;
}

std::vector<std::vector<int32_t>> calibration_windows(const std::vector<int32_t>& tokens, int64_t window,
                                                      int64_t n_windows) {
  IK_CHECK(window > 0 && int64_t(tokens.size()) >= window,
           "the calibration text has {} tokens, fewer than one window of {}", tokens.size(), window);
  std::vector<std::vector<int32_t>> out;
  for (int64_t i = 0; i < n_windows && (i + 1) * window <= int64_t(tokens.size()); ++i)
    out.emplace_back(tokens.begin() + i * window, tokens.begin() + (i + 1) * window);
  return out;
}

Calibration calibrate(LlamaModel& model, const std::vector<std::vector<int32_t>>& windows, bool full,
                      bool progress) {
  IK_CHECK(!windows.empty(), "no calibration windows");
  Calibration cal;
  model.on_matmul_input = [&](int layer, const char* which, const float* x, int64_t m, int64_t k) {
    auto [it, fresh] = cal.stats.try_emplace({layer, which});
    if (fresh) it->second = InputStats(k, !full);
    it->second.add(x, m);
  };
  Progress bar("calibration", windows.size(), progress);
  try {
    for (const auto& w : windows) {
      KVCache cache(model.config().n_layer, int64_t(w.size()), model.config().kv_dim());
      model.forward(w.data(), int64_t(w.size()), cache, nullptr);
      cal.tokens += int64_t(w.size());
      bar.advance();
    }
  } catch (...) {
    model.on_matmul_input = nullptr;
    throw;
  }
  model.on_matmul_input = nullptr;
  bar.finish();
  return cal;
}

Calibration calibrate_from_text(LlamaModel& model, const Tokenizer& tok, const std::string& path, int64_t window,
                                int64_t n_windows, bool full, bool progress) {
  std::ifstream in(path, std::ios::binary);
  IK_CHECK(in.good() && std::filesystem::is_regular_file(path), "cannot read calibration file '{}'", path);
  std::stringstream text;
  text << in.rdbuf();
  const auto tokens = tok.encode(text.str(), false, false);
  window = std::min<int64_t>(window, model.config().n_ctx_train);
  return calibrate(model, calibration_windows(tokens, window, n_windows), full, progress);
}

WeightBackup::WeightBackup(LlamaModel& model) {
  for (int64_t l = 0; l < model.config().n_layer; ++l) layers_.push_back(model.layer(l));
}

void WeightBackup::restore(LlamaModel& model) const {
  for (size_t l = 0; l < layers_.size(); ++l) model.layer(int64_t(l)) = layers_[l];
}

// A matrix of f32 values in the storage the model's mode runs fast: Q8_0, or F32 for
// Reference mode.
static WeightMatrix store(const std::vector<float>& w, int64_t rows, int64_t cols, WeightMode mode) {
  const io::DType type = mode == WeightMode::Reference ? io::DType::F32 : io::DType::Q8_0;
  const size_t rb = io::row_bytes(type, cols);
  auto bytes = std::make_shared<std::vector<uint8_t>>(rb * rows);
  if (type == io::DType::F32) std::memcpy(bytes->data(), w.data(), bytes->size());
  else
    for (int64_t r = 0; r < rows; ++r) backend::quantize_q8_0(w.data() + r * cols, bytes->data() + r * rb, cols);
  WeightMatrix m;
  m.type = type;
  m.rows = rows;
  m.cols = cols;
  m.data = bytes->data();
  m.row_bytes = rb;
  m.owned = std::move(bytes);
  return m;
}

PruneStats prune_model(LlamaModel& model, Method method, const Pattern& pattern, Only only, const Calibration* calib,
                       bool progress) {
  const auto t0 = std::chrono::steady_clock::now();
  IK_CHECK(method == Method::magnitude || calib, "{} pruning needs calibration data", method_name(method));
  auto list = targets(model, only);
  for (const Target& t : list) check_pattern(pattern, t.weight->cols);
  PruneStats st;
  Progress bar(fmt::format("prune {} {}", method_name(method), pattern.describe()), list.size(), progress);
  std::vector<float> w;
  for (const Target& t : list) {
    const WeightMatrix& src = *t.weight;
    w.resize(size_t(src.rows * src.cols));
    for (int64_t r = 0; r < src.rows; ++r) backend::weight_row(src, r, w.data() + r * src.cols);
    prune_matrix(method, w.data(), src.rows, src.cols, pattern, calib ? &calib->at(t.layer, t.input) : nullptr);
    for (float v : w) st.pruned += v == 0.0f;
    st.total += int64_t(w.size());
    *t.weight = store(w, src.rows, src.cols, model.mode());
    bar.advance();
  }
  bar.finish();
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return st;
}

void write_pruned_gguf(const io::GgufFile& src, LlamaModel& model, Only only, const std::string& description,
                       const std::string& path) {
  std::map<std::string, const WeightMatrix*> pruned;
  for (const Target& t : targets(model, only)) pruned[t.name] = t.weight;
  io::GgufWriter out;
  out.copy_metadata_from(src);
  out.set_string("inferkit.prune", description);
  for (const auto& t : src.tensors()) {
    auto it = pruned.find(t.name);
    if (it == pruned.end()) {
      out.add_tensor(t.name, t.shape, t.type, t.data, t.nbytes);
      continue;
    }
    const WeightMatrix& w = *it->second;
    IK_CHECK(w.row_bytes * size_t(w.rows) == w.nbytes() && w.cols == t.shape[0] && w.rows == t.rows(),
             "tensor '{}' does not match the model's matrix", t.name);
    out.add_tensor(t.name, t.shape, w.type, w.data, w.nbytes());
  }
  out.write(path);
}

}  // namespace ik::llm::prune
