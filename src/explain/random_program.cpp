#include "explain/random_program.hpp"

#include <cmath>

#include "core/rng.hpp"
#include "explain/ast.hpp"

namespace ik::explain {

namespace {

class Generator {
 public:
  Generator(Program& prog, Rng& rng) : prog_(prog), rng_(rng) {}

  // The root (top = true) is never a bare literal.
  const Node* expr(int depth, bool top = false) {
    if (depth == 0 || (!top && rng_.uniform() < 0.25)) return leaf();
    static const Op unary[] = {Op::Typeof, Op::Not, Op::Plus, Op::Neg, Op::Sort, Op::Member, Op::StringCall,
                               Op::NumberCall};
    static const Op binary[] = {Op::Add, Op::Add, Op::Add, Op::Sub, Op::Mul, Op::Div, Op::Lt, Op::Gt, Op::Le,
                                Op::Ge, Op::Eq, Op::Eq, Op::Ne, Op::StrictEq, Op::StrictNe, Op::And, Op::Or,
                                Op::Coalesce, Op::Index, Op::Index};
    uint64_t kind = rng_.below(10);
    if (kind < 2) {
      Op op = unary[rng_.below(std::size(unary))];
      Node n = make(op, {expr(depth - 1)});
      if (op == Op::Member) n.keys = {"length"};
      if ((op == Op::StringCall || op == Op::NumberCall) && rng_.below(20) == 0) {
        n.kids.clear();
        n.call_without_arg = true;
      }
      return prog_.add(std::move(n));
    }
    if (kind < 7) return prog_.add(make(binary[rng_.below(std::size(binary))], {expr(depth - 1), expr(depth - 1)}));
    if (kind < 8) return prog_.add(make(Op::Cond, {expr(depth - 1), expr(depth - 1), expr(depth - 1)}));
    if (kind < 9) {
      std::vector<const Node*> elems;
      for (uint64_t i = 0, n = rng_.below(4); i < n; i++) elems.push_back(expr(depth - 1));
      return prog_.add(make(Op::ArrayLit, std::move(elems)));
    }
    static const char* keys[] = {"a", "b", "0", "1", "x y", "length"};
    Node n = make(Op::ObjectLit, {});
    for (uint64_t i = 0, count = rng_.below(3); i < count; i++) {
      n.keys.push_back(keys[rng_.below(std::size(keys))]);
      n.kids.push_back(expr(depth - 1));
    }
    return prog_.add(std::move(n));
  }

 private:
  Program& prog_;
  Rng& rng_;

  static Node make(Op op, std::vector<const Node*> kids) {
    Node n;
    n.op = op;
    n.kids = std::move(kids);
    return n;
  }

  const Node* leaf() {
    static const double numbers[] = {0, 1, 2, 3, 10, 0.5, 1.5, 0.1, 3.14, 1e21, 1e-7, 123456789, 4294967295,
                                     INFINITY, NAN};
    static const char* strings[] = {"", "a", "A", "abc", "0", "1", "2", "10", "9", " 1 ", ",", "[", "]",
                                    "0x10", "1e3", "-2", ".5", "Infinity", "null", "true", "\t", "a\"b", "1,2"};
    Node n;
    switch (rng_.below(9)) {
      case 0: n.literal = Value::undefined(); break;
      case 1: n.literal = Value::null(); break;
      case 2: n.literal = Value::of(rng_.below(2) == 1); break;
      case 3: case 4: n.literal = Value::of(numbers[rng_.below(std::size(numbers))]); break;
      case 5: case 6: n.literal = Value::of(std::string(strings[rng_.below(std::size(strings))])); break;
      case 7: n.op = Op::ArrayLit; break;
      default: n.op = Op::ObjectLit; break;
    }
    return prog_.add(std::move(n));
  }
};

}  // namespace

std::vector<std::string> random_programs(size_t count, uint64_t seed) {
  Rng rng(seed, 15);
  std::vector<std::string> out;
  for (size_t i = 0; i < count; i++) {
    Program prog;
    Generator gen(prog, rng);
    out.push_back(print(gen.expr(1 + static_cast<int>(rng.below(4)), true)));
  }
  return out;
}

}  // namespace ik::explain
