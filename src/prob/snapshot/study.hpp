#pragma once
// Sample-efficiency study: mean total-variation error of the goal posterior against the
// exact solve, per estimator and sample count, over many snapshot cells in several worlds;
// plus speed (paths/s, time per query) and the time each estimator needs to match the error
// that rejection reaches with 1000 samples.
#include <string>
#include <vector>

#include "prob/snapshot/estimators.hpp"

namespace ik::snapshot {

struct StudyOptions {
  std::vector<std::string> maps;          // map files
  int cells_per_world = 20;               // snapshot cells per world ('.' cells, evenly spread)
  std::vector<int> samples{1, 3, 10, 30, 100, 1000};
  std::vector<Estimator> estimators{Estimator::rejection, Estimator::backward_uniform, Estimator::backward,
                                    Estimator::bidirectional};
  int repeats = 20;                       // independent runs per cell and N (fewer at large N, see cpp)
  uint64_t seed = 1;
  bool progress = true;                   // progress bar on stderr
  SnapshotOptions snapshot;
};

struct StudyRow {
  Estimator estimator;
  int samples = 0;
  double mean_tv = 0, se_tv = 0;      // over cells x repeats
  double uninformative = 0;           // fraction of queries where no sample saw the snapshot
  double seconds_per_query = 0;
  double paths_per_second = 0;
};

struct StudyResult {
  int worlds = 0, cells = 0;
  std::vector<StudyRow> rows;
};

StudyResult run_study(const StudyOptions& opt);

}  // namespace ik::snapshot
