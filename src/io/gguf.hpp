#pragma once
// GGUF v2/v3 reader (memory-mapped, validated before any access) and writer.
// Layout: magic "GGUF", u32 version, u64 n_tensors, u64 n_kv, kv pairs, tensor infos,
// padding to general.alignment (default 32), tensor data.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/mmap.hpp"
#include "io/dtype.hpp"

namespace ik::io {

// GGUF metadata value types, numbered as in the spec.
enum class GgufType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};
const char* gguf_type_name(GgufType t);

struct GgufValue;
struct GgufArray {
  GgufType elem_type = GgufType::U8;
  std::vector<GgufValue> items;
};

struct GgufValue {
  GgufType type = GgufType::U8;
  // Integers are widened to i64/u64, floats to double; the original type is kept in `type`.
  std::variant<uint64_t, int64_t, double, bool, std::string, std::shared_ptr<GgufArray>> v;

  bool is_int() const;  // any integer type
  int64_t as_int() const;      // throws ik::Error if not an integer
  double as_float() const;     // integer or float
  bool as_bool() const;
  const std::string& as_string() const;
  const GgufArray& as_array() const;
  std::vector<std::string> as_string_array() const;
  std::vector<float> as_float_array() const;
  std::vector<int64_t> as_int_array() const;
  std::string to_display(size_t max_items = 8) const;  // for `inferkit info`

  // Typed constructors (values are range-checked against the type when written).
  static GgufValue make_uint(GgufType t, uint64_t v);   // U8, U16, U32, U64
  static GgufValue make_int(GgufType t, int64_t v);     // I8, I16, I32, I64
  static GgufValue make_float(GgufType t, double v);    // F32, F64
  static GgufValue make_bool(bool v);
  static GgufValue make_string(std::string v);
  static GgufValue make_array(GgufType elem_type, std::vector<GgufValue> items);
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> shape;  // GGUF order: shape[0] is the contiguous (innermost) dimension
  DType type = DType::F32;
  uint64_t offset = 0;         // relative to the data section
  uint64_t nbytes = 0;         // validated against the file size
  const uint8_t* data = nullptr;  // points into the mapping (or the writer's buffer)
  int64_t n_elements() const;
  int64_t rows() const;        // product of shape[1..]
  int64_t row_len() const { return shape.empty() ? 1 : shape[0]; }
  size_t row_nbytes() const;                   // bytes of one row in the stored format
  const uint8_t* row_data(int64_t r) const;    // start of row r (0 <= r < rows(), checked)
};

class GgufFile {
 public:
  // Throws ik::Error naming the problem: missing file, wrong magic, unsupported version,
  // truncated header, offsets/sizes out of bounds, unknown tensor type (named by number).
  static GgufFile open(const std::string& path);
  // Same validation over an in-memory buffer (used by the fuzzer and tests); not copied.
  static GgufFile parse(const uint8_t* data, size_t size, const std::string& name = "<memory>");

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  const std::string& path() const { return path_; }
  size_t file_size() const { return size_; }
  uint64_t data_offset() const { return data_offset_; }  // start of the tensor data section
  // The mapping the tensors point into (null for parse()); holding it keeps them valid.
  std::shared_ptr<MappedFile> mapping() const { return file_; }

  const std::map<std::string, GgufValue>& metadata() const { return kv_; }
  const std::vector<std::string>& metadata_order() const { return kv_order_; }  // as in file
  bool has(const std::string& key) const { return kv_.count(key) != 0; }
  const GgufValue& get(const std::string& key) const;  // throws "missing metadata key 'x'"
  const GgufValue* find(const std::string& key) const; // nullptr if absent
  // Convenience with defaults.
  int64_t get_int(const std::string& key, std::optional<int64_t> def = std::nullopt) const;
  double get_float(const std::string& key, std::optional<double> def = std::nullopt) const;
  std::string get_string(const std::string& key, std::optional<std::string> def = std::nullopt) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(const std::string& name) const;
  const GgufTensorInfo& tensor(const std::string& name) const;  // throws naming the tensor

 private:
  std::shared_ptr<MappedFile> file_;
  std::string path_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::map<std::string, GgufValue> kv_;
  std::vector<std::string> kv_order_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
  friend struct GgufParser;
};

// Writer: collects metadata and tensors (bytes already in their stored format) and writes
// a v3 file with 32-byte alignment that our reader and the `gguf` Python package read.
class GgufWriter {
 public:
  void set(const std::string& key, GgufValue value);
  void set_u32(const std::string& key, uint32_t v);
  void set_i32(const std::string& key, int32_t v);
  void set_f32(const std::string& key, float v);
  void set_bool(const std::string& key, bool v);
  void set_string(const std::string& key, const std::string& v);
  void set_string_array(const std::string& key, const std::vector<std::string>& v);
  void set_u64(const std::string& key, uint64_t v);
  void set_f32_array(const std::string& key, const std::vector<float>& v);
  void set_i32_array(const std::string& key, const std::vector<int32_t>& v);
  void copy_metadata_from(const GgufFile& f);  // all keys, in file order
  void add_tensor(const std::string& name, const std::vector<int64_t>& shape, DType type,
                  const void* data, size_t nbytes);  // data copied
  void write(const std::string& path) const;  // throws on I/O error
  std::vector<uint8_t> to_bytes() const;       // the file's bytes, for tests and the fuzzer

 private:
  std::vector<std::pair<std::string, GgufValue>> kv_;
  struct Pending {
    std::string name;
    std::vector<int64_t> shape;
    DType type;
    std::vector<uint8_t> bytes;
  };
  std::vector<Pending> tensors_;
};

}  // namespace ik::io
