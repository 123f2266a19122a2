#include "prob/snapshot/render.hpp"

#include <cmath>
#include <limits>

#include "core/canvas.hpp"
#include "core/plot.hpp"

namespace ik::snapshot {

namespace {

constexpr int cell = 36, margin = 12, header = 56;
const Rgb wall{70, 70, 80}, door{150, 95, 45}, key_gold{230, 180, 30}, start_green{200, 235, 200};

int goal_index(const agents::WorldMap& m, char c) {
  for (size_t g = 0; g < m.goals.size(); ++g)
    if (m.goals[g].name == c) return static_cast<int>(g);
  return -1;
}

// Cell (x, y) -> pixel box, shared by the map and the futures figure.
struct Layout {
  double x0 = margin, y0 = header;
  double cx(int x) const { return x0 + (x + 0.5) * cell; }
  double cy(int y) const { return y0 + (y + 0.5) * cell; }
};

void centered_text(Canvas& c, double cx, double cy, const std::string& s, Rgb color, int scale) {
  c.text(int(cx - Canvas::text_width(s, scale) / 2.0), int(cy - Canvas::text_height(scale) / 2.0), s, color, scale);
}

// Goal letters, key and door glyphs on top of any background.
void draw_items(Canvas& c, const agents::WorldMap& m, double x0, double y0, double cw, double ch) {
  for (int y = 0; y < m.height; ++y)
    for (int x = 0; x < m.width; ++x) {
      const char k = m.at(x, y);
      const double cx = x0 + (x + 0.5) * cw, cy = y0 + (y + 0.5) * ch;
      if (k >= 'A' && k <= 'Z') {
        c.circle(cx, cy, 0.42 * cw, palette(goal_index(m, k)));
        centered_text(c, cx, cy, std::string(1, k), colors::white, 2);
      } else if (k == 'k') {
        c.circle(cx - 0.12 * cw, cy, 0.16 * cw, key_gold);
        c.line(cx, cy, cx + 0.3 * cw, cy, key_gold, 3);
      } else if (k == 'd') {
        c.fill_rect(int(cx - 0.35 * cw), int(cy - 0.45 * ch), int(0.7 * cw), int(0.9 * ch), door);
      } else if (k == 's') {
        centered_text(c, cx, cy, "s", colors::dark_grey, 2);
      }
    }
}

Canvas draw_world(const agents::GridWorld& w, const std::string& title, const std::string& subtitle) {
  const auto& m = w.map();
  Canvas c(2 * margin + m.width * cell, header + margin + m.height * cell);
  c.text(margin, 8, title, colors::black, 2);
  c.text(margin, 30, subtitle, colors::dark_grey, 1);
  const Layout l;
  for (int y = 0; y < m.height; ++y)
    for (int x = 0; x < m.width; ++x) {
      const char k = m.at(x, y);
      const Rgb bg = k == '#' ? wall : k == 's' ? start_green : colors::white;
      c.fill_rect(int(l.x0) + x * cell, int(l.y0) + y * cell, cell, cell, bg);
      c.rect(int(l.x0) + x * cell, int(l.y0) + y * cell, cell, cell, colors::light_grey);
    }
  draw_items(c, m, l.x0, l.y0, cell, cell);
  return c;
}

void draw_snapshot_ring(Canvas& c, double cx, double cy, double r) {
  for (int i = 0; i < 48; ++i) {
    const double a0 = 2 * M_PI * i / 48, a1 = 2 * M_PI * (i + 1) / 48;
    c.line(cx + r * std::cos(a0), cy + r * std::sin(a0), cx + r * std::cos(a1), cy + r * std::sin(a1),
           colors::red, 3);
  }
}

}  // namespace

void save_map_png(const std::string& path, const agents::GridWorld& w, int x, int y, const std::string& subtitle) {
  Canvas c = draw_world(w, "Snapshot at (" + std::to_string(x) + "," + std::to_string(y) + ")", subtitle);
  const Layout l;
  c.circle(l.cx(x), l.cy(y), 0.25 * cell, colors::black);
  draw_snapshot_ring(c, l.cx(x), l.cy(y), 0.4 * cell);
  c.save_png(path);
}

void save_past_png(const std::string& path, const agents::GridWorld& w, int x, int y,
                   const std::vector<double>& visits_per_state, const std::string& title) {
  const auto& m = w.map();
  HeatMap h;
  h.rows = m.height;
  h.cols = m.width;
  h.values.assign(size_t(m.width) * m.height, std::numeric_limits<double>::quiet_NaN());
  for (int s = 0; s < w.num_states(); ++s) {
    double& v = h.values[size_t(w.y_of(s)) * m.width + w.x_of(s)];
    v = (std::isnan(v) ? 0.0 : v) + visits_per_state[s];
  }
  h.title = title;
  h.colorbar_label = "expected visits before the snapshot";
  h.missing = wall;
  h.vmin = 0;
  const int width = 140 + m.width * cell, height = 90 + m.height * cell;
  Canvas c(width, height);
  const GridMap g = h.draw(c, 0, 0, width, height);
  draw_items(c, m, g.x0, g.y0, g.cell_w, g.cell_h);
  draw_snapshot_ring(c, g.cx(x), g.cy(y), 0.4 * g.cell_w);
  c.save_png(path);
}

void save_futures_png(const std::string& path, const agents::GridWorld& w, int x, int y,
                      const std::vector<Future>& futures, const std::string& title) {
  Canvas c = draw_world(w, title, "sampled futures, coloured by the goal they were drawn with");
  const Layout l;
  for (size_t i = 0; i < futures.size(); ++i) {
    const auto& f = futures[i];
    // A small per-path offset keeps overlapping paths visible.
    const double jx = cell * 0.22 * (std::fmod(i * 0.618034, 1.0) - 0.5);
    const double jy = cell * 0.22 * (std::fmod(i * 0.414214, 1.0) - 0.5);
    const Rgb color = mix(palette(f.goal), colors::white, 0.15);
    for (size_t t = 0; t + 1 < f.states.size(); ++t) {
      const int a = f.states[t], b = f.states[t + 1];
      c.line(l.cx(w.x_of(a)) + jx, l.cy(w.y_of(a)) + jy, l.cx(w.x_of(b)) + jx, l.cy(w.y_of(b)) + jy, color, 1.5);
    }
  }
  c.circle(l.cx(x), l.cy(y), 0.25 * cell, colors::black);
  draw_snapshot_ring(c, l.cx(x), l.cy(y), 0.4 * cell);
  c.save_png(path);
}

}  // namespace ik::snapshot
