#include "explain/value.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fmt/format.h>

namespace ik::explain {

std::string number_to_string(double x) {
  if (std::isnan(x)) return "NaN";
  if (x == 0) return "0";
  if (x < 0) return std::string("-").append(number_to_string(-x));
  if (std::isinf(x)) return "Infinity";
  // Shortest round-trip digits d1..dk and exponent n such that x = 0.d1..dk * 10^n.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  size_t e_pos = sci.find('e');
  std::string digits;
  for (size_t i = 0; i < e_pos; i++)
    if (sci[i] != '.') digits += sci[i];
  int n = std::atoi(sci.c_str() + e_pos + 1) + 1;
  int k = static_cast<int>(digits.size());
  if (k <= n && n <= 21) return digits + std::string(n - k, '0');
  if (0 < n && n <= 21) return digits.substr(0, n) + "." + digits.substr(n);
  if (-6 < n && n <= 0) return "0." + std::string(-n, '0') + digits;
  int exp = n - 1;
  std::string mantissa = k == 1 ? digits : digits.substr(0, 1) + "." + digits.substr(1);
  return mantissa + "e" + (exp >= 0 ? "+" : "-") + std::to_string(std::abs(exp));
}

static bool is_js_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static bool all_digits(const std::string& s, size_t from, int base) {
  if (from >= s.size()) return false;
  for (size_t i = from; i < s.size(); i++) {
    char c = s[i];
    int d = (c >= '0' && c <= '9') ? c - '0'
            : (c >= 'a' && c <= 'f') ? c - 'a' + 10
            : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : 99;
    if (d >= base) return false;
  }
  return true;
}

// StrDecimalLiteral without sign: digits [. digits] [exp] | . digits [exp].
static bool is_decimal_literal(const std::string& s, size_t i) {
  size_t int_digits = 0, frac_digits = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) i++, int_digits++;
  if (i < s.size() && s[i] == '.') {
    i++;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) i++, frac_digits++;
  }
  if (int_digits + frac_digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) i++;
    size_t exp_digits = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) i++, exp_digits++;
    if (exp_digits == 0) return false;
  }
  return i == s.size();
}

double string_to_number(const std::string& raw) {
  size_t b = 0, e = raw.size();
  while (b < e && is_js_space(raw[b])) b++;
  while (e > b && is_js_space(raw[e - 1])) e--;
  std::string s = raw.substr(b, e - b);
  if (s.empty()) return 0;
  if (s.size() > 2 && s[0] == '0') {
    int base = (s[1] == 'x' || s[1] == 'X') ? 16 : (s[1] == 'o' || s[1] == 'O') ? 8
               : (s[1] == 'b' || s[1] == 'B') ? 2 : 0;
    if (base) {
      if (!all_digits(s, 2, base)) return NAN;
      double v = 0;
      for (size_t i = 2; i < s.size(); i++) v = v * base + std::stoi(s.substr(i, 1), nullptr, 16);
      return v;
    }
  }
  size_t i = (s[0] == '+' || s[0] == '-') ? 1 : 0;
  double sign = s[0] == '-' ? -1 : 1;
  if (s.compare(i, std::string::npos, "Infinity") == 0) return sign * INFINITY;
  if (!is_decimal_literal(s, i)) return NAN;
  return std::strtod(s.c_str(), nullptr);
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) out += fmt::format("\\u{:04x}", c);
        else out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

long long array_index(const std::string& key) {
  if (key.empty() || key.size() > 10) return -1;
  if (key.size() > 1 && key[0] == '0') return -1;
  long long n = 0;
  for (char c : key) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  return n < 4294967295LL ? n : -1;
}

// Own property keys in JS order: array indices ascending, then the rest by insertion.
static std::vector<const std::pair<std::string, Value>*> ordered(const Properties& ps) {
  std::vector<const std::pair<std::string, Value>*> out;
  for (auto& p : ps) out.push_back(&p);
  std::stable_sort(out.begin(), out.end(), [](auto* a, auto* b) {
    long long ia = array_index(a->first), ib = array_index(b->first);
    if (ia < 0 || ib < 0) return ia >= 0 && ib < 0;
    return ia < ib;
  });
  return out;
}

std::string show(const Value& v) {
  switch (v.type) {
    case Type::Undefined: return "undefined";
    case Type::Null: return "null";
    case Type::Boolean: return v.boolean ? "true" : "false";
    case Type::Number: return (v.number == 0 && std::signbit(v.number)) ? "-0" : number_to_string(v.number);
    case Type::String: return quote(v.string);
    case Type::Error: return v.string;
    case Type::Array: {
      std::string out = "[";
      for (size_t i = 0; i < v.elements->size(); i++) {
        if (i) out += ',';
        out += show((*v.elements)[i]);
      }
      return out + "]";
    }
    case Type::Object: {
      std::string out = "{";
      bool first = true;
      for (auto* p : ordered(*v.properties)) {
        if (!first) out += ',';
        out += quote(p->first);
        out += ':';
        out += show(p->second);
        first = false;
      }
      return out + "}";
    }
  }
  return "?";
}

}  // namespace ik::explain
