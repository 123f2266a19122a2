// Printing expressions back to JS source with the fewest parentheses.
#include <cmath>

#include "explain/ast.hpp"

namespace ik::explain {

namespace {

// Precedence levels, loosest first.
enum Prec { kCond, kCoalesce, kOr, kAnd, kEquality, kRelational, kAdditive, kMultiplicative, kUnary, kPostfix, kPrimary };

Prec precedence(const Node* n) {
  switch (n->op) {
    case Op::Cond: return kCond;
    case Op::Coalesce: return kCoalesce;
    case Op::Or: return kOr;
    case Op::And: return kAnd;
    case Op::Eq: case Op::Ne: case Op::StrictEq: case Op::StrictNe: return kEquality;
    case Op::Lt: case Op::Gt: case Op::Le: case Op::Ge: return kRelational;
    case Op::Add: case Op::Sub: return kAdditive;
    case Op::Mul: case Op::Div: return kMultiplicative;
    case Op::Typeof: case Op::Not: case Op::Plus: case Op::Neg: return kUnary;
    case Op::Sort: case Op::Member: case Op::Index: return kPostfix;
    case Op::Literal:
      if (n->literal.type == Type::Number && (n->literal.number < 0 || std::signbit(n->literal.number)))
        return kUnary;  // printed as -x
      return kPrimary;
    default: return kPrimary;
  }
}

bool is_identifier_name(const std::string& s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_' || s[0] == '$')) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$')) return false;
  return true;
}

std::string literal_text(const Value& v) {
  switch (v.type) {
    case Type::Undefined: return "undefined";
    case Type::Null: return "null";
    case Type::Boolean: return v.boolean ? "true" : "false";
    case Type::Number:
      if (std::signbit(v.number) && !std::isnan(v.number)) return std::string("-").append(number_to_string(-v.number));
      return number_to_string(v.number);
    case Type::String: return quote(v.string);
    default: return show(v);  // not produced by the parser
  }
}

std::string print_at(const Node* n, Prec min);

std::string binary_text(const Node* n) {
  Prec p = precedence(n);
  const Node* l = n->kids[0];
  const Node* r = n->kids[1];
  std::string left, right;
  if (n->op == Op::Coalesce) {
    // ?? operands are equality-level or tighter; a ?? chain may continue on the left.
    left = l->op == Op::Coalesce ? print_at(l, kCoalesce) : print_at(l, kEquality);
    right = print_at(r, kEquality);
  } else {
    left = print_at(l, p);
    right = print_at(r, Prec(p + 1));
  }
  return left + " " + op_symbol(n->op) + " " + right;
}

std::string unary_text(const Node* n) {
  std::string operand = print_at(n->kids[0], kUnary);
  if (n->op == Op::Typeof) return "typeof " + operand;
  std::string sym = op_symbol(n->op);
  // "- -x" and "+ +x", never "--x" or "++x".
  if ((n->op == Op::Neg || n->op == Op::Plus) && !operand.empty() && (operand[0] == '-' || operand[0] == '+'))
    return sym + " " + operand;
  return sym + operand;
}

std::string print_plain(const Node* n) {
  switch (n->op) {
    case Op::Literal: return literal_text(n->literal);
    case Op::ArrayLit: {
      std::string out = "[";
      for (size_t i = 0; i < n->kids.size(); i++) out += (i ? ", " : "") + print_at(n->kids[i], kCond);
      return out + "]";
    }
    case Op::ObjectLit: {
      std::string out = "{";
      for (size_t i = 0; i < n->kids.size(); i++) {
        const std::string& k = n->keys[i];
        out += (i ? ", " : "") + (is_identifier_name(k) ? k : quote(k)) + ": " + print_at(n->kids[i], kCond);
      }
      return out + "}";
    }
    case Op::Typeof: case Op::Not: case Op::Plus: case Op::Neg: return unary_text(n);
    case Op::StringCall: case Op::NumberCall:
      return std::string(n->op == Op::StringCall ? "String(" : "Number(") +
             (n->call_without_arg ? "" : print_at(n->kids[0], kCond)) + ")";
    case Op::Sort: case Op::Member: {
      const Node* obj = n->kids[0];
      std::string o = print_at(obj, kPostfix);
      // "1.length" would lex as a number followed by an identifier.
      if (obj->op == Op::Literal && obj->literal.type == Type::Number && o.find_first_of(".eN") == std::string::npos &&
          o != "Infinity")
        o = "(" + o + ")";
      return o + (n->op == Op::Sort ? ".sort()" : "." + n->keys[0]);
    }
    case Op::Index: return print_at(n->kids[0], kPostfix) + "[" + print_at(n->kids[1], kCond) + "]";
    case Op::Cond:
      return print_at(n->kids[0], kCoalesce) + " ? " + print_at(n->kids[1], kCond) + " : " + print_at(n->kids[2], kCond);
    default: return binary_text(n);
  }
}

std::string print_at(const Node* n, Prec min) {
  std::string s = print_plain(n);
  Prec p = precedence(n);
  bool wrap = p < min;
  // A ?? operand may not be an unparenthesized && or || (and vice versa), whatever the levels.
  if (min == kEquality && (n->op == Op::And || n->op == Op::Or || n->op == Op::Coalesce)) wrap = true;
  if (min <= kAnd && min >= kOr && n->op == Op::Coalesce) wrap = true;
  // ?: condition is a short-circuit expression: a bare ?? or || is fine there.
  return wrap ? "(" + s + ")" : s;
}

}  // namespace

const char* op_symbol(Op op) {
  switch (op) {
    case Op::Typeof: return "typeof";
    case Op::Not: return "!";
    case Op::Plus: return "+";
    case Op::Neg: return "-";
    case Op::Add: return "+";
    case Op::Sub: return "-";
    case Op::Mul: return "*";
    case Op::Div: return "/";
    case Op::Lt: return "<";
    case Op::Gt: return ">";
    case Op::Le: return "<=";
    case Op::Ge: return ">=";
    case Op::Eq: return "==";
    case Op::Ne: return "!=";
    case Op::StrictEq: return "===";
    case Op::StrictNe: return "!==";
    case Op::And: return "&&";
    case Op::Or: return "||";
    case Op::Coalesce: return "??";
    default: return "?";
  }
}

std::string print(const Node* n) { return print_at(n, kCond); }

}  // namespace ik::explain
