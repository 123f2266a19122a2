#include "llm/spec/tree.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "core/error.hpp"

namespace ik::llm::spec {

// The Medusa/Hydra default tree (FasterDecoding/Medusa medusa_choices.py, zankner/Hydra
// hydra_choices.py), in its original order: paths were added greedily by estimated acceptance,
// so every prefix of this list is itself a tree ("mc-N" below).
static const char* kMcSim7b63 =
    "[0] [0,0] [1] [0,1] [2] [0,0,0] [1,0] [0,2] [3] [0,3] [4] [0,4] [2,0] [0,5] [0,0,1] [5] [0,6] [6] [0,7] "
    "[0,1,0] [1,1] [7] [0,8] [0,0,2] [3,0] [0,9] [8] [9] [1,0,0] [0,2,0] [1,2] [0,0,3] [4,0] [2,1] [0,0,4] "
    "[0,0,5] [0,0,0,0] [0,1,1] [0,0,6] [0,3,0] [5,0] [1,3] [0,0,7] [0,0,8] [0,0,9] [6,0] [0,4,0] [1,4] [7,0] "
    "[0,1,2] [2,0,0] [3,1] [2,2] [8,0] [0,5,0] [1,5] [1,0,1] [0,2,1] [9,0] [0,6,0] [0,0,0,1] [1,6] [0,7,0]";

std::string format_path(const std::vector<int>& path) {
  std::string s = "[";
  for (size_t i = 0; i < path.size(); ++i) s += (i ? "," : "") + std::to_string(path[i]);
  return s + "]";
}

DraftTree DraftTree::from_paths(std::vector<std::vector<int>> paths) {
  std::set<std::vector<int>> seen;
  for (const auto& p : paths) {
    IK_CHECK(!p.empty(), "draft tree: empty path [] (the root is implicit)");
    for (int e : p) IK_CHECK(e >= 0, "draft tree: path {} has a negative rank", format_path(p));
    IK_CHECK(seen.insert(p).second, "draft tree: path {} appears twice", format_path(p));
  }
  for (const auto& p : paths) {
    std::vector<int> up(p.begin(), p.end() - 1);
    IK_CHECK(up.empty() || seen.count(up), "draft tree: path {} has no parent {} in the tree", format_path(p),
             format_path(up));
  }
  std::sort(paths.begin(), paths.end(), [](const auto& a, const auto& b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  });

  DraftTree t;
  t.paths = paths;
  const int n = int(paths.size()) + 1;
  std::map<std::vector<int>, int> index;
  t.parent.assign(n, -1);
  t.depth.assign(n, 0);
  t.rank.assign(n, 0);
  t.children.resize(n);
  for (int i = 1; i < n; ++i) {
    const auto& p = paths[i - 1];
    index[p] = i;
    std::vector<int> up(p.begin(), p.end() - 1);
    t.parent[i] = up.empty() ? 0 : index.at(up);
    t.depth[i] = int(p.size());
    t.rank[i] = p.back();
    t.children[t.parent[i]].push_back(i);  // sorted order puts siblings in rank order
    t.max_depth = std::max(t.max_depth, t.depth[i]);
  }
  t.top_k.assign(t.max_depth, 0);
  for (int i = 1; i < n; ++i) t.top_k[t.depth[i] - 1] = std::max(t.top_k[t.depth[i] - 1], t.rank[i] + 1);

  t.mask.assign(size_t(n) * n, 0);
  t.position.resize(n);
  for (int i = 0; i < n; ++i) {
    for (int a = i; a >= 0; a = t.parent[a]) t.mask[size_t(i) * n + a] = 1;
    t.position[i] = t.depth[i];
  }
  for (int i = 0; i < n; ++i) {
    if (!t.children[i].empty()) continue;
    std::vector<int> chain;
    for (int a = i; a >= 0; a = t.parent[a]) chain.push_back(a);
    std::reverse(chain.begin(), chain.end());
    t.retrieve.push_back(chain);
  }
  return t;
}

DraftTree DraftTree::parse(const std::string& text) {
  // Paths are the innermost lists: a ']' that closes a list opened since the last ']' ends one.
  std::vector<std::vector<int>> paths;
  std::vector<int> cur;
  int level = 0;
  bool innermost_open = false;
  std::string number;
  auto flush_number = [&] {
    if (number.empty()) return;
    IK_CHECK(number != "-" && number.size() < 6, "draft tree: bad rank '{}' in the path after {}", number,
             paths.empty() ? std::string("none") : format_path(paths.back()));
    cur.push_back(std::stoi(number));
    number.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (std::isdigit(static_cast<unsigned char>(ch)) || (ch == '-' && number.empty())) {
      IK_CHECK(innermost_open, "draft tree: number outside a path at character {}", i + 1);
      number += ch;
    } else if (ch == '[') {
      ++level;
      innermost_open = true;
      cur.clear();
    } else if (ch == ']') {
      flush_number();
      IK_CHECK(level > 0, "draft tree: unmatched ']' at character {}", i + 1);
      if (innermost_open) paths.push_back(cur);
      innermost_open = false;
      --level;
    } else if (ch == ',' || std::isspace(static_cast<unsigned char>(ch))) {
      flush_number();
    } else {
      ik::fail("draft tree: unexpected character '{}' at character {} (after path {})", ch, i + 1,
               paths.empty() ? std::string("none") : format_path(paths.back()));
    }
  }
  IK_CHECK(level == 0, "draft tree: unclosed '['");
  IK_CHECK(!paths.empty(), "draft tree: no paths found");
  return from_paths(paths);
}

std::vector<std::string> tree_names() {
  return {"mc_sim_7b_63", "mc-N (first N paths of mc_sim_7b_63, 1..63)", "chain-N", "top2-N"};
}

static std::vector<std::vector<int>> mc_paths() {
  DraftTree full = DraftTree::parse(kMcSim7b63);  // validated, but sorted: re-read the order
  std::vector<std::vector<int>> ordered;
  std::istringstream in(kMcSim7b63);
  std::string tok;
  while (in >> tok) {
    std::vector<int> p;
    std::string digits;
    for (char ch : tok) {
      if (std::isdigit(static_cast<unsigned char>(ch))) digits += ch;
      else if (!digits.empty()) p.push_back(std::stoi(digits)), digits.clear();
    }
    ordered.push_back(p);
  }
  IK_CHECK(ordered.size() == full.paths.size(), "internal: mc_sim_7b_63 has {} paths", ordered.size());
  return ordered;
}

static int suffix_number(const std::string& name, const std::string& prefix, int lo, int hi) {
  const std::string rest = name.substr(prefix.size());
  IK_CHECK(!rest.empty() && rest.size() < 4 && std::all_of(rest.begin(), rest.end(), ::isdigit),
           "draft tree '{}': expected {}N with N in {}..{}", name, prefix, lo, hi);
  const int n = std::stoi(rest);
  IK_CHECK(n >= lo && n <= hi, "draft tree '{}': N must be in {}..{}", name, lo, hi);
  return n;
}

static DraftTree load_unnamed(const std::string& name) {
  if (name == "mc_sim_7b_63") return DraftTree::parse(kMcSim7b63);
  if (name.rfind("mc-", 0) == 0) {
    auto all = mc_paths();
    all.resize(suffix_number(name, "mc-", 1, 63));
    return DraftTree::from_paths(all);
  }
  if (name.rfind("chain-", 0) == 0) {
    std::vector<std::vector<int>> paths;
    for (int d = 1, n = suffix_number(name, "chain-", 1, 16); d <= n; ++d) paths.push_back(std::vector<int>(d, 0));
    return DraftTree::from_paths(paths);
  }
  if (name.rfind("top2-", 0) == 0) {
    std::vector<std::vector<int>> paths, level = {{}};
    for (int d = 1, n = suffix_number(name, "top2-", 1, 6); d <= n; ++d) {
      std::vector<std::vector<int>> next;
      for (const auto& p : level)
        for (int r = 0; r < 2; ++r) {
          next.push_back(p);
          next.back().push_back(r);
        }
      paths.insert(paths.end(), next.begin(), next.end());
      level = next;
    }
    return DraftTree::from_paths(paths);
  }
  IK_CHECK(std::filesystem::exists(name), "draft tree '{}' is neither a built-in tree (mc_sim_7b_63, mc-N, chain-N, "
           "top2-N) nor a file", name);
  std::ifstream in(name);
  std::stringstream ss;
  ss << in.rdbuf();
  return DraftTree::parse(ss.str());
}

DraftTree DraftTree::optimal(const std::vector<std::vector<double>>& accept, int n_nodes) {
  IK_CHECK(n_nodes >= 1, "optimal draft tree: {} nodes (at least 1)", n_nodes);
  for (const auto& row : accept)
    for (double p : row) IK_CHECK(p >= 0 && p <= 1, "optimal draft tree: acceptance {} outside [0, 1]", p);
  struct Candidate {
    std::vector<int> path;
    double p;
  };
  std::vector<Candidate> candidates;
  auto add_children = [&](const std::vector<int>& parent, double p) {
    const size_t d = parent.size();
    if (d >= accept.size()) return;
    for (int r = 0; r < int(accept[d].size()); ++r) {
      candidates.push_back({parent, p * accept[d][r]});
      candidates.back().path.push_back(r);
    }
  };
  add_children({}, 1.0);
  std::vector<std::vector<int>> chosen;
  while (int(chosen.size()) < n_nodes && !candidates.empty()) {
    // The most probable candidate; ties: the shorter path, then the lower ranks (deterministic).
    auto best = std::max_element(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
      if (a.p != b.p) return a.p < b.p;
      if (a.path.size() != b.path.size()) return a.path.size() > b.path.size();
      return a.path > b.path;
    });
    const Candidate pick = *best;
    candidates.erase(best);
    chosen.push_back(pick.path);
    add_children(pick.path, pick.p);
  }
  IK_CHECK(int(chosen.size()) == n_nodes, "optimal draft tree: only {} candidate nodes for {} (more heads or ranks needed)",
           chosen.size(), n_nodes);
  return from_paths(chosen);
}

double expected_accepted(const DraftTree& tree, const std::vector<std::vector<double>>& accept) {
  std::vector<double> p(size_t(tree.n_nodes()), 1.0);  // nodes come after their parents
  double sum = 1.0;
  for (int i = 1; i < tree.n_nodes(); ++i) {
    const size_t d = size_t(tree.depth[i] - 1), r = size_t(tree.rank[i]);
    p[i] = p[tree.parent[i]] * (d < accept.size() && r < accept[d].size() ? accept[d][r] : 0.0);
    sum += p[i];
  }
  return sum;
}

DraftTree DraftTree::load(const std::string& name_or_file) {
  DraftTree t = load_unnamed(name_or_file);
  t.name = name_or_file;
  return t;
}

}  // namespace ik::llm::spec
