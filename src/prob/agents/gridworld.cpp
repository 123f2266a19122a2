#include "prob/agents/gridworld.hpp"

#include <fstream>
#include <queue>
#include <sstream>

#include "core/error.hpp"

namespace ik::agents {

WorldMap parse_map(const std::string& text, const std::string& source) {
  WorldMap m;
  m.source = source;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    m.rows.push_back(line);
  }
  while (!m.rows.empty() && m.rows.back().empty()) m.rows.pop_back();
  IK_CHECK(!m.rows.empty(), "map '{}' is empty", source);
  m.height = static_cast<int>(m.rows.size());
  m.width = static_cast<int>(m.rows[0].size());
  for (int y = 0; y < m.height; ++y) {
    const auto& row = m.rows[y];
    IK_CHECK(static_cast<int>(row.size()) == m.width,
             "map '{}' line {}: row has {} columns, expected {} like line 1 (rows must be equal length)",
             source, y + 1, row.size(), m.width);
    for (int x = 0; x < m.width; ++x) {
      const char c = row[x];
      if (c >= 'A' && c <= 'Z') {
        for (auto& g : m.goals)
          IK_CHECK(g.name != c, "map '{}' line {}, column {}: goal '{}' appears twice (first at line {}, column {})",
                   source, y + 1, x + 1, c, g.y + 1, g.x + 1);
        m.goals.push_back({c, x, y});
      } else if (c == 's') {
        m.starts.push_back({x, y});
      } else if (c == 'k') {
        IK_CHECK(!m.has_key, "map '{}' line {}, column {}: only one key 'k' is supported", source, y + 1, x + 1);
        m.has_key = true;
      } else if (c != '#' && c != '.' && c != 'd') {
        fail("map '{}' line {}, column {}: unknown character '{}' (expected # . s k d or a goal A-Z)", source,
             y + 1, x + 1, c);
      }
    }
  }
  IK_CHECK(!m.goals.empty(), "map '{}' has no goals (mark goals with letters A-Z)", source);
  return m;
}

WorldMap load_map(const std::string& path) {
  std::ifstream f(path);
  IK_CHECK(f.good(), "cannot read map '{}'", path);
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_map(ss.str(), path);
}

GridWorld::GridWorld(WorldMap map, GridOptions opt) : map_(std::move(map)), opt_(opt) {
  IK_CHECK(opt_.slip >= 0 && opt_.slip <= 1, "slip must be in [0, 1], got {}", opt_.slip);
  IK_CHECK(!map_.goals.empty(), "map '{}' has no goals", map_.source);
  cell_index_.assign(size_t(map_.width) * map_.height, -1);
  for (int y = 0; y < map_.height; ++y)
    for (int x = 0; x < map_.width; ++x)
      if (map_.at(x, y) != '#') {
        cell_index_[size_t(y) * map_.width + x] = static_cast<int>(cells_.size());
        cells_.push_back({x, y});
      }
  check_goals_reachable();
}

int GridWorld::state(int x, int y, bool key) const {
  if (!map_.inside(x, y)) return -1;
  const int c = cell_index_[size_t(y) * map_.width + x];
  if (c < 0) return -1;
  return c * key_states() + (map_.has_key && key ? 1 : 0);
}

int GridWorld::move(int s, int action) const {
  static const int dx[] = {0, 0, 1, -1, 0}, dy[] = {-1, 1, 0, 0, 0};
  const int x = x_of(s) + dx[action], y = y_of(s) + dy[action];
  bool key = key_of(s);
  if (!map_.inside(x, y)) return s;
  const char c = map_.at(x, y);
  if (c == '#' || (c == 'd' && !key)) return s;
  if (c == 'k') key = true;
  return state(x, y, key);
}

void GridWorld::check_goals_reachable() const {
  std::vector<char> seen(num_states(), 0);
  std::queue<int> todo;
  const auto p0 = start_distribution();
  for (int s = 0; s < num_states(); ++s) {
    if (!p0[s]) continue;
    seen[s] = 1;
    todo.push(s);
  }
  IK_CHECK(!todo.empty(), "map '{}' has no start cell and no '.' floor to start on", map_.source);
  while (!todo.empty()) {
    const int s = todo.front();
    todo.pop();
    for (int a = 0; a < 4; ++a) {
      const int n = move(s, a);
      if (!seen[n]) seen[n] = 1, todo.push(n);
    }
  }
  for (int g = 0; g < num_goals(); ++g) {
    const bool reached = seen[goal_state(g, false)] || (map_.has_key && seen[goal_state(g, true)]);
    IK_CHECK(reached, "map '{}' line {}, column {}: goal {} cannot be reached from the start", map_.source,
             map_.goals[g].y + 1, map_.goals[g].x + 1, map_.goals[g].name);
  }
}

std::vector<int> GridWorld::snapshot_states(int x, int y, std::optional<bool> key) const {
  IK_CHECK(map_.inside(x, y), "snapshot ({},{}) is outside the {}x{} map '{}' (x is the column, y the row, from 0)",
           x, y, map_.width, map_.height, map_.source);
  IK_CHECK(map_.at(x, y) != '#', "snapshot ({},{}) is on a wall in map '{}'", x, y, map_.source);
  IK_CHECK(!key || map_.has_key || !*key, "snapshot says the agent holds a key, but map '{}' has no key",
           map_.source);
  std::vector<int> out;
  for (int k = 0; k < key_states(); ++k)
    if (!key || *key == (k == 1)) out.push_back(state(x, y, k == 1));
  return out;
}

std::vector<double> GridWorld::start_distribution() const {
  std::vector<double> p0(num_states(), 0.0);
  double n = 0;
  auto add = [&](int x, int y) { p0[state(x, y, false)] = 1, n += 1; };
  if (!map_.starts.empty()) {
    for (auto [x, y] : map_.starts) add(x, y);
  } else {
    for (auto [x, y] : cells_)
      if (map_.at(x, y) == '.') add(x, y);
  }
  for (auto& p : p0) p /= (n > 0 ? n : 1);
  return p0;
}

std::vector<RewardHypothesis> GridWorld::goal_hypotheses() const {
  std::vector<RewardHypothesis> hs;
  for (int g = 0; g < num_goals(); ++g)
    hs.push_back({std::string(1, map_.goals[g].name), {{g, 0.0}}, 1.0 / num_goals()});
  return hs;
}

Mdp GridWorld::mdp(const RewardHypothesis& h) const {
  Mdp m;
  m.start(num_states(), num_actions());
  for (auto [g, r] : h.goal_rewards) {
    IK_CHECK(g >= 0 && g < num_goals(), "reward hypothesis '{}' names goal {} of {}", h.name, g, num_goals());
    for (int k = 0; k < key_states(); ++k) {
      m.terminal[goal_state(g, k == 1)] = 1;
      m.terminal_value[goal_state(g, k == 1)] = r;
    }
  }
  for (int s = 0; s < num_states(); ++s) {
    for (int a = 0; a < num_actions(); ++a) {
      if (a == stay) {
        m.add_outcome(s, 1.0);
      } else {
        m.add_outcome(move(s, a), 1.0 - opt_.slip);
        if (opt_.slip > 0)
          for (int d = 0; d < 4; ++d) m.add_outcome(move(s, d), opt_.slip / 4);
      }
      m.end_action(-opt_.move_cost);
    }
  }
  return m;
}

}  // namespace ik::agents
