#pragma once
// Draft trees for Medusa/Hydra speculative decoding, given as a list of paths (the Medusa
// "choices" format): path [a, b, c] is the node reached by taking the a-th ranked candidate
// at depth 1, then the b-th at depth 2, then the c-th at depth 3. Node 0 is the root (the
// base model's own next token); nodes 1.. are the paths sorted by (length, lexicographic),
// so a parent always comes before its children.
#include <cstdint>
#include <string>
#include <vector>

namespace ik::llm::spec {

struct DraftTree {
  std::vector<std::vector<int>> paths;  // sorted; node i + 1 is paths[i]
  std::vector<int> parent;              // per node; -1 for the root
  std::vector<int> depth;               // root 0
  std::vector<int> rank;                // last entry of the node's path (root 0)
  std::vector<std::vector<int>> children;  // per node, ordered by rank
  std::vector<uint8_t> mask;            // [n, n]: node i sees node j (root and ancestors, itself)
  std::vector<int32_t> position;        // per node: depth (rotary offset from the root)
  std::vector<std::vector<int>> retrieve;  // per leaf: the nodes from the root down to the leaf
  int max_depth = 0;
  std::vector<int> top_k;               // per depth d >= 1 (index d - 1): candidates needed there
  std::string name;                     // what load() was given ("" for from_paths/parse)

  int n_nodes() const { return int(parent.size()); }

  // Validates: non-empty paths, entries >= 0, no duplicates, every parent present.
  // Throws ik::Error naming the bad path.
  static DraftTree from_paths(std::vector<std::vector<int>> paths);
  // Parses "[0] [0,0] [1] ..." (brackets, commas and white space; also a Python/JSON list of
  // lists). Throws naming the bad path or character.
  static DraftTree parse(const std::string& text);
  // A built-in tree by name (see tree_names()), or a file holding a tree in parse()'s format.
  static DraftTree load(const std::string& name_or_file);
  // The tree of n_nodes draft nodes with the largest expected accepted length when the
  // candidate of rank r at depth d is right with probability accept[d - 1][r], independently
  // along a path (the Medusa paper's construction; accept from head_rank_accuracy). Nodes are
  // added greedily by path probability: optimal, since a child's is never above its parent's.
  // Throws when accept offers fewer than n_nodes candidates or holds a value outside [0, 1].
  static DraftTree optimal(const std::vector<std::vector<double>>& accept, int n_nodes);
};

// 1 + the sum over nodes of their path probabilities under `accept` (a candidate outside it: 0):
// the expected tokens per step under optimal()'s model.
double expected_accepted(const DraftTree& tree, const std::vector<std::vector<double>>& accept);

// Built-in trees: "mc_sim_7b_63" (the Medusa/Hydra default), "chain-N" (one path of depth N),
// "small-N" for a few hand-made sizes, "top2-N" (two children per node, depth N).
std::vector<std::string> tree_names();

std::string format_path(const std::vector<int>& path);  // "[0,1,2]"

}  // namespace ik::llm::spec
