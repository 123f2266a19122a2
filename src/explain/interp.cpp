// The misinterpreter. Section numbers refer to ECMA-262; "mis(X)" marks each place where
// misconception X replaces the standard rule.
#include "explain/interp.hpp"

#include <cmath>
#include <cstring>

#include "core/error.hpp"

namespace ik::explain {

bool Interpreter::mis(int m) {
  consulted_ |= bit(m);
  if (!(mask_ & bit(m))) return false;
  fired_ |= bit(m);
  if (firings) firings->push_back({m, current_});
  return true;
}

void Interpreter::step() {
  if (++steps_ > max_steps_) fail("evaluation exceeded the step limit ({} steps)", max_steps_);
}

Value Interpreter::eval(const Node* n) {
  const Node* saved = current_;
  current_ = n;
  step();
  Value v = eval_node(n);
  if (node_values) (*node_values)[n] = v;
  current_ = saved;
  return v;
}

// Properties of the prototypes that the subset does not model: reading one is an error
// rather than a silent undefined.
static bool is_builtin_property(const std::string& k) {
  static const char* names[] = {
      "constructor", "toString", "toLocaleString", "valueOf", "hasOwnProperty", "isPrototypeOf",
      "propertyIsEnumerable", "__proto__", "__defineGetter__", "__defineSetter__", "__lookupGetter__",
      "__lookupSetter__", "at", "concat", "copyWithin", "entries", "every", "fill", "filter", "find",
      "findIndex", "findLast", "findLastIndex", "flat", "flatMap", "forEach", "includes", "indexOf",
      "join", "keys", "lastIndexOf", "map", "pop", "push", "reduce", "reduceRight", "reverse", "shift",
      "slice", "some", "sort", "splice", "toReversed", "toSorted", "toSpliced", "unshift", "values",
      "with", "charAt", "charCodeAt", "codePointAt", "endsWith", "localeCompare", "match", "matchAll",
      "normalize", "padEnd", "padStart", "repeat", "replace", "replaceAll", "search", "split",
      "startsWith", "substring", "substr", "toLowerCase", "toUpperCase", "trim", "trimStart", "trimEnd",
      "trimLeft", "trimRight", "anchor", "big", "blink", "bold", "fixed", "fontcolor", "fontsize",
      "italics", "link", "small", "strike", "sub", "sup", "isWellFormed", "toWellFormed", "toFixed",
      "toExponential", "toPrecision", "toLocaleLowerCase", "toLocaleUpperCase"};
  for (const char* n : names)
    if (k == n) return true;
  return false;
}

static bool is_blank(const std::string& s) {
  for (char c : s)
    if (!std::strchr(" \t\n\v\f\r", c)) return false;
  return true;
}

static bool is_number_or_string(const Value& v) { return v.type == Type::Number || v.type == Type::String; }
// Arrays and plain objects are both of JS type Object.
static bool same_js_type(const Value& a, const Value& b) {
  return a.type == b.type || (a.is_object_like() && b.is_object_like());
}

Value Interpreter::eval_node(const Node* n) {
#define EVAL_OR_RETURN(var, node) \
  Value var = eval(node);         \
  if (var.is_error()) return var
  switch (n->op) {
    case Op::Literal: return n->literal;
    case Op::ArrayLit: {
      Elements xs;
      for (const Node* k : n->kids) {
        EVAL_OR_RETURN(x, k);
        xs.push_back(std::move(x));
      }
      return Value::array(std::move(xs));
    }
    case Op::ObjectLit: {
      Properties ps;
      for (size_t i = 0; i < n->kids.size(); i++) {
        EVAL_OR_RETURN(x, n->kids[i]);
        bool replaced = false;
        for (auto& p : ps)
          if (p.first == n->keys[i]) p.second = x, replaced = true;
        if (!replaced) ps.emplace_back(n->keys[i], std::move(x));
      }
      return Value::object(std::move(ps));
    }
    case Op::StringCall:
    case Op::NumberCall: {
      bool str = n->op == Op::StringCall;
      if (n->call_without_arg) return str ? Value::of(std::string()) : Value::of(0.0);
      EVAL_OR_RETURN(a, n->kids[0]);
      return str ? Value::of(to_string(a)) : Value::of(to_number(a));
    }
    case Op::And: case Op::Or: case Op::Coalesce: return logical(n);
    case Op::Cond: {
      EVAL_OR_RETURN(c, n->kids[0]);
      return eval(to_boolean(c) ? n->kids[1] : n->kids[2]);
    }
    default: break;
  }
  EVAL_OR_RETURN(a, n->kids[0]);
  switch (n->op) {
    case Op::Typeof: return Value::of(type_of(a));
    case Op::Not: return Value::of(!to_boolean(a));
    case Op::Plus: return Value::of(to_number(a));
    case Op::Neg: return Value::of(-to_number(a));
    case Op::Sort: return sort(a);
    case Op::Member: return index(a, Value::of(n->keys[0]));
    default: break;
  }
  EVAL_OR_RETURN(b, n->kids[1]);
#undef EVAL_OR_RETURN
  switch (n->op) {
    case Op::Add: return add(a, b);
    case Op::Sub: return Value::of(to_number(a) - to_number(b));
    case Op::Mul: return Value::of(to_number(a) * to_number(b));
    case Op::Div: return Value::of(to_number(a) / to_number(b));
    case Op::Lt: case Op::Gt: case Op::Le: case Op::Ge: return compare(n->op, a, b);
    case Op::Eq: return loose_equals(a, b);
    case Op::Ne: return Value::of(!loose_equals(a, b).boolean);
    case Op::StrictEq: return Value::of(strict_equals(a, b));
    case Op::StrictNe: return Value::of(!strict_equals(a, b));
    case Op::Index: return index(a, b);
    default: fail("internal error: unknown operator");
  }
}

// 13.5.3
std::string Interpreter::type_of(const Value& v) {
  switch (v.type) {
    case Type::Undefined: return "undefined";
    case Type::Null: return mis(NullObj) ? "null" : "object";
    case Type::Boolean: return "boolean";
    case Type::Number: return "number";
    case Type::String: return "string";
    case Type::Array: return mis(ArrayObj) ? "array" : "object";
    default: return "object";
  }
}

// 7.1.2
bool Interpreter::to_boolean(const Value& v) {
  switch (v.type) {
    case Type::Undefined: case Type::Null: return false;
    case Type::Boolean: return v.boolean;
    case Type::Number: return !(v.number == 0 || std::isnan(v.number));
    case Type::String: return !v.string.empty();
    case Type::Array:
      return !(v.elements->empty() && mis(EmptyArrayTruthy));
    case Type::Object:
      return !(v.properties->empty() && mis(EmptyArrayTruthy));
    default: return true;
  }
}

// 7.1.1 with 20.1.3.6 / 23.1.3.36: valueOf of an array or object is itself, so toString.
Value Interpreter::to_primitive(const Value& v) {
  if (v.type == Type::Array) return Value::of(array_join(v));
  if (v.type == Type::Object) return Value::of(object_to_string(v));
  return v;
}

// 23.1.3.18 Array.prototype.join with ",".
std::string Interpreter::array_join(const Value& arr) {
  step();
  std::string out;
  for (size_t i = 0; i < arr.elements->size(); i++) {
    const Value& x = (*arr.elements)[i];
    if (i) out += ',';
    if (x.type == Type::Undefined) out += mis(ArrStrUndef) ? "undefined" : "";
    else if (x.type == Type::Null) out += mis(ArrStrNull) ? "null" : "";
    else out += to_string(x);
  }
  if (mis(ArrStrBrackets)) return "[" + out + "]";
  return out;
}

std::string Interpreter::object_to_string(const Value& obj) {
  if (mis(ObjStr)) return show(obj);
  return "[object Object]";
}

// 7.1.17
std::string Interpreter::to_string(const Value& v) {
  switch (v.type) {
    case Type::Undefined: return mis(UndefStrEmpty) ? "" : "undefined";
    case Type::Null: return mis(NullStrEmpty) ? "" : "null";
    case Type::Boolean: return v.boolean ? "true" : "false";
    case Type::Number: return (std::isnan(v.number) && mis(NanStrEmpty)) ? "" : number_to_string(v.number);
    case Type::String: return v.string;
    default: return to_string(to_primitive(v));
  }
}

// 7.1.4
double Interpreter::to_number(const Value& v) {
  switch (v.type) {
    case Type::Undefined: return mis(Undef0) ? 0 : NAN;
    case Type::Null: return mis(NullNan) ? NAN : 0;
    case Type::Boolean: return v.boolean ? 1 : 0;
    case Type::Number: return v.number;
    case Type::String:
      if (is_blank(v.string) && mis(EmptyStringNan)) return NAN;
      return string_to_number(v.string);
    case Type::Object:
      if (mis(Obj0)) return 0;
      return to_number(to_primitive(v));
    default: return to_number(to_primitive(v));
  }
}

// Character order for string comparison: code units, except where a misconception
// moves ',' or '[' ']' relative to the letters and digits.
int Interpreter::char_rank(char c, char other) {
  bool other_alnum = std::isalnum(static_cast<unsigned char>(other));
  if (c == ',' && other_alnum && mis(AsciiComma)) return 4 * 'z' + 1;
  if ((c == '[' || c == ']') && std::isalpha(static_cast<unsigned char>(other)) && mis(AsciiOpenShut))
    return 4 * 'A' - (c == '[' ? 2 : 1);
  return 4 * static_cast<unsigned char>(c);
}

bool Interpreter::string_less(const std::string& a, const std::string& b) {
  size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; i++) {
    if (a[i] == b[i]) continue;
    int ra = char_rank(a[i], b[i]), rb = char_rank(b[i], a[i]);
    return ra < rb;
  }
  return a.size() < b.size();
}

// 7.2.16 IsStrictlyEqual.
bool Interpreter::strict_equals(const Value& a, const Value& b) {
  if (a.type != b.type) return false;
  switch (a.type) {
    case Type::Undefined: case Type::Null: return true;
    case Type::Boolean: return a.boolean == b.boolean;
    case Type::Number:
      if (std::isnan(a.number) && std::isnan(b.number) && mis(NanEq)) return true;
      return a.number == b.number;
    case Type::String: return a.string == b.string;
    case Type::Array:
      if (a.elements == b.elements) return true;
      if (!mis(StructuralEquality)) return false;
      if (a.elements->size() != b.elements->size()) return false;
      for (size_t i = 0; i < a.elements->size(); i++)
        if (!strict_equals((*a.elements)[i], (*b.elements)[i])) return false;
      return true;
    case Type::Object:
      if (a.properties == b.properties) return true;
      if (!mis(StructuralEquality)) return false;
      if (a.properties->size() != b.properties->size()) return false;
      for (size_t i = 0; i < a.properties->size(); i++)
        if ((*a.properties)[i].first != (*b.properties)[i].first ||
            !strict_equals((*a.properties)[i].second, (*b.properties)[i].second))
          return false;
      return true;
    default: return false;
  }
}

// 7.2.15 IsLooselyEqual.
Value Interpreter::loose_equals(const Value& a, const Value& b, int depth) {
  step();
  if (same_js_type(a, b)) return Value::of(strict_equals(a, b));
  if (depth == 0 && mis(EqStrict)) return Value::of(false);
  if (a.is_nullish() && b.is_nullish()) return Value::of(true);
  if (a.type == Type::Number && b.type == Type::String) return loose_equals(a, Value::of(to_number(b)), depth + 1);
  if (a.type == Type::String && b.type == Type::Number) return loose_equals(Value::of(to_number(a)), b, depth + 1);
  if (a.type == Type::Boolean || b.type == Type::Boolean) {
    const Value& boolean = a.type == Type::Boolean ? a : b;
    const Value& other = a.type == Type::Boolean ? b : a;
    if (mis(EqBoolCoerce)) return Value::of(to_boolean(other) == boolean.boolean);
    Value num = Value::of(boolean.boolean ? 1.0 : 0.0);
    return a.type == Type::Boolean ? loose_equals(num, b, depth + 1) : loose_equals(a, num, depth + 1);
  }
  if (is_number_or_string(a) && b.is_object_like()) return loose_equals(a, to_primitive(b), depth + 1);
  if (a.is_object_like() && is_number_or_string(b)) return loose_equals(to_primitive(a), b, depth + 1);
  return Value::of(false);
}

// 7.2.13 IsLessThan: a boolean, or undefined when NaN is involved.
Value Interpreter::less_than(const Value& a, const Value& b) {
  Value pa = to_primitive(a), pb = to_primitive(b);
  if (pa.type == Type::String && pb.type == Type::String && !mis(LtCastsNum))
    return Value::of(string_less(pa.string, pb.string));
  double x = to_number(pa), y = to_number(pb);
  if (std::isnan(x) || std::isnan(y)) return Value::undefined();
  return Value::of(x < y);
}

// 13.10.1: a > b is b < a; a <= b is !(b < a); a >= b is !(a < b); undefined gives false.
Value Interpreter::compare(Op op, const Value& a, const Value& b) {
  auto is_true = [](const Value& r) { return r.type == Type::Boolean && r.boolean; };
  switch (op) {
    case Op::Lt: return Value::of(is_true(less_than(a, b)));
    case Op::Gt: return Value::of(is_true(less_than(b, a)));
    case Op::Le:
      if (mis(GeIsGtOrEq)) return Value::of(is_true(less_than(a, b)) || loose_equals(a, b).boolean);
      return Value::of(less_than(b, a).type == Type::Boolean && !less_than(b, a).boolean);
    default:
      if (mis(GeIsGtOrEq)) return Value::of(is_true(less_than(b, a)) || loose_equals(a, b).boolean);
      return Value::of(less_than(a, b).type == Type::Boolean && !less_than(a, b).boolean);
  }
}

// 13.15.3 ApplyStringOrNumericBinaryOperator for +.
Value Interpreter::add(const Value& a, const Value& b) {
  if (a.type == Type::Array && b.type == Type::Array && mis(PlusArrCat)) {
    Elements xs = *a.elements;
    xs.insert(xs.end(), b.elements->begin(), b.elements->end());
    return Value::array(std::move(xs));
  }
  if (!(is_number_or_string(a) && is_number_or_string(b)) && mis(PlusSemiStrict)) return Value::type_error();
  Value pa = to_primitive(a), pb = to_primitive(b);
  bool sa = pa.type == Type::String, sb = pb.type == Type::String;
  if ((sa || sb) && !(sa != sb && mis(PlusCastNum))) return Value::of(to_string(pa) + to_string(pb));
  return Value::of(to_number(pa) + to_number(pb));
}

// 13.3.2 property access, with 10.4.2 (arrays) and 10.4.3 (strings).
Value Interpreter::index(const Value& obj, const Value& key) {
  if (obj.is_nullish()) return Value::type_error();
  if ((obj.type == Type::Number || obj.type == Type::Boolean) && mis(NoImplicitObjification))
    return Value::type_error();
  std::string k = to_string(key);  // ToPropertyKey
  long long idx = array_index(k);
  bool indexed = obj.type == Type::Array || obj.type == Type::String;
  if (indexed && idx >= 0 && key.type != Type::Number && mis(IndexRaw)) idx = -1;  // "1" taken as a name
  if (indexed && idx >= 0 && mis(OneIndexed)) idx = idx - 1;
  if (obj.type == Type::Array) {
    if (idx >= 0 && idx < static_cast<long long>(obj.elements->size())) return (*obj.elements)[idx];
    if (k == "length") return Value::of(static_cast<double>(obj.elements->size()));
  } else if (obj.type == Type::String) {
    if (idx >= 0 && idx < static_cast<long long>(obj.string.size())) return Value::of(obj.string.substr(idx, 1));
    if (k == "length") return Value::of(static_cast<double>(obj.string.size()));
  } else if (obj.type == Type::Object) {
    for (auto& p : *obj.properties)
      if (p.first == k) return p.second;
  }
  if (is_builtin_property(k)) fail("outside the subset: the built-in property '{}'", k);
  return Value::undefined();
}

// 23.1.3.30 Array.prototype.sort without a comparator: undefined last, the rest ordered
// by their string forms; a stable insertion sort (V8's TimSort is stable too).
Value Interpreter::sort(const Value& arr) {
  if (arr.type != Type::Array) return Value::type_error();
  Elements defined;
  size_t undefined_count = 0;
  for (const Value& x : *arr.elements) {
    if (x.type == Type::Undefined) undefined_count++;
    else defined.push_back(x);
  }
  bool raw = defined.size() >= 2 && mis(SortRaw);
  std::vector<std::string> keys;
  std::vector<size_t> order;
  for (size_t i = 0; i < defined.size(); i++) {
    order.push_back(i);
    keys.push_back(raw ? std::string() : to_string(defined[i]));
  }
  auto less = [&](size_t x, size_t y) {
    step();
    if (raw) {
      Value r = less_than(defined[x], defined[y]);
      return r.type == Type::Boolean && r.boolean;
    }
    return string_less(keys[x], keys[y]);
  };
  for (size_t i = 1; i < order.size(); i++)
    for (size_t j = i; j > 0 && less(order[j], order[j - 1]); j--) std::swap(order[j], order[j - 1]);
  Elements sorted;
  for (size_t i : order) sorted.push_back(defined[i]);
  sorted.resize(sorted.size() + undefined_count);
  // JS sorts in place and returns the same array; no program of the subset can observe
  // the difference, and a fresh array keeps recorded node values intact.
  return Value::array(std::move(sorted));
}

// 13.13 &&, ||, ?? (short-circuit).
Value Interpreter::logical(const Node* n) {
  Value a = eval(n->kids[0]);
  if (a.is_error()) return a;
  if (n->op == Op::Coalesce) {
    bool replace = a.is_nullish() || (a.type == Type::Boolean && !a.boolean && mis(CoalesceFalse)) ||
                   (a.type == Type::Number && std::isnan(a.number) && mis(CoalesceNan));
    return replace ? eval(n->kids[1]) : a;
  }
  bool truthy = to_boolean(a);
  Value r = (n->op == Op::And) == truthy ? eval(n->kids[1]) : a;
  if (!r.is_error() && r.type != Type::Boolean && mis(BoolOpsBool)) return Value::of(to_boolean(r));
  return r;
}

Value evaluate_source(const std::string& source, Mask mask, long max_steps) {
  Program prog = parse(source);
  Interpreter interp(mask, max_steps);
  return interp.eval(prog.root);
}

}  // namespace ik::explain
