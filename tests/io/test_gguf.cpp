// GGUF reader and writer on files written by the gguf Python package, and round trips.
#include <cstdlib>
#include <filesystem>

#include "core/error.hpp"
#include "io_test_util.hpp"

using namespace ik;
using namespace ik::io;

namespace {

std::string default_model() {
  if (const char* p = std::getenv("IK_TEST_MODEL")) return p;
  return std::string(IK_SOURCE_DIR) + "/.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

// The values tools/make_gguf_fixtures.py wrote into types.gguf.
void expect_types_metadata(const GgufFile& f) {
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get("t.u8").type, GgufType::U8);
  EXPECT_EQ(f.get_int("t.u8"), 200);
  EXPECT_EQ(f.get("t.i8").type, GgufType::I8);
  EXPECT_EQ(f.get_int("t.i8"), -100);
  EXPECT_EQ(f.get_int("t.u16"), 60000);
  EXPECT_EQ(f.get_int("t.i16"), -30000);
  EXPECT_EQ(f.get_int("t.u32"), 4000000000LL);
  EXPECT_EQ(f.get_int("t.i32"), -2000000000LL);
  EXPECT_EQ(f.get("t.f32").type, GgufType::F32);
  EXPECT_EQ(float(f.get_float("t.f32")), 3.14159f);
  EXPECT_EQ(f.get("t.u64").type, GgufType::U64);
  EXPECT_EQ(std::get<uint64_t>(f.get("t.u64").v), (uint64_t(1) << 63) + 5);
  EXPECT_THROW(f.get_int("t.u64"), Error);  // does not fit in i64
  EXPECT_EQ(f.get_int("t.i64"), -(int64_t(1) << 62));
  EXPECT_EQ(f.get_float("t.f64"), 2.718281828459045);
  EXPECT_TRUE(f.get("t.true").as_bool());
  EXPECT_FALSE(f.get("t.false").as_bool());
  EXPECT_EQ(f.get_string("t.str"), "h\xc3\xa9llo w\xc3\xb6rld \xf0\x9f\xa6\x99\n\ttab");
  EXPECT_EQ(f.get_string("t.empty"), "");
  EXPECT_EQ(f.get("t.ints").as_array().elem_type, GgufType::I32);
  EXPECT_EQ(f.get("t.ints").as_int_array(), (std::vector<int64_t>{1, -2, 3, 2147483647}));
  EXPECT_EQ(f.get("t.floats").as_float_array(), (std::vector<float>{0.5f, -1.25f, 1e-6f}));
  EXPECT_EQ(f.get("t.strs").as_string_array(),
            (std::vector<std::string>{"a", "", "\xe4\xbd\xa0\xe5\xa5\xbd"}));
  const GgufArray& bools = f.get("t.bools").as_array();
  ASSERT_EQ(bools.items.size(), 3u);
  EXPECT_TRUE(bools.items[0].as_bool());
  EXPECT_FALSE(bools.items[1].as_bool());
  const GgufArray& nested = f.get("t.nested").as_array();
  EXPECT_EQ(nested.elem_type, GgufType::ARRAY);
  ASSERT_EQ(nested.items.size(), 2u);
  EXPECT_EQ(nested.items[0].as_int_array(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(nested.items[1].as_int_array(), (std::vector<int64_t>{3, 4, 5}));
  EXPECT_EQ(f.get("t.u8s").as_array().elem_type, GgufType::U8);
  EXPECT_EQ(f.get("t.u8s").as_int_array(), (std::vector<int64_t>{1, 2, 255}));
  EXPECT_EQ(f.get_int("llama.block_count"), 2);
}

void expect_types_tensors(const GgufFile& f) {
  ASSERT_EQ(f.tensors().size(), 3u);
  const GgufTensorInfo& a = f.tensor("a");  // numpy shape (2, 3) -> GGUF [3, 2]
  EXPECT_EQ(a.shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(a.rows(), 2);
  EXPECT_EQ(a.row_len(), 3);
  EXPECT_EQ(a.nbytes, 24u);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(test::f32_data(a)[i], float(i));
  const GgufTensorInfo& b = f.tensor("b");
  EXPECT_EQ(b.type, DType::F16);
  const std::vector<float> bv = test::dequantize_all(b);
  EXPECT_EQ(bv, (std::vector<float>{0, 1, 2, 3}));
  EXPECT_EQ(f.tensor("c.weight").shape, (std::vector<int64_t>{4, 3, 2, 1}));
  EXPECT_EQ(f.tensor("c.weight").n_elements(), 24);
  EXPECT_EQ(f.find_tensor("missing"), nullptr);
  EXPECT_THROW(f.tensor("missing"), Error);
}

}  // namespace

TEST(Gguf, ReadsEveryMetadataType) {
  const GgufFile f = GgufFile::open(test::fixture("types.gguf"));
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  expect_types_metadata(f);
  expect_types_tensors(f);
  EXPECT_EQ(f.metadata_order().front(), "general.architecture");
  EXPECT_EQ(f.metadata_order().size(), f.metadata().size());
  EXPECT_THROW(f.get("nope"), Error);
  EXPECT_EQ(f.find("nope"), nullptr);
  EXPECT_EQ(f.get_int("nope", 7), 7);
  EXPECT_EQ(f.get_string("nope", std::string("x")), "x");
  EXPECT_THROW(f.get_int("t.str"), Error);
  EXPECT_THROW(f.get_string("t.u8"), Error);
}

TEST(Gguf, TensorsPointIntoTheMapping) {
  const GgufFile f = GgufFile::open(test::fixture("types.gguf"));
  ASSERT_TRUE(f.mapping());
  const uint8_t* base = f.mapping()->data();
  for (const GgufTensorInfo& t : f.tensors())
    EXPECT_EQ(t.data, base + f.data_offset() + t.offset) << t.name;
}

TEST(Gguf, Display) {
  const GgufFile f = GgufFile::open(test::fixture("types.gguf"));
  EXPECT_EQ(f.get("t.u8").to_display(), "200");
  EXPECT_EQ(f.get("t.f32").to_display(), "3.14159");
  EXPECT_EQ(f.get("t.true").to_display(), "true");
  EXPECT_EQ(f.get("t.str").to_display(), "\"h\xc3\xa9llo w\xc3\xb6rld \xf0\x9f\xa6\x99\\n\\ttab\"");
  EXPECT_EQ(f.get("t.ints").to_display(2), "[1, -2, ... (4 items)]");
  EXPECT_EQ(f.get("t.nested").to_display(), "[[1, 2], [3, 4, 5]]");
  EXPECT_EQ(f.get("t.strs").to_display(), "[\"a\", \"\", \"\xe4\xbd\xa0\xe5\xa5\xbd\"]");
}

TEST(Gguf, CustomAlignment) {
  const GgufFile f = GgufFile::open(test::fixture("quants.gguf"));
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  for (const GgufTensorInfo& t : f.tensors()) EXPECT_EQ(t.offset % 64, 0u) << t.name;
}

TEST(Gguf, Version2IsRead) {
  std::vector<uint8_t> bytes = test::read_bytes(test::fixture("types.gguf"));
  bytes[4] = 2;  // v2 and v3 share the layout (v3 added big-endian files)
  const GgufFile f = GgufFile::parse(bytes.data(), bytes.size(), "v2.gguf");
  EXPECT_EQ(f.version(), 2u);
  expect_types_metadata(f);
  expect_types_tensors(f);
}

// Our writer reproduces the Python writer's file byte for byte from the parsed contents.
TEST(GgufWriter, RewritesPythonFilesByteForByte) {
  for (const char* name : {"types.gguf", "quants.gguf"}) {
    const GgufFile f = GgufFile::open(test::fixture(name));
    GgufWriter w;
    w.copy_metadata_from(f);
    for (const GgufTensorInfo& t : f.tensors()) w.add_tensor(t.name, t.shape, t.type, t.data, t.nbytes);
    EXPECT_EQ(w.to_bytes(), test::read_bytes(test::fixture(name))) << name;
  }
}

TEST(GgufWriter, RoundTripThroughAFile) {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_u32("llama.block_count", 3);
  w.set_i32("x.neg", -5);
  w.set_f32("x.eps", 1e-5f);
  w.set_bool("x.flag", true);
  w.set_u64("x.big", ~uint64_t(0));
  w.set_string_array("x.tokens", {"<s>", "\xc4\xa0hello", ""});
  w.set_f32_array("x.scores", {0.5f, -1.5f});
  w.set_i32_array("x.types", {1, 3, -1});
  w.set("x.nested", GgufValue::make_array(GgufType::ARRAY,
                                          {GgufValue::make_array(GgufType::U16, {GgufValue::make_uint(GgufType::U16, 7)}),
                                           GgufValue::make_array(GgufType::U16, {})}));
  w.set("x.i8", GgufValue::make_int(GgufType::I8, -128));
  w.set("x.f64", GgufValue::make_float(GgufType::F64, 0.1));
  w.set_u32("llama.block_count", 4);  // replaces, keeps the position
  std::vector<uint8_t> q4(2 * 18);
  for (size_t i = 0; i < q4.size(); ++i) q4[i] = uint8_t(i * 37);
  q4[0] = 0x00, q4[1] = 0x3c;  // d = 1.0 in both blocks
  q4[18] = 0x00, q4[19] = 0x3c;
  const float f32[5] = {1, 2, 3, 4, 5};
  w.add_tensor("w.q4", {32, 2}, DType::Q4_0, q4.data(), q4.size());
  w.add_tensor("w.f32", {5}, DType::F32, f32, sizeof(f32));

  const std::string path = (std::filesystem::temp_directory_path() / "ik_test_writer.gguf").string();
  w.write(path);
  const GgufFile f = GgufFile::open(path);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.metadata_order(),
            (std::vector<std::string>{"general.architecture", "llama.block_count", "x.neg", "x.eps",
                                      "x.flag", "x.big", "x.tokens", "x.scores", "x.types",
                                      "x.nested", "x.i8", "x.f64"}));
  EXPECT_EQ(f.get_int("llama.block_count"), 4);
  EXPECT_EQ(f.get_int("x.neg"), -5);
  EXPECT_EQ(float(f.get_float("x.eps")), 1e-5f);
  EXPECT_TRUE(f.get("x.flag").as_bool());
  EXPECT_EQ(std::get<uint64_t>(f.get("x.big").v), ~uint64_t(0));
  EXPECT_EQ(f.get("x.tokens").as_string_array(), (std::vector<std::string>{"<s>", "\xc4\xa0hello", ""}));
  EXPECT_EQ(f.get("x.scores").as_float_array(), (std::vector<float>{0.5f, -1.5f}));
  EXPECT_EQ(f.get("x.types").as_int_array(), (std::vector<int64_t>{1, 3, -1}));
  EXPECT_EQ(f.get("x.nested").to_display(), "[[7], []]");
  EXPECT_EQ(f.get("x.i8").type, GgufType::I8);
  EXPECT_EQ(f.get_int("x.i8"), -128);
  EXPECT_EQ(f.get_float("x.f64"), 0.1);
  const GgufTensorInfo& t = f.tensor("w.q4");
  EXPECT_EQ(t.type, DType::Q4_0);
  EXPECT_EQ(t.shape, (std::vector<int64_t>{32, 2}));
  EXPECT_EQ(std::vector<uint8_t>(t.data, t.data + t.nbytes), q4);
  // Q4_0 with d = 1: element j is (low nibble of qs[j]) - 8, element j + 16 the high nibble.
  std::vector<float> row(32);
  dequantize(DType::Q4_0, t.row_data(1), row.data(), 32);
  EXPECT_EQ(row[0], float(int(q4[20] & 15) - 8));
  EXPECT_EQ(row[16], float(int(q4[20] >> 4) - 8));
  EXPECT_EQ(std::vector<float>(test::f32_data(f.tensor("w.f32")), test::f32_data(f.tensor("w.f32")) + 5),
            std::vector<float>(f32, f32 + 5));
  std::filesystem::remove(path);
}

TEST(GgufWriter, RejectsInconsistentInput) {
  GgufWriter w;
  std::vector<uint8_t> bytes(100);
  EXPECT_THROW(w.add_tensor("a", {33}, DType::Q4_0, bytes.data(), 18), Error);  // not a block multiple
  EXPECT_THROW(w.add_tensor("a", {32}, DType::Q4_0, bytes.data(), 17), Error);  // wrong size
  EXPECT_THROW(w.add_tensor("a", {1, 1, 1, 1, 1}, DType::F32, bytes.data(), 4), Error);
  w.add_tensor("a", {32}, DType::Q4_0, bytes.data(), 18);
  EXPECT_THROW(w.add_tensor("a", {32}, DType::Q4_0, bytes.data(), 18), Error);  // duplicate
  w.set("bad", GgufValue::make_uint(GgufType::U8, 256));
  EXPECT_THROW(w.to_bytes(), Error);
  EXPECT_THROW(GgufValue::make_array(GgufType::U8, {GgufValue::make_int(GgufType::I8, 1)}), Error);
  EXPECT_THROW(GgufValue::make_uint(GgufType::I32, 1), Error);
}

// Real rows from the default model, stored with the Python package's dequantized values.
TEST(Gguf, SmolLmRowsFixture) {
  const GgufFile f = GgufFile::open(test::fixture("smollm_rows.gguf"));
  int checked = 0;
  for (const GgufTensorInfo& t : f.tensors()) {
    if (t.name.rfind("raw.", 0) != 0) continue;
    const GgufTensorInfo& ref = f.tensor("ref." + t.name.substr(4));
    const std::vector<float> got = test::dequantize_all(t);
    EXPECT_TRUE(test::same_bits(got.data(), test::f32_data(ref), ref.n_elements())) << t.name;
    ++checked;
  }
  EXPECT_EQ(checked, 9);
}

TEST(Gguf, DefaultModel) {
  const std::string path = default_model();
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "default model not found at " << path << " (run make setup)";
  const GgufFile m = GgufFile::open(path);
  EXPECT_EQ(m.version(), 3u);
  EXPECT_EQ(m.tensors().size(), 272u);
  EXPECT_EQ(m.get_string("general.architecture"), "llama");
  EXPECT_EQ(m.get_int("llama.block_count"), 30);
  EXPECT_EQ(m.get("tokenizer.ggml.tokens").as_array().items.size(), 49152u);
  const GgufTensorInfo& emb = m.tensor("token_embd.weight");
  EXPECT_EQ(emb.type, DType::Q8_0);
  EXPECT_EQ(emb.shape, (std::vector<int64_t>{576, 49152}));
  EXPECT_EQ(m.tensor("blk.0.attn_q.weight").type, DType::Q4_1);
  // The fixture's rows, dequantized from the model itself.
  const GgufFile rows = GgufFile::open(test::fixture("smollm_rows.gguf"));
  int checked = 0;
  for (const GgufTensorInfo& ref : rows.tensors()) {
    if (ref.name.rfind("ref.", 0) != 0) continue;
    const std::string spec = ref.name.substr(4);
    const size_t hash = spec.find('#');
    const GgufTensorInfo& t = m.tensor(spec.substr(0, hash));
    const int64_t r = std::stoll(spec.substr(hash + 1));
    std::vector<float> got(size_t(t.row_len()));
    dequantize(t.type, t.row_data(r), got.data(), t.row_len());
    EXPECT_TRUE(test::same_bits(got.data(), test::f32_data(ref), t.row_len())) << spec;
    ++checked;
  }
  EXPECT_EQ(checked, 9);
}
