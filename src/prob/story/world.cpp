#include "prob/story/world.hpp"

#include <fmt/format.h>

#include "core/error.hpp"

namespace ik::story {

namespace {

const char* const maze[height] = {
    "...#...#...",
    "...........",
    "...#...#...",
    "#.#######.#",
    "...#...#...",
    "...........",
    "...#...#...",
};

int cell(int x, int y) { return y * width + x; }

// What occupies (x, y): '#' (wall or outside), 'r', 'a', 'b' or '.' (hoh.py `find`).
char find(const State& s, int x, int y) {
  if (x < 0 || y < 0 || x >= width || y >= height) return '#';
  if (x == s.rx && y == s.ry) return 'r';
  if (x == s.ax && y == s.ay) return 'a';
  if (x == s.bx && y == s.by) return 'b';
  return maze[y][x];
}

State step_b(const State& s, int a) {
  if (a == stay) return s;
  const int tx = s.bx + dx_of[a], ty = s.by + dy_of[a];
  State n = s;
  const char o = find(s, tx, ty);
  if (o == 'a' && find(s, s.ax + dx_of[a], s.ay + dy_of[a]) == '.') {
    n.ax += dx_of[a], n.ay += dy_of[a];
  } else if (o == 'r' && find(s, s.rx + dx_of[a], s.ry + dy_of[a]) == '.') {
    n.rx += dx_of[a], n.ry += dy_of[a];
  }
  if (find(n, tx, ty) != '.') return s;  // blocked: nothing moves, not even a pushed object
  n.bx = tx, n.by = ty;
  return n;
}

}  // namespace

const char* action_name(int a) {
  static const char* const names[] = {"right", "left", "down", "up", "stay"};
  return a >= 0 && a < num_actions ? names[a] : "?";
}

bool is_floor(int x, int y) { return x >= 0 && y >= 0 && x < width && y < height && maze[y][x] == '.'; }
bool is_wall_cell(int x, int y) { return x >= 0 && y >= 0 && x < width && y < height && maze[y][x] == '#'; }

World::World() : index_(num_cells * num_cells * num_cells, -1) {
  // Box-major order: most moves leave the box alone, so the states a backup reads sit in one
  // 59x59 slice that stays in cache.
  for (int rc = 0; rc < num_cells; ++rc)
    for (int ac = 0; ac < num_cells; ++ac)
      for (int bc = 0; bc < num_cells; ++bc) {
        const State s{int8_t(ac % width), int8_t(ac / width), int8_t(bc % width),
                      int8_t(bc / width), int8_t(rc % width), int8_t(rc / width)};
        if (!is_floor(s.ax, s.ay) || !is_floor(s.bx, s.by) || ac == bc || ac == rc || bc == rc) continue;
        index_[(ac * num_cells + bc) * num_cells + rc] = num_states();
        states_.push_back(s);
      }
  a_next_.resize(states_.size() * num_actions);
  b_next_.resize(states_.size() * num_actions);
  for (int s = 0; s < num_states(); ++s) {
    const State& st = states_[s];
    for (int a = 0; a < num_actions; ++a) {
      int next = s;
      if (a != stay && find(st, st.ax + dx_of[a], st.ay + dy_of[a]) == '.') {
        State n = st;
        n.ax += dx_of[a], n.ay += dy_of[a];
        next = index(n);
      }
      a_next_[s * num_actions + a] = next;
      b_next_[s * num_actions + a] = index(step_b(st, a));
    }
  }
}

int World::index(const State& s) const {
  for (int v : {s.ax, s.bx, s.rx})
    if (v < 0 || v >= width) return -1;
  for (int v : {s.ay, s.by, s.ry})
    if (v < 0 || v >= height) return -1;
  return index_[(cell(s.ax, s.ay) * num_cells + cell(s.bx, s.by)) * num_cells + cell(s.rx, s.ry)];
}

int World::teleport_box(int s, int x, int y) const {
  const State& st = states_[s];
  if (maze[st.ry][st.rx] != '#' || find(st, x, y) != '.') return -1;
  State n = st;
  n.rx = int8_t(x), n.ry = int8_t(y);
  return index(n);
}

std::string World::to_string(int s) const {
  const State& st = states_[s];
  std::string out;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const char c = find(st, x, y);
      out += c == 'a' ? 'A' : c == 'b' ? 'B' : c;
    }
    out += '\n';
  }
  return out;
}

std::vector<Turn> all_turns(bool deus) {
  std::vector<Turn> turns;
  for (int a = 0; a < num_actions; ++a)
    for (int outcome = 0; outcome < 2; ++outcome)
      for (int b = 0; b < num_actions; ++b) turns.push_back({a, outcome, b, -1});
  if (deus)
    for (int d = 0; d < int(deus_destinations.size()); ++d) turns.push_back({stay, 0, stay, d});
  return turns;
}

std::string turn_to_string(const Turn& t) {
  if (t.deus >= 0)
    return fmt::format("deus ex machina: the box drops onto ({},{})", deus_destinations[t.deus].first,
                       deus_destinations[t.deus].second);
  const bool move = t.a_action != stay;
  return fmt::format("A {}{}, B {}", action_name(t.a_action), move ? (t.a_outcome == 0 ? "" : " (slips)") : "",
                     action_name(t.b_action));
}

TurnResult apply_turn(const World& w, int s, const Turn& t) {
  if (t.deus >= 0) {
    const auto [x, y] = deus_destinations[t.deus];
    const int n = w.teleport_box(s, x, y);
    return n < 0 ? TurnResult{s, s} : TurnResult{n, n};
  }
  const int s1 = t.a_outcome == 0 ? w.a_target(s, t.a_action) : s;
  return {s1, w.b_next(s1, t.b_action)};
}

}  // namespace ik::story
