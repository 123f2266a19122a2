#pragma once
// The BPE merge loop shared by both tokenizer families: symbols are token ids, and a table
// says which adjacent pairs merge, with which priority (lower rank first, ties leftmost,
// as in HF tokenizers' BPE and SentencePiece's BPE), into which id.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ik::llm {

// An open-addressing hash table keyed by the pair (left id, right id): lookups are the
// inner loop of encoding.
class MergeTable {
 public:
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  void reserve(size_t n);
  // The first (best-ranked) entry for a pair wins, as when HF reads duplicate merges.
  void add(int32_t left, int32_t right, int32_t rank, int32_t result);
  const Merge* find(int32_t left, int32_t right) const {
    if (slots_.empty()) return nullptr;
    const uint64_t k = key(left, right);
    for (size_t i = hash(k) & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == k) return &s.merge;
      if (s.key == kEmpty) return nullptr;
    }
  }
  size_t size() const { return size_; }

 private:
  struct Slot {
    uint64_t key;
    Merge merge;
  };
  static constexpr uint64_t kEmpty = ~0ull;
  static uint64_t key(int32_t l, int32_t r) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
  }
  static size_t hash(uint64_t k) {  // a multiply-xorshift mix
    k *= 0x9E3779B97F4A7C15ull;
    return static_cast<size_t>(k ^ (k >> 29));
  }
  void grow();
  std::vector<Slot> slots_;
  size_t mask_ = 0, size_ = 0;
};

// Merges `ids` in place until no adjacent pair is in the table.
void bpe_merge(std::vector<int32_t>& ids, const MergeTable& merges);

}  // namespace ik::llm
