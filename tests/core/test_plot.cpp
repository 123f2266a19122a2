// Tests for core/canvas + core/plot: PNG round trip through libpng, font rendering, tick
// choice, and the GIF writer checked by an independent LZW decoder written here.
#include <gtest/gtest.h>
#include <png.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>

#include "core/canvas.hpp"
#include "core/error.hpp"
#include "core/plot.hpp"

namespace {

std::string tmp(const std::string& name) { return ::testing::TempDir() + "ik_test_plot_" + name; }

// Reads a PNG with libpng directly (not through Canvas) as RGB8.
struct Image {
  int w = 0, h = 0;
  std::vector<uint8_t> px;
  ik::Rgb at(int x, int y) const {
    const uint8_t* p = &px[(size_t(y) * w + x) * 3];
    return {p[0], p[1], p[2]};
  }
};

Image read_png(const std::string& path) {
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  EXPECT_TRUE(png_image_begin_read_from_file(&img, path.c_str())) << path;
  img.format = PNG_FORMAT_RGB;
  Image out;
  out.w = int(img.width), out.h = int(img.height);
  out.px.resize(PNG_IMAGE_SIZE(img));
  EXPECT_TRUE(png_image_finish_read(&img, nullptr, out.px.data(), 0, nullptr));
  return out;
}

int count_not(const Image& im, ik::Rgb bg, int x0, int y0, int x1, int y1) {
  int n = 0;
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) n += !(im.at(x, y) == bg);
  return n;
}

}  // namespace

TEST(Canvas, PngRoundTripKeepsSizeAndPixels) {
  ik::Canvas c(40, 30, ik::colors::white);
  c.fill_rect(5, 6, 10, 8, ik::Rgb{10, 200, 30});
  c.set(39, 29, ik::Rgb{1, 2, 3});
  c.save_png(tmp("rect.png"));
  Image im = read_png(tmp("rect.png"));
  ASSERT_EQ(im.w, 40);
  ASSERT_EQ(im.h, 30);
  EXPECT_EQ(im.at(5, 6), (ik::Rgb{10, 200, 30}));
  EXPECT_EQ(im.at(14, 13), (ik::Rgb{10, 200, 30}));
  EXPECT_EQ(im.at(15, 13), ik::colors::white);  // just outside: w=10 covers x=5..14
  EXPECT_EQ(im.at(5, 14), ik::colors::white);
  EXPECT_EQ(im.at(39, 29), (ik::Rgb{1, 2, 3}));
  EXPECT_EQ(count_not(im, ik::colors::white, 0, 0, 40, 30), 10 * 8 + 1);
}

TEST(Canvas, SavePngErrorNamesThePath) {
  ik::Canvas c(4, 4);
  try {
    c.save_png("/nonexistent-dir/x.png");
    FAIL() << "expected ik::Error";
  } catch (const ik::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/x.png"), std::string::npos) << e.what();
  }
}

TEST(Canvas, HorizontalLineIsCrispAndClipped) {
  ik::Canvas c(20, 10);
  c.line(-5, 4, 30, 4, ik::colors::black, 1.0);
  for (int x = 0; x < 20; ++x) {
    EXPECT_EQ(c.get(x, 4), ik::colors::black);
    EXPECT_EQ(c.get(x, 3), ik::colors::white);
    EXPECT_EQ(c.get(x, 5), ik::colors::white);
  }
}

TEST(Canvas, FilledCircleCoversItsDisc) {
  ik::Canvas c(41, 41);
  c.circle(20, 20, 10, ik::colors::black);
  int inside = 0;
  for (int y = 0; y < 41; ++y)
    for (int x = 0; x < 41; ++x) {
      double d = std::hypot(x - 20, y - 20);
      if (d < 9.4) {
        EXPECT_EQ(c.get(x, y), ik::colors::black) << x << "," << y;
      }
      if (d > 10.6) {
        EXPECT_EQ(c.get(x, y), ik::colors::white) << x << "," << y;
      }
      inside += c.get(x, y) == ik::colors::black;
    }
  EXPECT_NEAR(inside, M_PI * 100, 40);
}

TEST(Canvas, TextInksOnlyInsideItsBox) {
  ik::Canvas c(100, 40);
  const std::string s = "Hello 42";
  for (int scale : {1, 3}) {
    c.fill(ik::colors::white);
    c.text(5, 5, s, ik::colors::black, scale);
    int w = ik::Canvas::text_width(s, scale), h = ik::Canvas::text_height(scale);
    EXPECT_EQ(w, (6 * 8 - 1) * scale);
    int in = 0, out = 0;
    for (int y = 0; y < 40; ++y)
      for (int x = 0; x < 100; ++x) {
        bool ink = c.get(x, y) == ik::colors::black;
        bool box = x >= 5 && x < 5 + w && y >= 5 && y < 5 + h;
        (box ? in : out) += ink;
      }
    if (scale == 1) {
      EXPECT_GT(in, 60);
      EXPECT_EQ(out, 0);
    }
  }
  // 'H' is two full columns and a middle bar: check the exact glyph at scale 1.
  c.fill(ik::colors::white);
  c.text(0, 0, "H", ik::colors::black, 1);
  for (int y = 0; y < 7; ++y) {
    EXPECT_EQ(c.get(0, y), ik::colors::black);
    EXPECT_EQ(c.get(4, y), ik::colors::black);
    EXPECT_EQ(c.get(2, y) == ik::colors::black, y == 3);
  }
}

TEST(Canvas, VerticalTextIsTheRotatedGlyph) {
  ik::Canvas a(20, 20), b(20, 20);
  a.text(0, 0, "L", ik::colors::black);
  b.text_up(0, 0, "L", ik::colors::black);  // rotate CCW: a(x, y) -> b(y, 4 - x)
  for (int y = 0; y < 7; ++y)
    for (int x = 0; x < 5; ++x) EXPECT_EQ(a.get(x, y), b.get(y, 4 - x)) << x << "," << y;
}

TEST(Canvas, BlitCopiesAndClips) {
  ik::Canvas big(10, 10), small(4, 4, ik::Rgb{9, 9, 9});
  big.blit(small, 8, -2);
  EXPECT_EQ(big.get(8, 0), (ik::Rgb{9, 9, 9}));
  EXPECT_EQ(big.get(9, 1), (ik::Rgb{9, 9, 9}));
  EXPECT_EQ(big.get(9, 2), ik::colors::white);
  EXPECT_EQ(big.get(7, 0), ik::colors::white);
}

TEST(Colors, ViridisMatchesMatplotlib) {
  // matplotlib's viridis at 0, 0.5, 1 (its 256-entry table, entries 0, 128, 255).
  auto near = [](ik::Rgb a, ik::Rgb b) { return std::abs(a.r - b.r) <= 4 && std::abs(a.g - b.g) <= 4 && std::abs(a.b - b.b) <= 4; };
  EXPECT_TRUE(near(ik::viridis(0.0), {68, 1, 84}));
  EXPECT_TRUE(near(ik::viridis(128 / 255.0), {33, 145, 140}));
  EXPECT_TRUE(near(ik::viridis(1.0), {253, 231, 37}));
  EXPECT_EQ(ik::palette(0), (ik::Rgb{31, 119, 180}));
  EXPECT_EQ(ik::palette(11), ik::palette(1));
}

TEST(Ticks, LinearRangesGiveRoundSteps) {
  std::vector<double> t = ik::nice_ticks(0, 1);
  std::vector<double> want = {0, 0.2, 0.4, 0.6, 0.8, 1.0};
  ASSERT_EQ(t.size(), want.size());
  for (size_t i = 0; i < t.size(); ++i) EXPECT_NEAR(t[i], want[i], 1e-12);
  t = ik::nice_ticks(-3.7, 12.1);
  want = {0 - 2, 0, 2, 4, 6, 8, 10, 12};  // step 2 (15.8 / 6 = 2.6 -> 2)
  ASSERT_EQ(t.size(), want.size());
  for (size_t i = 0; i < t.size(); ++i) EXPECT_NEAR(t[i], want[i], 1e-12);
  t = ik::nice_ticks(2.1, 2.6);  // step 0.1
  ASSERT_EQ(t.size(), 6u);
  EXPECT_NEAR(t.front(), 2.1, 1e-12);
  EXPECT_NEAR(t.back(), 2.6, 1e-12);
  t = ik::nice_ticks(0, 1000);
  EXPECT_EQ(t, (std::vector<double>{0, 200, 400, 600, 800, 1000}));
}

TEST(Ticks, LogAxisGivesDecades) {
  std::vector<double> t = ik::log_ticks(1e-5, 1);
  std::vector<double> want = {1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1};
  ASSERT_EQ(t.size(), want.size());
  for (size_t i = 0; i < t.size(); ++i) EXPECT_DOUBLE_EQ(t[i], want[i]);
  t = ik::log_ticks(1, 1e12);  // 13 decades -> every 3rd
  EXPECT_EQ(t.size(), 5u);
  EXPECT_DOUBLE_EQ(t[1], 1e3);
  t = ik::log_ticks(2, 8);  // less than two decades: linear ticks
  EXPECT_EQ(t.front(), 2);
  EXPECT_EQ(t.back(), 8);
}

TEST(Ticks, Labels) {
  EXPECT_EQ(ik::tick_label(0.6000000000000001, 0.2), "0.6");
  EXPECT_EQ(ik::tick_label(3, 1), "3");
  EXPECT_EQ(ik::tick_label(1e-17, 0.5), "0.0");
  EXPECT_EQ(ik::tick_label(0, 1), "0");
  EXPECT_EQ(ik::tick_label(0.25, 0.05), "0.25");
  EXPECT_EQ(ik::tick_label(1e-5, 1e-5), "1e-5");
  EXPECT_EQ(ik::tick_label(2e6, 1e6), "2e6");
  EXPECT_EQ(ik::tick_label(0.01, 0.01), "0.01");
}

TEST(LinePlot, WritesPngWithSeriesColour) {
  ik::LinePlot p("test");
  p.xlabel("x").ylabel("y");
  std::vector<double> x, y;
  for (int i = 0; i <= 50; ++i) x.push_back(i), y.push_back(i);
  y[10] = NAN;  // skipped, must not throw or poison the range
  p.add("line", x, y).width = 4;
  p.hline(25, "h");
  p.save_png(tmp("line.png"), 400, 300);
  Image im = read_png(tmp("line.png"));
  ASSERT_EQ(im.w, 400);
  ASSERT_EQ(im.h, 300);
  int blue = 0;
  for (int yy = 0; yy < im.h; ++yy)
    for (int xx = 0; xx < im.w; ++xx) blue += im.at(xx, yy) == ik::palette(0);
  EXPECT_GT(blue, 200);  // the thick diagonal is there
  EXPECT_EQ(im.at(0, 0), ik::colors::white);
  EXPECT_THROW(p.add("bad", {1, 2}, {1}), ik::Error);
}

TEST(HeatMap, CellsGetColormapColoursAndMappingIsConsistent) {
  ik::HeatMap hm;
  hm.rows = 2, hm.cols = 3;
  hm.values = {0, 1, 2, 3, 4, NAN};
  ik::Canvas c(300, 200);
  ik::GridMap g = hm.draw(c, 0, 0, 300, 200);
  EXPECT_EQ(g.rows, 2);
  EXPECT_NEAR(g.cell_w, g.cell_h, 1e-9);
  EXPECT_EQ(c.get(int(g.cx(0)), int(g.cy(0))), ik::viridis(0));
  EXPECT_EQ(c.get(int(g.cx(1)), int(g.cy(1))), ik::viridis(1));  // value 4 = max
  EXPECT_EQ(c.get(int(g.cx(2)), int(g.cy(1))), hm.missing);
  EXPECT_EQ(c.get(g.left(1), g.top(0)), ik::viridis(0.25));
  EXPECT_EQ(c.get(g.right(1) - 1, g.bottom(0) - 1), ik::viridis(0.25));
}

// ---------------------------------------------------------------- GIF, decoded independently

namespace {

struct Gif {
  int w = 0, h = 0, delay = -1;
  std::vector<ik::Rgb> palette;
  std::vector<std::vector<uint8_t>> frames;  // palette indices
};

std::vector<uint8_t> lzw_decode(const std::vector<uint8_t>& data, int min_size, size_t n_pixels) {
  const int clear = 1 << min_size, eoi = clear + 1;
  std::vector<int> prefix(4096, -1), suffix(4096, 0);
  for (int i = 0; i < clear; ++i) suffix[i] = i;
  auto str = [&](int code) {
    std::vector<uint8_t> s;
    for (; code >= 0; code = prefix[code]) s.push_back(uint8_t(suffix[code]));
    return std::vector<uint8_t>(s.rbegin(), s.rend());
  };
  std::vector<uint8_t> out;
  int width = min_size + 1, next = eoi + 1, prev = -1;
  size_t bitpos = 0;
  while (bitpos + width <= data.size() * 8) {
    int code = 0;
    for (int b = 0; b < width; ++b, ++bitpos) code |= (data[bitpos / 8] >> (bitpos % 8) & 1) << b;
    if (code == clear) {
      width = min_size + 1, next = eoi + 1, prev = -1;
      for (int i = clear; i < 4096; ++i) prefix[i] = -1;
      continue;
    }
    if (code == eoi) break;
    std::vector<uint8_t> s;
    if (prev < 0) {
      s = str(code);
    } else {
      if (code < next) s = str(code);
      else if (code == next) s = str(prev), s.push_back(s[0]);
      else ADD_FAILURE() << "bad LZW code " << code;
      if (next < 4096) prefix[next] = prev, suffix[next] = s[0], ++next;
      if (next == (1 << width) && width < 12) ++width;
    }
    out.insert(out.end(), s.begin(), s.end());
    prev = code;
  }
  EXPECT_EQ(out.size(), n_pixels);
  return out;
}

Gif read_gif(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<uint8_t> b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  Gif g;
  EXPECT_EQ(std::string(b.begin(), b.begin() + 6), "GIF89a");
  auto u16 = [&](size_t i) { return b[i] | b[i + 1] << 8; };
  g.w = u16(6), g.h = u16(8);
  size_t p = 13;
  if (b[10] & 0x80) {
    int n = 2 << (b[10] & 7);
    for (int i = 0; i < n; ++i) g.palette.push_back({b[p + 3 * i], b[p + 3 * i + 1], b[p + 3 * i + 2]});
    p += 3 * n;
  }
  auto sub_blocks = [&](std::vector<uint8_t>* into) {
    while (b.at(p) != 0) {
      int n = b[p++];
      if (into) into->insert(into->end(), b.begin() + p, b.begin() + p + n);
      p += n;
    }
    ++p;
  };
  while (p < b.size()) {
    uint8_t tag = b[p++];
    if (tag == 0x3B) break;
    if (tag == 0x21) {
      uint8_t label = b[p++];
      if (label == 0xF9) g.delay = u16(p + 2);
      sub_blocks(nullptr);
    } else if (tag == 0x2C) {
      int fw = u16(p + 4), fh = u16(p + 6);
      EXPECT_EQ(b[p + 8] & 0x80, 0);  // no local palette
      p += 9;
      int min_size = b[p++];
      std::vector<uint8_t> data;
      sub_blocks(&data);
      g.frames.push_back(lzw_decode(data, min_size, size_t(fw) * fh));
    } else {
      ADD_FAILURE() << "unexpected GIF block " << int(tag);
      break;
    }
  }
  return g;
}

}  // namespace

TEST(Gif, FramesDecodeBackToTheDrawnColours) {
  std::vector<ik::Canvas> frames;
  const ik::Rgb red{255, 0, 0}, blue{0, 0, 255};
  for (int k = 0; k < 5; ++k) {
    ik::Canvas c(97, 61, ik::colors::white);
    c.fill_rect(k * 10, 5, 20, 20, red);
    c.text(2, 40, "frame " + std::to_string(k), ik::colors::black, 2);
    // noise-like pattern so the LZW dictionary fills up and clears at least once
    for (int y = 30; y < 61; ++y)
      for (int x = 60; x < 97; ++x)
        if ((x * 7 + y * 13 + k) % 5 == 0 || (x ^ y) % 3 == 0) c.set(x, y, blue);
    frames.push_back(c);
  }
  ik::save_gif(tmp("anim.gif"), frames, 25);
  Gif g = read_gif(tmp("anim.gif"));
  EXPECT_EQ(g.w, 97);
  EXPECT_EQ(g.h, 61);
  EXPECT_EQ(g.delay, 25);
  ASSERT_EQ(g.palette.size(), 256u);
  ASSERT_EQ(g.frames.size(), 5u);
  for (int k = 0; k < 5; ++k) {
    ASSERT_EQ(g.frames[k].size(), size_t(97 * 61));
    int mismatches = 0;
    for (int y = 0; y < 61; ++y)
      for (int x = 0; x < 97; ++x) mismatches += !(g.palette[g.frames[k][y * 97 + x]] == frames[k].get(x, y));
    EXPECT_EQ(mismatches, 0) << "frame " << k;  // only exact palette colours were drawn
  }
}

TEST(Gif, LargeFrameForcesDictionaryResets) {
  ik::Canvas c(320, 240);
  for (int y = 0; y < 240; ++y)
    for (int x = 0; x < 320; ++x) c.set(x, y, ik::gif_palette_color((x * 31 + y * 17 + x * y) % 256));
  ik::save_gif(tmp("big.gif"), {c}, 10);
  Gif g = read_gif(tmp("big.gif"));
  ASSERT_EQ(g.frames.size(), 1u);
  for (int y = 0; y < 240; y += 7)
    for (int x = 0; x < 320; x += 5) ASSERT_EQ(g.palette[g.frames[0][y * 320 + x]], c.get(x, y)) << x << "," << y;
  EXPECT_THROW(ik::save_gif(tmp("none.gif"), {}, 10), ik::Error);
}

// Writes the figures a human should look at (kept in the temp dir).
TEST(Figures, DemoFiguresRender) {
  ik::LinePlot p("Ising magnetisation");
  p.xlabel("temperature T").ylabel("|m|");
  for (int L : {8, 16, 32}) {
    std::vector<double> T, m, e, lo, hi;
    for (int i = 0; i <= 30; ++i) {
      double t = 1.5 + i * 0.05;
      double v = 1 / (1 + std::exp((t - 2.269) * L / 4.0));
      T.push_back(t), m.push_back(v), e.push_back(0.03), lo.push_back(v - 0.05), hi.push_back(v + 0.05);
    }
    auto& s = p.add("L=" + std::to_string(L), T, m);
    s.markers = true;
    if (L == 8) s.yerr = e;
    if (L == 32) s.band_lo = lo, s.band_hi = hi;
  }
  p.vline(2.269, "T_c = 2.269");
  p.save_png(tmp("demo_line.png"));

  ik::LinePlot q("MCMC variance");
  q.xlabel("steps").ylabel("variance").xscale(ik::Scale::log10).yscale(ik::Scale::log10);
  std::vector<double> n, v1, v2;
  for (int i = 0; i <= 40; ++i) {
    double s = std::pow(10.0, 1 + i * 0.1);
    n.push_back(s), v1.push_back(3 / s), v2.push_back(20 / std::sqrt(s));
  }
  q.add("MH", n, v1);
  q.add("Gibbs", n, v2).dashed = true;
  q.legend(ik::Legend::bottom_left);
  q.save_png(tmp("demo_log.png"));

  ik::HeatMap hm;
  hm.rows = 8, hm.cols = 10, hm.title = "value function", hm.colorbar_label = "V(s)";
  for (int r = 0; r < 8; ++r)
    for (int k = 0; k < 10; ++k) hm.values.push_back((r == 3 && k > 2 && k < 8) ? NAN : -std::hypot(r - 7, k - 9));
  hm.cell_borders = true;
  ik::Canvas c(600, 500);
  ik::GridMap g = hm.draw(c, 0, 0, 600, 500);
  int path[][2] = {{0, 0}, {1, 0}, {2, 1}, {2, 2}, {4, 3}, {5, 5}, {6, 8}, {7, 9}};
  for (int i = 0; i + 1 < 8; ++i)
    c.arrow(g.cx(path[i][1]), g.cy(path[i][0]), g.cx(path[i + 1][1]), g.cy(path[i + 1][0]), ik::colors::red, 3);
  c.circle(g.cx(0), g.cy(0), g.cell_w * 0.3, ik::colors::white);
  c.save_png(tmp("demo_heat.png"));
  SUCCEED();
}
