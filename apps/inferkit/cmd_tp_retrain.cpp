// inferkit tp-retrain: light retraining of the Ladder Residual layers of a model (the last k
// layers converted without retraining lose quality; tensor_parallel.md). The last k layers are
// trained as ladder layers on next-token cross-entropy over random windows of --train text
// (everything else frozen), and the perplexity of --eval text is reported before and after,
// through the tensor-parallel engine at P = 1 (the recurrence the model will run with).
#include <fmt/format.h>
#include <omp.h>

#include <cmath>

#include "command.hpp"
#include "core/error.hpp"
#include "core/progress.hpp"
#include "core/rng.hpp"
#include "dist/comm.hpp"
#include "io/gguf.hpp"
#include "llm/dist/tensor_parallel.hpp"
#include "llm/train/ladder.hpp"
#include "llm_common.hpp"

namespace ik::cli {

std::string read_text_file(const std::string& path);  // cmd_generate.cpp
double ladder_perplexity(llm::LlamaModel& model, dist::Comm& comm, int k, const std::vector<int32_t>& tokens,
                         int32_t bos, int ctx);  // cmd_tp.cpp

namespace {

struct RetrainArgs {
  ModelFlags model;
  int last_k = 4;
  std::vector<std::string> train_files;
  std::string eval_file, out;
  int steps = 200, window = 128, warmup = 20, eval_window = 128;
  float lr = 1e-4f, weight_decay = 0.0f;
  uint64_t seed = 1;
};

// A copy of the model file with the retrained layers as F32 tensors and the ladder key set.
void save_retrained(const io::GgufFile& in, const llm::LlamaModel& model, int first, const std::string& path) {
  io::GgufWriter w;
  w.copy_metadata_from(in);
  w.set_u32(llm::kLadderLayersKey, uint32_t(model.config().n_layer - first));
  auto& m = const_cast<llm::LlamaModel&>(model);  // layer() is non-const; read only here
  for (const auto& t : in.tensors()) {
    int l = -1;
    char part[64] = {};
    if (std::sscanf(t.name.c_str(), "blk.%d.%63s", &l, part) == 2 && l >= first) {
      const llm::LlamaLayer& L = m.layer(l);
      const std::string p = part;
      const std::vector<float>* norm = p == "attn_norm.weight" ? &L.attn_norm : p == "ffn_norm.weight" ? &L.ffn_norm : nullptr;
      const backend::WeightMatrix* mat = p == "attn_q.weight" ? &L.wq : p == "attn_k.weight" ? &L.wk
                                       : p == "attn_v.weight" ? &L.wv : p == "attn_output.weight" ? &L.wo
                                       : p == "ffn_gate.weight" ? &L.w_gate : p == "ffn_up.weight" ? &L.w_up
                                       : p == "ffn_down.weight" ? &L.w_down : nullptr;
      if (norm) {
        w.add_tensor(t.name, t.shape, io::DType::F32, norm->data(), norm->size() * 4);
        continue;
      }
      if (mat) {
        IK_CHECK(mat->type == io::DType::F32, "retrained {} is not f32", t.name);
        w.add_tensor(t.name, t.shape, io::DType::F32, mat->data, mat->nbytes());
        continue;
      }
    }
    w.add_tensor(t.name, t.shape, t.type, t.data, t.nbytes);
  }
  w.write(path);
}

void run_retrain(const RetrainArgs& a) {
  if (a.model.threads > 0) omp_set_num_threads(a.model.threads);
  LoadedModel lm = load_model(a.model);
  llm::LlamaModel& model = *lm.model;
  dist::LocalComm comm;  // the perplexities run the ladder recurrence through the P = 1 engine
  const int L = int(model.config().n_layer);
  IK_CHECK(a.last_k >= 1 && a.last_k <= L, "--ladder-last {} outside [1, {}] (the model has {} layers)", a.last_k, L, L);
  std::string train_text;
  for (const auto& f : a.train_files) train_text += read_text_file(f) + "\n";
  const std::vector<int32_t> train = lm.tokenizer.encode(train_text, false, false);
  IK_CHECK(int64_t(train.size()) > a.window, "the training text has {} tokens, fewer than one window of {}",
           train.size(), a.window);
  const std::string eval_text = read_text_file(a.eval_file);
  const std::vector<int32_t> eval = lm.tokenizer.encode(eval_text, false, false);
  IK_CHECK(int64_t(eval.size()) >= a.eval_window, "the eval text has {} tokens, fewer than one window of {}", eval.size(),
           a.eval_window);
  const int32_t bos = lm.tokenizer.encode(eval_text, true, false).size() > eval.size() ? lm.tokenizer.bos_id() : -1;

  fmt::print("tp-retrain: {} | last {} of {} layers as ladder | train {} tokens, {} steps x {} tokens | eval {} tokens\n",
             a.model.model.empty() ? default_model_path() : a.model.model, a.last_k, L, train.size(), a.steps, a.window,
             eval.size());
  const double ppl_standard = ladder_perplexity(model, comm, 0, eval, bos, a.eval_window);
  const double ppl_before = ladder_perplexity(model, comm, a.last_k, eval, bos, a.eval_window);
  fmt::print("perplexity: standard {:.3f} | ladder {:.3f} ({:.2f}x) before retraining\n", ppl_standard, ppl_before,
             ppl_before / ppl_standard);
  std::fflush(stdout);

  llm::train::LadderTrainer trainer(model, a.last_k);
  llm::train::AdamW opt({.lr = a.lr, .weight_decay = a.weight_decay});
  const auto params = trainer.params();
  Rng rng(a.seed, 11);
  Progress bar("retraining", uint64_t(a.steps));
  double avg = 0;
  for (int step = 0; step < a.steps; ++step) {
    const int64_t start = int64_t(rng.below(uint64_t(train.size() - a.window)));
    trainer.zero_grads();
    const double loss = trainer.loss(train.data() + start, a.window, true);
    opt.step(params, llm::train::lr_schedule(step, a.steps, a.warmup, a.lr));
    avg = step == 0 ? loss : 0.95 * avg + 0.05 * loss;
    bar.set_note(fmt::format("loss {:.3f}", avg));
    bar.advance();
  }
  bar.finish();
  trainer.write_back(model);
  const double ppl_after = ladder_perplexity(model, comm, a.last_k, eval, bos, a.eval_window);
  fmt::print("perplexity: ladder {:.3f} ({:.2f}x standard) after {} steps ({} tokens); recovered {:.0f}% of the gap\n",
             ppl_after, ppl_after / ppl_standard, a.steps, int64_t(a.steps) * a.window,
             100.0 * (ppl_before - ppl_after) / std::max(1e-9, ppl_before - ppl_standard));
  if (!a.out.empty()) {
    IK_CHECK(lm.file, "-o needs a GGUF model");
    save_retrained(*lm.file, model, L - a.last_k, a.out);
    fmt::print("wrote {} (run it with generate --tensor-parallel 1)\n", a.out);
  }
}

void add_tp_retrain(CLI::App& app) {
  auto a = std::make_shared<RetrainArgs>();
  auto* c = app.add_subcommand("tp-retrain",
                               "Retrain the last k layers of a model as Ladder Residual layers (next-token loss on "
                               "--train text) and report the perplexity of --eval text before and after");
  a->model.add(c);
  c->add_option("--ladder-last", a->last_k, "the last k layers become ladder layers and are retrained")
      ->check(CLI::PositiveNumber);
  c->add_option("--train", a->train_files, "training text files (repeatable)")->required()->check(CLI::ExistingFile);
  c->add_option("--eval", a->eval_file, "evaluation text file")->required()->check(CLI::ExistingFile);
  c->add_option("--steps", a->steps, "optimizer steps (one window each)")->check(CLI::Range(1, 1000000));
  c->add_option("--window", a->window, "training window in tokens")->check(CLI::Range(2, 1 << 14));
  c->add_option("--eval-window", a->eval_window, "evaluation window in tokens")->check(CLI::Range(8, 1 << 16));
  c->add_option("--lr", a->lr, "peak learning rate (AdamW; warm-up then cosine decay)")->check(CLI::Range(1e-8, 1.0));
  c->add_option("--warmup", a->warmup, "warm-up steps")->check(CLI::Range(0, 1000000));
  c->add_option("--weight-decay", a->weight_decay, "AdamW weight decay")->check(CLI::Range(0.0, 1.0));
  c->add_option("--seed", a->seed, "window sampling seed");
  c->add_option("-o,--out", a->out, "write the retrained model (GGUF, retrained layers in F32)");
  c->callback([a] { run_retrain(*a); });
}

}  // namespace

static Register reg("tp-retrain", add_tp_retrain);

}  // namespace ik::cli
