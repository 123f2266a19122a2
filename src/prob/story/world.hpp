#pragma once
// The two-agent "kitchen" of Storytelling as Inverse Inverse Planning (Chandra et al. 2024),
// ported from the reference code (kach/acting-as-inverse-inverse-planning, gridworld/hoh.py).
//
//   ...#...#...     A ("cheese") and B ("robot") walk on '.', r is a movable box.
//   ...........     A's moves succeed with p = 0.6 (else it stays); B's are deterministic and
//   ...#...#...     push A or the box one cell if the cell behind is free. Coordinates are
//   #.#######.#     (x, y) = (column, row), row 0 on top. The box may also sit inside a wall,
//   ...#...#...     where it is inert (the reference samples such starts; deus ex machina
//   ...........     lifts it out).
//   ...#...#...
//
// A state is (ax, ay, bx, by, rx, ry) with A and B on distinct floor cells and r on any other
// cell; every valid state has a dense index 0..num_states()-1.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace ik::story {

constexpr int width = 11, height = 7, num_cells = width * height;
constexpr int num_actions = 5;

// The reference's enum (SOUTH, NORTH, EAST, WEST, STAY) moves by (+1,0), (-1,0), (0,+1),
// (0,-1) in (x, y); on screen that is right, left, down, up.
enum Action { right = 0, left = 1, down = 2, up = 3, stay = 4 };
const char* action_name(int a);
constexpr int dx_of[4] = {1, -1, 0, 0};
constexpr int dy_of[4] = {0, 0, 1, -1};

struct State {
  int8_t ax = 0, ay = 0, bx = 0, by = 0, rx = 0, ry = 0;
  bool operator==(const State&) const = default;
};

bool is_floor(int x, int y);  // false outside the map
bool is_wall_cell(int x, int y);

class World {
 public:
  World();
  int num_states() const { return static_cast<int>(states_.size()); }
  const State& state(int s) const { return states_[s]; }
  int index(const State& st) const;  // -1 when st is not a valid state

  // Where A ends when move a succeeds (s itself for stay or a blocked move).
  int a_target(int s, int a) const { return a_next_[s * num_actions + a]; }
  bool a_can_move(int s, int a) const { return a != stay && a_target(s, a) != s; }
  // B's deterministic move, pushing A or the box when the cell behind them is free.
  int b_next(int s, int a) const { return b_next_[s * num_actions + a]; }
  // Moves the box to (x, y) (the deus ex machina action): -1 unless the box is inside a wall
  // and (x, y) is a free floor cell.
  int teleport_box(int s, int x, int y) const;

  std::string to_string(int s) const;  // the map with A, B, r drawn in

 private:
  std::vector<State> states_;
  std::vector<int> index_;  // per (a cell, b cell, r cell), -1 when invalid
  std::vector<int> a_next_, b_next_;
};

// One discrete step of a story: A acts (outcome 0 = success, 1 = failure), then B acts.
// A deus turn (deus >= 0) instead drops the box on deus_destinations[deus].
struct Turn {
  int a_action = stay, a_outcome = 0, b_action = stay;
  int deus = -1;
  bool operator==(const Turn&) const = default;
};
constexpr std::array<std::pair<int, int>, 5> deus_destinations{{{1, 3}, {1, 1}, {1, 5}, {3, 1}, {3, 5}}};

// The reference's 50 turns in its order (A action, A outcome, B action), then 5 deus turns.
std::vector<Turn> all_turns(bool deus);
std::string turn_to_string(const Turn& t);

// The states a turn passes through: after A's move (s1) and after B's (s2). A deus turn that
// applies moves the box (s1 = s2 = new state); one that does not leaves the state alone.
struct TurnResult {
  int s1 = 0, s2 = 0;
};
TurnResult apply_turn(const World& w, int s, const Turn& t);

}  // namespace ik::story
