#include "io/safetensors.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace ik::io {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100u << 20;  // the format's own limit is 100 MB
constexpr size_t kMaxDims = 8;

bool dtype_from_safetensors(const std::string& s, DType& out) {
  static const std::pair<const char*, DType> kMap[] = {
      {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16}, {"F64", DType::F64},
      {"I64", DType::I64}, {"I32", DType::I32}, {"I16", DType::I16},   {"I8", DType::I8},
  };
  for (const auto& [name, t] : kMap) {
    if (s == name) {
      out = t;
      return true;
    }
  }
  return false;
}

}  // namespace

int64_t SafeTensor::n_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsFile SafetensorsFile::parse(const uint8_t* data, size_t size, const std::string& name) {
  auto bad = [&](const std::string& msg) { fail("{}: {}", name, msg); };
  SafetensorsFile f;
  f.path_ = name;
  if (size < 8) bad(fmt::format("not a safetensors file (only {} bytes)", size));
  uint64_t header_len;
  std::memcpy(&header_len, data, 8);
  if (header_len > kMaxHeaderBytes || header_len > size - 8)
    bad(fmt::format("not a safetensors file or truncated (header of {} bytes, file has {})",
                    header_len, size));
  const char* text = reinterpret_cast<const char*>(data + 8);
  const nlohmann::json header = nlohmann::json::parse(text, text + header_len, nullptr, false);
  if (header.is_discarded()) bad("header is not valid JSON");
  if (!header.is_object()) bad("header is not a JSON object");
  const uint8_t* body = data + 8 + header_len;
  const uint64_t body_size = size - 8 - header_len;

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& key = it.key();
    const nlohmann::json& entry = it.value();
    if (key == "__metadata__") {
      if (!entry.is_object()) bad("__metadata__ is not an object");
      for (const auto& [mk, mv] : entry.items())
        if (mv.is_string()) f.metadata_[mk] = mv.get<std::string>();
      continue;
    }
    SafeTensor t;
    t.name = key;
    const auto what = [&](const std::string& msg) { bad(fmt::format("tensor '{}': {}", key, msg)); };
    if (!entry.is_object()) what("entry is not an object");
    const auto dtype = entry.find("dtype");
    const auto shape = entry.find("shape");
    const auto offsets = entry.find("data_offsets");
    if (dtype == entry.end() || !dtype->is_string()) what("missing dtype");
    if (!dtype_from_safetensors(dtype->get<std::string>(), t.type))
      what(fmt::format("unsupported dtype '{}'", dtype->get<std::string>()));
    if (shape == entry.end() || !shape->is_array() || shape->size() > kMaxDims)
      what("missing or invalid shape");
    int64_t n = 1;
    for (const auto& d : *shape) {
      if (!d.is_number_unsigned()) what("shape has a non-integer or negative dimension");
      const uint64_t dim = d.get<uint64_t>();
      if (dim > uint64_t(std::numeric_limits<int64_t>::max()) ||
          __builtin_mul_overflow(n, int64_t(dim), &n))
        what("shape is too large");
      t.shape.push_back(int64_t(dim));
    }
    if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2 ||
        !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned())
      what("missing or invalid data_offsets");
    const uint64_t begin = (*offsets)[0].get<uint64_t>(), end = (*offsets)[1].get<uint64_t>();
    if (begin > end || end > body_size)
      what(fmt::format("data_offsets [{}, {}] outside the {} data bytes (truncated file?)", begin,
                       end, body_size));
    uint64_t expected = 0;
    if (__builtin_mul_overflow(uint64_t(n), uint64_t(dtype_traits(t.type).block_bytes), &expected) ||
        expected != end - begin)
      what(fmt::format("has {} bytes, its shape and dtype need {}", end - begin, expected));
    t.data = body + begin;
    t.nbytes = end - begin;
    f.tensors_.push_back(std::move(t));
  }
  std::sort(f.tensors_.begin(), f.tensors_.end(),
            [](const SafeTensor& a, const SafeTensor& b) { return a.data < b.data; });
  for (size_t i = 0; i < f.tensors_.size(); ++i) f.index_[f.tensors_[i].name] = i;
  return f;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  auto mapping = std::make_shared<MappedFile>(path);
  SafetensorsFile f = parse(mapping->data(), mapping->size(), path);
  f.file_ = std::move(mapping);
  return f;
}

const SafeTensor* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const SafeTensor& SafetensorsFile::tensor(const std::string& name) const {
  const SafeTensor* t = find(name);
  if (!t) fail("{}: no tensor named '{}'", path_, name);
  return *t;
}

std::vector<float> SafetensorsFile::to_f32(const SafeTensor& t) {
  IK_CHECK(t.type == DType::F32 || t.type == DType::F16 || t.type == DType::BF16,
           "tensor '{}' has dtype {}, not a float type", t.name, dtype_name(t.type));
  std::vector<float> out(size_t(t.n_elements()));
  dequantize(t.type, t.data, out.data(), t.n_elements());
  return out;
}

}  // namespace ik::io
