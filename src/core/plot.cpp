// LinePlot and HeatMap: layout (margins measured from the actual labels), axes with nice
// ticks, then the data drawn on a plot-area canvas that is blitted in, which clips for free.
#include "core/plot.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/error.hpp"

namespace ik {

// ---------------------------------------------------------------- ticks

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {};
  if (hi < lo) std::swap(lo, hi);
  if (hi == lo) return {lo};
  double raw = (hi - lo) / std::max(target, 1);
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double r = raw / mag;
  double step = (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
  std::vector<double> ticks;
  for (double k = std::ceil(lo / step - 1e-9); k <= std::floor(hi / step + 1e-9); ++k) {
    double v = k * step;
    ticks.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
  }
  return ticks;
}

static double pow10i(int e) { return e < 0 ? 1.0 / std::pow(10.0, -e) : std::pow(10.0, e); }

std::vector<double> log_ticks(double lo, double hi, int target) {
  if (!(lo > 0) || !(hi > 0) || !std::isfinite(lo) || !std::isfinite(hi)) return {};
  if (hi < lo) std::swap(lo, hi);
  int e0 = int(std::ceil(std::log10(lo) - 1e-9)), e1 = int(std::floor(std::log10(hi) + 1e-9));
  if (e1 - e0 < 1) return nice_ticks(lo, hi, target);
  int every = std::max(1, int(std::ceil((e1 - e0 + 1) / double(std::max(target, 1)))));
  std::vector<double> ticks;
  for (int e = e0; e <= e1; e += every) ticks.push_back(pow10i(e));
  return ticks;
}

std::string tick_label(double v, double step) {
  step = std::abs(step);
  if (!(step > 0) || !std::isfinite(step)) step = std::abs(v) > 0 ? std::abs(v) : 1;
  int decimals = 0;  // fewest decimals that show `step` exactly
  while (decimals < 12) {
    double scaled = step * pow10i(decimals);
    if (std::abs(scaled - std::round(scaled)) < 1e-6 * scaled) break;
    ++decimals;
  }
  if (std::abs(v) < step * 1e-9) v = 0;  // -1e-17 from rounding prints as 0
  if (v != 0 && (std::abs(v) >= 1e5 || decimals > 4)) {  // scientific: "1e-5", "2.5e6"
    int e = int(std::floor(std::log10(std::abs(v)) + 1e-9));
    double m = std::round(v / pow10i(e) * 1000) / 1000;
    return fmt::format("{:g}e{}", m, e);
  }
  return fmt::format("{:.{}f}", v, decimals);
}

// ---------------------------------------------------------------- axes

namespace {

struct Axis {
  Scale scale = Scale::linear;
  double lo = 0, hi = 1;  // in transformed units (log10 of the value on a log axis)
  std::vector<double> ticks;
  double step = 1;  // for tick labels on a linear axis

  bool valid(double v) const { return std::isfinite(v) && (scale == Scale::linear || v > 0); }
  double t(double v) const { return scale == Scale::log10 ? std::log10(v) : v; }
  double frac(double v) const { return (t(v) - lo) / (hi - lo); }
  bool decades = false;      // log axis with ticks at powers of ten
  bool sci_decades = false;  // ... label them all "1eK" (they reach below 1e-3 or above 1e4)
  std::string label(double v) const {
    if (sci_decades) return fmt::format("1e{}", int(std::lround(std::log10(v))));
    return tick_label(v, decades ? v : step);
  }
};

Axis make_axis(Scale scale, const std::vector<double>& values, double fixed_lo, double fixed_hi) {
  Axis a;
  a.scale = scale;
  double lo = INFINITY, hi = -INFINITY;
  for (double v : values)
    if (a.valid(v)) lo = std::min(lo, a.t(v)), hi = std::max(hi, a.t(v));
  if (lo > hi) lo = 0, hi = 1;
  if (hi - lo < 1e-12 * std::max(1.0, std::abs(lo))) {
    double d = std::max(std::abs(lo) * 0.1, scale == Scale::log10 ? 0.5 : 0.5);
    lo -= d, hi += d;
  }
  double pad = 0.04 * (hi - lo);
  lo -= pad, hi += pad;
  if (a.valid(fixed_lo)) lo = a.t(fixed_lo);
  if (a.valid(fixed_hi)) hi = a.t(fixed_hi);
  IK_CHECK(hi > lo, "plot axis range [{}, {}] is empty", fixed_lo, fixed_hi);
  a.lo = lo, a.hi = hi;
  if (scale == Scale::log10) {
    a.ticks = log_ticks(std::pow(10.0, lo), std::pow(10.0, hi));
  } else {
    a.ticks = nice_ticks(lo, hi);
  }
  a.decades = scale == Scale::log10 && a.ticks.size() > 1 && a.ticks[1] / a.ticks[0] > 9.99;
  if (a.decades) a.sci_decades = a.ticks.front() < 1e-3 || a.ticks.back() > 1e4;
  a.step = a.ticks.size() > 1 ? a.ticks[1] - a.ticks[0] : std::abs(a.ticks.empty() ? 1 : a.ticks[0]);
  return a;
}

}  // namespace

// ---------------------------------------------------------------- LinePlot

LinePlot& LinePlot::hline(double y, std::string label, Rgb c) {
  refs_.push_back({false, y, std::move(label), c});
  return *this;
}

LinePlot& LinePlot::vline(double x, std::string label, Rgb c) {
  refs_.push_back({true, x, std::move(label), c});
  return *this;
}

Series& LinePlot::add(std::string name, std::vector<double> x, std::vector<double> y) {
  IK_CHECK(x.size() == y.size(), "plot series '{}': {} x values but {} y values", name, x.size(), y.size());
  Series s;
  s.name = std::move(name);
  s.x = std::move(x);
  s.y = std::move(y);
  s.color = palette(int(series_.size()));
  series_.push_back(std::move(s));
  return series_.back();
}

Series& LinePlot::add(std::string name, std::vector<double> y) {
  std::vector<double> x(y.size());
  for (size_t i = 0; i < x.size(); ++i) x[i] = double(i);
  return add(std::move(name), std::move(x), std::move(y));
}

static void check_series(const Series& s) {
  auto same = [&](const std::vector<double>& v) { return v.empty() || v.size() == s.y.size(); };
  IK_CHECK(s.x.size() == s.y.size() && same(s.yerr) && same(s.band_lo) && same(s.band_hi) &&
               s.band_lo.size() == s.band_hi.size(),
           "plot series '{}': x, y, yerr and band vectors have different lengths", s.name);
}

// Shaded band: vertical spans column by column, interpolated between consecutive points.
static void draw_band(Canvas& area, const std::vector<double>& px, const std::vector<double>& plo,
                      const std::vector<double>& phi, Rgb c) {
  for (size_t i = 0; i + 1 < px.size(); ++i) {
    double x0 = px[i], x1 = px[i + 1];
    if (!std::isfinite(x0 + x1 + plo[i] + plo[i + 1] + phi[i] + phi[i + 1]) || x0 == x1) continue;
    bool last = i + 2 == px.size();
    int a = int(std::ceil(std::min(x0, x1))), b = int(std::ceil(std::max(x0, x1))) - (last ? 0 : 1);
    for (int col = std::max(a, 0); col <= std::min(b, area.width() - 1); ++col) {
      double t = (col - x0) / (x1 - x0);
      double ya = plo[i] + t * (plo[i + 1] - plo[i]), yb = phi[i] + t * (phi[i + 1] - phi[i]);
      int top = int(std::lround(std::min(ya, yb))), bot = int(std::lround(std::max(ya, yb)));
      area.fill_rect(col, top, 1, bot - top + 1, c, 0.22);
    }
  }
}

void LinePlot::draw(Canvas& c, int X, int Y, int W, int H) const {
  for (auto& s : series_) check_series(s);
  const int s = std::clamp(std::min(W / 400, H / 250), 1, 4);  // text scale
  const int ch = Canvas::text_height(s), pad = 6 * s;

  // Axes from all the data that will be drawn.
  std::vector<double> xs, ys;
  for (auto& sr : series_) {
    for (size_t i = 0; i < sr.y.size(); ++i) {
      if (!std::isfinite(sr.x[i]) || !std::isfinite(sr.y[i])) continue;
      xs.push_back(sr.x[i]), ys.push_back(sr.y[i]);
      if (!sr.yerr.empty()) ys.push_back(sr.y[i] - sr.yerr[i]), ys.push_back(sr.y[i] + sr.yerr[i]);
      if (!sr.band_lo.empty()) ys.push_back(sr.band_lo[i]), ys.push_back(sr.band_hi[i]);
    }
  }
  for (auto& r : refs_) (r.vertical ? xs : ys).push_back(r.value);
  Axis ax = make_axis(xscale_, xs, xlo_, xhi_), ay = make_axis(yscale_, ys, ylo_, yhi_);

  // Margins measured from the labels that will be drawn there.
  int ytick_w = 0;
  for (double t : ay.ticks) ytick_w = std::max(ytick_w, Canvas::text_width(ay.label(t), s));
  int left = pad + (ylabel_.empty() ? 0 : ch + pad) + ytick_w + 2 * s + 3 * s;
  int top = pad + (title_.empty() ? 0 : ch + pad);
  int bottom = 3 * s + 2 * s + ch + (xlabel_.empty() ? 0 : pad + ch) + pad;
  int right = pad + (ax.ticks.empty() ? 0 : Canvas::text_width(ax.label(ax.ticks.back()), s) / 2);
  int pw = W - left - right, ph = H - top - bottom;
  IK_CHECK(pw > 20 && ph > 20, "plot size {}x{} is too small for its labels", W, H);
  int px0 = X + left, py0 = Y + top;

  Canvas area(pw, ph, colors::white);
  auto PX = [&](double v) { return ax.frac(v) * (pw - 1); };
  auto PY = [&](double v) { return (1 - ay.frac(v)) * (ph - 1); };

  // Grid: minor lines at 2..9 x 10^k on log axes with decade ticks, then the major lines.
  const Rgb minor{242, 242, 242};
  auto minor_grid = [&](const Axis& a, bool vertical) {
    if (a.scale != Scale::log10 || a.hi - a.lo > 6) return;
    for (int e = int(std::floor(a.lo)); e <= int(std::ceil(a.hi)); ++e)
      for (int k = 2; k <= 9; ++k) {
        double v = k * pow10i(e);
        if (vertical) area.line(PX(v), 0, PX(v), ph - 1, minor);
        else area.line(0, PY(v), pw - 1, PY(v), minor);
      }
  };
  minor_grid(ax, true);
  minor_grid(ay, false);
  for (double t : ax.ticks) area.line(std::round(PX(t)), 0, std::round(PX(t)), ph - 1, colors::light_grey);
  for (double t : ay.ticks) area.line(0, std::round(PY(t)), pw - 1, std::round(PY(t)), colors::light_grey);

  // Data: bands first so lines and markers stay on top.
  const double lw_scale = std::max(1.0, s / 2.0);
  auto ok = [&](const Series& sr, size_t i) { return ax.valid(sr.x[i]) && ay.valid(sr.y[i]); };
  for (auto& sr : series_) {
    if (sr.band_lo.empty()) continue;
    std::vector<double> px, plo, phi;
    for (size_t i = 0; i < sr.y.size(); ++i) {
      if (!ok(sr, i) || !ay.valid(sr.band_lo[i]) || !ay.valid(sr.band_hi[i])) continue;
      px.push_back(PX(sr.x[i])), plo.push_back(PY(sr.band_lo[i])), phi.push_back(PY(sr.band_hi[i]));
    }
    draw_band(area, px, plo, phi, sr.color);
  }
  for (auto& sr : series_) {
    double lw = sr.width * lw_scale;
    for (size_t i = 0; i < sr.y.size(); ++i) {
      if (!ok(sr, i)) continue;
      double x = PX(sr.x[i]), y = PY(sr.y[i]);
      if (!sr.yerr.empty() && std::isfinite(sr.yerr[i])) {
        double e = std::abs(sr.yerr[i]), lo = sr.y[i] - e, hi = sr.y[i] + e;
        double ylo = ay.valid(lo) ? PY(lo) : ph + 10, yhi = PY(hi), cap = 2.5 * s;
        area.line(x, ylo, x, yhi, sr.color, lw_scale);
        area.line(x - cap, ylo, x + cap, ylo, sr.color, lw_scale);
        area.line(x - cap, yhi, x + cap, yhi, sr.color, lw_scale);
      }
      if (sr.width > 0 && i + 1 < sr.y.size() && ok(sr, i + 1)) {
        double x1 = PX(sr.x[i + 1]), y1 = PY(sr.y[i + 1]);
        if (sr.dashed) area.dashed_line(x, y, x1, y1, sr.color, lw, 4.0 * s, 3.0 * s);
        else area.line(x, y, x1, y1, sr.color, lw);
      }
      if (sr.markers) area.circle(x, y, 1.5 * s + 0.5, sr.color);
    }
  }

  // Reference lines with their labels near the top / left end.
  for (auto& r : refs_) {
    Axis& a = r.vertical ? ax : ay;
    if (!a.valid(r.value)) continue;
    if (r.vertical) {
      double x = PX(r.value);
      area.dashed_line(x, 0, x, ph - 1, r.color, lw_scale, 5.0 * s, 3.0 * s);
      area.text(int(x) + 2 * s, 2 * s, r.label, r.color, s);
    } else {
      double y = PY(r.value);
      area.dashed_line(0, y, pw - 1, y, r.color, lw_scale, 5.0 * s, 3.0 * s);
      area.text(3 * s, int(y) - ch - 2 * s, r.label, r.color, s);
    }
  }

  // Legend box in a corner of the plot area.
  int name_w = 0, n = 0;
  for (auto& sr : series_)
    if (!sr.name.empty()) name_w = std::max(name_w, Canvas::text_width(sr.name, s)), ++n;
  if (n > 0 && legend_ != Legend::none) {
    int row_h = ch + 4 * s, sample = 14 * s;
    int bw = 4 * s + sample + 4 * s + name_w + 4 * s, bh = n * row_h + 4 * s;
    bool at_left = legend_ == Legend::top_left || legend_ == Legend::bottom_left;
    bool at_bottom = legend_ == Legend::bottom_left || legend_ == Legend::bottom_right;
    int bx = at_left ? 4 * s : pw - bw - 4 * s, by = at_bottom ? ph - bh - 4 * s : 4 * s;
    area.fill_rect(bx, by, bw, bh, colors::white, 0.9);
    area.rect(bx, by, bw, bh, Rgb{190, 190, 190});
    int row = 0;
    for (auto& sr : series_) {
      if (sr.name.empty()) continue;
      int ty = by + 4 * s + row++ * row_h, cy = ty + ch / 2;
      int sx = bx + 4 * s;
      if (sr.width > 0) area.line(sx, cy, sx + sample, cy, sr.color, sr.width * lw_scale);
      if (sr.markers) area.circle(sx + sample / 2.0, cy, 1.5 * s + 0.5, sr.color);
      if (!sr.band_lo.empty() && sr.width == 0) area.fill_rect(sx, ty, sample, ch, sr.color, 0.3);
      area.text(sx + sample + 4 * s, ty, sr.name, colors::dark_grey, s);
    }
  }

  c.blit(area, px0, py0);
  c.rect(px0 - 1, py0 - 1, pw + 2, ph + 2, Rgb{150, 150, 150});

  // Tick marks and labels outside the box.
  const Rgb ink = colors::dark_grey;
  for (double t : ax.ticks) {
    int x = px0 + int(std::round(PX(t)));
    c.line(x, py0 + ph, x, py0 + ph + 3 * s - 1, Rgb{150, 150, 150}, 1);
    std::string lab = ax.label(t);
    c.text(x - Canvas::text_width(lab, s) / 2, py0 + ph + 5 * s, lab, ink, s);
  }
  for (double t : ay.ticks) {
    int y = py0 + int(std::round(PY(t)));
    c.line(px0 - 3 * s, y, px0 - 1, y, Rgb{150, 150, 150}, 1);
    std::string lab = ay.label(t);
    c.text(px0 - 5 * s - Canvas::text_width(lab, s), y - ch / 2, lab, ink, s);
  }
  if (!xlabel_.empty())
    c.text(px0 + pw / 2 - Canvas::text_width(xlabel_, s) / 2, py0 + ph + 5 * s + ch + pad, xlabel_, ink, s);
  if (!ylabel_.empty())
    c.text_up(X + pad, py0 + ph / 2 - Canvas::text_width(ylabel_, s) / 2, ylabel_, ink, s);
  if (!title_.empty()) {  // drawn twice, 1 px apart: a cheap bold face
    int tx = px0 + pw / 2 - Canvas::text_width(title_, s) / 2;
    c.text(tx, Y + pad, title_, colors::black, s);
    c.text(tx + 1, Y + pad, title_, colors::black, s);
  }
}

Canvas LinePlot::render(int width, int height) const {
  Canvas c(width, height, colors::white);
  draw(c, 0, 0, width, height);
  return c;
}

void LinePlot::save_png(const std::string& path, int width, int height) const {
  render(width, height).save_png(path);
}

// ---------------------------------------------------------------- HeatMap

GridMap HeatMap::draw(Canvas& c, int X, int Y, int W, int H) const {
  IK_CHECK(rows > 0 && cols > 0 && values.size() == size_t(rows) * cols,
           "heat map: {} values for a {}x{} grid", values.size(), rows, cols);
  const int s = std::clamp(std::min(W / 300, H / 250), 1, 4);
  const int ch = Canvas::text_height(s), pad = 6 * s;

  double lo = vmin, hi = vmax;
  double dlo = INFINITY, dhi = -INFINITY;
  for (double v : values)
    if (std::isfinite(v)) dlo = std::min(dlo, v), dhi = std::max(dhi, v);
  if (!std::isfinite(lo)) lo = std::isfinite(dlo) ? dlo : 0;
  if (!std::isfinite(hi)) hi = std::isfinite(dhi) ? dhi : 1;
  auto frac = [&](double v) { return hi > lo ? (v - lo) / (hi - lo) : 0.5; };

  // Colour bar width: bar + tick labels + optional rotated label.
  std::vector<double> ticks = nice_ticks(lo, hi, 5);
  double step = ticks.size() > 1 ? ticks[1] - ticks[0] : 0;
  int label_w = 0;
  for (double t : ticks) label_w = std::max(label_w, Canvas::text_width(tick_label(t, step), s));
  int bar_w = 12 * s;
  int cb_total = colorbar ? pad + bar_w + 4 * s + label_w + (colorbar_label.empty() ? 0 : pad + ch) : 0;

  int top = pad + (title.empty() ? 0 : ch + pad);
  double gw = W - 2 * pad - cb_total, gh = H - top - pad;
  IK_CHECK(gw > cols && gh > rows, "heat map box {}x{} is too small for {}x{} cells", W, H, rows, cols);
  GridMap g;
  g.rows = rows, g.cols = cols;
  g.cell_w = gw / cols, g.cell_h = gh / rows;
  if (square_cells) g.cell_w = g.cell_h = std::min(g.cell_w, g.cell_h);
  g.x0 = X + pad + (gw - g.cell_w * cols) / 2;
  g.y0 = Y + top + (gh - g.cell_h * rows) / 2;

  for (int r = 0; r < rows; ++r)
    for (int k = 0; k < cols; ++k) {
      double v = values[size_t(r) * cols + k];
      Rgb col = std::isfinite(v) ? viridis(frac(v)) : missing;
      c.fill_rect(g.left(k), g.top(r), g.right(k) - g.left(k), g.bottom(r) - g.top(r), col);
    }
  if (cell_borders) {
    for (int k = 1; k < cols; ++k) c.fill_rect(g.left(k), g.top(0), 1, g.bottom(rows - 1) - g.top(0), colors::white);
    for (int r = 1; r < rows; ++r) c.fill_rect(g.left(0), g.top(r), g.right(cols - 1) - g.left(0), 1, colors::white);
  }

  if (!title.empty()) {
    int tx = X + W / 2 - Canvas::text_width(title, s) / 2;
    c.text(tx, Y + pad, title, colors::black, s);
    c.text(tx + 1, Y + pad, title, colors::black, s);
  }
  if (colorbar) {
    int bx = int(g.x0 + g.cell_w * cols) + pad, by = g.top(0), bh = g.bottom(rows - 1) - by;
    for (int j = 0; j < bh; ++j) c.fill_rect(bx, by + j, bar_w, 1, viridis(1.0 - j / std::max(1.0, bh - 1.0)));
    c.rect(bx - 1, by - 1, bar_w + 2, bh + 2, Rgb{150, 150, 150});
    for (double t : ticks) {
      int y = by + int(std::round((1 - frac(t)) * (bh - 1)));
      c.line(bx + bar_w, y, bx + bar_w + 2 * s, y, colors::dark_grey, 1);
      c.text(bx + bar_w + 4 * s, y - ch / 2, tick_label(t, step), colors::dark_grey, s);
    }
    if (!colorbar_label.empty())
      c.text_up(bx + bar_w + 4 * s + label_w + pad, by + bh / 2 - Canvas::text_width(colorbar_label, s) / 2,
                colorbar_label, colors::dark_grey, s);
  }
  return g;
}

void HeatMap::save_png(const std::string& path, int width, int height) const {
  Canvas c(width, height, colors::white);
  draw(c, 0, 0, width, height);
  c.save_png(path);
}

}  // namespace ik
