#pragma once
// PNG figures of a snapshot query: the map with the snapshot, a heat map of where the agent
// probably came from, and sampled likely futures.
#include <string>
#include <vector>

#include "prob/agents/gridworld.hpp"
#include "prob/snapshot/estimators.hpp"

namespace ik::snapshot {

// Map with walls, floor, goals (coloured letters), start cells, key, door and a red ring on
// the snapshot cell; `subtitle` goes under the title (e.g. the goal posterior).
void save_map_png(const std::string& path, const agents::GridWorld& w, int x, int y, const std::string& subtitle);
// Expected visits per cell before the snapshot (summed over key states), as a heat map.
void save_past_png(const std::string& path, const agents::GridWorld& w, int x, int y,
                   const std::vector<double>& visits_per_state, const std::string& title);
// Future paths drawn over the map, coloured by the goal each was sampled with.
void save_futures_png(const std::string& path, const agents::GridWorld& w, int x, int y,
                      const std::vector<Future>& futures, const std::string& title);

}  // namespace ik::snapshot
