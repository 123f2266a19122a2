// Speculative decoding on the GPU (label gpu: skipped without one). The key property, as on the
// CPU: greedy speculative decoding reproduces plain greedy decoding of the same GPU model. The
// verification pass (many rows, tensor-core attention) and one-row decoding round differently
// in bf16, so a divergence is allowed only where plain decoding's top two logits are a near-tie.
// Also: the top-k kernel against a host sort, and the GPU heads' proposals against the CPU heads'.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <tuple>

#include "backend/cuda/cuda.hpp"
#include "core/error.hpp"
#include "core/rng.hpp"
#include "llm/model/llama_gpu.hpp"
#include "llm/spec/decode.hpp"
#include "llm/spec/gpu.hpp"
#include "spec_test_util.hpp"

using namespace ik;
using namespace ik::llm::spec;
namespace cuda = ik::backend::cuda;

namespace {

class SpecGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda::available()) GTEST_SKIP() << "no CUDA GPU";
    cuda::init(0);
  }
};

llm::LlamaModel& model() {  // bf16-valued random weights: the GPU holds exactly these
  static llm::LlamaModel m = llm::LlamaModel::random(llm::preset_config("tiny"), 5, llm::WeightMode::Reference);
  return m;
}

std::unique_ptr<llm::GpuLlama> upload(int64_t ctx) {
  llm::GpuOptions opt;
  opt.n_ctx = ctx;
  return llm::GpuLlama::upload(model(), opt);
}

std::vector<int32_t> random_prompt(Rng& rng, int64_t vocab, int len) {
  std::vector<int32_t> p;
  for (int i = 0; i < len; ++i) p.push_back(int32_t(3 + rng.below(uint64_t(vocab - 3))));
  return p;
}

// Plain greedy decoding on the GPU, one row per forward; gaps[i]: the top-two logit gap at
// step i, relative to max(1, |top|).
std::vector<int32_t> plain_gpu(llm::GpuLlama& g, const std::vector<int32_t>& prompt, int n, std::vector<float>& gaps) {
  const int64_t V = g.config().n_vocab;
  g.set_n_past(0, 0);
  std::vector<float> logits(static_cast<size_t>(V));
  g.forward(0, prompt.data(), int64_t(prompt.size()), logits.data());
  std::vector<int32_t> out;
  gaps.clear();
  while (int(out.size()) < n) {
    std::vector<float> s(logits);
    std::partial_sort(s.begin(), s.begin() + 2, s.end(), std::greater<float>());
    gaps.push_back((s[0] - s[1]) / std::max(1.0f, std::fabs(s[0])));
    const int32_t t = llm::argmax(logits.data(), V);
    out.push_back(t);
    g.forward(0, &t, 1, logits.data());
  }
  return out;
}

// The speculative output equals the plain one, or first differs at a near-tie of plain decoding.
void expect_same_or_near_tie(const std::vector<int32_t>& spec, const std::vector<int32_t>& plain,
                             const std::vector<float>& gaps, const std::string& what) {
  ASSERT_EQ(spec.size(), plain.size()) << what;
  for (size_t i = 0; i < spec.size(); ++i)
    if (spec[i] != plain[i]) {
      EXPECT_LT(gaps[i], 0.02f) << what << ": diverged at token " << i << " without a near-tie";
      std::printf("[ spec   ] %s: near-tie at token %zu (gap %.4f)\n", what.c_str(), i, gaps[i]);
      return;
    }
}

}  // namespace

TEST_F(SpecGpu, TopKRowsMatchesAStableHostSort) {
  Rng rng(3, 0);
  // Small and vocabulary-sized rows, k from 1 to the maximum, values full of ties (and -inf).
  for (const auto& [rows, V, k] : {std::tuple{5, 3000, 12}, {3, 49152, 32}, {7, 49152, 1}, {4, 1001, 10}}) {
    std::vector<float> logits(size_t(rows) * V);
    for (auto& x : logits) x = rng.below(50) == 0 ? -INFINITY : float(int(rng.below(200))) * 0.25f;
    cuda::DeviceArray<float> d_logits(logits.data(), logits.size(), "test");
    cuda::DeviceArray<int32_t> d_out(size_t(rows) * k, "test");
    cuda::poison(d_out.get(), size_t(rows) * k * 4);
    cuda::top_k_rows(d_logits.get(), rows, V, k, d_out.get());
    std::vector<int32_t> got(size_t(rows) * k);
    cuda::download(got.data(), d_out.get(), got.size() * 4);
    for (int r = 0; r < rows; ++r) {
      std::vector<int32_t> idx(V);
      for (int i = 0; i < V; ++i) idx[i] = i;
      const float* x = logits.data() + size_t(r) * V;
      std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return x[a] > x[b]; });
      for (int j = 0; j < k; ++j) ASSERT_EQ(got[size_t(r) * k + j], idx[j]) << "V " << V << " row " << r << " rank " << j;
    }
    EXPECT_ANY_THROW(cuda::top_k_rows(d_logits.get(), rows, V, 33, d_out.get()));
  }
}

// An oracle drafter that knows plain decoding's answer on the rank-0 paths: long acceptances of
// non-adjacent tree rows, so the KV compaction is exercised.
TEST_F(SpecGpu, OracleAcceptancesReproducePlainGreedy) {
  auto g = upload(256);
  GpuSpecBase base(*g);
  const int64_t V = model().config().n_vocab;
  Rng rng(4, 0);
  for (const char* tree_name : {"mc_sim_7b_63", "chain-5", "top2-4"}) {
    for (int miss : {3, 1000}) {
      const auto prompt = random_prompt(rng, V, 3 + int(rng.below(20)));
      const int n = 40;
      std::vector<float> gaps;
      const auto plain = plain_gpu(*g, prompt, n + 8, gaps);
      spec_test::OracleDrafter oracle(plain, V, miss);
      oracle.set_prompt_len(int64_t(prompt.size()));
      SpecDecoder dec(base, oracle, DraftTree::load(tree_name));
      SpecOptions opt;
      opt.max_tokens = n;
      opt.sampling.temperature = 0;
      auto r = dec.generate(prompt, opt, {});
      expect_same_or_near_tie(r.tokens, std::vector<int32_t>(plain.begin(), plain.begin() + n), gaps,
                              std::string(tree_name) + " miss " + std::to_string(miss));
      if (r.tokens == std::vector<int32_t>(plain.begin(), plain.begin() + n)) {
        EXPECT_GT(r.mean_accepted(), miss == 1000 ? 3.0 : 1.5) << tree_name;
      }
      // Typical acceptance (the nodes' logits downloaded, accepted on the host) at a near-zero
      // temperature accepts only the argmax: plain greedy again.
      opt.sampling.temperature = 1e-4f;
      opt.sampling.top_k = 0;
      opt.sampling.top_p = 1;
      opt.sampling.min_p = 0;
      r = dec.generate(prompt, opt, {});
      expect_same_or_near_tie(r.tokens, std::vector<int32_t>(plain.begin(), plain.begin() + n), gaps,
                              std::string("typical ") + tree_name + " miss " + std::to_string(miss));
      if (r.tokens == std::vector<int32_t>(plain.begin(), plain.begin() + n)) {
        EXPECT_GT(r.mean_accepted(), miss == 1000 ? 3.0 : 1.5) << "typical " << tree_name;
      }
    }
  }
}

// Typical acceptance while sampling (temperature 0.8): a seed gives the same text twice, every
// token is in the vocabulary, and the oracle's greedy proposals are sometimes accepted. (Each run
// gets a fresh oracle: under typical acceptance the text depends on the proposals.)
TEST_F(SpecGpu, TypicalAcceptanceSamplesRepeatably) {
  auto g = upload(256);
  GpuSpecBase base(*g);
  const int64_t V = model().config().n_vocab;
  Rng rng(9, 0);
  const auto prompt = random_prompt(rng, V, 12);
  std::vector<float> gaps;
  const auto plain = plain_gpu(*g, prompt, 72, gaps);
  auto run = [&](uint64_t seed) {
    spec_test::OracleDrafter oracle(plain, V, 1000);
    oracle.set_prompt_len(int64_t(prompt.size()));
    SpecDecoder dec(base, oracle, DraftTree::load("mc-15"));
    SpecOptions opt;
    opt.max_tokens = 64;
    opt.stop_at_eos = false;
    opt.sampling.temperature = 0.8f;
    opt.sampling.top_k = 0;
    opt.sampling.top_p = 1;
    opt.sampling.min_p = 0;
    opt.sampling.seed = seed;
    return dec.generate(prompt, opt, {});
  };
  const auto a = run(11), b = run(11);
  EXPECT_EQ(a.tokens, b.tokens);
  ASSERT_EQ(a.tokens.size(), 64u);
  for (int32_t t : a.tokens) EXPECT_TRUE(t >= 0 && t < V) << t;
  EXPECT_LT(a.steps, 64) << "no draft token was ever accepted";
  EXPECT_NE(run(12).tokens, a.tokens) << "another seed, the same 64 sampled tokens";
}

// Every head type with random heads on the GPU: few acceptances, but the output is plain greedy.
TEST_F(SpecGpu, GpuHeadsReproducePlainGreedy) {
  auto g = upload(512);
  GpuSpecBase base(*g);
  const int64_t V = model().config().n_vocab;
  Rng rng(6, 0);
  for (HeadArch arch : {HeadArch::Medusa, HeadArch::Hydra, HeadArch::HydraPlusPlus}) {
    DraftHeads heads = spec_test::random_heads(arch, 4, arch == HeadArch::HydraPlusPlus ? 2 : 1, model(), 7);
    GpuHeadDrafter drafter(heads, *g);
    for (const char* tree_name : {"mc-15", "mc_sim_7b_63"}) {
      const auto prompt = random_prompt(rng, V, 300);  // longer than one observed chunk of the prefix layer
      std::vector<float> gaps;
      const auto plain = plain_gpu(*g, prompt, 32, gaps);
      SpecDecoder dec(base, drafter, DraftTree::load(tree_name));
      SpecOptions opt;
      opt.max_tokens = 32;
      opt.stop_at_eos = false;
      opt.sampling.temperature = 0;
      auto r = dec.generate(prompt, opt, {});
      expect_same_or_near_tie(r.tokens, plain, gaps, std::string(head_arch_name(arch)) + " " + tree_name);
    }
  }
}

// The GPU heads (bf16 weights) propose what the CPU heads (f32) propose from the same hidden
// states, up to rank swaps at near-ties: most nodes agree.
TEST_F(SpecGpu, GpuHeadsProposeWhatCpuHeadsPropose) {
  auto g = upload(256);
  const auto& c = model().config();
  Rng rng(8, 0);
  const DraftTree tree = DraftTree::load("mc_sim_7b_63");
  for (HeadArch arch : {HeadArch::Medusa, HeadArch::Hydra, HeadArch::HydraPlusPlus}) {
    DraftHeads heads = spec_test::random_heads(arch, 5, 1, model(), 9);
    HeadDrafter cpu(heads, model(), 256);
    GpuHeadDrafter gpu(heads, *g);
    std::vector<float> hidden(size_t(7 * c.n_embd));
    for (auto& h : hidden) h = float(rng.normal());
    cpu.observe(hidden.data(), 7);
    gpu.observe(hidden.data(), 7);
    std::vector<int32_t> a(size_t(tree.n_nodes())), b(a.size());
    a[0] = b[0] = 17;
    cpu.propose(tree, a.data());
    gpu.propose(tree, b.data());
    int same = 0;
    for (int n = 1; n < tree.n_nodes(); ++n) same += a[n] == b[n];
    EXPECT_GE(same, int(0.8 * (tree.n_nodes() - 1))) << head_arch_name(arch);
    for (int n = 1; n < tree.n_nodes(); ++n) ASSERT_TRUE(b[n] >= 0 && b[n] < c.n_vocab);
  }
}

TEST_F(SpecGpu, HeadsForAnotherModelAreRejected) {
  auto g = upload(64);
  llm::LlamaConfig other = model().config();
  other.n_embd = 128;
  other.n_ff = 256;
  llm::LlamaModel m2 = llm::LlamaModel::random(other, 2, llm::WeightMode::Reference);
  DraftHeads heads = spec_test::random_heads(HeadArch::Hydra, 2, 1, m2, 1);
  EXPECT_THROW(GpuHeadDrafter drafter(heads, *g), ik::Error);
}
