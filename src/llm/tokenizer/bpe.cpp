#include "llm/tokenizer/bpe.hpp"

#include <algorithm>
#include <climits>
#include <queue>

namespace ik::llm {

void MergeTable::reserve(size_t n) {
  size_t cap = 16;
  while (cap < 2 * n) cap *= 2;
  if (cap <= slots_.size()) return;
  std::vector<Slot> old;
  old.swap(slots_);
  slots_.assign(cap, Slot{kEmpty, {0, 0}});
  mask_ = cap - 1;
  size_ = 0;
  for (const Slot& s : old)
    if (s.key != kEmpty) add(static_cast<int32_t>(s.key >> 32), static_cast<int32_t>(s.key),
                             s.merge.rank, s.merge.result);
}

void MergeTable::grow() { reserve(slots_.empty() ? 8 : slots_.size()); }

void MergeTable::add(int32_t left, int32_t right, int32_t rank, int32_t result) {
  if (2 * (size_ + 1) > slots_.size()) grow();
  const uint64_t k = key(left, right);
  for (size_t i = hash(k) & mask_;; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.key == k) return;
    if (s.key == kEmpty) {
      s = Slot{k, {rank, result}};
      ++size_;
      return;
    }
  }
}

namespace {

// Short words (the vast majority) keep the rank of each adjacent pair in an array and
// rescan it: cheaper than a heap.
void merge_by_scanning(std::vector<int32_t>& ids, const MergeTable& merges) {
  struct PairRank {
    int32_t rank, result;
  };
  auto pair_at = [&](size_t i) {
    const MergeTable::Merge* m = merges.find(ids[i], ids[i + 1]);
    return m ? PairRank{m->rank, m->result} : PairRank{INT32_MAX, -1};
  };
  std::vector<PairRank> pairs;
  pairs.reserve(ids.size());
  for (size_t i = 0; i + 1 < ids.size(); ++i) pairs.push_back(pair_at(i));
  while (!pairs.empty()) {
    size_t best = 0;
    for (size_t i = 1; i < pairs.size(); ++i)
      if (pairs[i].rank < pairs[best].rank) best = i;
    if (pairs[best].result < 0) return;
    ids[best] = pairs[best].result;
    ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    pairs.erase(pairs.begin() + static_cast<std::ptrdiff_t>(best));
    if (best < pairs.size()) pairs[best] = pair_at(best);
    if (best > 0) pairs[best - 1] = pair_at(best - 1);
  }
}

// Long inputs (SentencePiece models see whole lines) use a heap over a linked list.
void merge_with_heap(std::vector<int32_t>& ids, const MergeTable& merges) {
  const int n = static_cast<int>(ids.size());
  std::vector<int> prev(n), next(n);
  for (int i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  struct Candidate {
    int32_t rank;
    int left;
    int32_t left_id, right_id;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : left > o.left;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  auto consider = [&](int left) {
    if (left < 0 || next[left] < 0) return;
    const int right = next[left];
    if (const MergeTable::Merge* m = merges.find(ids[left], ids[right]))
      queue.push({m->rank, left, ids[left], ids[right]});
  };
  for (int i = 0; i + 1 < n; ++i) consider(i);
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    const int right = next[c.left];
    // Skip candidates made stale by an earlier merge on either side.
    if (ids[c.left] != c.left_id || right < 0 || ids[right] != c.right_id) continue;
    ids[c.left] = merges.find(c.left_id, c.right_id)->result;
    ids[right] = -1;
    next[c.left] = next[right];
    if (next[right] >= 0) prev[next[right]] = c.left;
    consider(prev[c.left]);
    consider(c.left);
  }
  ids.erase(std::remove(ids.begin(), ids.end(), -1), ids.end());
}

}  // namespace

void bpe_merge(std::vector<int32_t>& ids, const MergeTable& merges) {
  if (ids.size() < 2) return;
  if (ids.size() <= 32)
    merge_by_scanning(ids, merges);
  else
    merge_with_heap(ids, merges);
}

}  // namespace ik::llm
