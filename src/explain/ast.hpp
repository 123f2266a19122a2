#pragma once
// Expressions of the JavaScript subset, their parser and printer.
#include <deque>
#include <string>
#include <vector>

#include "explain/value.hpp"

namespace ik::explain {

enum class Op {
  Literal, ArrayLit, ObjectLit,                     // leaves and literals
  Typeof, Not, Plus, Neg, Sort, StringCall, NumberCall,  // one operand
  Member,                                           // kids[0].key (e.g. .length)
  Add, Sub, Mul, Div, Lt, Gt, Le, Ge, Eq, Ne, StrictEq, StrictNe, And, Or, Coalesce, Index,
  Cond,
};

struct Node {
  Op op = Op::Literal;
  Value literal;                  // Op::Literal
  std::vector<const Node*> kids;  // operands, array elements, object property values
  std::vector<std::string> keys;  // Op::ObjectLit property names; Op::Member: the name
  int begin = 0, end = 0;         // source span (byte offsets), for explanations
  bool parenthesized = false;
  bool call_without_arg = false;  // String() / Number()
};

struct Program {
  std::string source;
  std::deque<Node> nodes;  // stable addresses
  const Node* root = nullptr;
  Node* add(Node n) { nodes.push_back(std::move(n)); return &nodes.back(); }
};

// Parses one expression. Errors (ik::Error) give line:column and the expected token, or
// name the construct outside the subset.
Program parse(const std::string& source);

// Prints an expression with the fewest parentheses that JS parses back to the same tree.
std::string print(const Node* n);

const char* op_symbol(Op op);

}  // namespace ik::explain
