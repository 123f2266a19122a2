// Dequantizers against the gguf Python package (fixtures from tools/make_gguf_fixtures.py).
#include <set>

#include "core/error.hpp"
#include "io/dtype.hpp"
#include "io_test_util.hpp"

using namespace ik;
using namespace ik::io;

TEST(DType, TraitsMatchGgml) {
  // Block geometry as ggml.h / gguf.constants.GGML_QUANT_SIZES define it.
  struct Row { DType t; const char* name; int64_t block; size_t bytes; };
  const Row rows[] = {
      {DType::F32, "F32", 1, 4},       {DType::F16, "F16", 1, 2},      {DType::BF16, "BF16", 1, 2},
      {DType::Q4_0, "Q4_0", 32, 18},   {DType::Q4_1, "Q4_1", 32, 20},  {DType::Q5_0, "Q5_0", 32, 22},
      {DType::Q5_1, "Q5_1", 32, 24},   {DType::Q8_0, "Q8_0", 32, 34},  {DType::Q8_1, "Q8_1", 32, 40},
      {DType::Q2_K, "Q2_K", 256, 84},  {DType::Q3_K, "Q3_K", 256, 110}, {DType::Q4_K, "Q4_K", 256, 144},
      {DType::Q5_K, "Q5_K", 256, 176}, {DType::Q6_K, "Q6_K", 256, 210}, {DType::Q8_K, "Q8_K", 256, 292},
      {DType::IQ4_NL, "IQ4_NL", 32, 18}, {DType::I8, "I8", 1, 1},      {DType::I16, "I16", 1, 2},
      {DType::I32, "I32", 1, 4},       {DType::I64, "I64", 1, 8},      {DType::F64, "F64", 1, 8},
  };
  for (const Row& r : rows) {
    const DTypeTraits& tr = dtype_traits(r.t);
    EXPECT_STREQ(tr.name, r.name);
    EXPECT_EQ(tr.block_size, r.block) << r.name;
    EXPECT_EQ(tr.block_bytes, r.bytes) << r.name;
    EXPECT_EQ(dtype_name(r.t), r.name);
    EXPECT_EQ(dtype_from_name(r.name), r.t);
    EXPECT_TRUE(dtype_known(uint32_t(r.t)));
  }
  EXPECT_FALSE(dtype_known(23));
  EXPECT_FALSE(dtype_known(1000));
  EXPECT_EQ(dtype_describe_unknown(23), "23 (IQ4_XS?)");
  EXPECT_THROW(dtype_from_name("Q9_9"), Error);
}

TEST(DType, RowBytes) {
  EXPECT_EQ(row_bytes(DType::F32, 7), 28u);
  EXPECT_EQ(row_bytes(DType::Q4_0, 64), 36u);
  EXPECT_EQ(row_bytes(DType::Q6_K, 512), 420u);
  EXPECT_THROW(row_bytes(DType::Q4_0, 33), Error);
  EXPECT_THROW(row_bytes(DType::Q4_K, 128), Error);
}

TEST(DType, UnsupportedAndBadCountsThrow) {
  std::vector<uint8_t> block(292);
  std::vector<float> out(256);
  EXPECT_THROW(dequantize(DType::Q8_K, block.data(), out.data(), 256), Error);
  EXPECT_THROW(dequantize(DType::I32, block.data(), out.data(), 4), Error);
  EXPECT_THROW(dequantize(DType::Q4_0, block.data(), out.data(), 16), Error);
  EXPECT_THROW(dequantize(static_cast<DType>(23), block.data(), out.data(), 256), Error);
}

// Every 'quant.T' / 'rand.T' tensor dequantizes to exactly the floats in 'ref.*'.
TEST(DType, BitExactWithGgufPython) {
  const GgufFile f = GgufFile::open(test::fixture("quants.gguf"));
  std::set<std::string> covered;
  int checked = 0;
  for (const GgufTensorInfo& t : f.tensors()) {
    if (t.name.rfind("ref.", 0) == 0) continue;
    const GgufTensorInfo& ref = f.tensor("ref." + t.name);
    ASSERT_EQ(ref.shape, t.shape) << t.name;
    const std::vector<float> got = test::dequantize_all(t);
    EXPECT_TRUE(test::same_bits(got.data(), test::f32_data(ref), t.n_elements())) << t.name;
    covered.insert(dtype_name(t.type));
    ++checked;
  }
  const std::set<std::string> expected = {"F32", "F16",  "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1",
                                          "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL"};
  EXPECT_EQ(covered, expected);
  EXPECT_EQ(checked, 19);
}

TEST(DType, F16SpecialValues) {
  const uint16_t h[] = {0x0000, 0x8000, 0x0001, 0x03ff, 0x3c00, 0x7bff, 0x7c00, 0xfc00};
  const float want[] = {0.0f, -0.0f, 5.9604645e-8f, 6.0975552e-5f, 1.0f, 65504.0f, INFINITY, -INFINITY};
  float got[8];
  dequantize(DType::F16, h, got, 8);
  EXPECT_TRUE(test::same_bits(got, want, 8));
}
