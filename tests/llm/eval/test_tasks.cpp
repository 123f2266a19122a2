// The evaluation suite: answer normalization, the curated QA file and its error messages,
// prompt construction, and the function-learning prompts checked against an independent
// brute-force search for a consistent decision tree.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "core/error.hpp"
#include "llm/eval/tasks.hpp"

using namespace ik::llm::eval;

static const std::string kFacts = std::string(IK_SOURCE_DIR) + "/data/qa/facts.tsv";

static const QaFact& find_fact(const std::vector<QaFact>& facts, const std::string& id) {
  return *std::find_if(facts.begin(), facts.end(), [&](const QaFact& f) { return f.id == id; });
}

TEST(EvalTasks, NormalizationAndExactMatch) {
  EXPECT_EQ(normalize_answer("  The Hague. "), "hague");
  EXPECT_EQ(normalize_answer("Washington, D.C."), normalize_answer("Washington DC"));
  EXPECT_TRUE(exact_match(" Paris", {"Paris"}));
  EXPECT_TRUE(exact_match("washington", {"Washington, D.C.", "Washington"}));
  EXPECT_FALSE(exact_match("Paris, France", {"Paris"}));
  EXPECT_FALSE(exact_match("", {"Paris"}));
  EXPECT_TRUE(exact_match("26", {"26"}));
  EXPECT_FALSE(exact_match("2 6", {"26"}));
}

TEST(EvalTasks, CuratedFactsFileIsWellFormed) {
  const auto facts = load_qa(kFacts);
  EXPECT_GE(facts.size(), 500u);
  std::set<std::string> ids, relations;
  for (const auto& f : facts) {
    EXPECT_TRUE(ids.insert(f.id).second) << "duplicate id " << f.id;
    relations.insert(f.relation);
    EXPECT_NE(f.evidence.find(f.answers[0]), std::string::npos) << f.id;  // the evidence states the answer
    EXPECT_NE(f.cf_evidence.find(f.cf_answer), std::string::npos) << f.id;
    EXPECT_FALSE(f.source.empty());
  }
  EXPECT_EQ(relations.size(), 5u);
  // Spot checks against the sources.
  EXPECT_EQ(find_fact(facts, "number-026").question, "What is the atomic number of Iron?");
  EXPECT_EQ(find_fact(facts, "number-026").answers[0], "26");
  EXPECT_EQ(find_fact(facts, "symbol-079").answers[0], "Au");
  EXPECT_EQ(find_fact(facts, "element-011").answers[0], "Sodium");
}

TEST(EvalTasks, MalformedFileNamesTheLine) {
  const std::string path = testing::TempDir() + "/bad_facts.tsv";
  std::ofstream(path) << "# comment\nid1\tr\tq?\ta\te a.\tb\te b.\tsrc\nid2\tr\tonly three\n";
  try {
    load_qa(path);
    FAIL() << "no error";
  } catch (const ik::Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad_facts.tsv:3:"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_qa(testing::TempDir() + "/missing.tsv"), ik::Error);
  std::remove(path.c_str());
}

TEST(EvalTasks, QaPromptsPerFamily) {
  const auto facts = load_qa(kFacts);
  const auto closed = qa_items(facts, "closed_book", 3, 40, 5);
  const auto open = qa_items(facts, "open_book", 3, 40, 5);
  const auto over = qa_items(facts, "overriding", 3, 40, 5);
  ASSERT_EQ(closed.size(), 40u);
  ASSERT_EQ(open.size(), 40u);
  ASSERT_EQ(over.size(), 40u);
  for (size_t i = 0; i < closed.size(); ++i) {
    const auto& c = closed[i];
    // The query is the last "Q: ...\nA:" of the prompt; find its fact.
    const size_t q = c.prompt.rfind("Q: ");
    ASSERT_NE(q, std::string::npos);
    const std::string question = c.prompt.substr(q + 3, c.prompt.size() - q - 3 - 3);
    ASSERT_EQ(c.prompt.substr(c.prompt.size() - 3), "\nA:");
    const auto it = std::find_if(facts.begin(), facts.end(), [&](const QaFact& f) { return f.question == question; });
    ASSERT_NE(it, facts.end()) << question;
    const QaFact& f = *it;
    // Three exemplars (same relation) then the query; closed-book shows no context.
    EXPECT_EQ(std::count(c.prompt.begin(), c.prompt.end(), '\n'), 3 * 3 + 1) << c.prompt;
    EXPECT_EQ(c.prompt.find("Context:"), std::string::npos);
    EXPECT_EQ(c.group, f.relation);
    EXPECT_EQ(c.answers, f.answers);
    // The same fact in the other families, with its evidence or its counterfactual.
    EXPECT_NE(open[i].prompt.find("Context: " + f.evidence + "\nQ: " + f.question + "\nA:"), std::string::npos);
    EXPECT_NE(over[i].prompt.find("Context: " + f.cf_evidence + "\nQ: " + f.question + "\nA:"), std::string::npos);
    EXPECT_EQ(over[i].answers, std::vector<std::string>{f.cf_answer});
  }
  // Deterministic given the seed; a different seed picks other facts.
  EXPECT_EQ(qa_items(facts, "closed_book", 3, 40, 5)[7].prompt, closed[7].prompt);
  const auto other = qa_items(facts, "closed_book", 3, 40, 6);
  int same = 0;
  for (size_t i = 0; i < other.size(); ++i) same += other[i].prompt == closed[i].prompt;
  EXPECT_LT(same, 20);
}

namespace {

struct Example {
  std::vector<int> x;
  int y;
};

// Parses "Input: a b c d\nLabel: y\n\n" blocks; the query (last) has label -1.
std::vector<Example> parse_function_prompt(const std::string& prompt, int dims) {
  std::vector<Example> out;
  std::istringstream in(prompt);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    Example e;
    EXPECT_EQ(line.rfind("Input:", 0), 0u) << line;
    std::istringstream xs(line.substr(6));
    for (int v; xs >> v;) e.x.push_back(v);
    EXPECT_EQ(int(e.x.size()), dims);
    std::getline(in, line);
    EXPECT_EQ(line.rfind("Label:", 0), 0u) << line;
    e.y = line.size() > 7 ? std::stoi(line.substr(7)) : -1;
    out.push_back(e);
  }
  return out;
}

// Is there a depth-2 tree (root split, one split per child, tests x <= t) that labels every
// example correctly? Brute force over features and integer thresholds.
bool tree_fits(const std::vector<Example>& ex, int dims) {
  for (int a = 0; a < dims; ++a)
    for (int ta = -10; ta <= 9; ++ta) {
      bool side_ok[2] = {false, false};
      for (int side = 0; side < 2; ++side)
        for (int b = 0; b < dims && !side_ok[side]; ++b)
          for (int tb = -10; tb <= 9 && !side_ok[side]; ++tb)
            for (int lo = 0; lo < 2 && !side_ok[side]; ++lo) {
              bool ok = true;
              for (const auto& e : ex)
                if ((e.x[a] > ta) == bool(side)) ok = ok && (e.x[b] <= tb ? lo : 1 - lo) == e.y;
              side_ok[side] = ok;
            }
      if (side_ok[0] && side_ok[1]) return true;
    }
  return false;
}

}  // namespace

TEST(EvalTasks, FunctionPromptsAreConsistentAndBalanced) {
  for (const std::string kind : {"linear", "mlp", "tree"}) {
    const auto items = function_items(kind, 40, 3, 16, 4);
    ASSERT_EQ(items.size(), 40u);
    int ones = 0, ones_in_exemplars = 0, n_exemplars = 0;
    for (const auto& it : items) {
      EXPECT_EQ(it.family, "icl_" + kind);
      auto ex = parse_function_prompt(it.prompt, 4);
      ASSERT_EQ(ex.size(), 17u);
      EXPECT_EQ(ex.back().y, -1);
      ex.back().y = std::stoi(it.answers[0]);
      ones += ex.back().y;
      for (size_t i = 0; i + 1 < ex.size(); ++i) {
        ASSERT_TRUE(ex[i].y == 0 || ex[i].y == 1);
        ones_in_exemplars += ex[i].y, ++n_exemplars;
        for (int v : ex[i].x) EXPECT_TRUE(v >= -9 && v <= 9);
      }
      if (kind == "tree") {
        EXPECT_TRUE(tree_fits(ex, 4)) << it.prompt;
      }
    }
    EXPECT_EQ(ones, 20) << kind;  // query labels alternate
    EXPECT_GT(ones_in_exemplars, n_exemplars / 5) << kind;  // both labels common among exemplars
    EXPECT_LT(ones_in_exemplars, n_exemplars * 4 / 5) << kind;
  }
  EXPECT_EQ(function_items("mlp", 3, 9, 16, 4)[2].prompt, function_items("mlp", 3, 9, 16, 4)[2].prompt);
  EXPECT_THROW(function_items("forest", 3, 9, 16, 4), ik::Error);
}

// Degenerate functions (a tree whose splits repeat one feature can give one label everywhere)
// are redrawn, so long runs like the full study's never fail to find a query label.
TEST(EvalTasks, ManyFunctionItemsAllHaveBothLabels) {
  for (const std::string kind : {"linear", "mlp", "tree"}) {
    std::vector<EvalItem> items;
    ASSERT_NO_THROW(items = function_items(kind, 2000, 1, 16, 4)) << kind;
    int ones = 0;
    for (const auto& it : items) ones += std::stoi(it.answers[0]);
    EXPECT_EQ(ones, 1000) << kind;
  }
}

TEST(EvalTasks, SuiteHonoursLimitAndFamilies) {
  const auto facts = load_qa(kFacts);
  SuiteOptions o;
  o.limit = 7;
  const auto all = build_suite(facts, o);
  EXPECT_EQ(all.size(), 7u * families().size());
  const auto two = build_suite(facts, o, {"open_book", "icl_tree"});
  EXPECT_EQ(two.size(), 14u);
  EXPECT_THROW(build_suite(facts, o, {"trivia"}), ik::Error);
}
