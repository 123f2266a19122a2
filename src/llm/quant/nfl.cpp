#include "llm/quant/nfl.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <sstream>

#include "backend/cpu/matmul.hpp"
#include "core/error.hpp"
#include "core/fp16.hpp"
#include "core/progress.hpp"
#include "io/gguf.hpp"
#include "llm/model/llama.hpp"
#include "llm/tokenizer/tokenizer.hpp"
#include "llm/train/adamw.hpp"
#include "llm/train/block.hpp"
#include "llm/train/ops.hpp"

namespace ik::llm::quant {

std::vector<int32_t> calibration_tokens(const io::GgufFile& model, const std::string& path, int64_t max_tokens,
                                        int64_t seq_len) {
  IK_CHECK(!path.empty(), "--table nfl needs calibration text (--calib FILE)");
  IK_CHECK(std::filesystem::is_regular_file(path), "calibration file '{}' does not exist", path);
  IK_CHECK(std::filesystem::file_size(path) > 0, "calibration file '{}' is empty", path);
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  // Tokenize a prefix only: ~4 bytes per token, with a margin.
  std::string text = ss.str().substr(0, size_t(std::max<int64_t>(max_tokens, 1) * 8 + 1024));
  auto tokens = Tokenizer::from_gguf(model).encode(text, true, false);
  if (int64_t(tokens.size()) > max_tokens) tokens.resize(size_t(max_tokens));
  IK_CHECK(int64_t(tokens.size()) > seq_len, "calibration file '{}' gives {} tokens, fewer than one sequence of {} + 1",
           path, tokens.size(), seq_len);
  return tokens;
}

namespace {

// One quantized matrix under training: its f32 scales (the parameters), their gradient, and
// the dequantized weights W_hat = table[q] * s that the Block computes with.
struct TrainedMatrix {
  LutTensor* t = nullptr;
  std::vector<float>* w_hat = nullptr;  // a field of the layer's BlockWeights
  std::vector<float>* dw = nullptr;     // the same field of the shared gradient BlockWeights
  std::vector<float> scale, grad;
};

void refresh_weights(TrainedMatrix& m) {
  const LutTensor& t = *m.t;
  const int64_t groups = group_count(t.cols, t.group);
  float* w = m.w_hat->data();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < t.rows; ++r)
    for (int64_t k = 0; k < t.cols; ++k)
      w[r * t.cols + k] = t.table[t.codes[r * t.cols + k]] * m.scale[r * groups + k / t.group];
}

// dL/ds[r, g] = sum_k dL/dW_hat[r, k] * table[q[r, k]] over the group (codes fixed: STE).
void scale_gradient(TrainedMatrix& m) {
  const LutTensor& t = *m.t;
  const int64_t groups = group_count(t.cols, t.group);
  const float* dw = m.dw->data();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < t.rows; ++r)
    for (int64_t g = 0; g < groups; ++g) {
      double s = 0;
      for (int64_t k = g * t.group; k < std::min<int64_t>(t.cols, (g + 1) * t.group); ++k)
        s += double(dw[r * t.cols + k]) * t.table[t.codes[r * t.cols + k]];
      m.grad[r * groups + g] = float(s);
    }
}

// The field of BlockWeights that a GGUF block matrix name maps to, and its layer.
std::vector<float>* block_field(train::BlockWeights& w, const std::string& name) {
  static const std::pair<const char*, std::vector<float> train::BlockWeights::*> map[] = {
      {".attn_q.weight", &train::BlockWeights::wq},       {".attn_k.weight", &train::BlockWeights::wk},
      {".attn_v.weight", &train::BlockWeights::wv},       {".attn_output.weight", &train::BlockWeights::wo},
      {".ffn_gate.weight", &train::BlockWeights::w_gate}, {".ffn_up.weight", &train::BlockWeights::w_up},
      {".ffn_down.weight", &train::BlockWeights::w_down}};
  for (const auto& [suffix, field] : map)
    if (name.size() > strlen(suffix) && name.compare(name.size() - strlen(suffix), strlen(suffix), suffix) == 0)
      return &(w.*field);
  fail("'{}' is not a block matrix", name);
}

int layer_of(const std::string& name) {
  IK_CHECK(name.rfind("blk.", 0) == 0, "'{}' is not a block matrix", name);
  return std::stoi(name.substr(4));
}

}  // namespace

NflReport learn_nfl_scales(std::shared_ptr<const io::GgufFile> file, std::vector<std::pair<std::string, LutTensor>>& tensors,
                           const NflOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  IK_CHECK(opt.seq_len >= 2, "NFL: sequence length {} is too short", opt.seq_len);
  IK_CHECK(opt.lr > 0, "NFL: learning rate must be positive");
  const std::vector<int32_t> tokens =
      opt.tokens.empty() ? calibration_tokens(*file, opt.calib_path, opt.calib_tokens, opt.seq_len)
                         : std::vector<int32_t>(opt.tokens.begin(),
                                                opt.tokens.begin() + std::min<int64_t>(opt.calib_tokens, opt.tokens.size()));
  const int64_t L = opt.seq_len;
  const int steps = int((int64_t(tokens.size()) - 1) / L);
  IK_CHECK(steps > 0, "NFL: {} calibration tokens, fewer than one sequence of {} + 1", tokens.size(), L);

  // The frozen parts (embeddings, norms, LM head) from the original model.
  LlamaModel model = LlamaModel::from_gguf(file, WeightMode::Fast);
  const LlamaConfig& c = model.config();
  std::vector<float> head(size_t(c.n_vocab * c.n_embd));
  for (int64_t v = 0; v < c.n_vocab; ++v) backend::weight_row(model.lm_head(), v, head.data() + v * c.n_embd);

  std::vector<train::BlockWeights> layers(c.n_layer);
  for (int64_t l = 0; l < c.n_layer; ++l) {
    layers[l].attn_norm = model.layer(l).attn_norm;
    layers[l].ffn_norm = model.layer(l).ffn_norm;
  }
  train::BlockWeights grads = train::BlockWeights::zeros(c);
  grads.attn_norm.clear();  // norms frozen: no gradient computed
  grads.ffn_norm.clear();

  std::vector<std::vector<TrainedMatrix*>> per_layer(c.n_layer);
  std::vector<TrainedMatrix> mats(tensors.size());
  std::vector<train::ParamRef> params;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const int l = layer_of(tensors[i].first);
    IK_CHECK(l >= 0 && l < c.n_layer, "'{}': layer outside the model", tensors[i].first);
    TrainedMatrix& m = mats[i];
    m.t = &tensors[i].second;
    m.w_hat = block_field(layers[l], tensors[i].first);
    m.dw = block_field(grads, tensors[i].first);
    IK_CHECK(int64_t(m.dw->size()) == m.t->rows * m.t->cols, "'{}': shape does not match the model", tensors[i].first);
    for (uint16_t h : m.t->scales) m.scale.push_back(fp16_to_f32(h));
    m.grad.assign(m.scale.size(), 0.0f);
    m.w_hat->resize(m.dw->size());
    refresh_weights(m);
    per_layer[l].push_back(&m);
    params.push_back({m.scale.data(), m.grad.data(), int64_t(m.scale.size())});
  }
  for (int64_t l = 0; l < c.n_layer; ++l)
    IK_CHECK(per_layer[l].size() == 7, "NFL: layer {} has {} quantized matrices, expected all 7", l,
             per_layer[l].size());

  train::Block block(c);
  train::AdamW adam({.lr = opt.lr});
  std::vector<train::BlockActivations> acts(c.n_layer);
  std::vector<float> x(L * c.n_embd), xn(L * c.n_embd), dx(L * c.n_embd), logits(L * c.n_vocab),
      dlogits(L * c.n_vocab);
  std::vector<int32_t> targets(L);
  std::vector<double> losses;

  Progress bar("nfl", uint64_t(steps), opt.progress);
  for (int step = 0; step < steps; ++step) {
    const int32_t* in = tokens.data() + int64_t(step) * L;
    for (int64_t i = 0; i < L; ++i) targets[i] = in[i + 1];

    // Forward through the quantized model, saving activations.
    model.embed(in, L, x.data());
    for (int64_t l = 0; l < c.n_layer; ++l) block.forward(layers[l], x.data(), x.data(), L, nullptr, nullptr, acts[l]);
    backend::rms_norm(x.data(), model.output_norm().data(), xn.data(), L, c.n_embd, c.rms_eps);
    train::linear_forward(xn.data(), head.data(), nullptr, logits.data(), L, c.n_embd, c.n_vocab);
    const double loss = train::cross_entropy(logits.data(), targets.data(), L, c.n_vocab, dlogits.data());
    losses.push_back(loss);

    // Backward: head and final norm (frozen: input gradients only), then every block.
    std::vector<float> dxn(L * c.n_embd, 0.0f);
    train::linear_backward(xn.data(), head.data(), dlogits.data(), dxn.data(), nullptr, nullptr, L, c.n_embd,
                           c.n_vocab);
    std::fill(dx.begin(), dx.end(), 0.0f);
    train::rms_norm_backward(x.data(), model.output_norm().data(), dxn.data(), dx.data(), nullptr, L, c.n_embd,
                             c.rms_eps);
    for (int64_t l = c.n_layer - 1; l >= 0; --l) {
      grads.set_zero();
      block.backward(layers[l], acts[l], dx.data(), l > 0 ? dx.data() : nullptr, grads);
      for (TrainedMatrix* m : per_layer[l]) scale_gradient(*m);
    }
    adam.step(params);
    for (TrainedMatrix& m : mats) refresh_weights(m);

    bar.set_note(fmt::format("loss {:.3f}", loss));
    bar.advance();
  }
  bar.finish();

  for (TrainedMatrix& m : mats)
    for (size_t i = 0; i < m.scale.size(); ++i) m.t->scales[i] = f32_to_fp16(m.scale[i]);

  NflReport rep;
  rep.tokens = int64_t(steps) * L + 1;
  rep.steps = steps;
  const int quarter = std::max(1, steps / 4);
  for (int i = 0; i < quarter; ++i) {
    rep.loss_first += losses[i] / quarter;
    rep.loss_last += losses[steps - quarter + i] / quarter;
  }
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

}  // namespace ik::llm::quant
