#pragma once
// ik::Canvas: a small RGB8 raster for study figures (no Python needed).
// Coordinates are pixels, x to the right, y down, (0,0) the top-left pixel. Lines, circles and
// arrows take double coordinates and are anti-aliased; a pixel's centre is at its integer
// coordinates, so a 1-px line at y = 10 covers exactly row 10. Everything is clipped.
#include <cstdint>
#include <string>
#include <vector>

namespace ik {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb&) const = default;
};

namespace colors {
inline constexpr Rgb white{255, 255, 255};
inline constexpr Rgb black{0, 0, 0};
inline constexpr Rgb dark_grey{60, 60, 60};
inline constexpr Rgb grey{128, 128, 128};
inline constexpr Rgb light_grey{225, 225, 225};
inline constexpr Rgb red{214, 39, 40};
}  // namespace colors

Rgb palette(int i);      // tab10 colours, cycling: blue, orange, green, red, purple, ...
Rgb viridis(double t);   // perceptual colormap, t in [0,1] (clamped; NaN -> grey)
Rgb mix(Rgb a, Rgb b, double t);  // (1-t)*a + t*b

class Canvas {
 public:
  Canvas() = default;
  Canvas(int width, int height, Rgb background = colors::white);
  static Canvas load_png(const std::string& path);  // any PNG, converted to RGB8

  int width() const { return w_; }
  int height() const { return h_; }
  const std::vector<uint8_t>& pixels() const { return px_; }  // row-major RGB, 3 bytes/pixel
  Rgb get(int x, int y) const;                 // x,y must be inside
  void set(int x, int y, Rgb c);               // ignored outside
  void blend(int x, int y, Rgb c, double alpha);  // alpha in [0,1], ignored outside

  void fill(Rgb c);
  void fill_rect(int x, int y, int w, int h, Rgb c);
  void fill_rect(int x, int y, int w, int h, Rgb c, double alpha);
  void rect(int x, int y, int w, int h, Rgb c, int thickness = 1);  // outline, inside the box
  void line(double x0, double y0, double x1, double y1, Rgb c, double thickness = 1.0);
  void dashed_line(double x0, double y0, double x1, double y1, Rgb c, double thickness = 1.0,
                   double dash = 6.0, double gap = 4.0);
  void circle(double cx, double cy, double radius, Rgb c);  // filled
  void triangle(double x0, double y0, double x1, double y1, double x2, double y2, Rgb c);  // filled
  void arrow(double x0, double y0, double x1, double y1, Rgb c, double thickness = 1.5,
             double head = 0.0);  // head length in px; 0 -> 4*thickness+4

  // Text with the built-in 5x7 bitmap font (ASCII 32..126, others drawn as '?').
  // Each character occupies a 6x8 cell times `scale`; (x,y) is the top-left corner.
  void text(int x, int y, const std::string& s, Rgb c, int scale = 1);
  // Rotated 90 degrees counter-clockwise (reads bottom to top, for y-axis labels);
  // (x,y) is the top-left of the rotated box, which is text_height wide and text_width tall.
  void text_up(int x, int y, const std::string& s, Rgb c, int scale = 1);
  static int text_width(const std::string& s, int scale = 1);  // ink width, no trailing gap
  static int text_height(int scale = 1) { return 7 * scale; }  // ink height

  void blit(const Canvas& src, int x, int y);  // copy src with its top-left at (x,y), clipped
  void save_png(const std::string& path) const;  // throws ik::Error naming the path

 private:
  int w_ = 0, h_ = 0;
  std::vector<uint8_t> px_;
};

// Animated GIF (looping) from equally sized frames; delay in 1/100 s per frame.
// Colours are quantized to a fixed 256-colour palette (6x6x6 cube + 40 greys), so pure
// black/white/greys and cube colours (components in {0,51,...,255}) are exact.
void save_gif(const std::string& path, const std::vector<Canvas>& frames, int delay_cs = 10);
uint8_t gif_palette_index(Rgb c);  // the quantizer save_gif uses
Rgb gif_palette_color(int index);

// Built-in font: 5 bytes per glyph (columns, bit 0 = top row) for ASCII 32..126.
const uint8_t* font5x7_glyph(char ch);

}  // namespace ik
