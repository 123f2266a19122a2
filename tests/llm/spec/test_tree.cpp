// Draft-tree buffers against properties computed independently from the path list.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "llm/spec/tree.hpp"

using namespace ik::llm::spec;

namespace {

bool is_prefix(const std::vector<int>& a, const std::vector<int>& b) {  // a a proper prefix of b
  return a.size() < b.size() && std::equal(a.begin(), a.end(), b.begin());
}

std::string error_of(const std::string& spec) {
  try {
    DraftTree::parse(spec);
  } catch (const ik::Error& e) {
    return e.what();
  }
  return "";
}

TEST(DraftTree, McSim7b63Buffers) {
  DraftTree t = DraftTree::load("mc_sim_7b_63");
  ASSERT_EQ(t.n_nodes(), 64);
  EXPECT_EQ(t.max_depth, 4);
  EXPECT_EQ(t.top_k, (std::vector<int>{10, 10, 10, 2}));
  const int n = t.n_nodes();
  // Leaves: paths that are no other path's prefix.
  int leaves = 0;
  for (const auto& p : t.paths)
    if (std::none_of(t.paths.begin(), t.paths.end(), [&](const auto& q) { return is_prefix(p, q); })) ++leaves;
  EXPECT_EQ(int(t.retrieve.size()), leaves);
  for (int i = 0; i < n; ++i) {
    const std::vector<int> pi = i ? t.paths[i - 1] : std::vector<int>{};
    EXPECT_EQ(t.position[i], int(pi.size()));
    for (int j = 0; j < n; ++j) {
      const std::vector<int> pj = j ? t.paths[j - 1] : std::vector<int>{};
      const bool ancestor_or_self = pj.size() <= pi.size() && std::equal(pj.begin(), pj.end(), pi.begin());
      EXPECT_EQ(t.mask[i * n + j] != 0, ancestor_or_self) << i << " " << j;
      if (j > i) {
        EXPECT_EQ(t.mask[i * n + j], 0);  // lower triangular in sorted order
      }
    }
  }
  // Every retrieve row walks root -> leaf through parents.
  for (const auto& row : t.retrieve) {
    EXPECT_EQ(row.front(), 0);
    for (size_t k = 1; k < row.size(); ++k) EXPECT_EQ(t.parent[row[k]], row[k - 1]);
    EXPECT_TRUE(t.children[row.back()].empty());
  }
  // Sorted by (length, lexicographic).
  for (size_t k = 1; k < t.paths.size(); ++k) {
    const auto &a = t.paths[k - 1], &b = t.paths[k];
    EXPECT_TRUE(a.size() < b.size() || (a.size() == b.size() && a < b));
  }
}

TEST(DraftTree, PrefixesOfMcAreTrees) {
  for (int k = 1; k <= 63; ++k) EXPECT_EQ(DraftTree::load("mc-" + std::to_string(k)).n_nodes(), k + 1);
  DraftTree c = DraftTree::load("chain-3");
  EXPECT_EQ(c.n_nodes(), 4);
  EXPECT_EQ(c.retrieve, (std::vector<std::vector<int>>{{0, 1, 2, 3}}));
  DraftTree t2 = DraftTree::load("top2-3");
  EXPECT_EQ(t2.n_nodes(), 1 + 2 + 4 + 8);
  EXPECT_EQ(t2.retrieve.size(), 8u);
}

TEST(DraftTree, ParsesJsonListsAndSmallTree) {
  DraftTree t = DraftTree::parse("[[1], [0], [0, 0]]");
  ASSERT_EQ(t.n_nodes(), 4);
  EXPECT_EQ(t.paths, (std::vector<std::vector<int>>{{0}, {1}, {0, 0}}));
  EXPECT_EQ(t.parent, (std::vector<int>{-1, 0, 0, 1}));
  EXPECT_EQ(t.children[0], (std::vector<int>{1, 2}));
  const std::vector<uint8_t> mask = {1, 0, 0, 0,  1, 1, 0, 0,  1, 0, 1, 0,  1, 1, 0, 1};
  EXPECT_EQ(t.mask, mask);
  EXPECT_EQ(t.retrieve, (std::vector<std::vector<int>>{{0, 2}, {0, 1, 3}}));
}

TEST(DraftTree, MalformedSpecsNameThePath) {
  EXPECT_NE(error_of("[0] [0,0] [1,2]").find("[1,2]"), std::string::npos);  // missing parent [1]
  EXPECT_NE(error_of("[0] [0,0] [0]").find("[0] appears twice"), std::string::npos);
  EXPECT_NE(error_of("[0] [0,-1]").find("[0,-1]"), std::string::npos);
  EXPECT_NE(error_of("[0] [0,x]").find("'x'"), std::string::npos);
  EXPECT_NE(error_of("[0] []").find("empty path"), std::string::npos);
  EXPECT_NE(error_of("[0] [0,1").find("unclosed"), std::string::npos);
  EXPECT_NE(error_of("").find("no paths"), std::string::npos);
  EXPECT_THROW(DraftTree::load("mc-64"), ik::Error);
  EXPECT_THROW(DraftTree::load("no-such-tree"), ik::Error);
}

// optimal() against enumeration: every parent-closed set of k nodes of depth <= 2 and rank <= 2
// (12 candidates), for random acceptance tables; and its refusals.
TEST(DraftTree, OptimalTreeMaximizesExpectedAcceptance) {
  ik::Rng rng(3, 0);
  std::vector<std::vector<int>> universe;
  for (int a = 0; a < 3; ++a) {
    universe.push_back({a});
    for (int b = 0; b < 3; ++b) universe.push_back({a, b});
  }
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<std::vector<double>> accept(2, std::vector<double>(3));
    for (auto& row : accept)
      for (double& p : row) p = rng.uniform(0.0, 1.0);
    for (int k = 1; k <= 6; ++k) {
      double best = 0;
      for (uint32_t set = 0; set < (1u << universe.size()); ++set) {
        if (__builtin_popcount(set) != k) continue;
        std::vector<std::vector<int>> paths;
        for (size_t i = 0; i < universe.size(); ++i)
          if (set >> i & 1) paths.push_back(universe[i]);
        bool closed = true;
        for (const auto& p : paths)
          if (p.size() == 2) closed &= std::find(paths.begin(), paths.end(), std::vector<int>{p[0]}) != paths.end();
        if (closed) best = std::max(best, expected_accepted(DraftTree::from_paths(paths), accept));
      }
      const DraftTree t = DraftTree::optimal(accept, k);
      EXPECT_EQ(t.n_nodes(), k + 1);
      EXPECT_NEAR(expected_accepted(t, accept), best, 1e-12) << "trial " << trial << " k " << k;
    }
  }
  // Certain first candidates make a chain; too few candidates, or a probability above 1, throw.
  EXPECT_EQ(DraftTree::optimal({{1, 0.1}, {1, 0.1}, {1, 0.1}}, 3).paths,
            (std::vector<std::vector<int>>{{0}, {0, 0}, {0, 0, 0}}));
  EXPECT_NEAR(expected_accepted(DraftTree::load("chain-3"), {{1, 0.1}, {1, 0.1}, {1, 0.1}}), 4.0, 1e-12);
  EXPECT_THROW(DraftTree::optimal({{0.5, 0.2}}, 3), ik::Error);
  EXPECT_THROW(DraftTree::optimal({{1.5}}, 1), ik::Error);
}

}  // namespace
