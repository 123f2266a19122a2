#pragma once
// Gridworlds from ASCII maps. A map is a rectangle of characters:
//   #  wall            .  floor          A-Z  a goal (named by its letter, one cell each)
//   s  start cell (none: the agent starts uniformly on any '.' cell)
//   k  key (walking onto it picks it up)   d  door (passable only while holding the key)
// The agent's state is its cell plus, when the map has a key, whether it holds the key.
// Moves are N, S, E, W (and optionally STAY); with probability `slip` a move goes in a
// uniformly random direction instead. Bumping into a wall or a locked door stays put.
#include <optional>
#include <string>
#include <vector>

#include "prob/agents/mdp.hpp"

namespace ik::agents {

struct Goal {
  char name = 'A';
  int x = 0, y = 0;
};

struct WorldMap {
  std::string source;  // file name, for messages
  int width = 0, height = 0;
  std::vector<std::string> rows;
  std::vector<Goal> goals;                     // in the order they appear (row-major)
  std::vector<std::pair<int, int>> starts;     // 's' cells, (x, y)
  bool has_key = false;

  bool inside(int x, int y) const { return x >= 0 && y >= 0 && x < width && y < height; }
  char at(int x, int y) const { return rows[y][x]; }
};

// Throws ik::Error naming the line and column (1-based) of the first problem.
WorldMap parse_map(const std::string& text, const std::string& source = "<map>");
WorldMap load_map(const std::string& path);

struct GridOptions {
  double slip = 0.0;       // probability that a move goes in a random direction
  double move_cost = 1.0;  // reward -move_cost per action
  bool allow_stay = false;
};

// A reward hypothesis: which goals end the episode and what reaching each is worth.
struct RewardHypothesis {
  std::string name;
  std::vector<std::pair<int, double>> goal_rewards;  // (goal index, reward)
  double prior = 1.0;
};

enum Action { north = 0, south = 1, east = 2, west = 3, stay = 4 };

class GridWorld {
 public:
  // Validates the map: at least one goal, every goal reachable from the start cells.
  explicit GridWorld(WorldMap map, GridOptions opt = {});

  const WorldMap& map() const { return map_; }
  const GridOptions& options() const { return opt_; }
  int num_states() const { return static_cast<int>(cells_.size()) * key_states(); }
  int num_actions() const { return opt_.allow_stay ? 5 : 4; }
  int num_goals() const { return static_cast<int>(map_.goals.size()); }
  int key_states() const { return map_.has_key ? 2 : 1; }

  int state(int x, int y, bool key = false) const;  // -1 when (x, y) is not walkable
  int x_of(int s) const { return cells_[s / key_states()].first; }
  int y_of(int s) const { return cells_[s / key_states()].second; }
  bool key_of(int s) const { return map_.has_key && s % 2 == 1; }
  int goal_state(int g, bool key = false) const { return state(map_.goals[g].x, map_.goals[g].y, key); }

  // States matching a snapshot of the cell (x, y) and, if given, the key; throws a clear
  // error when (x, y) is outside the map or a wall.
  std::vector<int> snapshot_states(int x, int y, std::optional<bool> key = std::nullopt) const;
  std::vector<double> start_distribution() const;  // P_0 over states
  std::vector<RewardHypothesis> goal_hypotheses() const;  // one per goal, uniform prior
  Mdp mdp(const RewardHypothesis& h) const;
  // Where `action` from state s ends when it does not slip.
  int move(int s, int action) const;

 private:
  void check_goals_reachable() const;
  WorldMap map_;
  GridOptions opt_;
  std::vector<std::pair<int, int>> cells_;  // walkable cells
  std::vector<int> cell_index_;             // per map position, -1 for walls
};

}  // namespace ik::agents
