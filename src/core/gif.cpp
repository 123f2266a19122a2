// Animated GIF writer: GIF89a, one global 256-colour palette, LZW-compressed frames that loop.
// The palette is fixed (6x6x6 colour cube + 40 greys) so frames need no per-image analysis;
// plots are mostly white, grey and a few saturated colours, which this renders well enough.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

#include "core/canvas.hpp"
#include "core/error.hpp"

namespace ik {

static constexpr int kCubeSize = 216, kGreys = 40;

Rgb gif_palette_color(int i) {
  if (i < kCubeSize) return {uint8_t(i / 36 * 51), uint8_t(i / 6 % 6 * 51), uint8_t(i % 6 * 51)};
  uint8_t v = uint8_t(std::lround((i - kCubeSize) * 255.0 / (kGreys - 1)));
  return {v, v, v};
}

uint8_t gif_palette_index(Rgb c) {
  auto level = [](uint8_t v) { return (v + 25) / 51; };  // nearest of 0,51,...,255
  int cube = level(c.r) * 36 + level(c.g) * 6 + level(c.b);
  int grey = kCubeSize + int(std::lround((c.r + c.g + c.b) / 3.0 * (kGreys - 1) / 255.0));
  auto dist = [&](int i) {
    Rgb p = gif_palette_color(i);
    int dr = p.r - c.r, dg = p.g - c.g, db = p.b - c.b;
    return dr * dr + dg * dg + db * db;
  };
  return uint8_t(dist(grey) < dist(cube) ? grey : cube);
}

// Variable-width codes, packed least-significant bit first, into 255-byte sub-blocks.
struct GifBitWriter {
  std::vector<uint8_t> bytes;
  uint32_t acc = 0;
  int nbits = 0;
  void put(int code, int width) {
    acc |= uint32_t(code) << nbits;
    nbits += width;
    while (nbits >= 8) bytes.push_back(uint8_t(acc)), acc >>= 8, nbits -= 8;
  }
  void flush() {
    if (nbits > 0) bytes.push_back(uint8_t(acc));
    acc = 0, nbits = 0;
  }
};

// LZW with 8-bit literals: the dictionary is a trie, child[code * 256 + byte] = code or 0.
static std::vector<uint8_t> lzw_encode(const std::vector<uint8_t>& idx) {
  const int clear = 256, end = 257;
  std::vector<uint16_t> child(4096 * 256, 0);
  GifBitWriter out;
  int width = 9, last = end;  // last = the most recently assigned code
  out.put(clear, width);
  int prefix = idx[0];
  for (size_t i = 1; i < idx.size(); ++i) {
    int k = idx[i];
    if (uint16_t next = child[prefix * 256 + k]) {
      prefix = next;
      continue;
    }
    out.put(prefix, width);
    child[prefix * 256 + k] = uint16_t(++last);
    if (last >= (1 << width)) ++width;
    if (last == 4095) {  // dictionary full: start over
      out.put(clear, width);
      std::fill(child.begin(), child.end(), 0);
      width = 9, last = end;
    }
    prefix = k;
  }
  out.put(prefix, width);
  out.put(end, width);
  out.flush();
  return out.bytes;
}

void save_gif(const std::string& path, const std::vector<Canvas>& frames, int delay_cs) {
  IK_CHECK(!frames.empty(), "cannot write GIF '{}': no frames", path);
  int w = frames[0].width(), h = frames[0].height();
  for (auto& f : frames)
    IK_CHECK(f.width() == w && f.height() == h, "cannot write GIF '{}': frame sizes differ ({}x{} vs {}x{})",
             path, f.width(), f.height(), w, h);
  IK_CHECK(w > 0 && h > 0 && w < 65536 && h < 65536, "cannot write GIF '{}': bad size {}x{}", path, w, h);
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
  IK_CHECK(f, "cannot write GIF '{}': {}", path, std::strerror(errno));

  std::vector<uint8_t> b;
  auto u16 = [&](int v) { b.push_back(uint8_t(v)), b.push_back(uint8_t(v >> 8)); };
  auto str = [&](const char* s) { b.insert(b.end(), s, s + std::strlen(s)); };
  str("GIF89a");
  u16(w), u16(h);
  b.insert(b.end(), {0xF7, 0, 0});  // global colour table of 256 entries, 8 bits/colour
  for (int i = 0; i < 256; ++i) {
    Rgb c = gif_palette_color(i);
    b.insert(b.end(), {c.r, c.g, c.b});
  }
  b.insert(b.end(), {0x21, 0xFF, 11});  // NETSCAPE2.0 application extension: loop forever
  str("NETSCAPE2.0");
  b.insert(b.end(), {3, 1, 0, 0, 0});

  std::vector<uint8_t> idx(size_t(w) * h);
  for (auto& frame : frames) {
    b.insert(b.end(), {0x21, 0xF9, 4, 0});  // graphic control extension: the frame delay
    u16(std::clamp(delay_cs, 0, 65535));
    b.insert(b.end(), {0, 0});
    b.push_back(0x2C);  // image descriptor: full frame, no local palette
    u16(0), u16(0), u16(w), u16(h);
    b.push_back(0);
    const auto& px = frame.pixels();
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = gif_palette_index({px[3 * i], px[3 * i + 1], px[3 * i + 2]});
    std::vector<uint8_t> data = lzw_encode(idx);
    b.push_back(8);  // minimum code size
    for (size_t i = 0; i < data.size(); i += 255) {
      size_t n = std::min<size_t>(255, data.size() - i);
      b.push_back(uint8_t(n));
      b.insert(b.end(), data.begin() + i, data.begin() + i + n);
    }
    b.push_back(0);
  }
  b.push_back(0x3B);
  IK_CHECK(std::fwrite(b.data(), 1, b.size(), f.get()) == b.size(), "cannot write GIF '{}': write failed", path);
  IK_CHECK(std::fflush(f.get()) == 0, "cannot write GIF '{}': write failed", path);
}

}  // namespace ik
