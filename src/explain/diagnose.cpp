#include "explain/diagnose.hpp"

#include <chrono>
#include <cmath>
#include <functional>

#include "core/error.hpp"
#include "explain/search.hpp"

namespace ik::explain {

namespace {

const size_t kMaxEffectiveMasks = 4096;
const long kMaxSteps = 100000;

// The exact for-all check over the effective masks of p (see search.hpp for why they
// cover every mask): holders of m all predict out({m}); everyone else predicts something
// else, and m is consulted in their run, so adding m to any of them changes the run.
bool separates(const std::vector<Run>& effective, int m, const std::string& mis_shown) {
  Mask excluded = mis_info(m).prereqs;
  for (const Run& e : effective) {
    if (e.mask & excluded) continue;
    if (e.mask & bit(m)) {
      if (e.shown != mis_shown) return false;
    } else if (e.shown == mis_shown || !(e.consulted & bit(m))) {
      return false;
    }
  }
  return true;
}

bool all_effective(const Node* p, std::vector<Run>& out) {
  return for_each_effective(p, 0, kMaxEffectiveMasks, kMaxSteps, [&](const Run& r) {
    out.push_back(r);
    return true;
  });
}

// Candidate programs by size (number of AST nodes), over the reference's literal set plus
// "a", "A" and "[" for character order, and every operator of the subset.
class Enumerator {
 public:
  Enumerator() {
    by_size_.resize(2);
    for (Value v : {Value::undefined(), Value::null(), Value::of(true), Value::of(false), Value::of(0.0),
                    Value::of(1.0), Value::of(2.0), Value::of(10.0), Value::of(NAN), Value::of(std::string()),
                    Value::of(std::string("a")), Value::of(std::string("A")), Value::of(std::string("0")),
                    Value::of(std::string("1")), Value::of(std::string("2")), Value::of(std::string("10")),
                    Value::of(std::string(",")), Value::of(std::string("["))}) {
      Node n;
      n.literal = v;
      by_size_[1].push_back(store(std::move(n)));
    }
    for (Op op : {Op::ObjectLit, Op::ArrayLit}) {
      Node n;
      n.op = op;
      by_size_[1].push_back(store(std::move(n)));
    }
  }

  // Calls emit for every program of the given size; sizes must be requested in order.
  // Programs up to kStoredSize are kept as building blocks for larger ones.
  void programs(int size, const std::function<void(const Node*)>& emit) {
    if (size == 1) {
      for (const Node* n : by_size_[1]) emit(n);
      return;
    }
    bool keep = size <= kStoredSize;
    if (keep) by_size_.resize(size + 1);
    auto out = [&](Node&& n) {
      if (keep) {
        const Node* stored = store(std::move(n));
        by_size_[size].push_back(stored);
        emit(stored);
      } else {
        emit(&n);
      }
    };
    for (Op op : {Op::Typeof, Op::Not, Op::Plus, Op::Neg, Op::Sort, Op::Member, Op::StringCall, Op::NumberCall})
      for (const Node* a : by_size_[size - 1]) {
        Node n = make(op, {a});
        if (op == Op::Member) n.keys = {"length"};
        out(std::move(n));
      }
    if (size == 2)
      for (const Node* a : by_size_[1]) out(make(Op::ArrayLit, {a}));
    if (size == 3)
      for (const Node* a : by_size_[1])
        for (const Node* b : by_size_[1]) out(make(Op::ArrayLit, {a, b}));
    for (Op op : {Op::Add, Op::Sub, Op::Mul, Op::Div, Op::Lt, Op::Gt, Op::Le, Op::Ge, Op::Eq, Op::Ne,
                  Op::StrictEq, Op::StrictNe, Op::And, Op::Or, Op::Coalesce, Op::Index})
      for (int i = 1; i <= size - 2; i++)
        for (const Node* a : by_size_[i])
          for (const Node* b : by_size_[size - 1 - i]) out(make(op, {a, b}));
    for (int i = 1; i <= size - 3; i++)
      for (int j = 1; i + j <= size - 2; j++)
        for (const Node* c : by_size_[i])
          for (const Node* t : by_size_[j])
            for (const Node* f : by_size_[size - 1 - i - j]) out(make(Op::Cond, {c, t, f}));
  }

 private:
  static const int kStoredSize = 4;
  std::deque<Node> arena_;
  std::vector<std::vector<const Node*>> by_size_;

  const Node* store(Node n) {
    arena_.push_back(std::move(n));
    return &arena_.back();
  }
  static Node make(Op op, std::vector<const Node*> kids) {
    Node n;
    n.op = op;
    n.kids = std::move(kids);
    return n;
  }
};

}  // namespace

bool is_diagnostic(const std::string& source, int m) {
  Program prog = parse(source);
  Run standard = run(prog.root, 0, kMaxSteps);
  Run held = run(prog.root, bit(m), kMaxSteps);
  if (held.shown == standard.shown) return false;
  std::vector<Run> effective;
  if (!all_effective(prog.root, effective)) return false;
  return separates(effective, m, held.shown);
}

std::vector<Diagnostic> diagnose(const std::vector<int>& targets, int max_size, DiagnoseStats* stats) {
  auto t0 = std::chrono::steady_clock::now();
  std::vector<Diagnostic> result(kNumMis);
  Mask unsolved = 0;
  for (int m : targets) unsolved |= bit(m);
  for (int m = 0; m < kNumMis; m++) result[m].mis = m;
  DiagnoseStats local;
  Enumerator programs;
  for (int size = 1; size <= max_size && unsolved; size++) {
    programs.programs(size, [&](const Node* p) {
      if (!unsolved) return;
      local.programs_tried++;
      Run standard;
      try {
        standard = run(p, 0, kMaxSteps);
      } catch (const Error&) {
        return;  // outside the subset (a built-in property)
      }
      Mask candidates = standard.consulted & unsolved;
      if (!candidates) return;
      std::vector<Run> effective;
      bool enumerated = false, complete = false;
      for (int m = 0; m < kNumMis; m++) {
        if (!(candidates & bit(m))) continue;
        Run held = run(p, bit(m), kMaxSteps);
        if (held.shown == standard.shown) continue;
        if (!enumerated) {
          complete = all_effective(p, effective);
          enumerated = true;
          local.full_checks++;
        }
        if (!complete || !separates(effective, m, held.shown)) continue;
        Diagnostic& d = result[m];
        d.found = true;
        d.program = print(p);
        d.standard_output = standard.shown;
        d.mis_output = held.shown;
        d.size = size;
        unsolved &= ~bit(m);
      }
    });
  }
  local.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (stats) *stats = local;
  std::vector<Diagnostic> out;
  for (int m : targets) out.push_back(result[m]);
  return out;
}

}  // namespace ik::explain
