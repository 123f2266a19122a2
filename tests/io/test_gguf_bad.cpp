// Bad input: every problem gives a one-line ik::Error naming it, never a crash.
#include "core/error.hpp"
#include "io_test_util.hpp"

using namespace ik;
using namespace ik::io;

namespace {

// A valid file with one key ("general.architecture" = "llama") and one F32 tensor 'x' [8];
// the tensor info starts at byte 69 and its fields follow at the offsets below.
struct SmallFile {
  std::vector<uint8_t> bytes;
  static constexpr size_t kInfo = 24 + 8 + 20 + 4 + 8 + 5;
  static constexpr size_t kNDims = kInfo + 8 + 1, kDim0 = kNDims + 4, kType = kDim0 + 8,
                          kOffset = kType + 4;
  SmallFile() {
    GgufWriter w;
    w.set_string("general.architecture", "llama");
    const float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    w.add_tensor("x", {8}, DType::F32, x, sizeof(x));
    bytes = w.to_bytes();
  }
  template <typename T>
  void poke(size_t at, T v) {
    std::memcpy(bytes.data() + at, &v, sizeof(T));
  }
};

// Parses and returns the error message ("" if it parsed).
std::string parse_error(const std::vector<uint8_t>& bytes, size_t n = SIZE_MAX) {
  try {
    GgufFile::parse(bytes.data(), std::min(n, bytes.size()), "model.gguf");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(GgufBad, SmallFileIsValid) {
  SmallFile f;
  ASSERT_EQ(parse_error(f.bytes), "");
  const GgufFile g = GgufFile::parse(f.bytes.data(), f.bytes.size());
  EXPECT_EQ(g.tensor("x").data, f.bytes.data() + 128);
  EXPECT_EQ(test::f32_data(g.tensor("x"))[7], 8.0f);
}

TEST(GgufBad, MissingFile) {
  EXPECT_THROW(GgufFile::open("/nonexistent/model.gguf"), Error);
}

TEST(GgufBad, WrongMagic) {
  std::vector<uint8_t> zip = {'P', 'K', 3, 4, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(parse_error(zip), "model.gguf: not a GGUF file (magic 'PK\\x03\\x04')");
  EXPECT_EQ(parse_error({}), "model.gguf: not a GGUF file (only 0 bytes)");
}

TEST(GgufBad, Versions) {
  SmallFile f;
  f.poke<uint32_t>(4, 1);
  EXPECT_NE(parse_error(f.bytes).find("GGUF version 1 is not supported"), std::string::npos);
  f.poke<uint32_t>(4, 4);
  EXPECT_EQ(parse_error(f.bytes), "model.gguf: unsupported GGUF version 4 (only v2 and v3)");
  f.poke<uint32_t>(4, 0x03000000);
  EXPECT_EQ(parse_error(f.bytes), "model.gguf: big-endian GGUF files are not supported");
}

// Every strict prefix of a valid file is rejected (and none crashes: ASan builds check that).
TEST(GgufBad, EveryTruncationIsAnError) {
  for (const char* name : {"types.gguf", "smollm_rows.gguf"}) {
    const std::vector<uint8_t> bytes = test::read_bytes(test::fixture(name));
    ASSERT_EQ(parse_error(bytes), "") << name;
    for (size_t n = 0; n < bytes.size(); ++n) {
      // A fresh heap copy of exactly n bytes, so ASan sees any read past the end.
      const std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + n);
      const std::string msg = parse_error(prefix);
      ASSERT_FALSE(msg.empty()) << name << " cut at " << n;
      ASSERT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  }
}

TEST(GgufBad, TruncatedTensorNamesIt) {
  SmallFile f;
  EXPECT_EQ(parse_error(f.bytes, 150),
            "model.gguf: truncated (tensor 'x' needs bytes 128..160, file has 150)");
}

TEST(GgufBad, OffsetOutOfBounds) {
  SmallFile f;
  f.poke<uint64_t>(SmallFile::kOffset, 64);
  EXPECT_EQ(parse_error(f.bytes), "model.gguf: truncated (tensor 'x' needs bytes 192..224, file has 160)");
  f.poke<uint64_t>(SmallFile::kOffset, ~uint64_t(0) - 31);
  EXPECT_NE(parse_error(f.bytes).find("overflow"), std::string::npos);
  f.poke<uint64_t>(SmallFile::kOffset, 4);
  EXPECT_EQ(parse_error(f.bytes), "model.gguf: tensor 'x' offset 4 is not a multiple of the alignment 32");
}

TEST(GgufBad, UnknownTensorType) {
  SmallFile f;
  f.poke<uint32_t>(SmallFile::kType, 23);
  EXPECT_EQ(parse_error(f.bytes), "model.gguf: unsupported tensor type 23 (IQ4_XS?) in tensor 'x'");
  f.poke<uint32_t>(SmallFile::kType, 99);
  EXPECT_EQ(parse_error(f.bytes), "model.gguf: unsupported tensor type 99 in tensor 'x'");
  f.poke<uint32_t>(SmallFile::kType, uint32_t(DType::Q4_0));  // 8 is not a multiple of 32
  EXPECT_NE(parse_error(f.bytes).find("not a multiple of the Q4_0 block size 32"), std::string::npos);
}

TEST(GgufBad, BadDimensions) {
  SmallFile f;
  f.poke<uint32_t>(SmallFile::kNDims, 5);
  EXPECT_EQ(parse_error(f.bytes), "model.gguf: tensor 'x' has 5 dimensions (1..4 supported)");
  f.poke<uint32_t>(SmallFile::kNDims, 0);
  EXPECT_NE(parse_error(f.bytes).find("0 dimensions"), std::string::npos);
  SmallFile g;
  g.poke<uint64_t>(SmallFile::kDim0, 0);
  EXPECT_NE(parse_error(g.bytes).find("invalid dimension 0 = 0"), std::string::npos);
  g.poke<uint64_t>(SmallFile::kDim0, ~uint64_t(0));
  EXPECT_NE(parse_error(g.bytes).find("invalid dimension"), std::string::npos);
}

TEST(GgufBad, HugeCountsDoNotAllocate) {
  SmallFile f;
  f.poke<uint64_t>(8, uint64_t(1) << 60);  // n_tensors
  EXPECT_NE(parse_error(f.bytes).find("truncated (header declares"), std::string::npos);
  SmallFile g;
  g.poke<uint64_t>(24, uint64_t(1) << 62);  // length of the first key
  EXPECT_NE(parse_error(g.bytes).find("string of 4611686018427387904 bytes"), std::string::npos);

  GgufWriter w;
  w.set_string_array("a", {"x"});
  std::vector<uint8_t> bytes = w.to_bytes();
  const uint64_t huge = uint64_t(1) << 61;
  std::memcpy(bytes.data() + 24 + 8 + 1 + 4 + 4, &huge, 8);  // the array's count
  EXPECT_NE(parse_error(bytes).find("is an array of 2305843009213693952 string items"), std::string::npos);
}

TEST(GgufBad, DuplicatesAndBadValues) {
  GgufWriter w;
  w.set_u32("k1", 1);
  w.set_u32("k2", 2);
  std::vector<uint8_t> bytes = w.to_bytes();
  bytes[24 + 8 + 1] = '1';  // rename k2 -> k1
  bytes[24 + 8 + 2 + 4 + 4 + 8 + 1] = '1';
  EXPECT_EQ(parse_error(bytes), "model.gguf: duplicate metadata key 'k1'");

  GgufWriter t;
  const float x[1] = {0};
  t.add_tensor("a", {1}, DType::F32, x, 4);
  t.add_tensor("b", {1}, DType::F32, x, 4);
  bytes = t.to_bytes();
  bytes[24 + 8 + 1 + 4 + 8 + 4 + 8 + 8] = 'a';  // rename b -> a
  EXPECT_EQ(parse_error(bytes), "model.gguf: duplicate tensor name 'a'");

  GgufWriter v;
  v.set_u32("k", 1);
  bytes = v.to_bytes();
  bytes[24 + 8 + 1] = 13;  // value type 13 does not exist
  EXPECT_EQ(parse_error(bytes), "model.gguf: metadata key 'k' has unknown value type 13");

  GgufWriter a;
  a.set_u32("general.alignment", 32);
  bytes = a.to_bytes();
  const uint32_t bad_alignment = 48;
  std::memcpy(bytes.data() + 24 + 8 + 17 + 4, &bad_alignment, 4);
  EXPECT_EQ(parse_error(bytes), "model.gguf: general.alignment 48 is not a power of two up to 1048576");
}
