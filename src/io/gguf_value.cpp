// GgufValue: typed access, constructors and the one-line display used by `inferkit info`.
#include <fmt/format.h>

#include <limits>

#include "core/error.hpp"
#include "io/gguf.hpp"

namespace ik::io {

const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::U8: return "u8";
    case GgufType::I8: return "i8";
    case GgufType::U16: return "u16";
    case GgufType::I16: return "i16";
    case GgufType::U32: return "u32";
    case GgufType::I32: return "i32";
    case GgufType::F32: return "f32";
    case GgufType::BOOL: return "bool";
    case GgufType::STRING: return "string";
    case GgufType::ARRAY: return "array";
    case GgufType::U64: return "u64";
    case GgufType::I64: return "i64";
    case GgufType::F64: return "f64";
  }
  return "unknown";
}

bool GgufValue::is_int() const {
  return std::holds_alternative<uint64_t>(v) || std::holds_alternative<int64_t>(v);
}

int64_t GgufValue::as_int() const {
  if (const auto* u = std::get_if<uint64_t>(&v)) {
    IK_CHECK(*u <= uint64_t(std::numeric_limits<int64_t>::max()),
             "metadata value {} does not fit in a signed 64-bit integer", *u);
    return int64_t(*u);
  }
  if (const auto* i = std::get_if<int64_t>(&v)) return *i;
  fail("metadata value of type {} is not an integer", gguf_type_name(type));
}

double GgufValue::as_float() const {
  if (const auto* d = std::get_if<double>(&v)) return *d;
  if (const auto* u = std::get_if<uint64_t>(&v)) return double(*u);
  if (const auto* i = std::get_if<int64_t>(&v)) return double(*i);
  fail("metadata value of type {} is not a number", gguf_type_name(type));
}

bool GgufValue::as_bool() const {
  if (const auto* b = std::get_if<bool>(&v)) return *b;
  fail("metadata value of type {} is not a bool", gguf_type_name(type));
}

const std::string& GgufValue::as_string() const {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  fail("metadata value of type {} is not a string", gguf_type_name(type));
}

const GgufArray& GgufValue::as_array() const {
  if (const auto* a = std::get_if<std::shared_ptr<GgufArray>>(&v); a && *a) return **a;
  fail("metadata value of type {} is not an array", gguf_type_name(type));
}

std::vector<std::string> GgufValue::as_string_array() const {
  const GgufArray& a = as_array();
  std::vector<std::string> out;
  out.reserve(a.items.size());
  for (const GgufValue& x : a.items) out.push_back(x.as_string());
  return out;
}

std::vector<float> GgufValue::as_float_array() const {
  const GgufArray& a = as_array();
  std::vector<float> out;
  out.reserve(a.items.size());
  for (const GgufValue& x : a.items) out.push_back(float(x.as_float()));
  return out;
}

std::vector<int64_t> GgufValue::as_int_array() const {
  const GgufArray& a = as_array();
  std::vector<int64_t> out;
  out.reserve(a.items.size());
  for (const GgufValue& x : a.items) out.push_back(x.as_int());
  return out;
}

namespace {

// Quoted, with control characters escaped, cut after ~120 bytes at a UTF-8 boundary.
std::string quote(const std::string& s) {
  constexpr size_t kMax = 120;
  std::string out = "\"";
  size_t i = 0;
  for (; i < s.size() && i < kMax; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += char(c);
    }
  }
  while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) out += s[i++];
  out += '"';
  if (i < s.size()) out += fmt::format("... ({} bytes)", s.size());
  return out;
}

}  // namespace

std::string GgufValue::to_display(size_t max_items) const {
  return std::visit(
      [&](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) {
          return quote(x);
        } else if constexpr (std::is_same_v<T, std::shared_ptr<GgufArray>>) {
          if (!x) return "[]";
          std::string out = "[";
          const size_t n = x->items.size();
          for (size_t i = 0; i < n && i < max_items; ++i) {
            if (i) out += ", ";
            out += x->items[i].to_display(max_items);
          }
          if (n > max_items) out += fmt::format(", ... ({} items)", n);
          return out + "]";
        } else if constexpr (std::is_same_v<T, double>) {
          return type == GgufType::F32 ? fmt::format("{}", float(x)) : fmt::format("{}", x);
        } else {
          return fmt::format("{}", x);
        }
      },
      v);
}

GgufValue GgufValue::make_uint(GgufType t, uint64_t x) {
  IK_CHECK(t == GgufType::U8 || t == GgufType::U16 || t == GgufType::U32 || t == GgufType::U64,
           "make_uint: {} is not an unsigned integer type", gguf_type_name(t));
  return GgufValue{t, x};
}

GgufValue GgufValue::make_int(GgufType t, int64_t x) {
  IK_CHECK(t == GgufType::I8 || t == GgufType::I16 || t == GgufType::I32 || t == GgufType::I64,
           "make_int: {} is not a signed integer type", gguf_type_name(t));
  return GgufValue{t, x};
}

GgufValue GgufValue::make_float(GgufType t, double x) {
  IK_CHECK(t == GgufType::F32 || t == GgufType::F64, "make_float: {} is not a float type",
           gguf_type_name(t));
  return GgufValue{t, x};
}

GgufValue GgufValue::make_bool(bool x) { return GgufValue{GgufType::BOOL, x}; }

GgufValue GgufValue::make_string(std::string x) { return GgufValue{GgufType::STRING, std::move(x)}; }

GgufValue GgufValue::make_array(GgufType elem_type, std::vector<GgufValue> items) {
  for (const GgufValue& x : items)
    IK_CHECK(x.type == elem_type, "make_array: item of type {} in an array of {}",
             gguf_type_name(x.type), gguf_type_name(elem_type));
  auto a = std::make_shared<GgufArray>();
  a->elem_type = elem_type;
  a->items = std::move(items);
  return GgufValue{GgufType::ARRAY, std::move(a)};
}

}  // namespace ik::io
