#include "prob/snapshot/study.hpp"

#include <chrono>
#include <cmath>

#include "core/error.hpp"
#include "core/progress.hpp"

namespace ik::snapshot {

namespace {

struct Query {
  const SnapshotModel* model;
  std::vector<int> states;
  std::vector<double> exact;
};

// Up to `count` '.' cells spread evenly over the map in reading order.
std::vector<std::pair<int, int>> pick_cells(const agents::GridWorld& w, int count) {
  std::vector<std::pair<int, int>> floor;
  for (int y = 0; y < w.map().height; ++y)
    for (int x = 0; x < w.map().width; ++x)
      if (w.map().at(x, y) == '.') floor.push_back({x, y});
  std::vector<std::pair<int, int>> out;
  const int n = std::min<int>(count, floor.size());
  for (int i = 0; i < n; ++i) out.push_back(floor[size_t(i) * floor.size() / n]);
  return out;
}

}  // namespace

StudyResult run_study(const StudyOptions& opt) {
  IK_CHECK(!opt.maps.empty(), "study needs at least one map");
  std::vector<agents::GridWorld> worlds;
  for (auto& path : opt.maps) worlds.emplace_back(agents::load_map(path));
  std::vector<SnapshotModel> models;
  for (auto& w : worlds) models.push_back(make_grid_model(w, opt.snapshot));

  std::vector<Query> queries;
  for (size_t k = 0; k < worlds.size(); ++k) {
    std::vector<std::vector<double>> rho;
    for (int g = 0; g < models[k].num_goals(); ++g) rho.push_back(exact_occupancy(models[k], g));
    for (auto [x, y] : pick_cells(worlds[k], opt.cells_per_world)) {
      auto xs = worlds[k].snapshot_states(x, y);
      double reach = 0;
      for (int g = 0; g < models[k].num_goals(); ++g)
        for (int s : xs) reach += rho[g][s];
      if (reach <= 0) continue;  // a cell the agent never visits
      queries.push_back({&models[k], xs, exact_posterior(models[k], rho, xs).posterior});
    }
  }
  StudyResult result;
  result.worlds = static_cast<int>(worlds.size());
  result.cells = static_cast<int>(queries.size());

  Progress bar("snapshot study", long(opt.estimators.size() * opt.samples.size()), opt.progress);
  for (Estimator e : opt.estimators) {
    for (int n : opt.samples) {
      // Keep the total work per (estimator, N) bounded: fewer repeats at large N.
      const int repeats = std::max(3, std::min(opt.repeats, int(opt.repeats * 100 / std::max(n, 1))));
      Rng rng(opt.seed, uint64_t(e) * 1000003 + n);
      double sum = 0, sum2 = 0, blank = 0, paths = 0;
      const auto start = std::chrono::steady_clock::now();
      for (auto& q : queries)
        for (int r = 0; r < repeats; ++r) {
          const auto est = estimate(*q.model, q.states, e, n, rng);
          const double tv = total_variation(est.posterior, q.exact);
          sum += tv, sum2 += tv * tv, blank += !est.informative, paths += est.paths;
        }
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double count = double(queries.size()) * repeats;
      StudyRow row;
      row.estimator = e;
      row.samples = n;
      row.mean_tv = sum / count;
      row.se_tv = std::sqrt(std::max(0.0, sum2 / count - row.mean_tv * row.mean_tv) / count);
      row.uninformative = blank / count;
      row.seconds_per_query = secs / count;
      row.paths_per_second = paths / std::max(secs, 1e-12);
      result.rows.push_back(row);
      bar.advance();
    }
  }
  bar.finish();
  return result;
}

}  // namespace ik::snapshot
