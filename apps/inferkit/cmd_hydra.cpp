// inferkit hydra: Medusa / Hydra / Hydra++ draft heads for speculative decoding.
//   hydra data   : self-distillation data (the base model answers a prompt set)
//   hydra train  : train heads on it (base frozen, teacher loss, AdamW + warm-up + cosine)
//   hydra eval   : per-head top-1 accuracy on held-out data
//   hydra bench  : plain vs speculative decoding on the same prompts (accepted length, tok/s)
// and `generate --spec medusa|hydra|hydra++ --heads FILE [--tree NAME|FILE]` (add_spec_flags),
// `chat --spec ...` (add_spec_chat_flags).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <fmt/format.h>

#include "command.hpp"
#include "core/csv.hpp"
#include "core/error.hpp"
#include "core/progress.hpp"
#include "llm/spec/chat.hpp"
#include "llm/spec/decode.hpp"
#include "llm/spec/distill.hpp"
#include "llm/spec/gpu.hpp"
#include "llm/spec/train_heads.hpp"
#include "llm_common.hpp"

namespace ik::cli {

using namespace ik::llm::spec;

void print_spec_stats(const SpecChat& chat, const SpecTurn& t);

// Everything here but add_spec_flags, add_spec_chat_flags and print_spec_stats is private to this
// file (no clash with other cmd_*.cpp).
namespace {

// ---- generate --spec and chat --spec --------------------------------------------------------

struct SpecFlags {
  std::string spec, heads, tree = "mc-15";
};

static void add_spec_options(CLI::App* c, SpecFlags& f) {
  c->add_option("--spec", f.spec, "speculative decoding with draft heads: medusa, hydra or hydra++ (greedy output "
                "is identical to plain decoding; sampling uses typical acceptance)")
      ->check(CLI::IsMember({"medusa", "hydra", "hydra++"}));
  c->add_option("--heads", f.heads, "draft-heads file (from `inferkit hydra train`)")->check(CLI::ExistingFile);
  c->add_option("--tree", f.tree, "draft tree: mc_sim_7b_63, mc-N (its first N paths), chain-N, top2-N, or a file "
                "of paths like \"[0] [0,0] [1]\"")->capture_default_str();
}

// On the GPU when the device flag selects CUDA (base model and heads), else on the CPU.
static std::unique_ptr<SpecChat> open_spec_chat(const SpecFlags& f, LoadedModel& lm, const DeviceFlag& device) {
  DraftHeads heads = load_heads_for(f.spec, f.heads, *lm.model);
  if (llm::GpuLlama* gpu = gpu_model(lm, device))
    return std::make_unique<SpecChat>(*gpu, lm.tokenizer, std::move(heads), DraftTree::load(f.tree));
  return std::make_unique<SpecChat>(*lm.model, lm.tokenizer, std::move(heads), DraftTree::load(f.tree), lm.ctx);
}

static void run_spec_generate(const SpecFlags& f, LoadedModel& lm, const DeviceFlag& device,
                              const std::vector<int32_t>& prompt, const llm::GenerateOptions& gen, bool quiet) {
  auto chat = open_spec_chat(f, lm, device);
  SpecTurn t = chat->reply(prompt, gen, print_text);
  fmt::print("\n");
  if (!quiet) print_spec_stats(*chat, t);
}

}  // namespace

void print_spec_stats(const SpecChat& chat, const SpecTurn& t) {
  fmt::print(stderr, "\n[{} {} tree ({} nodes) | prompt {} tokens | generated {} tokens, {:.1f} tok/s | {} steps, "
             "{:.2f} tokens/step | stop: {}]\n", head_arch_name(chat.heads().arch), chat.tree().name, chat.tree().n_nodes(),
             t.gen.prompt_tokens, t.gen.tokens.size(), t.gen.decode_tok_s(), t.steps, t.mean_accepted(),
             t.gen.stop_reason);
}

// Adds --spec/--heads/--tree to a command; the returned function runs speculative decoding when
// --spec was given and returns false otherwise (then the caller decodes as usual).
std::function<bool(LoadedModel&, const DeviceFlag&, const std::vector<int32_t>&, const llm::GenerateOptions&, bool)>
add_spec_flags(CLI::App* c) {
  auto f = std::make_shared<SpecFlags>();
  add_spec_options(c, *f);
  return [f](LoadedModel& lm, const DeviceFlag& device, const std::vector<int32_t>& ids,
             const llm::GenerateOptions& gen, bool quiet) {
    if (f->spec.empty()) {
      IK_CHECK(f->heads.empty(), "--heads needs --spec medusa|hydra|hydra++");
      return false;
    }
    run_spec_generate(*f, lm, device, ids, gen, quiet);
    return true;
  };
}

// The same flags for chat; the returned function opens the speculative decoder that carries the
// conversation from turn to turn, or returns null without --spec.
std::function<std::unique_ptr<SpecChat>(LoadedModel&, const DeviceFlag&)> add_spec_chat_flags(CLI::App* c) {
  auto f = std::make_shared<SpecFlags>();
  add_spec_options(c, *f);
  return [f](LoadedModel& lm, const DeviceFlag& device) -> std::unique_ptr<SpecChat> {
    if (f->spec.empty()) {
      IK_CHECK(f->heads.empty(), "--heads needs --spec medusa|hydra|hydra++");
      return nullptr;
    }
    return open_spec_chat(*f, lm, device);
  };
}

namespace {

// ---- hydra data / train / eval ----------------------------------------------------------------

struct HydraArgs {
  HydraArgs() { train.sampled_vocab = 2048; }
  ModelFlags model;
  std::string data, out, heads, arch = "hydra", prompts;
  DistillOptions distill;
  TrainOptions train;
  int n_heads = 4, blocks = 0, max_prompts = 0, eval_positions = 1000;
  int tree_nodes = 63, ranks = 10;  // hydra tree
  std::string heldout;
};

static std::vector<std::string> prompt_subset(const std::string& path, int max_prompts) {
  auto p = read_prompts(path);
  if (max_prompts > 0 && int(p.size()) > max_prompts) p.resize(size_t(max_prompts));
  return p;
}

// --data: a distillation data file (.gguf from `hydra data`) or a prompt file (built now).
static DistillData data_from(const std::string& path, LoadedModel& lm, const HydraArgs& a) {
  if (std::filesystem::path(path).extension() == ".gguf") return DistillData::load(path);
  return build_distill_data(*lm.model, lm.tokenizer, prompt_subset(path, a.max_prompts), a.distill);
}

static void print_accuracy(const DraftHeads& heads, FrozenBase& base, const DistillData& data, int positions) {
  auto acc = head_top1(heads, base, data, positions);
  std::string line = fmt::format("{} top-1 accuracy per head:", head_arch_name(heads.arch));
  for (size_t i = 0; i < acc.size(); ++i) line += fmt::format("  head{} {:.3f}", i, acc[i]);
  fmt::print("{}\n", line);
}

static void run_data(const HydraArgs& a) {
  LoadedModel lm = load_model(a.model);
  auto prompts = prompt_subset(a.prompts, a.max_prompts);
  auto t0 = std::chrono::steady_clock::now();
  DistillData d = build_distill_data(*lm.model, lm.tokenizer, prompts, a.distill);
  d.save(a.out);
  fmt::print("{} prompts -> {} positions ({} answer tokens max each) in {:.0f} s: {}\n", prompts.size(), d.rows(),
             a.distill.answer_tokens, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), a.out);
}

static void run_train(HydraArgs a) {
  LoadedModel lm = load_model(a.model);
  const HeadArch arch = parse_head_arch(a.arch);
  const int blocks = a.blocks > 0 ? a.blocks : arch == HeadArch::HydraPlusPlus ? 4 : 1;
  DistillData data = data_from(a.data, lm, a);
  DraftHeads heads = DraftHeads::init(arch, a.n_heads, blocks, *lm.model);
  FrozenBase base(*lm.model);
  fmt::print("training {} {} heads ({} blocks each) on {} sequences / {} positions: {} steps x {} sequences x {} "
             "positions\n", a.n_heads, a.arch, blocks, data.n_seqs(), data.rows(), a.train.steps, a.train.seqs_per_step,
             a.train.positions_per_seq);
  Progress bar("train " + a.arch, a.train.steps);
  double avg = 0;
  auto t0 = std::chrono::steady_clock::now();
  train_heads(heads, base, data, a.train, [&](int step, int, double loss) {
    avg = step == 0 ? loss : 0.9 * avg + 0.1 * loss;
    bar.advance();
    bar.set_note(fmt::format("loss {:.3f}", avg));
    if ((step + 1) % 25 == 0 || step == 0) fmt::print(stderr, "step {} loss {:.4f} (avg {:.4f})\n", step + 1, loss, avg);
  });
  bar.finish();
  heads.save(a.out);
  fmt::print("saved {} ({:.0f} s, final loss {:.3f})\n", a.out,
             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), avg);
  if (!a.heldout.empty()) print_accuracy(heads, base, data_from(a.heldout, lm, a), a.eval_positions);
}

static void run_eval(const HydraArgs& a) {
  LoadedModel lm = load_model(a.model);
  DraftHeads heads = DraftHeads::load(a.heads);
  heads.check_base(*lm.model);
  FrozenBase base(*lm.model);
  print_accuracy(heads, base, data_from(a.data, lm, a), a.eval_positions);
}

// The draft tree of --nodes nodes that the heads' rank accuracies on --data make most
// productive (DraftTree::optimal), beside mc-N of the same size under the same model.
static void run_tree(const HydraArgs& a) {
  LoadedModel lm = load_model(a.model);
  DraftHeads heads = DraftHeads::load(a.heads);
  heads.check_base(*lm.model);
  FrozenBase base(*lm.model);
  const auto accept = head_rank_accuracy(heads, base, data_from(a.data, lm, a), a.eval_positions, a.ranks);
  for (size_t i = 0; i < accept.size(); ++i) {
    std::string line = fmt::format("head{} accuracy by rank:", i);
    for (size_t r = 0; r < accept[i].size() && r < 6; ++r) line += fmt::format(" {:.3f}", accept[i][r]);
    fmt::print("{}{}\n", line, accept[i].size() > 6 ? " ..." : "");
  }
  const DraftTree tree = DraftTree::optimal(accept, a.tree_nodes);
  std::string text;
  for (const auto& p : tree.paths) text += format_path(p) + (&p == &tree.paths.back() ? "\n" : " ");
  fmt::print("{} tree of {} nodes, depth {}: expected {:.3f} tokens/step", head_arch_name(heads.arch), a.tree_nodes,
             tree.max_depth, expected_accepted(tree, accept));
  if (a.tree_nodes <= 63) {
    const std::string mc = fmt::format("mc-{}", a.tree_nodes);
    fmt::print(" ({} under the same model: {:.3f})", mc, expected_accepted(DraftTree::load(mc), accept));
  }
  fmt::print("\n");
  if (a.out.empty()) return (void)fmt::print("{}", text);
  std::ofstream out(a.out);
  out << text;
  IK_CHECK(out.good(), "cannot write {}", a.out);
  fmt::print("written: {} (use as --tree {})\n", a.out, a.out);
}

// ---- hydra bench ----------------------------------------------------------------------------------

struct BenchArgs {
  ModelFlags model;
  DeviceFlag device;
  std::vector<std::string> heads, trees = {"mc-15"};
  std::string prompts, csv;
  int n_prompts = 8, tokens = 64;
};

// Where speculative and plain output first differ (at plain's token j): the gap between the top
// two logits before token j, relative to max(1, |top|), from a prefill of the prompt and plain's
// first j tokens. A small gap is a near-tie, where batched and one-row passes may round apart.
static double top_two_gap(LoadedModel& lm, const DeviceFlag& device, const std::vector<int32_t>& prompt,
                          const std::vector<int32_t>& plain, int64_t j) {
  std::vector<int32_t> context = prompt;
  context.insert(context.end(), plain.begin(), plain.begin() + j);
  auto session = open_session(lm, device);
  session->set_context(context);
  std::vector<float> top = session->last_logits();
  std::partial_sort(top.begin(), top.begin() + 2, top.end(), std::greater<float>());
  return (top[0] - top[1]) / std::max(1.0f, std::fabs(top[0]));
}

// Plain decoding is timed again beside every variant, prompt by prompt, so that both see the
// same machine load (the machine is shared): the ratio is the figure to read.
static void run_bench(const BenchArgs& a) {
  LoadedModel lm = load_model(a.model);
  auto prompts = prompt_subset(a.prompts, a.n_prompts);
  std::vector<std::vector<int32_t>> ids;
  for (const auto& p : prompts)
    ids.push_back(lm.tokenizer.encode(lm.tokenizer.apply_chat_template({{"user", p}}, true), false, true));
  llm::GenerateOptions gen;
  gen.max_tokens = a.tokens;
  gen.stop_at_eos = false;  // same length for every variant
  gen.sampling.temperature = 0;
  llm::GpuLlama* gpu = gpu_model(lm, a.device);
  std::unique_ptr<GpuSpecBase> gpu_base;
  if (gpu) gpu_base = std::make_unique<GpuSpecBase>(*gpu);
  std::unique_ptr<CsvWriter> csv;
  if (!a.csv.empty())
    csv = std::make_unique<CsvWriter>(a.csv, std::vector<std::string>{"variant", "tree", "nodes", "tokens_per_step",
                                                                       "tok_s", "plain_tok_s", "speedup", "draft_ms", "verify_ms", "commit_ms",
                                                                       "identical", "prompts"});
  fmt::print("{} prompts x {} tokens, greedy, {} on {}\n", prompts.size(), a.tokens, lm.model->config().name,
             gpu ? gpu->device().name : std::string("the CPU"));
  fmt::print("{:<10} {:<14} {:>5} {:>12} {:>9} {:>11} {:>9} {:>17} {:>10}\n", "variant", "tree", "nodes",
             "tokens/step", "tok/s", "plain tok/s", "vs plain", "ms/step d/v/c", "identical");
  for (const auto& path : a.heads) {
    DraftHeads heads = DraftHeads::load(path);
    heads.check_base(*lm.model);
    std::unique_ptr<Drafter> drafter;
    if (gpu) drafter = std::make_unique<GpuHeadDrafter>(heads, *gpu);
    else drafter = std::make_unique<HeadDrafter>(heads, *lm.model, lm.ctx);
    for (const auto& tree_name : a.trees) {
      auto dec = gpu ? SpecDecoder(*gpu_base, *drafter, DraftTree::load(tree_name))
                     : SpecDecoder(*lm.model, *drafter, DraftTree::load(tree_name), lm.ctx);
      SpecOptions opt;
      opt.max_tokens = a.tokens;
      opt.stop_at_eos = false;
      opt.sampling.temperature = 0;
      double tokens = 0, secs = 0, steps = 0, plain_tokens = 0, plain_secs = 0, draft = 0, verify = 0, commit = 0;
      int same = 0;
      std::string diverged;  // where outputs first differ (token index), per differing prompt
      for (const auto& p : ids) {
        auto session = open_session(lm, a.device);  // fresh: the decoder shares the GPU's sequence 0
        session->set_context(p);
        auto plain = session->generate(gen);
        plain_tokens += double(plain.tokens.size());
        plain_secs += plain.decode_s;
        auto r = dec.generate(p, opt, {});
        const auto mism = std::mismatch(r.tokens.begin(), r.tokens.end(), plain.tokens.begin(), plain.tokens.end());
        if (r.tokens == plain.tokens) ++same;
        else diverged += fmt::format("{}{} (gap {:.3f})", diverged.empty() ? "" : ", ", mism.first - r.tokens.begin(),
                                     top_two_gap(lm, a.device, p, plain.tokens, mism.second - plain.tokens.begin()));
        tokens += double(r.tokens.size());
        secs += r.decode_s;
        steps += r.steps;
        draft += r.draft_s, verify += r.verify_s, commit += r.commit_s;
      }
      const double tok_s = tokens / secs, plain_tok_s = plain_tokens / plain_secs;
      const std::string identical = fmt::format("{}/{}", same, ids.size());
      const double ms = 1e3 / steps;
      fmt::print("{:<10} {:<14} {:>5} {:>12.2f} {:>9.2f} {:>11.2f} {:>9.2f} {:>6.3f}/{:.3f}/{:.3f} {:>10}{}\n",
                 head_arch_name(heads.arch), tree_name, dec.tree().n_nodes(), tokens / steps, tok_s, plain_tok_s,
                 tok_s / plain_tok_s, draft * ms, verify * ms, commit * ms, identical,
                 diverged.empty() ? "" : "  (first difference at token " + diverged + ")");
      std::fflush(stdout);
      if (csv) csv->add(head_arch_name(heads.arch), tree_name, dec.tree().n_nodes(), tokens / steps, tok_s, plain_tok_s,
                        tok_s / plain_tok_s, draft * ms, verify * ms, commit * ms, same, int(ids.size()));
    }
  }
}

// ---- registration ---------------------------------------------------------------------------------

static void add_data_flags(CLI::App* c, HydraArgs& a) {
  c->add_option("--answer-tokens", a.distill.answer_tokens, "greedy answer tokens per prompt")
      ->check(CLI::Range(4, 4096))->capture_default_str();
  c->add_option("--teacher-top-k", a.distill.top_k, "teacher probabilities kept per position")
      ->check(CLI::Range(1, 1024))->capture_default_str();
  c->add_option("--max-prompts", a.max_prompts, "use at most this many prompts (0: all)")->check(CLI::NonNegativeNumber);
}

static void add_hydra(CLI::App& app) {
  auto* g = app.add_subcommand("hydra", "Medusa / Hydra / Hydra++ draft heads: make data, train, evaluate, benchmark");
  g->require_subcommand(1);

  auto d = std::make_shared<HydraArgs>();
  auto* data = g->add_subcommand("data", "Self-distillation data: the base model answers a prompt file (one prompt "
                                 "a line, e.g. bench/spec/prompts_train.txt); saves hidden states and teacher top-k");
  d->model.add(data);
  data->add_option("--prompts", d->prompts, "prompt file")->required()->check(CLI::ExistingFile);
  data->add_option("-o,--out", d->out, "output data file (.gguf)")->required();
  add_data_flags(data, *d);
  data->callback([d] { run_data(*d); });

  auto t = std::make_shared<HydraArgs>();
  auto* train = g->add_subcommand("train", "Train draft heads on a frozen base model (teacher-distillation loss)");
  t->model.add(train);
  train->add_option("--arch", t->arch, "medusa, hydra or hydra++")
      ->check(CLI::IsMember({"medusa", "hydra", "hydra++"}))->capture_default_str();
  train->add_option("--data", t->data, "data from `hydra data` (.gguf) or a prompt file (data built first)")
      ->required()->check(CLI::ExistingFile);
  train->add_option("-o,--out", t->out, "output heads file (.gguf)")->required();
  train->add_option("--heads", t->n_heads, "number of heads")->check(CLI::Range(1, 8))->capture_default_str();
  train->add_option("--blocks", t->blocks, "blocks (layers) per head (0: 1, or 4 for hydra++)")->check(CLI::Range(0, 8));
  train->add_option("--steps", t->train.steps, "optimizer steps")->check(CLI::Range(1, 1000000))->capture_default_str();
  train->add_option("--seqs-per-step", t->train.seqs_per_step, "sequences per step")
      ->check(CLI::Range(1, 1024))->capture_default_str();
  train->add_option("--positions", t->train.positions_per_seq, "positions scored per sequence")
      ->check(CLI::Range(1, 4096))->capture_default_str();
  train->add_option("--lr", t->train.lr, "peak learning rate")->check(CLI::Range(1e-7, 1.0))->capture_default_str();
  train->add_option("--warmup", t->train.warmup, "warm-up steps")->check(CLI::NonNegativeNumber)->capture_default_str();
  train->add_option("--final-lr-ratio", t->train.final_lr_ratio, "cosine decay ends at this fraction of the peak")
      ->check(CLI::Range(0.0, 1.0))->capture_default_str();
  train->add_option("--weight-decay", t->train.weight_decay, "AdamW weight decay")
      ->check(CLI::Range(0.0, 10.0))->capture_default_str();
  train->add_option("--dropout", t->train.dropout, "dropout on the head inputs")
      ->check(CLI::Range(0.0, 0.95))->capture_default_str();
  train->add_option("--seed", t->train.seed, "random seed")->capture_default_str();
  train->add_option("--sampled-vocab", t->train.sampled_vocab, "loss over the teacher's top tokens plus this many "
                    "random tokens per step (sampled softmax; 0: the whole vocabulary, exact but ~20x slower)")
      ->check(CLI::Range(0, 1000000))->capture_default_str();
  train->add_option("--heldout", t->heldout, "held-out data (.gguf or prompts): print per-head top-1 accuracy")
      ->check(CLI::ExistingFile);
  add_data_flags(train, *t);
  train->callback([t] { run_train(*t); });

  auto e = std::make_shared<HydraArgs>();
  auto* ev = g->add_subcommand("eval", "Per-head top-1 accuracy of draft heads against the base model on held-out data");
  e->model.add(ev);
  ev->add_option("--heads", e->heads, "heads file")->required()->check(CLI::ExistingFile);
  ev->add_option("--data", e->data, "data from `hydra data` (.gguf) or a prompt file")->required()->check(CLI::ExistingFile);
  ev->add_option("--positions", e->eval_positions, "positions evaluated")->check(CLI::Range(1, 10000000))->capture_default_str();
  add_data_flags(ev, *e);
  ev->callback([e] { run_eval(*e); });

  auto tr = std::make_shared<HydraArgs>();
  auto* tree = g->add_subcommand("tree", "The draft tree that the heads' accuracy by rank on held-out data makes most "
                                 "productive (greedy by path probability, as Medusa builds its trees)");
  tr->model.add(tree);
  tree->add_option("--heads", tr->heads, "heads file")->required()->check(CLI::ExistingFile);
  tree->add_option("--data", tr->data, "data from `hydra data` (.gguf) or a prompt file")->required()->check(CLI::ExistingFile);
  tree->add_option("--nodes", tr->tree_nodes, "draft nodes (the root excluded)")->check(CLI::Range(1, 255))->capture_default_str();
  tree->add_option("--ranks", tr->ranks, "candidates considered per head")->check(CLI::Range(1, 32))->capture_default_str();
  tree->add_option("--positions", tr->eval_positions, "positions evaluated")->check(CLI::Range(1, 10000000))->capture_default_str();
  tree->add_option("-o,--out", tr->out, "write the tree here (paths, for --tree FILE); default: print it");
  add_data_flags(tree, *tr);
  tree->callback([tr] { run_tree(*tr); });

  auto b = std::make_shared<BenchArgs>();
  auto* bench = g->add_subcommand("bench", "Plain greedy vs speculative decoding with each heads file and tree, same prompts");
  b->model.add(bench);
  b->device.add(bench);
  bench->add_option("--heads", b->heads, "heads files (repeatable)")->required()->check(CLI::ExistingFile);
  bench->add_option("--tree", b->trees, "draft trees (repeatable; see generate --tree)")->capture_default_str();
  bench->add_option("--prompts", b->prompts, "prompt file (chat-templated)")->required()->check(CLI::ExistingFile);
  bench->add_option("--n-prompts", b->n_prompts, "prompts used")->check(CLI::Range(1, 100000))->capture_default_str();
  bench->add_option("--tokens", b->tokens, "tokens generated per prompt")->check(CLI::Range(1, 100000))->capture_default_str();
  bench->add_option("--csv", b->csv, "also write the table as CSV");
  bench->callback([b] { run_bench(*b); });
}

Register reg("hydra", add_hydra);

}  // namespace

}  // namespace ik::cli
