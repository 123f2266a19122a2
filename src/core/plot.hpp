#pragma once
// Study figures without Python: line plots (linear/log axes, error bars, bands, legend,
// reference lines) and heat maps with a colour bar, drawn on an ik::Canvas and saved as PNG.
//
//   ik::LinePlot p("Magnetisation vs T");
//   p.xlabel("T").ylabel("|m|");
//   auto& s = p.add("L=32", T, m);  s.markers = true;  s.yerr = err;
//   p.vline(2.269, "T_c");
//   p.save_png("m.png");
#include <deque>
#include <limits>
#include <string>
#include <vector>

#include "core/canvas.hpp"

namespace ik {

enum class Scale { linear, log10 };

// Tick positions for an axis over [lo, hi]: multiples of 1, 2 or 5 x 10^k, about
// `target` of them, all inside [lo, hi] (with a tiny tolerance at the ends).
std::vector<double> nice_ticks(double lo, double hi, int target = 6);
// Log axis: powers of ten inside [lo, hi] (every 2nd, 3rd, ... decade when there are many);
// falls back to nice_ticks when the range holds fewer than two decades.
std::vector<double> log_ticks(double lo, double hi, int target = 6);
// Label of a tick value: enough decimals for `step` (0.2 -> "0.4"), "1e-05" style when tiny/huge.
std::string tick_label(double v, double step);

struct Series {
  std::string name;          // empty: not in the legend
  std::vector<double> x, y;  // points with a non-finite x or y are skipped (the line breaks)
  Rgb color{};               // set by LinePlot::add from the palette; change freely
  double width = 2.0;        // line thickness in px (at scale 1); 0: no line (markers only)
  bool markers = false;      // filled circle at each point
  bool dashed = false;
  std::vector<double> yerr;               // symmetric error bars (same length as y), optional
  std::vector<double> band_lo, band_hi;   // shaded band (same length as y), optional
};

struct RefLine {
  bool vertical = false;
  double value = 0;
  std::string label;
  Rgb color = colors::dark_grey;
};

enum class Legend { top_right, top_left, bottom_right, bottom_left, none };

class LinePlot {
 public:
  explicit LinePlot(std::string title = "") : title_(std::move(title)) {}
  LinePlot& title(std::string s) { title_ = std::move(s); return *this; }
  LinePlot& xlabel(std::string s) { xlabel_ = std::move(s); return *this; }
  LinePlot& ylabel(std::string s) { ylabel_ = std::move(s); return *this; }
  LinePlot& xscale(Scale s) { xscale_ = s; return *this; }
  LinePlot& yscale(Scale s) { yscale_ = s; return *this; }
  LinePlot& xrange(double lo, double hi) { xlo_ = lo, xhi_ = hi; return *this; }  // NaN: automatic
  LinePlot& yrange(double lo, double hi) { ylo_ = lo, yhi_ = hi; return *this; }
  LinePlot& legend(Legend where) { legend_ = where; return *this; }
  LinePlot& hline(double y, std::string label = "", Rgb c = colors::dark_grey);
  LinePlot& vline(double x, std::string label = "", Rgb c = colors::dark_grey);

  // Adds a series coloured palette(count); the reference stays valid (series live in a deque).
  Series& add(std::string name, std::vector<double> x, std::vector<double> y);
  Series& add(std::string name, std::vector<double> y);  // x = 0, 1, 2, ...
  size_t size() const { return series_.size(); }

  // Draws the whole figure into the box (x, y, w, h) of `c` (for panels); text scale follows
  // the box size (2 at 800x500).
  void draw(Canvas& c, int x, int y, int w, int h) const;
  Canvas render(int width = 800, int height = 500) const;
  void save_png(const std::string& path, int width = 800, int height = 500) const;

 private:
  std::string title_, xlabel_, ylabel_;
  Scale xscale_ = Scale::linear, yscale_ = Scale::linear;
  double xlo_ = std::numeric_limits<double>::quiet_NaN(), xhi_ = xlo_, ylo_ = xlo_, yhi_ = xlo_;
  Legend legend_ = Legend::top_right;
  std::deque<Series> series_;
  std::vector<RefLine> refs_;
};

// Cell -> pixel mapping of a drawn heat map, for drawing on top (paths, agents, walls).
struct GridMap {
  int rows = 0, cols = 0;
  double x0 = 0, y0 = 0;           // top-left pixel corner of cell (0, 0)
  double cell_w = 0, cell_h = 0;   // cell size in pixels
  double cx(int col) const { return x0 + (col + 0.5) * cell_w; }  // centre of a cell
  double cy(int row) const { return y0 + (row + 0.5) * cell_h; }
  int left(int col) const { return int(x0 + col * cell_w); }       // cell box, integer pixels
  int top(int row) const { return int(y0 + row * cell_h); }
  int right(int col) const { return int(x0 + (col + 1) * cell_w); }  // exclusive
  int bottom(int row) const { return int(y0 + (row + 1) * cell_h); }
};

struct HeatMap {
  int rows = 0, cols = 0;
  std::vector<double> values;  // row-major, row 0 drawn at the top; non-finite -> `missing`
  std::string title, colorbar_label;
  double vmin = std::numeric_limits<double>::quiet_NaN();  // NaN: min/max of the finite values
  double vmax = std::numeric_limits<double>::quiet_NaN();
  bool colorbar = true;
  bool square_cells = true;   // keep cells square (centred in the box)
  bool cell_borders = false;  // thin white lines between cells
  Rgb missing = colors::light_grey;

  // Draws into the box (x, y, w, h) of `c` and returns where the cells went.
  GridMap draw(Canvas& c, int x, int y, int w, int h) const;
  void save_png(const std::string& path, int width = 600, int height = 500) const;
};

}  // namespace ik
