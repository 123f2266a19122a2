// GGUF v2/v3 reader. Every count, length, offset and size is checked against the bytes that
// remain before it is used, so a hostile or truncated file gives a one-line ik::Error, never
// a giant allocation or an out-of-bounds read.
#include "io/gguf.hpp"

#include <cstring>
#include <limits>

#include "core/error.hpp"

namespace ik::io {

namespace {

constexpr uint32_t kMaxDims = 4;         // GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 8;        // nested metadata arrays
constexpr uint64_t kMaxAlignment = 1u << 20;

// Smallest encoding of one value of type t (used to bound array counts by the bytes left).
size_t min_value_bytes(GgufType t) {
  switch (t) {
    case GgufType::U8: case GgufType::I8: case GgufType::BOOL: return 1;
    case GgufType::U16: case GgufType::I16: return 2;
    case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
    case GgufType::U64: case GgufType::I64: case GgufType::F64: return 8;
    case GgufType::STRING: return 8;   // u64 length
    case GgufType::ARRAY: return 12;   // u32 type + u64 count
  }
  return 1;
}

bool valid_value_type(uint32_t raw) { return raw <= uint32_t(GgufType::F64); }

std::string escape_magic(const uint8_t* p, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\'' && p[i] != '\\')
      out += char(p[i]);
    else
      out += fmt::format("\\x{:02x}", p[i]);
  }
  return out;
}

}  // namespace

struct GgufParser {
  const uint8_t* data;
  size_t size;
  const std::string& name;
  size_t pos = 0;
  std::string where = "header";  // what is being read, for truncation messages

  [[noreturn]] void bad(const std::string& msg) const { fail("{}: {}", name, msg); }

  void need(size_t n) const {
    if (size - pos < n)
      bad(fmt::format("truncated ({} needs bytes {}..{}, file has {})", where, pos,
                      uint64_t(pos) + n, size));
  }

  template <typename T>
  T read() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, data + pos, sizeof(T));
    pos += sizeof(T);
    return v;
  }

  std::string read_string() {
    const uint64_t len = read<uint64_t>();
    if (len > size - pos)
      bad(fmt::format("truncated ({} has a string of {} bytes at offset {}, file has {})", where,
                      len, pos, size));
    std::string s(reinterpret_cast<const char*>(data + pos), size_t(len));
    pos += size_t(len);
    return s;
  }

  GgufType read_type() {
    const uint32_t raw = read<uint32_t>();
    if (!valid_value_type(raw)) bad(fmt::format("{} has unknown value type {}", where, raw));
    return GgufType(raw);
  }

  GgufValue read_value(GgufType t, int depth) {
    GgufValue out;
    out.type = t;
    switch (t) {
      case GgufType::U8: out.v = uint64_t(read<uint8_t>()); break;
      case GgufType::U16: out.v = uint64_t(read<uint16_t>()); break;
      case GgufType::U32: out.v = uint64_t(read<uint32_t>()); break;
      case GgufType::U64: out.v = read<uint64_t>(); break;
      case GgufType::I8: out.v = int64_t(read<int8_t>()); break;
      case GgufType::I16: out.v = int64_t(read<int16_t>()); break;
      case GgufType::I32: out.v = int64_t(read<int32_t>()); break;
      case GgufType::I64: out.v = read<int64_t>(); break;
      case GgufType::F32: out.v = double(read<float>()); break;
      case GgufType::F64: out.v = read<double>(); break;
      case GgufType::BOOL: out.v = read<uint8_t>() != 0; break;
      case GgufType::STRING: out.v = read_string(); break;
      case GgufType::ARRAY: out.v = read_array(depth + 1); break;
    }
    return out;
  }

  std::shared_ptr<GgufArray> read_array(int depth) {
    if (depth > kMaxArrayDepth)
      bad(fmt::format("{} nests arrays deeper than {}", where, kMaxArrayDepth));
    auto arr = std::make_shared<GgufArray>();
    arr->elem_type = read_type();
    const uint64_t count = read<uint64_t>();
    if (count > (size - pos) / min_value_bytes(arr->elem_type))
      bad(fmt::format("truncated ({} is an array of {} {} items at offset {}, file has {})", where,
                      count, gguf_type_name(arr->elem_type), pos, size));
    arr->items.reserve(size_t(count));
    for (uint64_t i = 0; i < count; ++i) arr->items.push_back(read_value(arr->elem_type, depth));
    return arr;
  }

  void read_metadata(GgufFile& f, uint64_t n_kv) {
    for (uint64_t i = 0; i < n_kv; ++i) {
      where = fmt::format("metadata key #{}", i);
      std::string key = read_string();
      where = fmt::format("metadata key '{}'", key);
      GgufValue value = read_value(read_type(), 0);
      if (f.kv_.count(key)) bad(fmt::format("duplicate metadata key '{}'", key));
      f.kv_order_.push_back(key);
      f.kv_.emplace(std::move(key), std::move(value));
    }
    if (const GgufValue* a = f.find("general.alignment")) {
      if (!a->is_int()) bad("general.alignment is not an integer");
      const int64_t al = a->as_int();
      if (al <= 0 || uint64_t(al) > kMaxAlignment || (al & (al - 1)) != 0)
        bad(fmt::format("general.alignment {} is not a power of two up to {}", al, kMaxAlignment));
      f.alignment_ = uint64_t(al);
    }
  }

  GgufTensorInfo read_tensor_info(uint64_t index, uint64_t alignment) {
    GgufTensorInfo t;
    where = fmt::format("tensor info #{}", index);
    t.name = read_string();
    where = fmt::format("tensor info '{}'", t.name);
    const uint32_t n_dims = read<uint32_t>();
    if (n_dims == 0 || n_dims > kMaxDims)
      bad(fmt::format("tensor '{}' has {} dimensions (1..{} supported)", t.name, n_dims, kMaxDims));
    int64_t n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t dim = read<uint64_t>();
      if (dim == 0 || dim > uint64_t(std::numeric_limits<int64_t>::max()) ||
          __builtin_mul_overflow(n_elements, int64_t(dim), &n_elements))
        bad(fmt::format("tensor '{}' has invalid dimension {} = {}", t.name, d, dim));
      t.shape.push_back(int64_t(dim));
    }
    const uint32_t raw_type = read<uint32_t>();
    if (!dtype_known(raw_type))
      bad(fmt::format("unsupported tensor type {} in tensor '{}'", dtype_describe_unknown(raw_type),
                      t.name));
    t.type = DType(raw_type);
    t.offset = read<uint64_t>();
    if (t.offset % alignment != 0)
      bad(fmt::format("tensor '{}' offset {} is not a multiple of the alignment {}", t.name,
                      t.offset, alignment));
    const DTypeTraits& tr = dtype_traits(t.type);
    if (t.shape[0] % tr.block_size != 0)
      bad(fmt::format("tensor '{}' has rows of {} elements, not a multiple of the {} block size {}",
                      t.name, t.shape[0], tr.name, tr.block_size));
    const uint64_t blocks = uint64_t(n_elements / tr.block_size);
    if (__builtin_mul_overflow(blocks, uint64_t(tr.block_bytes), &t.nbytes))
      bad(fmt::format("tensor '{}' is too large", t.name));
    return t;
  }

  // Tensor bytes must lie inside the file; data points into it.
  void place_tensor(GgufTensorInfo& t, uint64_t data_start) {
    uint64_t begin = 0, end = 0;
    if (__builtin_add_overflow(data_start, t.offset, &begin) ||
        __builtin_add_overflow(begin, t.nbytes, &end))
      bad(fmt::format("tensor '{}' offset {} and size {} overflow", t.name, t.offset, t.nbytes));
    if (end > size)
      bad(fmt::format("truncated (tensor '{}' needs bytes {}..{}, file has {})", t.name, begin, end,
                      size));
    t.data = data + begin;
  }

  void parse(GgufFile& f) {
    if (size < 4) bad(fmt::format("not a GGUF file (only {} bytes)", size));
    if (std::memcmp(data, "GGUF", 4) != 0)
      bad(fmt::format("not a GGUF file (magic '{}')", escape_magic(data, 4)));
    pos = 4;
    const uint32_t version = read<uint32_t>();
    if (version == 1)
      bad("GGUF version 1 is not supported (only v2 and v3): convert the model again");
    if (version != 2 && version != 3) {
      if (__builtin_bswap32(version) == 2 || __builtin_bswap32(version) == 3)
        bad("big-endian GGUF files are not supported");
      bad(fmt::format("unsupported GGUF version {} (only v2 and v3)", version));
    }
    f.version_ = version;
    const uint64_t n_tensors = read<uint64_t>();
    const uint64_t n_kv = read<uint64_t>();
    // A key-value pair takes at least 8 + 4 + 1 bytes, a tensor info 8 + 4 + 8 + 4 + 8.
    if (n_kv > (size - pos) / 13 || n_tensors > (size - pos) / 32)
      bad(fmt::format("truncated (header declares {} metadata keys and {} tensors, file has {} bytes)",
                      n_kv, n_tensors, size));
    read_metadata(f, n_kv);

    f.tensors_.reserve(size_t(n_tensors));
    for (uint64_t i = 0; i < n_tensors; ++i) {
      GgufTensorInfo t = read_tensor_info(i, f.alignment_);
      if (!f.tensor_index_.emplace(t.name, f.tensors_.size()).second)
        bad(fmt::format("duplicate tensor name '{}'", t.name));
      f.tensors_.push_back(std::move(t));
    }
    const uint64_t data_start = (uint64_t(pos) + f.alignment_ - 1) / f.alignment_ * f.alignment_;
    f.data_offset_ = data_start;
    for (GgufTensorInfo& t : f.tensors_) place_tensor(t, data_start);
  }
};

GgufFile GgufFile::parse(const uint8_t* data, size_t size, const std::string& name) {
  GgufFile f;
  f.path_ = name;
  f.base_ = data;
  f.size_ = size;
  GgufParser p{data, size, f.path_};
  p.parse(f);
  return f;
}

GgufFile GgufFile::open(const std::string& path) {
  auto mapping = std::make_shared<MappedFile>(path);
  GgufFile f = parse(mapping->data(), mapping->size(), path);
  f.file_ = std::move(mapping);
  return f;
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = kv_.find(key);
  return it == kv_.end() ? nullptr : &it->second;
}

const GgufValue& GgufFile::get(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) fail("{}: missing metadata key '{}'", path_, key);
  return *v;
}

int64_t GgufFile::get_int(const std::string& key, std::optional<int64_t> def) const {
  const GgufValue* v = find(key);
  if (!v && def) return *def;
  if (!v) fail("{}: missing metadata key '{}'", path_, key);
  if (!v->is_int()) fail("{}: metadata key '{}' is a {}, not an integer", path_, key, gguf_type_name(v->type));
  try {
    return v->as_int();
  } catch (const Error& e) {
    fail("{}: metadata key '{}': {}", path_, key, e.what());
  }
}

double GgufFile::get_float(const std::string& key, std::optional<double> def) const {
  const GgufValue* v = find(key);
  if (!v && def) return *def;
  if (!v) fail("{}: missing metadata key '{}'", path_, key);
  if (!v->is_int() && v->type != GgufType::F32 && v->type != GgufType::F64)
    fail("{}: metadata key '{}' is a {}, not a number", path_, key, gguf_type_name(v->type));
  return v->as_float();
}

std::string GgufFile::get_string(const std::string& key, std::optional<std::string> def) const {
  const GgufValue* v = find(key);
  if (!v && def) return *def;
  if (!v) fail("{}: missing metadata key '{}'", path_, key);
  if (v->type != GgufType::STRING)
    fail("{}: metadata key '{}' is a {}, not a string", path_, key, gguf_type_name(v->type));
  return v->as_string();
}

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensorInfo& GgufFile::tensor(const std::string& name) const {
  const GgufTensorInfo* t = find_tensor(name);
  if (!t) fail("{}: no tensor named '{}'", path_, name);
  return *t;
}

int64_t GgufTensorInfo::n_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int64_t GgufTensorInfo::rows() const {
  int64_t n = 1;
  for (size_t i = 1; i < shape.size(); ++i) n *= shape[i];
  return n;
}

size_t GgufTensorInfo::row_nbytes() const { return row_bytes(type, row_len()); }

const uint8_t* GgufTensorInfo::row_data(int64_t r) const {
  IK_CHECK(r >= 0 && r < rows(), "row {} of tensor '{}' is out of range (it has {} rows)", r, name,
           rows());
  return data + size_t(r) * row_nbytes();
}

}  // namespace ik::io
