// Pruning the default model (skipped when it is absent): the calibration hook sees the
// layer inputs, --only leaves the other matrices alone, the written GGUF reloads and gives
// the same logits as the pruned model in memory, and restoring gives back the dense model.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "io/gguf.hpp"
#include "llm/prune/model_prune.hpp"

using namespace ik;
using namespace ik::llm;

namespace {

const std::string kModel = std::string(IK_SOURCE_DIR) + "/.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf";

std::vector<float> last_logits(LlamaModel& m, const std::vector<int32_t>& toks) {
  KVCache cache(m.config().n_layer, 64, m.config().kv_dim());
  std::vector<float> logits(m.config().n_vocab);
  m.forward(toks.data(), int64_t(toks.size()), cache, logits.data());
  return logits;
}

}  // namespace

TEST(PruneModel, HookWandaStorageRoundTrip) {
  if (!std::filesystem::exists(kModel)) GTEST_SKIP() << "default model absent";
  auto file = std::make_shared<const io::GgufFile>(io::GgufFile::open(kModel));
  LlamaModel model = LlamaModel::from_gguf(file);
  const auto& c = model.config();
  const std::vector<int32_t> toks = {1, 504, 3458, 282, 4649, 314, 2716, 30, 378, 9551, 28, 2287};

  // The hook's first input is the RMS-normed embedding: compare its column sums of squares.
  auto cal = prune::calibrate(model, {toks}, false, false);
  EXPECT_EQ(cal.tokens, int64_t(toks.size()));
  EXPECT_EQ(cal.stats.size(), size_t(4 * c.n_layer));
  const auto& s0 = cal.at(0, "qkv");
  ASSERT_EQ(s0.n, int64_t(toks.size()));
  std::vector<float> emb(toks.size() * c.n_embd);
  model.embed(toks.data(), int64_t(toks.size()), emb.data());
  std::vector<double> expect(c.n_embd, 0.0);
  for (size_t i = 0; i < toks.size(); ++i) {
    double ss = 0;
    for (int64_t j = 0; j < c.n_embd; ++j) ss += double(emb[i * c.n_embd + j]) * emb[i * c.n_embd + j];
    const double inv = 1.0 / std::sqrt(ss / c.n_embd + c.rms_eps);
    for (int64_t j = 0; j < c.n_embd; ++j) {
      const double v = emb[i * c.n_embd + j] * inv * model.layer(0).attn_norm[j];
      expect[j] += v * v;
    }
  }
  for (int64_t j = 0; j < c.n_embd; ++j) EXPECT_NEAR(s0.diag(j), expect[j], 1e-3 * (1 + expect[j]));
  EXPECT_EQ(cal.at(3, "down").k, c.n_ff);
  EXPECT_FALSE(model.on_matmul_input);  // removed after calibration

  const auto dense_logits = last_logits(model, toks);
  const prune::WeightBackup backup(model);
  const auto* mlp_data = model.layer(5).w_up.data;
  prune::prune_model(model, prune::Method::wanda, prune::Pattern{0.5}, prune::Only::attn, &cal, false);
  EXPECT_EQ(model.layer(5).w_up.data, mlp_data);  // --only attn leaves the MLP as loaded
  const auto& wq = model.layer(5).wq;
  EXPECT_EQ(wq.type, io::DType::Q8_0);
  std::vector<float> row(wq.cols);
  for (int64_t r = 0; r < wq.rows; r += 37) {
    backend::weight_row(wq, r, row.data());
    EXPECT_GE(std::count(row.begin(), row.end(), 0.0f), wq.cols / 2);  // Q8_0 keeps pruned zeros
    EXPECT_LT(std::count(row.begin(), row.end(), 0.0f), wq.cols * 6 / 10);
  }
  const auto pruned_logits = last_logits(model, toks);
  EXPECT_NE(pruned_logits, dense_logits);

  const std::string path = testing::TempDir() + "/pruned_test.gguf";
  prune::write_pruned_gguf(*file, model, prune::Only::attn, "wanda 50% (attn)", path);
  {
    auto out = std::make_shared<const io::GgufFile>(io::GgufFile::open(path));
    EXPECT_EQ(out->get_string("inferkit.prune"), "wanda 50% (attn)");
    EXPECT_EQ(out->tensor("blk.5.attn_q.weight").type, io::DType::Q8_0);
    EXPECT_EQ(out->tensor("blk.5.ffn_up.weight").type, file->tensor("blk.5.ffn_up.weight").type);
    LlamaModel reloaded = LlamaModel::from_gguf(out);
    EXPECT_EQ(last_logits(reloaded, toks), pruned_logits);
  }
  std::remove(path.c_str());

  backup.restore(model);
  EXPECT_EQ(last_logits(model, toks), dense_logits);
}
