// LUT formats: tables, the nearest-entry quantizer, dense packing, the GGUF layout.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.hpp"
#include "core/fp16.hpp"
#include "core/rng.hpp"
#include "io/gguf.hpp"
#include "backend/cpu/lut_matmul.hpp"
#include "llm/quant/lut_format.hpp"

using namespace ik;
using namespace ik::llm::quant;

TEST(LutTable, Nf4IsTheQloraTable) {
  // bitsandbytes / QLoRA NF4 (also flute/nf_utils.py for 4 bits).
  const double qlora[16] = {-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
                            -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
                            0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
                            0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0};
  const auto t = nf_table(4);
  ASSERT_EQ(t.size(), 16u);
  for (int i = 0; i < 16; ++i) EXPECT_NEAR(t[i], qlora[i], 1e-7) << i;
}

TEST(LutTable, Nf3Nf2FollowFluteConstruction) {
  // Computed independently with Python's statistics.NormalDist().inv_cdf and FLUTE's
  // get_values_pivots formula (offset = 0.5 * (1/32 + 1/30)).
  const double nf3[8] = {-1.0, -0.478629085, -0.217141780, 0.0, 0.160930144, 0.337915137, 0.562616888, 1.0};
  const double nf2[4] = {-1.0, 0.0, 0.337915137, 1.0};
  const auto t3 = nf_table(3), t2 = nf_table(2);
  ASSERT_EQ(t3.size(), 8u);
  ASSERT_EQ(t2.size(), 4u);
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(t3[i], nf3[i], 1e-6) << i;
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(t2[i], nf2[i], 1e-6) << i;
  EXPECT_NEAR(normal_icdf(0.975), 1.959963984540054, 1e-9);
}

TEST(LutTable, IntIsUniform) {
  const auto t = int_table(3);
  ASSERT_EQ(t.size(), 8u);
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(t[i], (i - 4) / 3.0, 1e-7);  // -4/3 .. 1, zero exact
  EXPECT_EQ(int_table(4)[8], 0.0f);
  EXPECT_EQ(int_table(4)[15], 1.0f);
}

TEST(LutQuantize, NearestEntryAndAbsmaxScales) {
  Rng rng(7, 0);
  const int64_t rows = 5, cols = 256;
  std::vector<float> w(rows * cols);
  for (auto& x : w) x = float(rng.normal());
  for (int bits : {2, 3, 4}) {
    const auto table = nf_table(bits);
    const LutTensor q = quantize(w.data(), rows, cols, bits, 64, table);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t g = 0; g < cols / 64; ++g) {
        float amax = 0;
        for (int i = 0; i < 64; ++i) amax = std::max(amax, std::fabs(w[r * cols + g * 64 + i]));
        const float s = fp16_to_f32(q.scales[r * 4 + g]);
        EXPECT_EQ(q.scales[r * 4 + g], f32_to_fp16(amax));
        for (int i = 0; i < 64; ++i) {
          // Brute force: the entry with the smallest distance to w/s.
          const float v = w[r * cols + g * 64 + i] / s;
          int best = 0;
          for (int j = 1; j < int(table.size()); ++j)
            if (std::fabs(table[j] - v) < std::fabs(table[best] - v)) best = j;
          const int got = q.codes[r * cols + g * 64 + i];
          EXPECT_NEAR(std::fabs(table[got] - v), std::fabs(table[best] - v), 1e-6);
        }
      }
    }
  }
}

TEST(LutPack, RoundTripEveryBitsAndGroup) {
  Rng rng(3, 1);
  for (int bits : {2, 3, 4}) {
    for (int group : {32, 64, 128, 256}) {
      const int64_t rows = 3, cols = 2 * group;
      std::vector<uint8_t> codes(rows * cols);
      for (auto& c : codes) c = uint8_t(rng.below(1u << bits));
      const auto packed = pack_codes(codes.data(), rows, cols, bits);
      EXPECT_EQ(packed.size(), size_t(rows * cols * bits / 8)) << "dense: no wasted bits";
      EXPECT_EQ(unpack_codes(packed.data(), rows, cols, bits), codes) << bits << "-bit group " << group;
      // The quantizer's output round-trips through the kernel layout too.
      std::vector<float> w(rows * cols);
      for (auto& x : w) x = float(rng.normal());
      const LutTensor q = quantize(w.data(), rows, cols, bits, group, nf_table(bits));
      const auto k = to_kernel_layout(q);
      std::vector<float> ref(rows * cols), row(cols);
      dequantize(q, ref.data());
      for (int64_t r = 0; r < rows; ++r) {
        backend::lut_dequant_row(*k, r, row.data());
        for (int64_t i = 0; i < cols; ++i) ASSERT_EQ(row[i], ref[r * cols + i]);
      }
    }
  }
}

TEST(LutPack, ThreeBitsPackEightCodesInThreeBytes) {
  const uint8_t codes[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  const auto p = pack_codes(codes, 1, 8, 3);
  // LSB-first: bits 000 100 010 110 001 101 011 111 (code 0 at bit 0, code 1 at bit 3, ...).
  uint32_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint32_t(i) << (3 * i);
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0], v & 0xff);
  EXPECT_EQ(p[1], (v >> 8) & 0xff);
  EXPECT_EQ(p[2], (v >> 16) & 0xff);
}

TEST(LutFormat, BadSettingsListWhatIsValid) {
  try {
    check_format(5, 128, 576, "x");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("valid: 2, 3, 4"), std::string::npos) << e.what();
  }
  try {
    check_format(4, 256, 576, "'blk.0.attn_q.weight'");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("valid here: 32, 64"), std::string::npos) << e.what();
  }
  EXPECT_THROW(check_format(4, 48, 576, "x"), Error);
}

TEST(LutFormat, GgufRoundTrip) {
  Rng rng(11, 0);
  const int64_t rows = 6, cols = 128;
  std::vector<float> w(rows * cols);
  for (auto& x : w) x = float(rng.normal());
  const LutTensor q = quantize(w.data(), rows, cols, 3, 32, nf_table(3));
  io::GgufWriter wr;
  wr.set_string("general.architecture", "llama");
  add_lut_tensor(wr, "blk.0.attn_q.weight", q);
  const auto bytes = wr.to_bytes();
  const auto f = io::GgufFile::parse(bytes.data(), bytes.size());
  EXPECT_TRUE(is_lut_quantized(f));
  EXPECT_TRUE(has_lut_tensor(f, "blk.0.attn_q.weight"));
  const auto k = load_lut_weights(f, "blk.0.attn_q.weight", rows, cols);
  EXPECT_EQ(k->bits, 3);
  EXPECT_EQ(k->group, 32);
  std::vector<float> ref(rows * cols), row(cols);
  dequantize(q, ref.data());
  for (int64_t r = 0; r < rows; ++r) {
    backend::lut_dequant_row(*k, r, row.data());
    for (int64_t i = 0; i < cols; ++i) ASSERT_EQ(row[i], ref[r * cols + i]);
  }
  EXPECT_THROW(load_lut_weights(f, "blk.0.attn_q.weight", rows, cols * 2), Error);
}
