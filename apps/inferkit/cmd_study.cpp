// inferkit study downscale: prune a model at a sweep of sparsities with each method and
// measure fact recall (closed-book QA) against in-context processing (open-book and
// overriding QA, in-context function learning), after Jin et al. 2023.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fmt/format.h>
#include <map>
#include <optional>
#include <ranges>

#include "command.hpp"
#include "core/csv.hpp"
#include "core/error.hpp"
#include "core/plot.hpp"
#include "core/progress.hpp"
#include "llm/eval/perplexity.hpp"
#include "llm/eval/tasks.hpp"
#include "llm/model/llama_gpu.hpp"
#include "llm/prune/model_prune.hpp"
#include "llm_common.hpp"

namespace ik::cli {

std::string read_text_file(const std::string& path);  // cmd_generate.cpp

struct StudyArgs {
  ModelFlags model;
  DeviceFlag device{"cpu"};  // where the items are evaluated (pruning and perplexity stay on the CPU)
  std::vector<std::string> methods = {"magnitude", "wanda", "sparsegpt"};
  std::vector<double> sparsities = {0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};
  std::vector<std::string> families;
  std::string only = "all", qa = std::string(IK_SOURCE_DIR) + "/data/qa/facts.tsv", out_dir = "downscale";
  std::string calib = llm::prune::kDefaultCalibText, ppl_text = "/usr/share/common-licenses/GFDL-1.3";
  int64_t limit = 0, calib_windows = 8, calib_window = 256, ppl_windows = 8;
  uint64_t seed = 1;
  int fn_dims = 4, fn_exemplars = 16;
  bool resume = false;
};

struct Row {
  std::string method;
  double sparsity;
  llm::eval::FamilyResult result;
  double ppl, seconds;
};

static const std::vector<std::string> kCsvHeader = {"method", "only",    "sparsity", "family", "n",
                                                     "correct", "accuracy", "ppl",      "seconds"};

// Rows of an earlier run of the same sweep (--resume): only those of this --only and of the
// requested families; the item set is the caller's to keep the same (same --limit and --seed).
static std::vector<Row> earlier_rows(const std::string& path, const StudyArgs& a,
                                     const std::vector<std::string>& families) {
  std::vector<Row> rows;
  if (!std::filesystem::is_regular_file(path)) return rows;
  for (const auto& c : read_csv(path, kCsvHeader)) {
    if (c[1] != a.only || std::find(families.begin(), families.end(), c[3]) == families.end()) continue;
    try {
      rows.push_back({c[0], std::stod(c[2]), {c[3], std::stoll(c[4]), std::stoll(c[5])}, std::stod(c[7]),
                      std::stod(c[8])});
    } catch (const std::exception&) {
      fail("{}: a malformed row for {} at sparsity {}", path, c[0], c[2]);
    }
  }
  return rows;
}

// The rows of (method, sparsity) if every family has one, else none.
static std::vector<Row> rows_of(const std::vector<Row>& rows, const std::string& method, double s,
                                const std::vector<std::string>& families) {
  std::vector<Row> got;
  for (const auto& f : families)
    for (const Row& r : rows)
      if (r.method == method && std::abs(r.sparsity - s) < 1e-9 && r.result.family == f) {
        got.push_back(r);
        break;
      }
  return got.size() == families.size() ? got : std::vector<Row>{};
}

static void add_row(CsvWriter& csv, const std::string& only, const Row& r) {
  csv.add(r.method, only, r.sparsity, r.result.family, r.result.n, r.result.correct, r.result.accuracy(), r.ppl,
          r.seconds);
}

static double perplexity_of(llm::LlamaModel& model, const std::vector<int32_t>& tokens, int64_t windows) {
  if (tokens.empty()) return std::nan("");
  llm::PerplexityOptions o;
  o.max_windows = windows;
  o.progress = false;
  return llm::perplexity(model, tokens, 256, o).ppl;
}

// Largest sparsity s such that every swept sparsity up to s keeps accuracy >= 95% of dense.
static double robust_sparsity(const std::vector<Row>& rows, const std::string& method, const std::string& family) {
  std::vector<std::pair<double, double>> pts;
  for (const Row& r : rows)
    if (r.method == method && r.result.family == family) pts.push_back({r.sparsity, r.result.accuracy()});
  std::sort(pts.begin(), pts.end());
  if (pts.empty() || pts[0].first != 0) return std::nan("");
  double best = 0;
  for (const auto& [s, acc] : pts) {
    if (acc < 0.95 * pts[0].second) break;
    best = s;
  }
  return best;
}

static void save_plots(const std::vector<Row>& rows, const StudyArgs& a) {
  for (const auto& method : a.methods) {
    LinePlot p(fmt::format("Down-scaling by {} pruning ({})", method, a.only));
    p.xlabel("sparsity").ylabel("exact-match accuracy").xrange(0, 1).yrange(0, 1);
    for (const auto& fam : llm::eval::families()) {
      std::vector<double> x, y;
      for (const Row& r : rows)
        if (r.method == method && r.result.family == fam) x.push_back(r.sparsity), y.push_back(r.result.accuracy());
      if (x.empty()) continue;
      auto& s = p.add(fam, x, y);
      s.markers = true;
      s.dashed = fam.rfind("icl_", 0) == 0;
    }
    p.hline(0.5, "chance (icl)");
    const std::string path = fmt::format("{}/downscale_{}_{}.png", a.out_dir, method, a.only);
    p.save_png(path);
    fmt::print("wrote {}\n", path);
  }
}

// The items on the GPU when the device flag selects it (the pruned weights uploaded afresh for
// each point, as bf16), else on the CPU engine.
static std::vector<llm::eval::FamilyResult> evaluate_on(const DeviceFlag& device, bool on_gpu, llm::LlamaModel& model,
                                                        const llm::Tokenizer& tok,
                                                        const std::vector<llm::eval::EvalItem>& items,
                                                        const llm::eval::EvalOptions& eo) {
  if (!on_gpu) return llm::eval::evaluate(model, tok, items, eo);
  llm::GpuOptions opt;
  opt.device = device.ordinal;
  opt.n_ctx = eo.ctx;
  auto gpu = llm::GpuLlama::upload(model, opt);
  llm::Session session(llm::make_gpu_sequence(*gpu), tok);
  return llm::eval::evaluate(session, tok, items, eo);
}

static void run_downscale(const StudyArgs& a) {
  using namespace llm::prune;
  namespace ev = llm::eval;
  for (double s : a.sparsities) check_pattern(Pattern{s}, 1);
  const bool on_gpu = a.device.use_cuda();  // before the long set-up: --device cuda without a GPU fails now
  std::vector<Method> methods;
  for (const auto& m : a.methods) methods.push_back(method_from_name(m));
  const Only only = only_from_name(a.only);
  const auto facts = ev::load_qa(a.qa);
  ev::SuiteOptions so;
  so.limit = a.limit;
  so.seed = a.seed;
  so.fn_dims = a.fn_dims;
  so.fn_exemplars = a.fn_exemplars;
  const auto items = ev::build_suite(facts, so, a.families);
  std::filesystem::create_directories(a.out_dir);

  LoadedModel lm = load_model(a.model);
  llm::LlamaModel& model = *lm.model;
  const bool need_hessian = std::count(methods.begin(), methods.end(), Method::sparsegpt) > 0;
  const bool need_norms = need_hessian || std::count(methods.begin(), methods.end(), Method::wanda) > 0;
  std::optional<Calibration> calib;
  if (need_norms)
    calib = calibrate_from_text(model, lm.tokenizer, a.calib, a.calib_window, a.calib_windows, need_hessian);
  std::vector<int32_t> ppl_tokens;
  if (a.ppl_windows > 0 && std::filesystem::is_regular_file(a.ppl_text))
    ppl_tokens = lm.tokenizer.encode(read_text_file(a.ppl_text), false, false);
  fmt::print(stderr, "{} items ({} per family), {} methods x {} sparsities, {} matrices pruned\n", items.size(),
             a.limit > 0 ? fmt::format("{}", a.limit) : std::string("all"), methods.size(), a.sparsities.size(),
             a.only);

  const WeightBackup dense(model);
  std::vector<std::string> fams;  // the families of the items, in families() order
  for (const auto& f : ev::families())
    if (std::any_of(items.begin(), items.end(), [&](const ev::EvalItem& it) { return it.family == f; }))
      fams.push_back(f);
  const std::string csv_path = a.out_dir + "/downscale_" + a.only + ".csv";
  const std::vector<Row> earlier = a.resume ? earlier_rows(csv_path, a, fams) : std::vector<Row>{};
  std::vector<Row> rows;
  std::optional<std::vector<Row>> dense_rows;  // sparsity 0 is the same model for every method
  for (const auto& m : a.methods)
    if (auto got = rows_of(earlier, m, 0, fams); !got.empty() && !dense_rows) dense_rows = got;
  CsvWriter csv(csv_path, kCsvHeader);
  for (const Row& r : earlier) add_row(csv, a.only, r);  // kept first: a run killed again loses none
  const auto t_all = std::chrono::steady_clock::now();
  Progress overall("downscale sweep", methods.size() * a.sparsities.size());
  for (Method m : methods) {
    for (double s : a.sparsities) {
      const auto t0 = std::chrono::steady_clock::now();
      std::vector<Row> got = rows_of(earlier, method_name(m), s, fams);
      const bool kept = !got.empty();
      if (kept) {
        fmt::print(stderr, "{} {:.2f}: kept from the earlier run\n", method_name(m), s);
      } else if (s == 0 && dense_rows) {
        got = *dense_rows;
      } else {
        if (s > 0) prune_model(model, m, Pattern{s}, only, calib ? &*calib : nullptr, false);
        ev::EvalOptions eo;
        eo.ctx = std::min<int64_t>(lm.ctx, 2048);
        eo.label = fmt::format("{} {:.2f}", method_name(m), s);
        const auto res = evaluate_on(a.device, on_gpu, model, lm.tokenizer, items, eo);
        const double ppl = perplexity_of(model, ppl_tokens, a.ppl_windows);
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        for (const auto& r : res) got.push_back({method_name(m), s, r, ppl, secs});
        dense.restore(model);
        if (s == 0) dense_rows = got;
      }
      for (Row& r : got) {
        r.method = method_name(m);
        if (!kept) add_row(csv, a.only, r);
        rows.push_back(r);
      }
      overall.set_note(fmt::format("{} {:.2f}: {}", method_name(m), s,
                                   fmt::join(got | std::views::transform([](const Row& r) {
                                               return fmt::format("{:.2f}", r.result.accuracy());
                                             }),
                                             " ")));
      overall.advance();
    }
  }
  overall.finish();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_all).count();
  fmt::print("wrote {}/downscale_{}.csv (sweep {})\n", a.out_dir, a.only, format_duration(wall));
  save_plots(rows, a);

  // Accuracy table and the paper's criterion per family.
  fmt::print("\n{:<10} {:>8} {:>8}", "method", "sparsity", "ppl");
  for (const auto& f : fams) fmt::print(" {:>11}", f);
  fmt::print("\n");
  for (const auto& m : a.methods)
    for (double s : a.sparsities) {
      auto first = std::find_if(rows.begin(), rows.end(), [&](const Row& r) { return r.method == m && r.sparsity == s; });
      if (first == rows.end()) continue;
      fmt::print("{:<10} {:>8.2f} {:>8.2f}", m, s, first->ppl);
      for (const auto& f : fams)
        for (const Row& r : rows)
          if (r.method == m && r.sparsity == s && r.result.family == f)
            fmt::print(" {:>5.3f} ({:>3})", r.result.accuracy(), r.result.n);
      fmt::print("\n");
    }
  if (std::find(a.sparsities.begin(), a.sparsities.end(), 0.0) == a.sparsities.end()) {
    fmt::print("\n(the 5% criterion needs the dense accuracy: add sparsity 0 to the sweep)\n");
    return;
  }
  fmt::print("\nlargest sparsity within 5% (relative) of dense accuracy, per family:\n");
  for (const auto& m : a.methods) {
    fmt::print("  {:<10}", m);
    for (const auto& f : fams) fmt::print(" {}={:.2f}", f, robust_sparsity(rows, m, f));
    fmt::print("\n");
  }
}

static void add_downscale(CLI::App* study) {
  auto a = std::make_shared<StudyArgs>();
  auto* c = study->add_subcommand("downscale", "Accuracy of fact recall vs in-context tasks under pruning sweeps");
  a->model.add(c);
  a->device.add(c);
  c->add_option("--methods", a->methods, "pruning methods (comma-separated)")
      ->delimiter(',')
      ->check(CLI::IsMember({"magnitude", "wanda", "sparsegpt"}))
      ->capture_default_str();
  c->add_option("--sparsities", a->sparsities, "sparsities in [0, 1) (comma-separated)")
      ->delimiter(',')
      ->check(CLI::Range(0.0, 0.999999))
      ->capture_default_str();
  c->add_option("--families", a->families, "task families (default: all of closed_book, open_book, overriding, "
                                           "icl_linear, icl_mlp, icl_tree)")
      ->delimiter(',');
  c->add_option("--only", a->only, "which matrices to prune: all | attn | mlp")
      ->check(CLI::IsMember({"all", "attn", "mlp"}))
      ->capture_default_str();
  c->add_option("--limit", a->limit, "items per family (0: all QA facts, 200 function prompts per kind)")
      ->check(CLI::NonNegativeNumber);
  c->add_option("--fn-dims", a->fn_dims, "input dimension of the function-learning tasks")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  c->add_option("--fn-exemplars", a->fn_exemplars, "labelled exemplars per function-learning prompt")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  c->add_option("--qa", a->qa, "QA facts file (TSV)")->capture_default_str();
  c->add_option("--calib", a->calib, "calibration text for wanda/sparsegpt")->capture_default_str();
  c->add_option("--calib-windows", a->calib_windows, "calibration windows")->check(CLI::Range(1, 4096))->capture_default_str();
  c->add_option("--calib-window", a->calib_window, "tokens per calibration window")
      ->check(CLI::Range(16, 1 << 16))
      ->capture_default_str();
  c->add_option("--ppl-text", a->ppl_text, "text for perplexity (256-token windows; skipped if missing)")
      ->capture_default_str();
  c->add_option("--ppl-windows", a->ppl_windows, "perplexity windows (0: no perplexity)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  c->add_option("--seed", a->seed, "seed for the item sample and the function tasks")->capture_default_str();
  c->add_option("-o,--out-dir", a->out_dir, "folder for the CSV and PNG files")->capture_default_str();
  c->add_flag("--resume", a->resume,
              "keep the points of an earlier, interrupted run found in the CSV (same --limit, --seed and --fn-* options) and "
              "compute only the missing ones");
  c->callback([a] { run_downscale(*a); });
}

static void add_study(CLI::App& app) {
  auto* study = app.add_subcommand("study", "Studies that sweep a model transformation and measure it");
  study->require_subcommand(1);
  add_downscale(study);
}

static Register reg("study", add_study);

}  // namespace ik::cli
