// Draft heads: backward against finite differences, the heads file round trip and its
// base-model checks, and the Hydra++ prefix layer (incremental, KV-cached) against the
// training Block's full-sequence forward.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "llm/spec/heads.hpp"
#include "llm/train/block.hpp"
#include "spec_test_util.hpp"

using namespace ik;
using namespace ik::llm::spec;

namespace {

llm::LlamaModel& tiny() {
  static llm::LlamaModel m = llm::LlamaModel::from_hf_dir(spec_test::kTinyDir);
  return m;
}

double loss_of(const DraftHeads& h, int i, const std::vector<float>& x, int64_t m, const std::vector<float>& r) {
  HeadActivations a;
  h.forward(i, x.data(), m, a);
  double s = 0;
  for (size_t j = 0; j < r.size(); ++j) s += double(a.out[j]) * r[j];
  return s;
}

TEST(DraftHeads, BackwardMatchesFiniteDifferences) {
  for (HeadArch arch : {HeadArch::Medusa, HeadArch::Hydra}) {
    DraftHeads h = spec_test::random_heads(arch, 2, 2, tiny(), 7, 1.0f);
    const int i = 1, m = 3;
    const int64_t width = h.input_width(i), d = h.d();
    Rng rng(3, 0);
    std::vector<float> x(size_t(m * width)), r(size_t(m * d));
    for (float& v : x) v = float(rng.normal());
    for (float& v : r) v = float(rng.normal());
    HeadActivations a;
    h.forward(i, x.data(), m, a);
    std::vector<Head> g = zero_like(h.heads);
    std::vector<float> dx(x.size(), 0.0f);
    h.backward(i, a, r.data(), g[i], dx.data());
    auto check = [&](float& param, float analytic, const char* what) {
      const float keep = param, eps = 1e-2f;
      param = keep + eps;
      const double up = loss_of(h, i, x, m, r);
      param = keep - eps;
      const double down = loss_of(h, i, x, m, r);
      param = keep;
      EXPECT_NEAR(analytic, (up - down) / (2 * eps), 2e-2 * std::max(1.0, std::fabs(double(analytic)))) << what;
    };
    Head& head = h.heads[i];
    for (int k = 0; k < 20; ++k) {
      const size_t b = size_t(k % 2);
      HeadBlock& blk = head.blocks[b];
      const size_t j = rng.below(blk.fc.w.size());
      check(blk.fc.w[j], g[i].blocks[b].fc.w[j], "fc.w");
      const size_t jb = rng.below(blk.fc.b.size());
      check(blk.fc.b[jb], g[i].blocks[b].fc.b[jb], "fc.b");
      if (blk.proj.n_out) {
        const size_t jp = rng.below(blk.proj.w.size());
        check(blk.proj.w[jp], g[i].blocks[b].proj.w[jp], "proj.w");
      }
      const size_t jx = rng.below(x.size());
      check(x[jx], dx[jx], "x");
    }
  }
}

TEST(DraftHeads, FileRoundTripAndBaseChecks) {
  const std::string path = (std::filesystem::temp_directory_path() / "ik_test_heads.gguf").string();
  for (HeadArch arch : {HeadArch::Medusa, HeadArch::Hydra, HeadArch::HydraPlusPlus}) {
    DraftHeads h = spec_test::random_heads(arch, 3, 2, tiny(), 11);
    h.save(path);
    DraftHeads back = DraftHeads::load(path);
    EXPECT_EQ(back.arch, arch);
    ASSERT_EQ(back.n_heads(), 3);
    back.check_base(tiny());
    std::vector<float> x(size_t(back.input_width(2)), 0.5f);
    HeadActivations a, b;
    h.forward(2, x.data(), 1, a);
    back.forward(2, x.data(), 1, b);
    EXPECT_EQ(a.out, b.out);
    EXPECT_EQ(back.prefix.wq, h.prefix.wq);
  }
  DraftHeads h = DraftHeads::init(HeadArch::Hydra, 2, 1, tiny());
  auto message = [&](DraftHeads bad) {
    try {
      bad.check_base(tiny());
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  DraftHeads wrong = h;
  wrong.base.n_embd = 2048;
  EXPECT_NE(message(wrong).find("hidden size 2048"), std::string::npos) << message(wrong);
  wrong = h;
  wrong.base.n_vocab = 32000;
  EXPECT_NE(message(wrong).find("vocabulary of 32000"), std::string::npos) << message(wrong);
  wrong = h;
  wrong.base.name = "other-model";
  EXPECT_NE(message(wrong).find("'other-model'"), std::string::npos) << message(wrong);
  EXPECT_THROW(DraftHeads::load(IK_SOURCE_DIR "/tests/io/fixtures/tiny_llama/config.json"), Error);
  std::filesystem::remove(path);
}

TEST(PrefixLayer, IncrementalMatchesTrainingBlock) {
  llm::LlamaModel& model = tiny();
  const auto& c = model.config();
  DraftHeads h = DraftHeads::init(HeadArch::HydraPlusPlus, 2, 1, model);
  const int64_t m = 7, d = c.n_embd;
  Rng rng(5, 0);
  std::vector<float> x(size_t(m * d));
  for (float& v : x) v = float(rng.normal());
  // Reference: the training Block over the whole sequence, then the prefix's norm.
  llm::train::Block block(c);
  llm::train::BlockActivations acts;
  std::vector<float> ref(x.size());
  block.forward(h.prefix, x.data(), ref.data(), m, nullptr, nullptr, acts);
  backend::rms_norm(ref.data(), h.prefix_norm.data(), ref.data(), m, d, c.rms_eps);
  // Ours: appended in chunks of 3, 1, 3 rows through the KV cache.
  PrefixLayer layer(h, c, 16);
  std::vector<float> out(x.size());
  int64_t done = 0;
  for (int64_t chunk : {3, 1, 3}) {
    layer.append(x.data() + done * d, chunk, out.data() + done * d);
    done += chunk;
  }
  for (size_t j = 0; j < out.size(); ++j) ASSERT_NEAR(out[j], ref[j], 1e-4) << j;
}

}  // namespace
