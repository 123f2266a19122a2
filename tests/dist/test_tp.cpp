// Tensor-parallel Llama and Ladder Residual, run under mpirun -np P (P = 1..4): every rank
// runs the same tests in the same order. Checked against an independent reference written in
// tiny_llama.hpp (plain loops, the recurrence as in the paper), against LlamaModel::forward,
// and against the same model on one rank (LocalComm).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <unistd.h>

#include "backend/cpu/quant_dot.hpp"
#include "core/error.hpp"
#include "core/rng.hpp"
#include "llm/dist/tensor_parallel.hpp"
#include "tiny_llama.hpp"
#include "mpi_test_main.hpp"

using namespace ik;
using llm::TensorParallelLlama;
using llm::TpOptions;

static dist::MpiComm* g_comm = nullptr;  // the world communicator, made in main()

namespace {

const std::vector<int32_t> kTokens = {3, 17, 0, 69, 42, 42, 8, 25, 61, 5, 33};

// A model whose head counts P divides (12/6 heads for P = 1, 2, 3; 8/4 for P = 4).
tiny::Dims dims_for(int P) {
  tiny::Dims d;
  if (P == 4) d.n_head = 8, d.n_kv = 4, d.n_ff = 320;  // uneven MLP split: 10 blocks over 4
  return d;
}

// max |a - b| / max(1, max |b|)
double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double diff = 0, scale = 1;
  for (size_t i = 0; i < a.size(); ++i) diff = std::max(diff, double(std::fabs(a[i] - b[i]))), scale = std::max(scale, double(std::fabs(b[i])));
  return diff / scale;
}

// Prefill all tokens with every row's logits.
std::vector<float> prefill(TensorParallelLlama& tp, const std::vector<int32_t>& toks) {
  auto cache = tp.make_cache(64);
  std::vector<float> out(toks.size() * tp.config().n_vocab);
  tp.forward(toks.data(), int64_t(toks.size()), cache, out.data(), true);
  return out;
}

// A 4-token prefill, then one token at a time through the KV cache: logits of every position.
std::vector<float> decode(TensorParallelLlama& tp, const std::vector<int32_t>& toks) {
  auto cache = tp.make_cache(64);
  const int64_t V = tp.config().n_vocab;
  std::vector<float> out(toks.size() * V);
  tp.forward(toks.data(), 4, cache, out.data(), true);
  for (size_t t = 4; t < toks.size(); ++t) tp.forward(&toks[t], 1, cache, out.data() + t * V);
  return out;
}

std::vector<float> engine_logits(llm::LlamaModel& model, const std::vector<int32_t>& toks) {
  llm::KVCache cache(model.config().n_layer, 64, model.config().kv_dim());
  std::vector<float> out(toks.size() * model.config().n_vocab);
  model.forward(toks.data(), int64_t(toks.size()), cache, out.data(), true);
  return out;
}

struct Variant {
  const char* name;
  TpOptions opt;
};

std::vector<Variant> variants(int n_layer) {
  std::vector<Variant> v = {{"standard", {}}, {"ladder-last-1", {}}, {"ladder-last-2", {}}, {"ladder-all", {}},
                            {"parallel", {}}, {"standard-replicated-head", {}}};
  v[1].opt.ladder_last = 1;
  v[2].opt.ladder_last = 2;
  v[3].opt.ladder_last = n_layer;
  v[4].opt.parallel_block = true;
  v[5].opt.vocab_parallel = false;
  return v;
}

}  // namespace

TEST(TensorParallel, EveryVariantEqualsIndependentReference) {
  dist::Comm& comm = *g_comm;
  const auto M = tiny::make(dims_for(comm.size()), 7, io::DType::F32, llm::WeightMode::Reference);
  const tiny::Reference ref{*M, int64_t(kTokens.size())};
  for (const auto& [name, opt] : variants(M->dims.n_layer)) {
    SCOPED_TRACE(name);
    TensorParallelLlama tp(*M->model, comm, opt);
    const auto want = ref.logits(kTokens, opt.ladder_last, opt.parallel_block);
    EXPECT_LT(rel_diff(prefill(tp, kTokens), want), 2e-5);
    EXPECT_LT(rel_diff(decode(tp, kTokens), want), 2e-5);
  }
}

TEST(TensorParallel, LadderChangesTheFunction) {
  // The checks above would pass trivially if the variants computed the same thing.
  dist::Comm& comm = *g_comm;
  const auto M = tiny::make(dims_for(comm.size()), 7, io::DType::F32, llm::WeightMode::Reference);
  TpOptions ladder;
  ladder.ladder_last = 2;
  TensorParallelLlama a(*M->model, comm, {}), b(*M->model, comm, ladder);
  EXPECT_GT(rel_diff(prefill(a, kTokens), prefill(b, kTokens)), 1e-3);
}

TEST(TensorParallel, StandardEqualsEngineForward) {
  dist::Comm& comm = *g_comm;
  for (auto [type, mode] : {std::pair{io::DType::F32, llm::WeightMode::Reference},
                            std::pair{io::DType::F32, llm::WeightMode::Fast}}) {
    const auto M = tiny::make(dims_for(comm.size()), 11, type, mode);
    TensorParallelLlama tp(*M->model, comm, {});
    const auto want = engine_logits(*M->model, kTokens);
    EXPECT_LT(rel_diff(prefill(tp, kTokens), want), 1e-5);
    EXPECT_LT(rel_diff(decode(tp, kTokens), want), 1e-5);
  }
}

TEST(TensorParallel, QuantizedFastPathEqualsOneRank) {
  // Q8_0 and Q4_1 (repacked for the VNNI kernel where present) weights on the fast path:
  // row slices are views, column slices copy whole blocks, so P ranks equal one rank (LocalComm)
  // up to the order of the float sums (and the 8-bit activation rounding that order can flip).
  dist::Comm& comm = *g_comm;
  dist::LocalComm one;
  for (io::DType type : {io::DType::Q8_0, io::DType::Q4_1}) {
    SCOPED_TRACE(io::dtype_name(type));
    const auto M = tiny::make(dims_for(comm.size()), 13, type, llm::WeightMode::Fast);
    for (int k : {0, 2}) {
      TpOptions opt;
      opt.ladder_last = k;
      TensorParallelLlama tp(*M->model, comm, opt), single(*M->model, one, opt);
      // Loose: a sum-order difference can flip an 8-bit activation rounding (a wrong head or
      // slice gives O(1) differences); the slices themselves are checked bit-exact below.
      EXPECT_LT(rel_diff(decode(tp, kTokens), decode(single, kTokens)), 3e-2);
      if (k == 0) {
        EXPECT_LT(rel_diff(prefill(single, kTokens), engine_logits(*M->model, kTokens)), 1e-5);
      }
    }
  }
}

TEST(TensorParallel, SlicesHoldExactlyTheStoredValues) {
  // Row and column slices of F32, Q8_0 and Q4_1 (repacked where the VNNI kernel exists)
  // matrices dequantize to exactly the corresponding part of the full matrix; a column slice
  // that cuts quantization blocks is f32 (reference) or the Q8_0 of the f32 values (fast).
  const int64_t rows = 6, cols = 192;
  Rng rng(5, 0);
  std::vector<float> x(rows * cols);
  for (auto& v : x) v = float(rng.normal());
  std::vector<uint8_t> q8(rows * cols / 32 * sizeof(backend::BlockQ8_0));
  backend::quantize_q8_0(x.data(), q8.data(), rows * cols);
  const std::vector<uint8_t> q41 = llm::quantize_q4_1(x);
  using backend::WeightMatrix;
  auto dense = [&](const WeightMatrix& w) {
    std::vector<float> out(w.rows * w.cols);
    for (int64_t r = 0; r < w.rows; ++r) backend::weight_row(w, r, out.data() + r * w.cols);
    return out;
  };
  for (auto mode : {llm::WeightMode::Fast, llm::WeightMode::Reference}) {
    for (auto [type, data] : {std::pair{io::DType::F32, (const void*)x.data()}, std::pair{io::DType::Q8_0, (const void*)q8.data()},
                              std::pair{io::DType::Q4_1, (const void*)q41.data()}}) {
      SCOPED_TRACE(io::dtype_name(type));
      const WeightMatrix w = WeightMatrix::prepare(type, rows, cols, data, mode);
      const auto full = dense(w);
      for (llm::Range rr : {llm::Range{0, 6}, llm::Range{2, 5}}) {
        const auto s = dense(llm::slice_rows(w, rr, mode));
        EXPECT_TRUE(std::equal(s.begin(), s.end(), full.begin() + rr.first * cols));
      }
      for (llm::Range cr : {llm::Range{0, 192}, llm::Range{32, 160}, llm::Range{160, 192}, llm::Range{10, 50}, llm::Range{16, 80}}) {
        const WeightMatrix sw = llm::slice_cols(w, cr, mode);
        const auto s = dense(sw);
        std::vector<float> want(rows * cr.size());
        for (int64_t r = 0; r < rows; ++r)
          std::copy_n(full.begin() + r * cols + cr.first, cr.size(), want.begin() + r * cr.size());
        const bool cut = type != io::DType::F32 && (cr.first % 32 || cr.last % 32);
        if (cut && mode == llm::WeightMode::Fast && cr.size() % 32 == 0) {  // requantized to Q8_0
          std::vector<uint8_t> q(want.size() / 32 * sizeof(backend::BlockQ8_0));
          backend::quantize_q8_0(want.data(), q.data(), int64_t(want.size()));
          io::dequantize(io::DType::Q8_0, q.data(), want.data(), int64_t(want.size()));
          EXPECT_EQ(sw.type, io::DType::Q8_0);
        }
        EXPECT_EQ(s, want) << cr.first << ".." << cr.last;
      }
    }
  }
}

// A Comm that logs all-reduce launches (id j) and completions (-1 - j) around the real one,
// and holds back the completion of a ladder module's all-reduce until the next module's has
// been launched: an implementation that waited at launch (or before launching the next
// module) would time out here instead of passing.
class HoldingComm final : public dist::Comm {
 public:
  HoldingComm(dist::Comm& inner, int first_held, int last) : inner_(inner), first_held_(first_held), last_(last) {}
  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  dist::Request iall_reduce_sum(std::span<float> data) override {
    auto r = std::make_shared<dist::Request>(inner_.iall_reduce_sum(data));
    const int id = launched_++;
    log.push_back(id);
    auto test = [this, r, id] {
      if (id >= first_held_ && id != last_ && launched_ < id + 2) return false;
      if (!r->test()) return false;
      log.push_back(-1 - id);
      return true;
    };
    return dist::Request(test, [] {}, 5.0, "held all_reduce");
  }
  dist::Request iall_gather(std::span<const float> a, std::span<float> b) override { return inner_.iall_gather(a, b); }
  dist::Request ibroadcast(std::span<float> d, int root) override { return inner_.ibroadcast(d, root); }
  dist::Request ibarrier() override { return inner_.ibarrier(); }
  dist::Request isend(std::span<const float> d, int dest, int tag) override { return inner_.isend(d, dest, tag); }
  dist::Request irecv(std::span<float> d, int src, int tag) override { return inner_.irecv(d, src, tag); }
  std::vector<int> log;

 private:
  dist::Comm& inner_;
  int first_held_, last_;
  int launched_ = 0;
};

TEST(TensorParallel, LadderWaitsOneModuleLater) {
  // Standard: every all-reduce completes before the next module is launched. Ladder: module
  // j's all-reduce is still in flight when module j+1's is launched (HoldingComm enforces it)
  // and has completed, and been added, before module j+2's launch.
  dist::Comm& comm = *g_comm;
  const auto M = tiny::make(dims_for(comm.size()), 7, io::DType::F32, llm::WeightMode::Reference);
  const int L = M->dims.n_layer;
  for (int k : {0, 2, L}) {
    const int j0 = 2 * (L - k);  // first ladder module
    TpOptions opt;
    opt.ladder_last = k;
    HoldingComm holding(comm, j0, 2 * L - 1);
    TensorParallelLlama tp(*M->model, holding, opt);
    auto cache = tp.make_cache(8);
    std::vector<float> logits(tp.config().n_vocab);
    tp.forward(kTokens.data(), 1, cache, logits.data());
    std::vector<int> want;
    for (int j = 0; j < 2 * L; ++j) {
      want.push_back(j);
      if (j < j0) want.push_back(-1 - j);             // standard: completed at once
      else if (j > j0) want.push_back(-1 - (j - 1));  // ladder: y_{j-1} completes after y_j launched
    }
    if (k > 0) want.push_back(-1 - (2 * L - 1));
    EXPECT_EQ(holding.log, want) << "ladder_last " << k;
  }
}

TEST(TensorParallel, HeadsNotDividingIsAnErrorOnEveryRank) {
  dist::Comm& comm = *g_comm;
  if (comm.size() == 1) GTEST_SKIP() << "every head count divides by 1";
  tiny::Dims d;
  d.n_head = comm.size() == 4 ? 12 : 8, d.n_kv = comm.size() == 4 ? 6 : 4;  // 6 % 4, 8 % 3: not divisible
  if (comm.size() == 2) d.n_head = 9, d.n_kv = 3, d.head_dim = 32;
  const auto M = tiny::make(d, 7, io::DType::F32, llm::WeightMode::Reference);
  try {
    TensorParallelLlama tp(*M->model, comm, {});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("to divide the attention heads"), std::string::npos) << e.what();
  }
}

TEST(TensorParallel, DifferentModelsAcrossRanksAreAnErrorOnEveryRank) {
  dist::Comm& comm = *g_comm;
  if (comm.size() == 1) GTEST_SKIP() << "needs 2 ranks";
  const uint64_t seed = comm.rank() == comm.size() - 1 ? 99 : 7;  // the last rank loads another file
  const auto M = tiny::make(dims_for(comm.size()), seed, io::DType::F32, llm::WeightMode::Reference);
  try {
    TensorParallelLlama tp(*M->model, comm, {});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("different model"), std::string::npos) << e.what();
  }
}

TEST(TensorParallel, ConvertWritesLadderLayers) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("ik_tp_" + std::to_string(::getpid()) + "_" + std::to_string(g_comm->rank()));
  std::filesystem::create_directories(dir);
  const auto M = tiny::make(dims_for(1), 7, io::DType::Q8_0, llm::WeightMode::Fast);
  const std::string in = (dir / "in.gguf").string(), out = (dir / "out.gguf").string();
  {
    std::FILE* f = std::fopen(in.c_str(), "wb");
    ASSERT_TRUE(f);
    std::fwrite(M->bytes.data(), 1, M->bytes.size(), f);
    std::fclose(f);
  }
  EXPECT_EQ(llm::ladder_layers_of(*M->file), 0);
  llm::convert_to_ladder(in, out, 3);
  const auto conv = io::GgufFile::open(out);
  EXPECT_EQ(llm::ladder_layers_of(conv), 3);
  ASSERT_EQ(conv.tensors().size(), M->file->tensors().size());
  for (const auto& t : M->file->tensors()) {
    const auto& c = conv.tensor(t.name);
    ASSERT_EQ(c.nbytes, t.nbytes);
    EXPECT_EQ(std::memcmp(c.data, t.data, t.nbytes), 0) << t.name;
  }
  EXPECT_THROW(llm::convert_to_ladder(in, (dir / "bad.gguf").string(), 5), Error);  // 4 layers
  std::filesystem::remove_all(dir);
}

int main(int argc, char** argv) { return ik::test::run_tests_on_all_ranks(argc, argv, g_comm, 30); }
