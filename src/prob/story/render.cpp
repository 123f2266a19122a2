#include "prob/story/render.hpp"

#include <fmt/format.h>

#include "core/plot.hpp"
#include "prob/story/planning.hpp"

namespace ik::story {

namespace {

const Rgb wall{70, 70, 80}, floor_c{250, 250, 245}, pink{255, 153, 204}, green{153, 221, 153};
const Rgb cheese{255, 204, 0}, robot{102, 102, 153}, box{153, 102, 51};
const Rgb help_c{51, 102, 204}, hinder_c{204, 51, 51}, neutral_c{170, 170, 170};

std::string caption(const Trace& t, int i) {
  if (i == 0) return "start";
  const int turn = (i - 1) / 2;
  const Turn& tr = t.turns[turn];
  if (tr.deus >= 0)
    return fmt::format("{}: {}", turn + 1, t.states[2 * turn] != t.state_before(2 * turn) ? "the box drops in" : "(nothing)");
  if (i % 2 == 1)
    return fmt::format("{}: A {}{}", turn + 1, action_name(tr.a_action),
                       tr.a_action != stay && tr.a_outcome ? " (slips)" : "");
  return fmt::format("{}: {}", turn + 1, turn_to_string(tr));  // the whole turn, for the strip
}

}  // namespace

Canvas draw_frame(const World& w, const Trace& t, int i, int cell) {
  const int top = 14, bar = 12;
  Canvas c(width * cell, top + height * cell + bar + 4, colors::white);
  c.text(2, 3, caption(t, i), colors::black, 1);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) c.fill_rect(x * cell, top + y * cell, cell, cell, is_floor(x, y) ? floor_c : wall);
  for (int g = 0; g < 2; ++g)  // A's two possible goals; (3,3), "no goal", is a wall
    c.fill_rect(a_goals[g].x * cell + 2, top + a_goals[g].y * cell + 2, cell - 4, cell - 4, g == 0 ? pink : green);
  const State& s = w.state(t.state_before(i));
  auto cx = [&](int x) { return x * cell + cell / 2.0; };
  auto cy = [&](int y) { return top + y * cell + cell / 2.0; };
  if (is_floor(s.rx, s.ry)) c.fill_rect(s.rx * cell + cell / 5, top + s.ry * cell + cell / 5, cell * 3 / 5, cell * 3 / 5, box);
  c.fill_rect(s.bx * cell + cell / 6, top + s.by * cell + cell / 6, cell * 2 / 3, cell * 2 / 3, robot);
  c.text(int(cx(s.bx)) - 2, int(cy(s.by)) - 3, "B", colors::white, 1);
  c.circle(cx(s.ax), cy(s.ay), cell * 0.33, cheese);
  c.text(int(cx(s.ax)) - 2, int(cy(s.ay)) - 3, "A", colors::black, 1);
  // The observer's belief about B: helping (blue), hindering (red), indifferent (grey).
  const Belief& b = t.beliefs[i];
  const int y0 = top + height * cell + 2, full = width * cell;
  const int help_w = int(pr_help(b) * full + 0.5), hinder_w = int(pr_hinder(b) * full + 0.5);
  c.fill_rect(0, y0, full, bar, neutral_c);
  c.fill_rect(0, y0, help_w, bar, help_c);
  c.fill_rect(full - hinder_w, y0, hinder_w, bar, hinder_c);
  return c;
}

void save_strip(const std::string& path, const World& w, const Trace& t, int cols) {
  std::vector<int> frames{0};
  for (int k = 1; k <= int(t.turns.size()); ++k) frames.push_back(2 * k);
  const Canvas first = draw_frame(w, t, 0);
  const int fw = first.width() + 6, fh = first.height() + 6;
  const int n = int(frames.size()), rows = (n + cols - 1) / cols, used = std::min(n, cols);
  Canvas strip(used * fw, rows * fh, colors::white);
  for (int j = 0; j < n; ++j) strip.blit(draw_frame(w, t, frames[j]), (j % cols) * fw + 3, (j / cols) * fh + 3);
  strip.save_png(path);
}

void save_gif(const std::string& path, const World& w, const Trace& t) {
  std::vector<Canvas> frames;
  for (int i = 0; i < int(t.beliefs.size()); ++i) frames.push_back(draw_frame(w, t, i, 40));
  ik::save_gif(path, frames, 50);
}

void save_belief_plot(const std::string& path, const Trace& t, const std::string& title) {
  std::vector<double> x, help, hinder, indifferent, pink_goal, rational;
  for (int i = 0; i < int(t.beliefs.size()); ++i) {
    const Belief& b = t.beliefs[i];
    x.push_back(i / 2.0);
    help.push_back(pr_help(b));
    hinder.push_back(pr_hinder(b));
    indifferent.push_back(pr_indifferent(b));
    pink_goal.push_back(pr_given_rational(b, [](const Hypothesis& H) { return H.a_goal == 0; }));
    rational.push_back(pr_rational(b));
  }
  LinePlot p(title);
  p.xlabel("time (turns)").ylabel("observer's probability").yrange(-0.05, 1.05).legend(Legend::top_left);
  p.add("B helps", x, help).color = help_c;
  p.add("B hinders", x, hinder).color = hinder_c;
  p.add("B indifferent", x, indifferent).color = neutral_c;
  auto& g = p.add("A wants pink", x, pink_goal);
  g.color = Rgb{204, 51, 153};
  g.dashed = true;
  auto& r = p.add("both rational", x, rational);
  r.color = colors::dark_grey;
  r.dashed = true;
  r.width = 1;
  p.vline(t.turns.size() / 2.0, "middle");
  p.save_png(path, 900, 500);
}

}  // namespace ik::story
