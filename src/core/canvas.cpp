// Canvas drawing primitives, colours and PNG I/O (libpng's simplified API).
// Anti-aliasing is done the simple way: each shape is a distance field and a pixel's
// coverage is clamp(edge_distance + 0.5, 0, 1), which is exact enough for 1-4 px strokes.
#include "core/canvas.hpp"

#include <png.h>

#include <algorithm>
#include <cmath>

#include "core/error.hpp"

namespace ik {

Rgb palette(int i) {
  static const Rgb tab10[10] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},
                                {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127},
                                {188, 189, 34}, {23, 190, 207}};
  return tab10[((i % 10) + 10) % 10];
}

static uint8_t to_byte(double v) {
  return static_cast<uint8_t>(std::lround(std::clamp(v, 0.0, 1.0) * 255.0));
}

// Polynomial fit of matplotlib's viridis (Matt Zucker's 6th-order fit): max error ~1/255.
Rgb viridis(double t) {
  if (!std::isfinite(t)) return colors::grey;
  t = std::clamp(t, 0.0, 1.0);
  static const double c[7][3] = {{0.2777273272234177, 0.005407344544966578, 0.3340998053353061},
                                 {0.1050930431085774, 1.404613529898575, 1.384590162594685},
                                 {-0.3308618287255563, 0.214847559468213, 0.09509516302823659},
                                 {-4.634230498983486, -5.799100973351585, -19.33244095627987},
                                 {6.228269936347081, 14.17993336680509, 56.69055260068105},
                                 {4.776384997670288, -13.74514537774601, -65.35303263337234},
                                 {-5.435455855934631, 4.645852612178535, 26.3124352495832}};
  double v[3];
  for (int k = 0; k < 3; ++k) {
    double acc = c[6][k];
    for (int i = 5; i >= 0; --i) acc = acc * t + c[i][k];
    v[k] = acc;
  }
  return {to_byte(v[0]), to_byte(v[1]), to_byte(v[2])};
}

Rgb mix(Rgb a, Rgb b, double t) {
  auto m = [t](uint8_t x, uint8_t y) {
    return static_cast<uint8_t>(std::lround(x + (double(y) - x) * std::clamp(t, 0.0, 1.0)));
  };
  return {m(a.r, b.r), m(a.g, b.g), m(a.b, b.b)};
}

Canvas::Canvas(int width, int height, Rgb background) : w_(width), h_(height) {
  IK_CHECK(width > 0 && height > 0 && width <= 1 << 15 && height <= 1 << 15,
           "canvas size {}x{} is out of range", width, height);
  px_.resize(size_t(w_) * h_ * 3);
  fill(background);
}

Rgb Canvas::get(int x, int y) const {
  const uint8_t* p = &px_[(size_t(y) * w_ + x) * 3];
  return {p[0], p[1], p[2]};
}

void Canvas::set(int x, int y, Rgb c) {
  if (x < 0 || y < 0 || x >= w_ || y >= h_) return;
  uint8_t* p = &px_[(size_t(y) * w_ + x) * 3];
  p[0] = c.r, p[1] = c.g, p[2] = c.b;
}

void Canvas::blend(int x, int y, Rgb c, double alpha) {
  if (x < 0 || y < 0 || x >= w_ || y >= h_ || !(alpha > 0)) return;
  if (alpha >= 1) return set(x, y, c);
  set(x, y, mix(get(x, y), c, alpha));
}

void Canvas::fill(Rgb c) {
  for (size_t i = 0; i < px_.size(); i += 3) px_[i] = c.r, px_[i + 1] = c.g, px_[i + 2] = c.b;
}

void Canvas::fill_rect(int x, int y, int w, int h, Rgb c) { fill_rect(x, y, w, h, c, 1.0); }

void Canvas::fill_rect(int x, int y, int w, int h, Rgb c, double alpha) {
  int x0 = std::max(x, 0), y0 = std::max(y, 0);
  int x1 = std::min(x + w, w_), y1 = std::min(y + h, h_);
  for (int j = y0; j < y1; ++j)
    for (int i = x0; i < x1; ++i) blend(i, j, c, alpha);
}

void Canvas::rect(int x, int y, int w, int h, Rgb c, int t) {
  fill_rect(x, y, w, t, c);
  fill_rect(x, y + h - t, w, t, c);
  fill_rect(x, y, t, h, c);
  fill_rect(x + w - t, y, t, h, c);
}

// Thick anti-aliased segment: coverage from the distance of each pixel centre to the segment.
void Canvas::line(double x0, double y0, double x1, double y1, Rgb c, double thickness) {
  if (!std::isfinite(x0) || !std::isfinite(y0) || !std::isfinite(x1) || !std::isfinite(y1)) return;
  double hw = std::max(thickness, 1.0) / 2;
  int xa = std::max(0, int(std::floor(std::min(x0, x1) - hw - 1)));
  int xb = std::min(w_ - 1, int(std::ceil(std::max(x0, x1) + hw + 1)));
  int ya = std::max(0, int(std::floor(std::min(y0, y1) - hw - 1)));
  int yb = std::min(h_ - 1, int(std::ceil(std::max(y0, y1) + hw + 1)));
  double dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
  for (int y = ya; y <= yb; ++y) {
    for (int x = xa; x <= xb; ++x) {
      double t = len2 > 0 ? std::clamp(((x - x0) * dx + (y - y0) * dy) / len2, 0.0, 1.0) : 0.0;
      double ex = x - (x0 + t * dx), ey = y - (y0 + t * dy);
      double cover = hw + 0.5 - std::sqrt(ex * ex + ey * ey);
      if (cover > 0) blend(x, y, c, std::min(cover, 1.0));
    }
  }
}

void Canvas::dashed_line(double x0, double y0, double x1, double y1, Rgb c, double thickness,
                         double dash, double gap) {
  double len = std::hypot(x1 - x0, y1 - y0);
  if (!(len > 0)) return;
  double ux = (x1 - x0) / len, uy = (y1 - y0) / len;
  for (double s = 0; s < len; s += dash + gap) {
    double e = std::min(s + dash, len);
    line(x0 + ux * s, y0 + uy * s, x0 + ux * e, y0 + uy * e, c, thickness);
  }
}

void Canvas::circle(double cx, double cy, double r, Rgb c) {
  int xa = std::max(0, int(std::floor(cx - r - 1))), xb = std::min(w_ - 1, int(std::ceil(cx + r + 1)));
  int ya = std::max(0, int(std::floor(cy - r - 1))), yb = std::min(h_ - 1, int(std::ceil(cy + r + 1)));
  for (int y = ya; y <= yb; ++y)
    for (int x = xa; x <= xb; ++x) {
      double cover = r + 0.5 - std::hypot(x - cx, y - cy);
      if (cover > 0) blend(x, y, c, std::min(cover, 1.0));
    }
}

// Filled triangle: the coverage is the signed distance to the nearest edge (inside > 0).
void Canvas::triangle(double x0, double y0, double x1, double y1, double x2, double y2, Rgb c) {
  double area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0);
  if (area == 0 || !std::isfinite(area)) return;
  double px[3] = {x0, x1, x2}, py[3] = {y0, y1, y2};
  int xa = std::max(0, int(std::floor(std::min({x0, x1, x2}) - 1)));
  int xb = std::min(w_ - 1, int(std::ceil(std::max({x0, x1, x2}) + 1)));
  int ya = std::max(0, int(std::floor(std::min({y0, y1, y2}) - 1)));
  int yb = std::min(h_ - 1, int(std::ceil(std::max({y0, y1, y2}) + 1)));
  double sign = area > 0 ? 1 : -1;
  for (int y = ya; y <= yb; ++y)
    for (int x = xa; x <= xb; ++x) {
      double inside = 1e9;
      for (int k = 0; k < 3; ++k) {
        double ax = px[k], ay = py[k], bx = px[(k + 1) % 3], by = py[(k + 1) % 3];
        double d = sign * ((bx - ax) * (y - ay) - (by - ay) * (x - ax)) / std::hypot(bx - ax, by - ay);
        inside = std::min(inside, d);
      }
      double cover = inside + 0.5;
      if (cover > 0) blend(x, y, c, std::min(cover, 1.0));
    }
}

void Canvas::arrow(double x0, double y0, double x1, double y1, Rgb c, double thickness, double head) {
  double len = std::hypot(x1 - x0, y1 - y0);
  if (!(len > 0)) return;
  if (head <= 0) head = 4 * thickness + 4;
  head = std::min(head, len);
  double ux = (x1 - x0) / len, uy = (y1 - y0) / len;
  double bx = x1 - ux * head, by = y1 - uy * head;  // base of the head
  line(x0, y0, bx, by, c, thickness);
  double half = head * 0.45;
  triangle(x1, y1, bx - uy * half, by + ux * half, bx + uy * half, by - ux * half, c);
}

int Canvas::text_width(const std::string& s, int scale) {
  return s.empty() ? 0 : (6 * int(s.size()) - 1) * scale;
}

void Canvas::text(int x, int y, const std::string& s, Rgb c, int scale) {
  for (size_t k = 0; k < s.size(); ++k) {
    const uint8_t* g = font5x7_glyph(s[k]);
    int gx = x + int(k) * 6 * scale;
    for (int col = 0; col < 5; ++col)
      for (int row = 0; row < 7; ++row)
        if (g[col] >> row & 1) fill_rect(gx + col * scale, y + row * scale, scale, scale, c);
  }
}

void Canvas::text_up(int x, int y, const std::string& s, Rgb c, int scale) {
  int bottom = y + text_width(s, scale) - 1;  // the first character sits at the bottom
  for (size_t k = 0; k < s.size(); ++k) {
    const uint8_t* g = font5x7_glyph(s[k]);
    int gy = bottom - int(k) * 6 * scale;
    for (int col = 0; col < 5; ++col)
      for (int row = 0; row < 7; ++row)
        if (g[col] >> row & 1) fill_rect(x + row * scale, gy - (col + 1) * scale + 1, scale, scale, c);
  }
}

void Canvas::blit(const Canvas& src, int x, int y) {
  for (int j = 0; j < src.h_; ++j)
    for (int i = 0; i < src.w_; ++i) set(x + i, y + j, src.get(i, j));
}

void Canvas::save_png(const std::string& path) const {
  IK_CHECK(w_ > 0 && h_ > 0, "cannot write PNG '{}': the canvas is empty", path);
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  img.width = w_;
  img.height = h_;
  img.format = PNG_FORMAT_RGB;
  if (!png_image_write_to_file(&img, path.c_str(), 0, px_.data(), w_ * 3, nullptr)) {
    std::string why = img.message;
    png_image_free(&img);
    fail("cannot write PNG '{}': {}", path, why);
  }
}

Canvas Canvas::load_png(const std::string& path) {
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&img, path.c_str()))
    fail("cannot read PNG '{}': {}", path, img.message);
  img.format = PNG_FORMAT_RGB;
  Canvas c(int(img.width), int(img.height));
  if (!png_image_finish_read(&img, nullptr, c.px_.data(), c.w_ * 3, nullptr)) {
    std::string why = img.message;
    png_image_free(&img);
    fail("cannot read PNG '{}': {}", path, why);
  }
  return c;
}

}  // namespace ik
