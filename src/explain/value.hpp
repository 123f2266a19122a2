#pragma once
// Values of the JavaScript subset: undefined, null, booleans, numbers (IEEE doubles, as in
// JS), strings (ASCII), arrays, plain objects, and a thrown error (TypeError). Arrays and
// objects are shared so that identity (===) is reference identity, as in JS.
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ik::explain {

enum class Type { Undefined, Null, Boolean, Number, String, Array, Object, Error };

struct Value;
using Elements = std::vector<Value>;
using Properties = std::vector<std::pair<std::string, Value>>;  // insertion order

struct Value {
  Type type = Type::Undefined;
  bool boolean = false;
  double number = 0;
  std::string string;                    // also the error name for Type::Error
  std::shared_ptr<Elements> elements;    // Type::Array
  std::shared_ptr<Properties> properties;  // Type::Object

  static Value undefined() { return {}; }
  static Value null() { Value v; v.type = Type::Null; return v; }
  static Value of(bool b) { Value v; v.type = Type::Boolean; v.boolean = b; return v; }
  static Value of(double x) { Value v; v.type = Type::Number; v.number = x; return v; }
  static Value of(std::string s) { Value v; v.type = Type::String; v.string = std::move(s); return v; }
  static Value array(Elements xs = {}) {
    Value v; v.type = Type::Array; v.elements = std::make_shared<Elements>(std::move(xs)); return v;
  }
  static Value object(Properties ps = {}) {
    Value v; v.type = Type::Object; v.properties = std::make_shared<Properties>(std::move(ps)); return v;
  }
  static Value type_error() { Value v; v.type = Type::Error; v.string = "TypeError"; return v; }

  bool is_error() const { return type == Type::Error; }
  bool is_object_like() const { return type == Type::Array || type == Type::Object; }
  bool is_nullish() const { return type == Type::Null || type == Type::Undefined; }
};

// The printing rule shared with tools/explain_node_eval.js (see docs/explain.md):
// undefined, null, true, false as words; numbers by JS Number::toString except -0 -> "-0";
// strings as JSON strings; arrays as [a,b] and objects as {"k":v} with elements shown by
// the same rule; a thrown error by its name (TypeError).
std::string show(const Value& v);

// JS Number::toString(10): shortest round-trip digits, JS exponent rules.
std::string number_to_string(double x);
// JS StringToNumber: trims whitespace, "" -> 0, decimal/hex/octal/binary, Infinity, else NaN.
double string_to_number(const std::string& s);
// A JSON-style double-quoted string literal (also valid JS).
std::string quote(const std::string& s);
// Canonical array index ("0", "1", ... with no sign or leading zeros), or -1.
long long array_index(const std::string& key);

}  // namespace ik::explain
