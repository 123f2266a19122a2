// Tests of the WatChat reimplementation: standard semantics against known JS answers,
// parser errors, explanation search on the classic "wat" examples, the effective-mask
// enumeration against brute force, and diagnostic synthesis against brute force.
#include <gtest/gtest.h>

#include <set>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "explain/diagnose.hpp"
#include "explain/random_program.hpp"
#include "explain/search.hpp"

using namespace ik::explain;

static std::string eval_shown(const std::string& src, Mask mask = 0) { return show(evaluate_source(src, mask)); }

// Answers of node v20 (checked by hand with `node -p`), printed by the rule of docs/explain.md.
TEST(ExplainSemantics, KnownJavaScriptAnswers) {
  const std::pair<const char*, const char*> cases[] = {
      {"[] + []", "\"\""},
      {"[] + {}", "\"[object Object]\""},
      {"{} + []", "\"[object Object]\""},
      {"typeof null", "\"object\""},
      {"typeof []", "\"object\""},
      {"NaN === NaN", "false"},
      {"[10, 1, 2].sort()", "[1,10,2]"},
      {"\"10\" < \"9\"", "true"},
      {"\"\" == 0", "true"},
      {"null + 1", "1"},
      {"[1, 2] + [3]", "\"1,23\""},
      {"[1, null, 3] == \"1,,3\"", "true"},
      {"![] == []", "true"},
      {"{} == \"[object Object]\"", "true"},
      {"null >= 0", "true"},
      {"null == 0", "false"},
      {"undefined == null", "true"},
      {"0.1 + 0.2", "0.30000000000000004"},
      {"1 / 0", "Infinity"},
      {"-0", "-0"},
      {"1e21 + 1", "1e+21"},
      {"1 / 3", "0.3333333333333333"},
      {"0.000001", "0.000001"},
      {"0.0000001", "1e-7"},
      {"Number(\" 0x10 \")", "16"},
      {"Number(\"1e3\")", "1000"},
      {"Number(\"-Infinity\")", "-Infinity"},
      {"Number(\"1_000\")", "NaN"},
      {"Number(\".5\") + Number(\"5.\")", "5.5"},
      {"\"abc\"[1]", "\"b\""},
      {"\"abc\"[\"1\"]", "\"b\""},
      {"[1, 2, 3][[1]]", "2"},
      {"\"abc\".length", "3"},
      {"[undefined, 3, null, 1].sort()", "[1,3,null,undefined]"},
      {"null[0]", "TypeError"},
      {"(1)[0]", "undefined"},
      {"\"x\".sort()", "TypeError"},
      {"1 && 2", "2"},
      {"0 || \"\"", "\"\""},
      {"false ?? 1", "false"},
      {"null ?? 1", "1"},
      {"({b: 1, 1: 2, a: 3, 0: 4})", "{\"0\":4,\"1\":2,\"b\":1,\"a\":3}"},
      {"String([1, [2, [3, null]]])", "\"1,2,3,\""},
      {"String()", "\"\""},
      {"+[]", "0"},
      {"+[5]", "5"},
      {"+{}", "NaN"},
      {"\"b\" + \"a\" + +\"a\" + \"a\"", "\"baNaNa\""},
      {"[] == []", "false"},
      {"\"2\" > \"12\"", "true"},
      {"2 > \"12\"", "false"},
      {"NaN <= NaN", "false"},
      {"true + true", "2"},
      {"typeof typeof 1", "\"string\""},
  };
  for (auto& [src, want] : cases) EXPECT_EQ(eval_shown(src), want) << src;
}

static std::string error_of(const std::string& src, long max_steps = 1000000) {
  try {
    evaluate_source(src, 0, max_steps);
  } catch (const ik::Error& e) {
    return e.what();
  }
  return "";
}

TEST(ExplainParser, ErrorsNamePositionAndExpectedToken) {
  EXPECT_EQ(error_of("[1, 2"), "syntax error at 1:6: expected ',' or ']' but found end of input");
  EXPECT_EQ(error_of("(1 + 2"), "syntax error at 1:7: expected ')' but found end of input");
  EXPECT_EQ(error_of("1 +"), "syntax error at 1:4: expected an expression but found end of input");
  EXPECT_EQ(error_of("1 2"), "syntax error at 1:3: expected end of input but found '2'");
  EXPECT_NE(error_of("1 ?? 2 || 3").find("cannot be mixed"), std::string::npos);
  EXPECT_EQ(error_of("x + 1").rfind("outside the subset at 1:1: identifier 'x'", 0), 0u);
  EXPECT_EQ(error_of("1 % 2"), "outside the subset at 1:3: operator '%'");
  EXPECT_EQ(error_of("a => 1").rfind("outside the subset at 1:1", 0), 0u);
  EXPECT_EQ(error_of("[1,,2]"), "outside the subset at 1:4: array holes");
  EXPECT_EQ(error_of("[].map"), "outside the subset: the built-in property 'map'");
  EXPECT_EQ(error_of("new Array()"), "outside the subset at 1:1: 'new'");
  EXPECT_EQ(error_of("\"abc"), "syntax error at 1:5: expected closing \" of the string");
}

TEST(ExplainParser, StepLimitStopsRunawayEvaluation) {
  EXPECT_EQ(error_of("[9, 8, 7, 6, 5, 4, 3, 2, 1].sort()", 30), "evaluation exceeded the step limit (30 steps)");
  EXPECT_EQ(error_of("[9, 8, 7, 6, 5, 4, 3, 2, 1].sort()"), "");
  std::string deep(500, '[');
  EXPECT_NE(error_of(deep).find("nested deeper"), std::string::npos);
}

TEST(ExplainParser, PrintParsesBackToTheSameProgram) {
  for (const std::string& src : random_programs(2000, 7)) {
    Program p = parse(src);
    EXPECT_EQ(print(p.root), src);
  }
  // Precedence: the printer keeps only the parentheses JS needs.
  EXPECT_EQ(print(parse("(1 + 2) * 3").root), "(1 + 2) * 3");
  EXPECT_EQ(print(parse("1 + (2 * 3)").root), "1 + 2 * 3");
  EXPECT_EQ(print(parse("(1 ?? 2) || 3").root), "(1 ?? 2) || 3");
  EXPECT_EQ(print(parse("-(-1)").root), "- -1");
  EXPECT_EQ(print(parse("(1).length").root), "(1).length");
}

// Damaged programs give an ik::Error (or a value), never another exception or a crash.
TEST(ExplainParser, MutatedProgramsFailCleanly) {
  ik::Rng rng(3, 0);
  const std::string alphabet = "()[]{}.,:?!+-*/<>=&|\"'\\0123456789eExabnul tTyp%#`";
  size_t errors = 0;
  for (const std::string& src : random_programs(3000, 5)) {
    std::string s = src;
    for (int k = 0; k < 3; k++) {
      size_t at = rng.below(s.size() + 1);
      if (rng.below(2) && at < s.size()) s.erase(at, 1);
      else s.insert(at, 1, alphabet[rng.below(alphabet.size())]);
    }
    try {
      evaluate_source(s);
    } catch (const ik::Error&) {
      errors++;
    }
  }
  EXPECT_GT(errors, 100u);  // most damaged programs are rejected with a message
}

// The intended misconception of each classic example is a cheapest explanation of the
// output the user expected.
TEST(ExplainSearch, ClassicWatsAreExplainedByTheIntendedMisconception) {
  struct Case {
    const char* program;
    const char* expected;
    const char* intended;
  };
  const Case cases[] = {
      {"[] + []", "[]", "+arrcat"},
      {"[] + []", "\"[][]\"", "arrstrbrackets"},
      {"[] + {}", "\"[][object Object]\"", "arrstrbrackets"},
      {"[] + {}", "\"{}\"", "objstr"},
      {"{} + []", "\"{}\"", "objstr"},
      {"typeof null", "\"null\"", "nullobj"},
      {"typeof []", "\"array\"", "arrayobj"},
      {"NaN === NaN", "true", "naneq"},
      {"[10, 1, 2].sort()", "[1, 2, 10]", "sortraw"},
      {"\"10\" < \"9\"", "false", "<castsnum"},
      {"\"\" == 0", "false", "==strict"},
      {"\"\" == 0", "false", "emptystringnan"},
      {"null + 1", "NaN", "nullnan"},
      {"null + 1", "TypeError", "+semistrict"},
      {"[1, 2] + [3]", "[1, 2, 3]", "+arrcat"},
      {"null >= 0", "false", ">=is>or=="},
      {"\"1\" + 1", "2", "+castnum"},
      {"[1, 2, 3][1]", "1", "oneindexed"},
      {"[] == []", "true", "structuralequality"},
      {"false ?? 1", "1", "??false"},
      {"NaN ?? 1", "1", "??nan"},
      {"1 && 2", "true", "boolopsbool"},
      {"\"\" + null", "\"\"", "nullstrempty"},
      {"[null] + \"\"", "\"null\"", "arrstrnull"},
      {"+{}", "0", "obj0"},
      {"+undefined", "0", "undef0"},
      {"(1)[0]", "TypeError", "noimplicitobjification"},
      {"2 == true", "true", "==boolcoerce"},
      {"[] ? 1 : 2", "2", "emptyarraytruthy"},
      {"[1, 2][\"1\"]", "undefined", "indexraw"},
      {"\"a\" + NaN", "\"a\"", "nanstrempty"},
      {"[\"a\", \",\"].sort()", "[\"a\", \",\"]", "asciicomma"},
      {"[\"A\", \"[\"].sort()", "[\"[\", \"A\"]", "asciiopenshut"},
  };
  for (const Case& c : cases) {
    ExplainOptions opt;
    opt.expected = c.expected;
    ExplainResult r = explain(c.program, opt);
    ASSERT_FALSE(r.explanations.empty()) << c.program;
    int best = r.explanations.front().cost;
    bool found = false;
    for (auto& e : r.explanations) {
      EXPECT_EQ(e.output, expected_shown(c.expected));
      if (e.cost == best && e.mask == bit(parse_mis(c.intended))) found = true;
    }
    EXPECT_TRUE(found) << c.program << " expected " << c.expected << ": " << format_explanation(r);
  }
}

TEST(ExplainSearch, AnswersAreMinimalCheapestFirstAndStateTheFacts) {
  ExplainResult r = explain("[] + []");
  EXPECT_EQ(r.standard_output, "\"\"");
  ASSERT_GE(r.explanations.size(), 3u);
  EXPECT_EQ(r.explanations[0].mask, bit(PlusArrCat));  // the cheapest (cost 5)
  EXPECT_EQ(r.explanations[0].output, "[]");
  for (size_t i = 0; i < r.explanations.size(); i++) {
    const Explanation& e = r.explanations[i];
    EXPECT_NE(e.output, r.standard_output);
    EXPECT_EQ(e.output, eval_shown("[] + []", e.mask));  // independent re-evaluation
    if (i > 0) {
      EXPECT_GE(e.cost, r.explanations[i - 1].cost);
    }
    for (size_t j = 0; j < i; j++)
      EXPECT_FALSE((r.explanations[j].mask & e.mask) == r.explanations[j].mask &&
                   r.explanations[j].output == e.output);
    ASSERT_FALSE(e.steps.empty());
  }
  EXPECT_EQ(r.explanations[0].steps[0],
            "+ does not concatenate arrays; it converts them to strings first. Hence, [] + [] gives \"\".");
  // The causal text replays the standard evaluation at the sub-expression that misleads.
  ExplainOptions opt;
  opt.expected = "\"null1\"";
  EXPECT_TRUE(explain("[null] + 1", opt).explanations.size() >= 1);
  opt.expected = "2";
  ExplainResult nested = explain("[1, 2, 3][1] + [1, 2, 3][1]", opt);
  ASSERT_FALSE(nested.explanations.empty());
  EXPECT_EQ(nested.explanations[0].mask, bit(OneIndexed));
  EXPECT_NE(nested.explanations[0].steps[0].find("Hence, [1, 2, 3][1] gives 2."), std::string::npos);
  // Expecting what JS does needs no explanation.
  opt.expected = "\"\"";
  EXPECT_TRUE(explain("[] + []", opt).expected_is_standard);
}

// The Z3 (MaxSAT) variant of the search finds exactly the same answers.
TEST(ExplainSearch, Z3SearchAgreesWithBestFirst) {
  for (const char* src : {"[] + []", "[] + {}", "null >= 0", "[] == ![]", "\"\" == 0", "null + 1",
                          "[1, [2, [3, null]]] + {} == \"1,2,3,[object Object]\"", "typeof null"}) {
    ExplainOptions best, smt;
    best.max_solutions = smt.max_solutions = 100;
    smt.method = SearchMethod::Z3;
    ExplainResult a = explain(src, best), b = explain(src, smt);
    ASSERT_EQ(a.explanations.size(), b.explanations.size()) << src;
    std::set<std::pair<Mask, std::string>> sa, sb;
    for (auto& e : a.explanations) sa.insert({e.mask, e.output});
    for (auto& e : b.explanations) sb.insert({e.mask, e.output});
    EXPECT_EQ(sa, sb) << src;
  }
}

// Every mask behaves like its effective core, and the enumeration visits every core:
// checked against brute force over all masks of at most two flags.
TEST(ExplainSearch, EffectiveMaskEnumerationCoversAllMasks) {
  std::vector<Mask> masks{0};
  for (int a = 0; a < kNumMis; a++) {
    masks.push_back(bit(a));
    for (int b = a + 1; b < kNumMis; b++) masks.push_back(bit(a) | bit(b));
  }
  auto programs = random_programs(60, 11);
  for (const char* extra : {"[] + []", "null >= 0", "[10, 1, 2].sort()", "[] == ![]"}) programs.push_back(extra);
  for (const std::string& src : programs) {
    Program p = parse(src);
    std::map<Mask, std::string> effective;
    bool complete = for_each_effective(p.root, 0, 100000, 1000000, [&](const ik::explain::Run& r) {
      effective[r.mask] = r.shown;
      return true;
    });
    ASSERT_TRUE(complete) << src;
    for (Mask m : masks) {
      ik::explain::Run r = run(p.root, m);
      Mask core = m & r.consulted;
      ASSERT_TRUE(effective.count(core)) << src << " under " << mask_names(m);
      EXPECT_EQ(effective[core], r.shown) << src << " under " << mask_names(m);
    }
  }
}

// Diagnostics for at least 30 of the 32 misconceptions, each checked by brute force over
// all masks of at most three flags (prerequisites excluded): the output equals the
// output under {m} exactly when m is held.
TEST(ExplainDiagnose, SeparatesExactlyTheHoldersOfEachMisconception) {
  std::vector<int> all;
  for (int m = 0; m < kNumMis; m++) all.push_back(m);
  auto found = diagnose(all, 5);
  int count = 0;
  for (const Diagnostic& d : found) {
    if (!d.found) continue;
    count++;
    Program p = parse(d.program);
    std::string target = show(Interpreter(bit(d.mis)).eval(p.root));
    EXPECT_EQ(target, d.mis_output);
    Mask allowed = ~mis_info(d.mis).prereqs;
    for (int a = 0; a < kNumMis; a++)
      for (int b = a; b < kNumMis; b++)
        for (int c = b; c < kNumMis; c++) {
          Mask mask = bit(a) | bit(b) | bit(c);
          if ((mask & allowed) != mask) continue;
          bool holds = mask & bit(d.mis);
          std::string out = show(Interpreter(mask).eval(p.root));
          ASSERT_EQ(out == target, holds) << mis_info(d.mis).name << ": " << d.program << " under "
                                          << mask_names(mask);
        }
  }
  EXPECT_GE(count, 30);
  // Examples hand-checked in the reference's comments remain diagnostic here.
  EXPECT_TRUE(is_diagnostic("[20, 5].sort()", SortRaw));
  EXPECT_TRUE(is_diagnostic("\"10\" < \"2\"", LtCastsNum));
  EXPECT_TRUE(is_diagnostic("true == 2", EqBoolCoerce));
  EXPECT_TRUE(is_diagnostic("\"10\"[1]", OneIndexed));
  EXPECT_FALSE(is_diagnostic("1 + 1", NullObj));
}
