#pragma once
// Context-parallel causal attention: a sequence of T tokens sharded over the P ranks of a
// Comm, each rank holding its queries and its K/V block; the K/V blocks travel round the
// ring (P rounds, isend/irecv overlapped with the block computation) and the partial
// softmaxes are merged online (running max, denominator and numerator, i.e. log-sum-exp).
//
// Layouts (which global tokens rank r holds, in increasing order):
//   Ring    : contiguous shard r*n .. r*n+n-1                  (unbalanced under causality)
//   Striped : tokens r, r+P, r+2P, ...  (Brandon et al. 2023)   (balanced)
//   ZigZag  : chunks r and 2P-1-r of 2P equal chunks            (balanced, contiguous chunks)
// T not divisible by P (2P for zig-zag): pad and mask. Every rank holds shard_len() slots;
// slots whose global index is >= T are padding: they are never visible as keys and their
// outputs are zero. T < P is an error.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "dist/comm.hpp"

namespace ik::dist {

enum class Layout { Ring, Striped, ZigZag };
Layout parse_layout(const std::string& name);  // "ring", "striped", "zigzag"
const char* layout_name(Layout layout);

// Slots per rank (including padding).
int64_t shard_len(Layout layout, int P, int64_t T);
// Global token index of local slot `local` on `rank` (>= T means padding). This is also the
// token's position for RoPE.
int64_t global_index(Layout layout, int P, int64_t T, int rank, int64_t local);

// Striped per-round mask (the paper's rule): query local i on rank q sees key local j on
// rank k iff j <= i when q >= k, and j < i when q < k.
inline bool striped_visible(int64_t i, int q, int64_t j, int k) { return q >= k ? j <= i : j < i; }

// Keys of rank k's block visible to query slot i of rank q: always a prefix of the block,
// so this returns its length (0 for padding queries).
int64_t visible_keys(Layout layout, int P, int64_t T, int q_rank, int64_t i, int k_rank);

// Unmasked (query, key) pairs computed by each rank in ring round r (rank q holds the
// K/V block of rank (q - r) mod P in round r).
std::vector<int64_t> round_work(Layout layout, int P, int64_t T, int round);

struct AttnShape {
  int n_head = 0;    // query heads
  int n_kv = 0;      // key/value heads (n_head a multiple of n_kv: grouped-query attention)
  int head_dim = 0;
};

struct CpStats {
  double compute_s = 0;      // block computation, wall clock
  double compute_cpu_s = 0;  // block computation, this thread's CPU time (robust to a loaded machine)
  double wait_s = 0;     // time blocked in waits for K/V (communication not hidden)
};

// Exact causal softmax attention over the sharded sequence. Row layouts (this rank's slots):
// q, out: [shard_len][n_head][head_dim]; k, v: [shard_len][n_kv][head_dim]. Scale 1/sqrt(head_dim).
// Every rank of comm must call it with the same layout, T and shape.
void cp_attention(Comm& comm, Layout layout, int64_t T, const AttnShape& shape, std::span<const float> q,
                  std::span<const float> k, std::span<const float> v, std::span<float> out, CpStats* stats = nullptr);

// "Virtual ring": all P shards of a full [T][...] q/k/v computed in one process, round by
// round, without communication. Returns seconds[round][rank] of block computation (thread
// CPU time, so other processes sharing the core do not count); a real
// synchronous ring's round lasts the max over ranks. Load-independent view of the balance.
std::vector<std::vector<double>> virtual_ring_seconds(Layout layout, int P, int64_t T, const AttnShape& shape,
                                                      std::span<const float> q, std::span<const float> k,
                                                      std::span<const float> v);

// Permute at the input: this rank's rows of a full [T][width] array (padding rows zero).
std::vector<float> shard_rows(Layout layout, int P, int rank, int64_t T, std::span<const float> full, int64_t width);
// Un-permute at the output: gather every rank's rows back into the original [T][width] order.
std::vector<float> gather_rows(Comm& comm, Layout layout, int64_t T, std::span<const float> local, int64_t width);

}  // namespace ik::dist
