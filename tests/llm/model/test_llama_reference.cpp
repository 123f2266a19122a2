// The engine against Hugging Face transformers on the same GGUF weights.
// Fixture: tests/llm/fixtures/hf_reference.json, made by tools/make_reference.py (transformers
// dequantizes the GGUF to fp32 and runs eager fp32 attention).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/gguf.hpp"
#include "llm/model/llama.hpp"
#include "llm/runtime/sampler.hpp"

using namespace ik;
using json = nlohmann::json;

namespace {

const std::string kModel = IK_SOURCE_DIR "/.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf";
const std::string kFixture = IK_SOURCE_DIR "/tests/llm/fixtures/hf_reference.json";

struct Reference : ::testing::Test {
  static void SetUpTestSuite() {
    if (!std::filesystem::exists(kModel) || !std::filesystem::exists(kFixture)) return;
    file = std::make_shared<const io::GgufFile>(io::GgufFile::open(kModel));
    std::ifstream(kFixture) >> fixture;
  }
  void SetUp() override {
    if (!file) GTEST_SKIP() << "needs " << kModel << " (run `make setup`) and " << kFixture;
  }
  static std::shared_ptr<const io::GgufFile> file;
  static json fixture;
};
std::shared_ptr<const io::GgufFile> Reference::file;
json Reference::fixture;

struct LogitError {
  double max_rel = 0;  // max over checked entries of |ours - ref| / max(1, |ref|)
  int top1_mismatch = 0;
};

// Logits at the fixture's first positions, from one forward pass over prompt + greedy tokens.
LogitError compare_logits(llm::LlamaModel& model, const json& c) {
  std::vector<int32_t> seq = c["input_ids"].get<std::vector<int32_t>>();
  for (int32_t t : c["greedy_ids"]) seq.push_back(t);
  const auto& top_ids = c["top_ids"];
  const int64_t positions = int64_t(top_ids.size());
  const int64_t V = model.config().n_vocab;
  llm::KVCache cache(model.config().n_layer, int64_t(seq.size()) + 1, model.config().kv_dim());
  std::vector<float> logits(positions * V);
  model.forward(seq.data(), positions, cache, logits.data(), true);
  LogitError e;
  for (int64_t p = 0; p < positions; ++p) {
    const float* row = logits.data() + p * V;
    for (size_t j = 0; j < top_ids[p].size(); ++j) {
      const int id = top_ids[p][j];
      const double ref = c["top_logits"][p][j];
      e.max_rel = std::max(e.max_rel, std::fabs(row[id] - ref) / std::max(1.0, std::fabs(ref)));
    }
    if (llm::argmax(row, V) != int(top_ids[p][0])) ++e.top1_mismatch;
  }
  return e;
}

// Greedy decoding one token at a time (the decode path, with the KV cache).
std::vector<int32_t> greedy(llm::LlamaModel& model, const json& c, int n) {
  std::vector<int32_t> prompt = c["input_ids"].get<std::vector<int32_t>>();
  llm::KVCache cache(model.config().n_layer, int64_t(prompt.size()) + n + 1, model.config().kv_dim());
  std::vector<float> logits(model.config().n_vocab);
  model.forward(prompt.data(), int64_t(prompt.size()), cache, logits.data());
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    int32_t t = llm::argmax(logits.data(), model.config().n_vocab);
    out.push_back(t);
    model.forward(&t, 1, cache, logits.data());
  }
  return out;
}

}  // namespace

TEST_F(Reference, ReferencePathMatchesTransformers) {
  auto model = llm::LlamaModel::from_gguf(file, llm::WeightMode::Reference);
  ASSERT_EQ(fixture["cases"].size(), 5u);
  for (const auto& c : fixture["cases"]) {
    const LogitError e = compare_logits(model, c);
    EXPECT_LT(e.max_rel, 1e-4) << c["name"];
    EXPECT_EQ(e.top1_mismatch, 0) << c["name"];
    // Identical greedy tokens; the only divergence tolerated is at a step where transformers'
    // own top-2 margin is below 1e-3 (a near-tie that f32 summation order can flip), after
    // which the two continuations differ and are not compared.
    const auto expect = c["greedy_ids"].get<std::vector<int32_t>>();
    const auto margins = c["greedy_margins"].get<std::vector<double>>();
    const auto got = greedy(model, c, int(expect.size()));
    for (size_t i = 0; i < expect.size(); ++i) {
      if (got[i] == expect[i]) continue;
      EXPECT_LT(margins[i], 1e-3) << c["name"] << ": greedy token " << i << " differs at a margin of " << margins[i];
      break;
    }
  }
}

// The fast path quantizes activations to 8 bits for the integer dot products, so its logits
// move by a measured amount (max relative error 0.133 of max(1, |logit|) over the top-20 logits
// of these prompts on 2026-11-29); we
// bound that and require the same greedy tokens until the first step where transformers'
// own top-2 margin is small (< 0.5 logits), past which a rounding may legitimately flip it.
TEST_F(Reference, FastPathStaysCloseToTransformers) {
  auto model = llm::LlamaModel::from_gguf(file, llm::WeightMode::Fast);
  for (const auto& c : fixture["cases"]) {
    const LogitError e = compare_logits(model, c);
    EXPECT_LT(e.max_rel, 0.2) << c["name"];
    const auto expect = c["greedy_ids"].get<std::vector<int32_t>>();
    const auto margins = c["greedy_margins"].get<std::vector<double>>();
    size_t stable = 0;
    while (stable < margins.size() && margins[stable] >= 0.5) ++stable;
    const auto got = greedy(model, c, int(expect.size()));
    for (size_t i = 0; i < stable; ++i) ASSERT_EQ(got[i], expect[i]) << c["name"] << " step " << i;
    RecordProperty(c["name"].get<std::string>() + "_stable_steps", int(stable));
  }
}
