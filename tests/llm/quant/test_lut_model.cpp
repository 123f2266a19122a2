// `quantize_model` end to end on a tiny random Llama written as GGUF: the output loads, its
// fast (LUT kernel) logits match f32 math on the dequantized weights, bad settings and an
// already-quantized input are refused.
#include <gtest/gtest.h>

#include <cstdlib>

#include <cmath>
#include <filesystem>
#include <unistd.h>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "io/gguf.hpp"
#include "llm/model/llama.hpp"
#include "llm/quant/lut_format.hpp"
#include "llm/quant/quantize_model.hpp"

using namespace ik;

namespace {

const int64_t kEmbd = 64, kFf = 128, kVocab = 50, kLayers = 2;

void add_f32(io::GgufWriter& w, Rng& rng, const std::string& name, std::vector<int64_t> shape, float mean, float sd) {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  std::vector<float> v(n);
  for (auto& x : v) x = mean + sd * float(rng.normal());
  w.add_tensor(name, shape, io::DType::F32, v.data(), v.size() * 4);
}

std::string write_tiny_llama(const std::string& path) {
  Rng rng(42, 0);
  io::GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_u32("llama.block_count", kLayers);
  w.set_u32("llama.embedding_length", kEmbd);
  w.set_u32("llama.feed_forward_length", kFf);
  w.set_u32("llama.attention.head_count", 4);
  w.set_u32("llama.attention.head_count_kv", 2);
  w.set_u32("llama.context_length", 128);
  w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  add_f32(w, rng, "token_embd.weight", {kEmbd, kVocab}, 0, 1);
  add_f32(w, rng, "output_norm.weight", {kEmbd}, 1, 0.1f);
  for (int l = 0; l < kLayers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    add_f32(w, rng, p + "attn_norm.weight", {kEmbd}, 1, 0.1f);
    add_f32(w, rng, p + "ffn_norm.weight", {kEmbd}, 1, 0.1f);
    add_f32(w, rng, p + "attn_q.weight", {kEmbd, kEmbd}, 0, 0.2f);
    add_f32(w, rng, p + "attn_k.weight", {kEmbd, 32}, 0, 0.2f);
    add_f32(w, rng, p + "attn_v.weight", {kEmbd, 32}, 0, 0.2f);
    add_f32(w, rng, p + "attn_output.weight", {kEmbd, kEmbd}, 0, 0.2f);
    add_f32(w, rng, p + "ffn_gate.weight", {kEmbd, kFf}, 0, 0.2f);
    add_f32(w, rng, p + "ffn_up.weight", {kEmbd, kFf}, 0, 0.2f);
    add_f32(w, rng, p + "ffn_down.weight", {kFf, kEmbd}, 0, 0.2f);
  }
  w.write(path);
  return path;
}

std::vector<float> logits_of(const std::string& path, llm::WeightMode mode, const std::vector<int32_t>& toks) {
  auto f = std::make_shared<const io::GgufFile>(io::GgufFile::open(path));
  auto model = llm::LlamaModel::from_gguf(f, mode);
  llm::KVCache cache(kLayers, 64, model.config().kv_dim());
  std::vector<float> out(toks.size() * kVocab);
  model.forward(toks.data(), int64_t(toks.size()), cache, out.data(), true);
  return out;
}

}  // namespace

TEST(LutModel, QuantizedModelLoadsAndMatchesDequantizedReference) {
  const auto dir = std::filesystem::temp_directory_path() / ("ik_lut_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string in = write_tiny_llama((dir / "tiny.gguf").string());
  const std::vector<int32_t> toks = {1, 7, 3, 49, 0, 22, 22, 5, 13};
  const auto orig = logits_of(in, llm::WeightMode::Reference, toks);
  for (int bits : {4, 3, 2}) {
    const std::string out = (dir / ("tiny_q" + std::to_string(bits) + ".gguf")).string();
    llm::quant::QuantizeOptions opt;
    opt.bits = bits;
    opt.group = bits == 2 ? 128 : 32;  // 2-bit: ragged (K = 64 is one short group)
    opt.ragged = bits == 2;
    opt.table = bits == 3 ? "kmeans" : "nf";
    opt.progress = false;
    const auto rep = llm::quant::quantize_model(in, out, opt);
    EXPECT_EQ(rep.tensors_quantized, 7 * kLayers);
    EXPECT_GT(rep.rel_rmse, 0.01);
    EXPECT_LT(rep.rel_rmse, bits == 4 ? 0.15 : bits == 3 ? 0.3 : 0.6);

    setenv("IK_LUT_KERNEL", "f32", 1);  // the f32 LUT kernel: the int8 one is tested in tests/backend
    const auto fast = logits_of(out, llm::WeightMode::Fast, toks);
    unsetenv("IK_LUT_KERNEL");
    const auto ref = logits_of(out, llm::WeightMode::Reference, toks);
    double max_diff = 0, orig_diff = 0;
    for (size_t i = 0; i < fast.size(); ++i) {
      max_diff = std::max(max_diff, double(std::fabs(fast[i] - ref[i])));
      orig_diff = std::max(orig_diff, double(std::fabs(ref[i] - orig[i])));
    }
    EXPECT_LT(max_diff, 1e-3) << "LUT kernel vs f32 on the dequantized weights";
    EXPECT_GT(orig_diff, 1e-3) << "quantization changed nothing?";

    // Requantizing a LUT model is refused with a clear message.
    try {
      llm::quant::quantize_model(out, (dir / "again.gguf").string(), opt);
      FAIL() << "expected a refusal";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("already LUT-quantized"), std::string::npos) << e.what();
    }
  }
  llm::quant::QuantizeOptions bad;
  bad.group = 128;  // does not divide K = 64
  bad.progress = false;
  try {
    llm::quant::quantize_model(in, (dir / "bad.gguf").string(), bad);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("valid here: 32, 64"), std::string::npos) << e.what();
  }
  bad.group = 32;
  bad.bits = 5;
  EXPECT_THROW(llm::quant::quantize_model(in, (dir / "bad.gguf").string(), bad), Error);
  std::filesystem::remove_all(dir);
}
