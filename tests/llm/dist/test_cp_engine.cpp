// Run under mpirun -np P (P = 1..4): the context-parallel engine (striped prefill over the
// ring, KV cache distributed token t -> rank t mod P, decode by log-sum-exp merge of partial
// softmaxes) against the single-rank engine LlamaModel::forward on the same weights.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "dist/comm.hpp"
#include "io/gguf.hpp"
#include "llm/dist/context_parallel.hpp"
#include "llm/model/llama.hpp"
#include "llm/runtime/sampler.hpp"
#include "../../dist/mpi_test_main.hpp"

using namespace ik;

namespace {

dist::MpiComm* g_comm = nullptr;  // the world communicator, made in main()

// Grouped-query attention (4 query heads over 2 KV heads), exact f32 math (Reference mode),
// so the two engines differ only by the order of floating-point sums.
llm::LlamaModel& tiny_model() {
  static llm::LlamaModel model = [] {
    llm::LlamaConfig c;
    c.name = "cp-test";
    c.n_vocab = 96, c.n_embd = 64, c.n_ff = 128, c.n_layer = 2;
    c.n_head = 4, c.n_head_kv = 2, c.head_dim = 16;
    c.n_ctx_train = 512;
    return llm::LlamaModel::random(c, 7, llm::WeightMode::Reference);
  }();
  return model;
}

std::vector<int32_t> random_tokens(int64_t n, int64_t vocab, uint64_t seed) {
  Rng rng(seed, 1);  // same seed on every rank: same prompt
  std::vector<int32_t> t(n);
  for (auto& x : t) x = int32_t(rng.below(uint64_t(vocab)));
  return t;
}

// max |a - b| / max(1, |b|)
double max_rel_diff(const float* a, const float* b, int64_t n) {
  double e = 0;
  for (int64_t i = 0; i < n; ++i) e = std::max(e, std::fabs(double(a[i]) - b[i]) / std::max(1.0, std::fabs(double(b[i]))));
  return e;
}

// The single-rank engine: logits of every prompt position, then `steps` greedy tokens with
// the logits that chose each of them.
struct Reference {
  std::vector<float> prompt_logits;             // [T, V]
  std::vector<int32_t> greedy;                  // steps tokens
  std::vector<std::vector<float>> step_logits;  // logits after prompt + greedy[0..s-1]
};

Reference single_rank(llm::LlamaModel& model, const std::vector<int32_t>& prompt, int steps) {
  const int64_t V = model.config().n_vocab, T = int64_t(prompt.size());
  llm::KVCache cache(model.config().n_layer, T + steps + 1, model.config().kv_dim());
  Reference r;
  r.prompt_logits.resize(T * V);
  model.forward(prompt.data(), T, cache, r.prompt_logits.data(), true);
  std::vector<float> logits(r.prompt_logits.end() - V, r.prompt_logits.end());
  for (int s = 0; s < steps; ++s) {
    r.step_logits.push_back(logits);
    const int32_t next = llm::argmax(logits.data(), V);
    r.greedy.push_back(next);
    model.forward(&next, 1, cache, logits.data());
  }
  return r;
}

// Prefill logits (every position, on every rank), the decode logits of each greedy step (rank
// 0), and the tokens cp_generate picks (rank 0 samples greedily and broadcasts).
void expect_matches_single_rank(llm::LlamaModel& model, const std::vector<int32_t>& prompt, int64_t capacity,
                                int steps, double tol) {
  dist::Comm& comm = *g_comm;
  const int64_t V = model.config().n_vocab, T = int64_t(prompt.size());
  const Reference ref = single_rank(model, prompt, steps);
  llm::ContextParallelLlama cp(model, comm, capacity);

  std::vector<float> all(T * V), last(V);
  cp.prefill(prompt, last.data(), all.data());
  EXPECT_LT(max_rel_diff(all.data(), ref.prompt_logits.data(), T * V), tol) << "prefill, T=" << T;
  EXPECT_LT(max_rel_diff(last.data(), ref.prompt_logits.data() + (T - 1) * V, V), tol);
  EXPECT_EQ(cp.n_past(), T);
  EXPECT_EQ(cp.local_rows(), (T - comm.rank() + comm.size() - 1) / comm.size());  // tokens r, r+P, ...
  std::vector<float> logits = last;
  for (int s = 0; s < steps; ++s) {
    if (comm.rank() == 0) {
      EXPECT_LT(max_rel_diff(logits.data(), ref.step_logits[s].data(), V), tol) << "decode step " << s << ", T=" << T;
    }
    cp.decode(ref.greedy[s], logits.data());
  }
  EXPECT_EQ(cp.n_past(), T + steps);
  EXPECT_EQ(cp.local_rows(), (T + steps - comm.rank() + comm.size() - 1) / comm.size());  // token t on rank t mod P

  llm::SamplingParams greedy;
  greedy.temperature = 0;
  const auto gen = llm::cp_generate(cp, prompt, greedy, steps, {});
  EXPECT_EQ(gen.tokens, ref.greedy) << "T=" << T;
  EXPECT_EQ(gen.stop_reason, "length");
}

TEST(CpEngine, TinyModelEqualsSingleRank) {
  const int P = g_comm->size();
  for (int64_t T : {int64_t(P), int64_t(7), int64_t(13), int64_t(31), int64_t(1501)}) {
    if (T < P) continue;
    const auto prompt = random_tokens(T, tiny_model().config().n_vocab, uint64_t(T));
    expect_matches_single_rank(tiny_model(), prompt, (T + P - 1) / P + 8, 5, 1e-4);
  }
}

// Each rank holds 8 KV rows; the prompt and its continuation need up to 8P - 1 of them in
// total: more than one rank's capacity as soon as P >= 2.
TEST(CpEngine, PromptLongerThanOneRankCapacity) {
  dist::Comm& comm = *g_comm;
  const int P = comm.size();
  const int64_t capacity = 8, T = capacity * P - 3;
  llm::LlamaModel& model = tiny_model();
  const auto prompt = random_tokens(T, model.config().n_vocab, 99);
  expect_matches_single_rank(model, prompt, capacity, 3, 1e-4);

  // Fill the distributed cache to the last row, then one more token is a clear error on
  // every rank (checked before any communication, so nobody hangs).
  llm::ContextParallelLlama cp(model, comm, capacity);
  cp.prefill(prompt, nullptr);
  while (cp.n_past() < cp.max_tokens()) cp.decode(1, nullptr);
  EXPECT_EQ(cp.local_rows(), capacity);
  try {
    cp.decode(1, nullptr);
    ADD_FAILURE() << "decode past the distributed capacity did not throw";
  } catch (const ik::Error& e) {
    EXPECT_NE(std::string(e.what()).find("context full"), std::string::npos) << e.what();
  }
  // A prompt whose share of one rank exceeds the capacity.
  const auto too_long = random_tokens(capacity * P + 1, model.config().n_vocab, 5);
  try {
    cp.prefill(too_long, nullptr);
    ADD_FAILURE() << "prefill past the capacity did not throw";
  } catch (const ik::Error& e) {
    EXPECT_NE(std::string(e.what()).find("capacity of 8 per rank"), std::string::npos) << e.what();
  }
}

TEST(CpEngine, PromptShorterThanRanksIsAnError) {
  const int P = g_comm->size();
  if (P == 1) GTEST_SKIP() << "needs 2 ranks";
  llm::ContextParallelLlama cp(tiny_model(), *g_comm, 16);
  EXPECT_THROW(cp.prefill(random_tokens(P - 1, 96, 3), nullptr), ik::Error);
}

// The default model (SmolLM2-135M Q4_1), an odd prompt and three greedy steps, in Reference
// mode (f32 math on the dequantized weights). Fast mode quantizes every activation row to 8
// bits before each matmul: a last-bit difference from the attention's sum order can move a
// value across a rounding boundary, which SmolLM2's large outlier activations amplify to
// ~0.5 in a logit, so Fast mode is compared by its greedy text (docs/context_parallel.md).
TEST(CpEngine, DefaultModelEqualsSingleRank) {
  const std::string path = IK_SOURCE_DIR "/.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "needs " << path << " (run `make setup`)";
  auto file = std::make_shared<const io::GgufFile>(io::GgufFile::open(path));
  llm::LlamaModel model = llm::LlamaModel::from_gguf(file, llm::WeightMode::Reference);
  const auto prompt = random_tokens(37, model.config().n_vocab, 11);
  const int P = g_comm->size();
  expect_matches_single_rank(model, prompt, (37 + P - 1) / P + 4, 3, 1e-3);
}

}  // namespace

int main(int argc, char** argv) { return ik::test::run_tests_on_all_ranks(argc, argv, g_comm, 60); }
