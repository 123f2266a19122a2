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
#include "tiny_gguf.hpp"
#include "llm/quant/lut_format.hpp"
#include "llm/quant/quantize_model.hpp"

using namespace ik;

namespace {

const int64_t kEmbd = 64, kFf = 128, kVocab = 50, kLayers = 2;

std::string write_tiny_llama(const std::string& path) {
  return test::write_tiny_llama(path, test::TinyLlamaSpec{kEmbd, kFf, kVocab, kLayers, 42, 0.2f, false});
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
