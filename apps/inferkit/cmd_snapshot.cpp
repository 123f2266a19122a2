// inferkit snapshot: infer an agent's goal, past and future from one snapshot (docs/snapshot.md).
//   snapshot        one query on a map: goal posterior (estimate and exact) and three PNGs
//   snapshot-bench  sample-efficiency table of the estimators against the exact solve
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fmt/format.h>
#include <optional>

#include "command.hpp"
#include "core/csv.hpp"
#include "core/error.hpp"
#include "core/plot.hpp"
#include "prob/snapshot/estimators.hpp"
#include "prob/snapshot/render.hpp"
#include "prob/snapshot/study.hpp"

namespace {

using namespace ik::snapshot;
using ik::agents::GridWorld;
using Clock = std::chrono::steady_clock;

const std::vector<std::string> estimator_names{"exact", "rejection", "backward", "backward-uniform", "bidirectional"};

std::string out_path(const std::string& dir, const std::string& name) {
  std::filesystem::create_directories(dir);
  return (std::filesystem::path(dir) / name).string();
}

std::pair<int, int> parse_at(const std::string& s) {
  int x = 0, y = 0;
  char comma = 0, extra = 0;
  IK_CHECK(std::sscanf(s.c_str(), "%d %c %d %c", &x, &comma, &y, &extra) == 3 && comma == ',',
           "--at expects X,Y (column and row, counted from 0 at the top left), got '{}'", s);
  return {x, y};
}

struct SnapshotArgs {
  std::string map, at, key = "any", estimator = "backward", out = "snapshot_out";
  int samples = 1000, futures = 40, horizon = 0;
  double gamma = 0.97, beta = 2.0, slip = 0.0;
  uint64_t seed = 1;
  bool png = true;
};

void print_ascii(const GridWorld& w, int x, int y) {
  for (int r = 0; r < w.map().height; ++r) {
    std::string row = w.map().rows[r];
    if (r == y) row[x] = '@';
    fmt::print("  {}\n", row);
  }
}

void run_snapshot(const SnapshotArgs& a) {
  ik::agents::GridOptions go;
  go.slip = a.slip;
  const GridWorld w(ik::agents::load_map(a.map), go);
  const auto [x, y] = parse_at(a.at);
  std::optional<bool> key;
  if (a.key != "any") key = a.key == "yes";
  const auto xs = w.snapshot_states(x, y, key);
  SnapshotOptions so;
  so.gamma = a.gamma;
  so.plan.beta = a.beta;
  const auto t_plan = Clock::now();
  const SnapshotModel m = make_grid_model(w, so);
  const double plan_s = std::chrono::duration<double>(Clock::now() - t_plan).count();

  const Estimator e = parse_estimator(a.estimator);
  ik::Rng rng(a.seed);
  const auto t0 = Clock::now();
  const Estimate est = estimate(m, xs, e, a.samples, rng);
  const double est_s = std::chrono::duration<double>(Clock::now() - t0).count();
  const Exact exact = exact_posterior(m, xs);

  fmt::print("map {} ({}x{}, {} goals, {} states), snapshot at ({},{}){}:\n", a.map, w.map().width,
             w.map().height, w.num_goals(), w.num_states(), x, y,
             key ? (*key ? " holding the key" : " without the key") : "");
  print_ascii(w, x, y);
  fmt::print("estimator {}, {} samples: {:.3f} ms (planning {:.1f} ms){}\n", a.estimator, a.samples, est_s * 1e3,
             plan_s * 1e3, est.informative ? "" : "; no sample saw the snapshot, posterior = prior");
  fmt::print("goal  posterior  exact\n");
  std::string summary;
  for (int g = 0; g < m.num_goals(); ++g) {
    fmt::print("{}     {:.4f}     {:.4f}\n", m.hypotheses().names[g], est.posterior[g], exact.posterior[g]);
    summary += fmt::format("{}{} {:.2f}", g ? ", " : "P(goal): ", m.hypotheses().names[g], est.posterior[g]);
  }
  fmt::print("total variation from exact: {:.4f}\n", total_variation(est.posterior, exact.posterior));
  if (!a.png) return;

  const auto map_png = out_path(a.out, "map.png");
  save_map_png(map_png, w, x, y, summary + fmt::format("  ({}, N={})", a.estimator, a.samples));
  // The past: exact when asked for, else from backward paths (the estimator of the question).
  const bool exact_past = e == Estimator::exact;
  const auto visits = exact_past ? exact_past_visits(m, xs) : backward_past_visits(m, xs, a.samples, rng);
  const auto past_png = out_path(a.out, "past.png");
  save_past_png(past_png, w, x, y, visits,
                exact_past ? "Where it came from (exact)" : fmt::format("Where it came from ({} backward paths)", a.samples));
  const int horizon = a.horizon > 0 ? a.horizon : 3 * (w.map().width + w.map().height);
  const auto futures = sample_futures(m, xs, est, a.futures, horizon, rng);
  const auto fut_png = out_path(a.out, "futures.png");
  save_futures_png(fut_png, w, x, y, futures, fmt::format("{} likely futures", a.futures));
  fmt::print("wrote {}, {}, {}\n", map_png, past_png, fut_png);
}

void add_snapshot(CLI::App& app) {
  auto a = std::make_shared<SnapshotArgs>();
  auto* c = app.add_subcommand("snapshot", "Infer an agent's goal, past and future from one snapshot of it on a map");
  c->footer(
      "Map characters: # wall, . floor, A-Z goals, s start (none: start anywhere on '.'), k key, d door.\n"
      "Example: inferkit snapshot --map data/worlds/maze3.txt --at 3,3 --samples 100");
  c->add_option("--map", a->map, "ASCII map file")->required()->check(CLI::ExistingFile);
  c->add_option("--at", a->at, "snapshot cell X,Y (column, row; 0,0 is the top-left character)")->required();
  c->add_option("--key", a->key, "does the agent hold the key in the snapshot?")
      ->check(CLI::IsMember({"yes", "no", "any"}))->capture_default_str();
  c->add_option("--samples,-n", a->samples, "paths per query (bidirectional: N backward + min(N, 100) forward)")
      ->check(CLI::Range(1, 100000000))->capture_default_str();
  c->add_option("--estimator", a->estimator, "exact | rejection | backward | backward-uniform | bidirectional")
      ->check(CLI::IsMember(estimator_names))->capture_default_str();
  c->add_option("--gamma", a->gamma, "snapshot-time prior P(t) = (1-gamma) gamma^t")
      ->check(CLI::Range(1e-6, 1 - 1e-9))->capture_default_str();
  c->add_option("--beta", a->beta, "agent rationality: pi ~ exp(beta Q)")->check(CLI::NonNegativeNumber)->capture_default_str();
  c->add_option("--slip", a->slip, "probability a move goes in a random direction")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  c->add_option("--futures", a->futures, "future paths to draw")->check(CLI::Range(1, 100000))->capture_default_str();
  c->add_option("--horizon", a->horizon, "longest future path (0: 3 x (width + height))")->check(CLI::Range(0, 1000000));
  c->add_option("--seed", a->seed, "random seed")->capture_default_str();
  c->add_option("--out", a->out, "folder for map.png, past.png, futures.png")->capture_default_str();
  c->add_flag("!--no-png", a->png, "only print the posterior");
  c->callback([a] { run_snapshot(*a); });
}

// ---- snapshot-bench ----------------------------------------------------------------------

struct BenchArgs {
  std::vector<std::string> maps{"data/worlds/maze3.txt", "data/worlds/room4.txt", "data/worlds/maze4_start.txt",
                                "data/worlds/door_key.txt"};
  int cells = 20, repeats = 20;
  uint64_t seed = 1;
  std::string out = "out/snapshot";
};

// N at which an estimator's error falls to `target`, by log-log interpolation of its rows.
double samples_to_reach(const std::vector<StudyRow>& rows, double target) {
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].mean_tv > target) continue;
    if (i == 0) return rows[0].samples;
    const double l0 = std::log(rows[i - 1].samples), l1 = std::log(rows[i].samples);
    const double e0 = std::log(rows[i - 1].mean_tv), e1 = std::log(rows[i].mean_tv);
    return std::exp(l0 + (std::log(target) - e0) / (e1 - e0) * (l1 - l0));
  }
  return NAN;
}

void run_bench(const BenchArgs& a) {
  StudyOptions o;
  o.maps = a.maps;
  o.cells_per_world = a.cells;
  o.repeats = a.repeats;
  o.seed = a.seed;
  const auto r = run_study(o);
  fmt::print("snapshot sample efficiency: mean total-variation error of P(goal | snapshot) vs the exact solve\n");
  fmt::print("{} worlds, {} snapshot cells, up to {} repeats per cell (fewer at large N)\n", r.worlds, r.cells,
             a.repeats);
  fmt::print("{:<17}", "estimator \\ N");
  for (int n : o.samples) fmt::print("{:>16}", n);
  fmt::print("\n");
  ik::CsvWriter csv(out_path(a.out, "efficiency.csv"),
                    {"estimator", "samples", "mean_tv", "se_tv", "uninformative", "seconds_per_query", "paths_per_second"});
  ik::LinePlot plot("Goal posterior error vs samples");
  plot.xlabel("samples per query").ylabel("mean total variation").xscale(ik::Scale::log10).yscale(ik::Scale::log10);
  for (Estimator e : o.estimators) {
    std::vector<StudyRow> rows;
    for (auto& row : r.rows)
      if (row.estimator == e) rows.push_back(row);
    fmt::print("{:<17}", estimator_name(e));
    std::vector<double> ns, tv, err;
    for (auto& row : rows) {
      fmt::print("{:>16}", fmt::format("{:.4f}±{:.4f}", row.mean_tv, row.se_tv));
      csv.add(estimator_name(e), row.samples, row.mean_tv, row.se_tv, row.uninformative, row.seconds_per_query,
              row.paths_per_second);
      ns.push_back(row.samples), tv.push_back(row.mean_tv), err.push_back(row.se_tv);
    }
    fmt::print("\n");
    auto& s = plot.add(estimator_name(e), ns, tv);
    s.markers = true;
    s.yerr = err;
  }
  plot.save_png(out_path(a.out, "efficiency.png"));

  // Speed, and the cost of matching rejection's error at N = 1000.
  double target = NAN, baseline_ms = NAN;
  for (auto& row : r.rows)
    if (row.estimator == Estimator::rejection && row.samples == 1000)
      target = row.mean_tv, baseline_ms = 1e3 * row.seconds_per_query;
  fmt::print("\nspeed (one thread) and the time to reach rejection's error at N=1000 (TV {:.4f}):\n", target);
  fmt::print("{:<17}{:>14}{:>16}{:>14}{:>18}{:>22}\n", "estimator", "paths/s", "ms/query@1000", "N to match",
             "ms/query to match", "speedup vs rejection");
  for (Estimator e : o.estimators) {
    std::vector<StudyRow> rows;
    for (auto& row : r.rows)
      if (row.estimator == e) rows.push_back(row);
    const auto& last = rows.back();
    const double n = samples_to_reach(rows, target);
    // Time per query grows linearly with N for all but bidirectional (N^2 merges): interpolate.
    double ms = NAN;
    for (size_t i = 0; i < rows.size() && std::isfinite(n); ++i)
      if (rows[i].samples >= n) {
        ms = 1e3 * (i == 0 ? rows[0].seconds_per_query
                           : rows[i - 1].seconds_per_query + (n - rows[i - 1].samples) /
                                 (rows[i].samples - rows[i - 1].samples) *
                                 (rows[i].seconds_per_query - rows[i - 1].seconds_per_query));
        break;
      }
    fmt::print("{:<17}{:>14.3g}{:>16.4f}{:>14}{:>18}{:>22}\n", estimator_name(e), last.paths_per_second,
               1e3 * last.seconds_per_query, std::isfinite(n) ? fmt::format("{:.1f}", n) : "> 1000",
               std::isfinite(ms) ? fmt::format("{:.4f}", ms) : "-",
               std::isfinite(ms) ? fmt::format("{:.1f}x", baseline_ms / ms) : "-");
  }
  fmt::print("wrote {}/efficiency.csv and efficiency.png\n", a.out);
}

void add_bench(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  auto* c = app.add_subcommand("snapshot-bench",
                               "Sample-efficiency table of the snapshot estimators against the exact solve");
  c->footer("Run from the repository root (default maps are data/worlds/*.txt).");
  c->add_option("--maps", a->maps, "map files")->check(CLI::ExistingFile)->capture_default_str();
  c->add_option("--cells", a->cells, "snapshot cells per world")->check(CLI::Range(1, 100000))->capture_default_str();
  c->add_option("--repeats", a->repeats, "independent runs per cell and N")->check(CLI::Range(1, 100000))->capture_default_str();
  c->add_option("--seed", a->seed, "random seed")->capture_default_str();
  c->add_option("--out", a->out, "folder for efficiency.csv and efficiency.png")->capture_default_str();
  c->callback([a] { run_bench(*a); });
}

ik::cli::Register reg("snapshot", add_snapshot);
ik::cli::Register reg_bench("snapshot-bench", add_bench);

}  // namespace
