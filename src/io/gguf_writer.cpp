// GGUF v3 writer: metadata in insertion order, tensor infos, then each tensor's bytes padded
// to the alignment (general.alignment if set, else 32), exactly as the gguf Python package lays
// files out.
#include <cstring>
#include <fstream>
#include <limits>

#include "core/error.hpp"
#include "io/gguf.hpp"

namespace ik::io {

namespace {

struct ByteSink {
  std::vector<uint8_t> bytes;

  template <typename T>
  void put(T v) {
    const size_t at = bytes.size();
    bytes.resize(at + sizeof(T));
    std::memcpy(bytes.data() + at, &v, sizeof(T));
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    bytes.insert(bytes.end(), s.begin(), s.end());
  }
  void pad_to(uint64_t alignment) {
    while (bytes.size() % alignment) bytes.push_back(0);
  }
};

template <typename T>
T checked_uint(uint64_t v, const std::string& key) {
  IK_CHECK(v <= std::numeric_limits<T>::max(), "metadata key '{}': {} does not fit in {} bits",
           key, v, 8 * sizeof(T));
  return T(v);
}

template <typename T>
T checked_int(int64_t v, const std::string& key) {
  IK_CHECK(v >= std::numeric_limits<T>::min() && v <= std::numeric_limits<T>::max(),
           "metadata key '{}': {} does not fit in {} bits", key, v, 8 * sizeof(T));
  return T(v);
}

uint64_t value_as_u64(const GgufValue& v, const std::string& key) {
  if (const auto* u = std::get_if<uint64_t>(&v.v)) return *u;
  if (const auto* i = std::get_if<int64_t>(&v.v); i && *i >= 0) return uint64_t(*i);
  fail("metadata key '{}': value is not a non-negative integer for type {}", key,
       gguf_type_name(v.type));
}

int64_t value_as_i64(const GgufValue& v, const std::string& key) {
  if (const auto* i = std::get_if<int64_t>(&v.v)) return *i;
  if (const auto* u = std::get_if<uint64_t>(&v.v);
      u && *u <= uint64_t(std::numeric_limits<int64_t>::max()))
    return int64_t(*u);
  fail("metadata key '{}': value is not an integer for type {}", key, gguf_type_name(v.type));
}

void put_value(ByteSink& out, const GgufValue& v, const std::string& key) {
  switch (v.type) {
    case GgufType::U8: out.put(checked_uint<uint8_t>(value_as_u64(v, key), key)); break;
    case GgufType::U16: out.put(checked_uint<uint16_t>(value_as_u64(v, key), key)); break;
    case GgufType::U32: out.put(checked_uint<uint32_t>(value_as_u64(v, key), key)); break;
    case GgufType::U64: out.put(value_as_u64(v, key)); break;
    case GgufType::I8: out.put(checked_int<int8_t>(value_as_i64(v, key), key)); break;
    case GgufType::I16: out.put(checked_int<int16_t>(value_as_i64(v, key), key)); break;
    case GgufType::I32: out.put(checked_int<int32_t>(value_as_i64(v, key), key)); break;
    case GgufType::I64: out.put(value_as_i64(v, key)); break;
    case GgufType::F32: out.put(float(v.as_float())); break;
    case GgufType::F64: out.put(v.as_float()); break;
    case GgufType::BOOL: out.put(uint8_t(v.as_bool() ? 1 : 0)); break;
    case GgufType::STRING: out.put_string(v.as_string()); break;
    case GgufType::ARRAY: {
      const GgufArray& a = v.as_array();
      out.put(uint32_t(a.elem_type));
      out.put(uint64_t(a.items.size()));
      for (const GgufValue& x : a.items) {
        IK_CHECK(x.type == a.elem_type, "metadata key '{}': {} item in an array of {}", key,
                 gguf_type_name(x.type), gguf_type_name(a.elem_type));
        put_value(out, x, key);
      }
      break;
    }
    default: fail("metadata key '{}': unknown value type {}", key, uint32_t(v.type));
  }
}

}  // namespace

void GgufWriter::set(const std::string& key, GgufValue value) {
  for (auto& kv : kv_) {
    if (kv.first == key) {
      kv.second = std::move(value);
      return;
    }
  }
  kv_.emplace_back(key, std::move(value));
}

void GgufWriter::set_u32(const std::string& key, uint32_t v) {
  set(key, GgufValue::make_uint(GgufType::U32, v));
}
void GgufWriter::set_u64(const std::string& key, uint64_t v) {
  set(key, GgufValue::make_uint(GgufType::U64, v));
}
void GgufWriter::set_i32(const std::string& key, int32_t v) {
  set(key, GgufValue::make_int(GgufType::I32, v));
}
void GgufWriter::set_f32(const std::string& key, float v) {
  set(key, GgufValue::make_float(GgufType::F32, v));
}
void GgufWriter::set_bool(const std::string& key, bool v) { set(key, GgufValue::make_bool(v)); }
void GgufWriter::set_string(const std::string& key, const std::string& v) {
  set(key, GgufValue::make_string(v));
}

void GgufWriter::set_string_array(const std::string& key, const std::vector<std::string>& v) {
  std::vector<GgufValue> items;
  items.reserve(v.size());
  for (const auto& s : v) items.push_back(GgufValue::make_string(s));
  set(key, GgufValue::make_array(GgufType::STRING, std::move(items)));
}

void GgufWriter::set_f32_array(const std::string& key, const std::vector<float>& v) {
  std::vector<GgufValue> items;
  items.reserve(v.size());
  for (float x : v) items.push_back(GgufValue::make_float(GgufType::F32, x));
  set(key, GgufValue::make_array(GgufType::F32, std::move(items)));
}

void GgufWriter::set_i32_array(const std::string& key, const std::vector<int32_t>& v) {
  std::vector<GgufValue> items;
  items.reserve(v.size());
  for (int32_t x : v) items.push_back(GgufValue::make_int(GgufType::I32, x));
  set(key, GgufValue::make_array(GgufType::I32, std::move(items)));
}

void GgufWriter::copy_metadata_from(const GgufFile& f) {
  for (const std::string& key : f.metadata_order()) set(key, f.get(key));
}

void GgufWriter::add_tensor(const std::string& name, const std::vector<int64_t>& shape, DType type,
                            const void* data, size_t nbytes) {
  IK_CHECK(!shape.empty() && shape.size() <= 4, "tensor '{}': {} dimensions (1..4 supported)", name,
           shape.size());
  int64_t rows = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    IK_CHECK(shape[i] > 0, "tensor '{}': dimension {} is {}", name, i, shape[i]);
    if (i > 0) IK_CHECK(!__builtin_mul_overflow(rows, shape[i], &rows), "tensor '{}' is too large", name);
  }
  const size_t row = row_bytes(type, shape[0]);
  size_t expected = 0;
  IK_CHECK(!__builtin_mul_overflow(row, size_t(rows), &expected), "tensor '{}' is too large", name);
  IK_CHECK(nbytes == expected, "tensor '{}': {} bytes given, a {} tensor of this shape has {}", name,
           nbytes, dtype_name(type), expected);
  for (const Pending& t : tensors_) IK_CHECK(t.name != name, "duplicate tensor name '{}'", name);
  const uint8_t* p = static_cast<const uint8_t*>(data);
  tensors_.push_back({name, shape, type, std::vector<uint8_t>(p, p + nbytes)});
}

std::vector<uint8_t> GgufWriter::to_bytes() const {
  uint64_t alignment = 32;
  for (const auto& [key, value] : kv_) {
    if (key != "general.alignment") continue;
    IK_CHECK(value.is_int(), "general.alignment must be an integer");
    const int64_t a = value.as_int();
    IK_CHECK(a > 0 && (a & (a - 1)) == 0, "general.alignment {} is not a power of two", a);
    alignment = uint64_t(a);
  }
  ByteSink out;
  out.put<uint32_t>(0x46554747);  // "GGUF" as little-endian bytes
  out.put<uint32_t>(3);
  out.put<uint64_t>(tensors_.size());
  out.put<uint64_t>(kv_.size());
  for (const auto& [key, value] : kv_) {
    out.put_string(key);
    out.put(uint32_t(value.type));
    put_value(out, value, key);
  }
  uint64_t offset = 0;
  for (const Pending& t : tensors_) {
    out.put_string(t.name);
    out.put<uint32_t>(uint32_t(t.shape.size()));
    for (int64_t d : t.shape) out.put<uint64_t>(uint64_t(d));
    out.put<uint32_t>(uint32_t(t.type));
    out.put<uint64_t>(offset);
    offset = (offset + t.bytes.size() + alignment - 1) / alignment * alignment;
  }
  out.pad_to(alignment);
  for (const Pending& t : tensors_) {
    out.bytes.insert(out.bytes.end(), t.bytes.begin(), t.bytes.end());
    out.pad_to(alignment);
  }
  return std::move(out.bytes);
}

void GgufWriter::write(const std::string& path) const {
  const std::vector<uint8_t> bytes = to_bytes();
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  IK_CHECK(f.good(), "cannot write '{}'", path);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  f.close();
  IK_CHECK(f.good(), "error writing '{}'", path);
}

}  // namespace ik::io
