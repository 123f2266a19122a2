// The GPU layout of lookup-table weights, on the host: packing then reading back lane by lane
// (the kernel's access pattern) gives table[code] * scale at every position, for every
// (bits, group) and for shapes that need padding; the pair tables hold the right pairs.
// Also the tuned-configuration table's parser.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "backend/cuda/lut_gemm.hpp"
#include "backend/cuda/lut_layout.hpp"
#include "core/error.hpp"
#include "core/fp16.hpp"
#include "core/rng.hpp"

namespace cuda = ik::backend::cuda;

namespace {

struct Random {
  std::vector<uint8_t> codes;
  std::vector<uint16_t> scales;
  std::vector<float> table;
};

Random random_weights(int64_t rows, int64_t cols, int bits, int group, uint64_t seed) {
  ik::Rng rng(seed, 3);
  Random r;
  r.codes.resize(size_t(rows) * cols);
  for (auto& c : r.codes) c = uint8_t(rng.next_u64() % (1u << bits));
  const int64_t groups = (cols + group - 1) / group;
  r.scales.resize(size_t(rows) * groups);
  for (auto& s : r.scales) s = ik::f32_to_fp16(float(rng.uniform(0.01, 2.0)));
  for (int i = 0; i < (1 << bits); ++i) r.table.push_back(float(rng.uniform(-1.0, 1.0)));
  return r;
}

}  // namespace

TEST(LutLayout, UnpackGivesTableTimesScaleEverywhere) {
  struct Shape {
    int64_t rows, cols;
  };
  for (int bits : {2, 3, 4})
    for (int group : {32, 64, 128, 256})
      for (Shape s : {Shape{16, 128}, Shape{48, 512}, Shape{37, 576}, Shape{5, 96}}) {
        if (group > s.cols && s.cols % group) continue;
        const auto r = random_weights(s.rows, s.cols, bits, group, bits * 1000 + group + s.rows);
        const auto p = cuda::pack_lut(r.codes.data(), r.scales.data(), r.table.data(), s.rows, s.cols, bits, group);
        EXPECT_EQ(p.row_blocks, (s.rows + 15) / 16);
        EXPECT_EQ(p.codes.size(), size_t(p.row_blocks) * p.chunks * cuda::code_block_bytes(bits));
        const auto w = cuda::unpack_lut(p);
        const int64_t groups = (s.cols + group - 1) / group;
        for (int64_t i = 0; i < s.rows; ++i)
          for (int64_t j = 0; j < s.cols; ++j) {
            const float want = r.table[r.codes[i * s.cols + j]] * ik::fp16_to_f32(r.scales[i * groups + j / group]);
            ASSERT_EQ(w[i * s.cols + j], want) << "bits " << bits << " group " << group << " at " << i << "," << j;
          }
      }
}

TEST(LutLayout, CodesUseExactlyTheirBits) {
  // All-ones codes fill every code bit of every lane and nothing else.
  for (int bits : {2, 3, 4}) {
    const int64_t rows = 16, cols = 128;
    std::vector<uint8_t> codes(rows * cols, uint8_t((1 << bits) - 1));
    std::vector<uint16_t> scales(rows, ik::f32_to_fp16(1.0f));
    std::vector<float> table(1 << bits, 1.0f);
    const auto p = cuda::pack_lut(codes.data(), scales.data(), table.data(), rows, cols, bits, 128);
    size_t ones = 0;
    for (uint8_t b : p.codes) ones += __builtin_popcount(b);
    EXPECT_EQ(ones, size_t(rows * cols * bits)) << bits << " bits";
  }
}

TEST(LutLayout, ThreeBitPairsAreContiguousFieldsAcrossWords) {
  // Lane 0 (gid 0, tid 0), tile 1, register 1 (row 8, column 4) is pair 5 of the lane's stream:
  // bits 30..35, so code 5 (101b) sets bit 30 of word 0 and bit 0 of word 1, nothing else.
  const int64_t rows = 16, cols = 128;
  std::vector<uint8_t> codes(rows * cols, 0);
  codes[8 * cols + 4] = 5;
  std::vector<uint16_t> scales(rows, ik::f32_to_fp16(1.0f));
  std::vector<float> table(8, 1.0f);
  const auto p = cuda::pack_lut(codes.data(), scales.data(), table.data(), rows, cols, 3, 128);
  uint32_t w0, w1;
  std::memcpy(&w0, p.codes.data(), 4);
  std::memcpy(&w1, p.codes.data() + 4, 4);
  EXPECT_EQ(w0, 1u << 30);
  EXPECT_EQ(w1, 1u);
  size_t ones = 0;
  for (uint8_t b : p.codes) ones += __builtin_popcount(b);
  EXPECT_EQ(ones, 2u);
}

TEST(LutLayout, PairTableHoldsBothValues) {
  const std::vector<float> t4 = {-1, -0.75f, -0.5f, -0.25f, 0, 0.125f, 0.25f, 0.375f,
                                 0.5f, 0.625f, 0.75f, 0.875f, 1, 1.5f, 2, 3};
  const auto p4 = cuda::pair_table(t4, 4, false);
  ASSERT_EQ(p4.size(), 256u);
  EXPECT_EQ(ik::fp16_to_f32(p4[0x3A] & 0xFFFF), t4[0xA]);  // low nibble: first of the pair
  EXPECT_EQ(ik::fp16_to_f32(p4[0x3A] >> 16), t4[0x3]);
  const std::vector<float> t3 = {-1, -0.5f, -0.25f, 0, 0.25f, 0.5f, 0.75f, 1};
  const auto p3 = cuda::pair_table(t3, 3, true);
  ASSERT_EQ(p3.size(), 64u);
  // codes 6 (110b) and 3 (011b): the first code in the low three bits -> 0b011110
  EXPECT_EQ(ik::bf16_to_f32(p3[0b011110] & 0xFFFF), t3[6]);
  EXPECT_EQ(ik::bf16_to_f32(p3[0b011110] >> 16), t3[3]);
}

TEST(LutLayout, RejectsWhatItCannotTile) {
  std::vector<uint8_t> codes(16 * 100, 0);
  std::vector<uint16_t> scales(64, 0);
  std::vector<float> table(16, 0.0f);
  EXPECT_THROW(cuda::pack_lut(codes.data(), scales.data(), table.data(), 16, 100, 4, 32), ik::Error);  // cols % 32
  EXPECT_THROW(cuda::pack_lut(codes.data(), scales.data(), table.data(), 16, 96, 5, 32), ik::Error);   // bits
  EXPECT_THROW(cuda::pack_lut(codes.data(), scales.data(), table.data(), 16, 96, 4, 48), ik::Error);   // group
  codes[3] = 16;
  EXPECT_THROW(cuda::pack_lut(codes.data(), scales.data(), table.data(), 16, 96, 4, 32), ik::Error);   // code range
}

// The tuned-configuration table (lut_tuned.inc, or IK_LUT_TUNED=FILE at run time): lines as the
// tuner writes them parse; anything else (missing or extra fields, signs, numbers past int) is an
// error naming the line.
TEST(LutTunedTable, ParsesTheTunersLinesAndRejectsOthers) {
  const auto entries = cuda::parse_lut_tuned(
      "// Written by `inferkit bench-flute --tune`\n\n{4096, 14336, 4, 128, 2, 12, 2, 3, 1, 2},\n"
      "  {8192,8192,3,128,1,4,4,2,0,1},\r\n",
      "t.inc");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].k, 14336);
  EXPECT_EQ(entries[0].warps, 12);
  EXPECT_EQ(entries[0].row_blocks_per_warp, 2);
  EXPECT_EQ(entries[1].bits, 3);
  EXPECT_EQ(entries[1].blocks_per_sm, 0);
  for (const char* bad : {"{1, 2, 3, 4, 5, 6, 7, 8, 9},", "{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}", "{1, 2, 3, 4, 5, 6, 7, 8, 9, x},",
                          "{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, junk", "warps 4", "{1, 2, 3, 4, 5, 6, 7, 8, 9, -1},",
                          "{1, 2, 3, 4, 5, 6, 7, 8, 9, 99999999999},"}) {
    try {
      cuda::parse_lut_tuned(std::string("// ok\n") + bad + "\n", "t.inc");
      ADD_FAILURE() << "accepted: " << bad;
    } catch (const ik::Error& e) {
      EXPECT_NE(std::string(e.what()).find("t.inc line 2"), std::string::npos) << e.what();
    }
  }
}

// The table in the repository is what the tuner writes and what IK_LUT_TUNED reads back; the
// compiled-in table gives the same configurations.
TEST(LutTunedTable, RepositoryTableParsesAndMatchesTheCompiledOne) {
  std::ifstream in(std::string(IK_SOURCE_DIR) + "/src/backend/cuda/lut_tuned.inc");
  ASSERT_TRUE(in) << "lut_tuned.inc not found";
  std::stringstream text;
  text << in.rdbuf();
  const auto entries = cuda::parse_lut_tuned(text.str(), "lut_tuned.inc");
  ASSERT_GE(entries.size(), 30u);
  for (const auto& e : entries) {
    const auto c = cuda::tuned_lut_config(e.n, e.k, e.bits, e.group, e.nt);
    EXPECT_EQ(c.warps, e.warps) << e.n << "x" << e.k;
    EXPECT_EQ(c.unit_chunks, e.unit_chunks) << e.n << "x" << e.k;
    EXPECT_EQ(c.stages, e.stages) << e.n << "x" << e.k;
    EXPECT_EQ(c.blocks_per_sm, e.blocks_per_sm) << e.n << "x" << e.k;
    EXPECT_EQ(c.row_blocks_per_warp, e.row_blocks_per_warp) << e.n << "x" << e.k;
  }
}
