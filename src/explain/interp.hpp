#pragma once
// The misinterpreter: evaluates an expression under a set of misconceptions (mask 0 is
// standard JavaScript, which must agree with node). Every rule that a misconception can
// change asks `mis(m)` exactly when the rule applies and the flag would change the result;
// the asked flags ("consulted") drive the explanation search and the diagnostic check.
#include <map>
#include <vector>

#include "explain/ast.hpp"
#include "explain/misconceptions.hpp"

namespace ik::explain {

struct Firing {
  int mis;
  const Node* node;  // the expression being evaluated when the misconception changed a rule
};

class Interpreter {
 public:
  explicit Interpreter(Mask mask, long max_steps = 1000000) : mask_(mask), max_steps_(max_steps) {}

  Value eval(const Node* n);

  Mask consulted() const { return consulted_; }
  Mask fired() const { return fired_; }

  std::vector<Firing>* firings = nullptr;             // when set, records each firing
  std::map<const Node*, Value>* node_values = nullptr;  // when set, records each node's value

 private:
  Mask mask_;
  long max_steps_;
  long steps_ = 0;
  Mask consulted_ = 0, fired_ = 0;
  const Node* current_ = nullptr;

  bool mis(int m);
  void step();
  Value eval_node(const Node* n);

  // Conversions (ECMA-262 7.1) and operators.
  Value to_primitive(const Value& v);
  double to_number(const Value& v);
  std::string to_string(const Value& v);
  bool to_boolean(const Value& v);
  std::string array_join(const Value& arr);
  std::string object_to_string(const Value& obj);
  std::string property_key(const Value& k);
  std::string type_of(const Value& v);
  bool string_less(const std::string& a, const std::string& b);
  int char_rank(char c, char other);
  bool strict_equals(const Value& a, const Value& b);
  Value loose_equals(const Value& a, const Value& b, int depth = 0);
  Value less_than(const Value& a, const Value& b);  // true, false, or undefined (NaN involved)
  Value compare(Op op, const Value& a, const Value& b);
  Value add(const Value& a, const Value& b);
  Value index(const Value& obj, const Value& key);
  Value sort(const Value& arr);
  Value logical(const Node* n);
};

// Standard-semantics evaluation of a source text (throws ik::Error on parse errors).
Value evaluate_source(const std::string& source, Mask mask = 0, long max_steps = 1000000);

}  // namespace ik::explain
