#pragma once
// The GPU layout of lookup-table weights (FLUTE's "offline restructuring"): codes rearranged
// once, on the host, so that each lane of a warp loads, with 16-byte copies, exactly the codes
// whose table values it holds in the A fragment of mma.sync m16n8k16 (rows = output features,
// columns = a permutation of 16 input features). Plain C++ (no CUDA headers): the packing is
// tested on any machine, and unpack_lut reads the layout the way the kernel does.
//
// Units. A row block is 16 output rows; a chunk is 128 input columns (8 MMA tiles of k16);
// a chunk has four 32-column blocks and tile t lies in block t/2. Lane l of a warp (gid = l/4,
// tid = l%4) owns, in row block rb and chunk kc, rows rb*16 + gid + 8h (h = 0, 1) and, in
// each 32-column block q, the 8 columns q*32 + tid*8 + v (v = 0..7): tile t = 2q + v/4, half
// hk = (v/2)%2, element e = v%2, register r = h + 2hk of the tile holds the pair (e = 0, 1).
// X is read with the same permutation, so the MMA's dot product runs over the right pairs,
// each lane's 8 activations of a block are one 16-byte load, and every tile's 16 columns lie
// in one 32-column block (so one scale per row and tile for every G >= 32: the kernel applies
// scales to the fp32 MMA results, once per group).
//
// Codes of one (rb, kc) block, code_block_bytes(bits) bytes, written as 16-byte pieces
// [piece][lane][16 B] so that a warp's copy of a piece is one coalesced 512-byte transaction:
//   4-bit: 2 pieces; word t (t = 0..7) of a lane holds tile t, byte r = c(r,0) | c(r,1) << 4.
//   2-bit: 1 piece;  word t/2, bits 16(t%2) + 4r hold nibble c(r,0) | c(r,1) << 2.
//   3-bit: 6 words per lane, words 0-3 as one piece, then words 4-5 as [lane][8 B]; the six
//          words are one 192-bit stream in which register pair p = 4t + r is the 6-bit field
//          c(r,0) | c(r,1) << 3 at bit 6p (a field may straddle two words). So every lookup
//          address is one shift (a funnel shift across two words) and one LOP3, as for 4 bits.
// The 2b-bit field of a register pair is the index into the pair table (tables2):
// entry i = (table[i & (2^b - 1)], table[i >> b]), 2^(2b) entries.
// Scales: one f16 pair (row gid, row gid + 8) per (rb, kc, group in chunk gc, gid), with
// groups_per_chunk = 128/G for G <= 128 (G = 256: each chunk repeats its group's scales).
// Rows are padded to a multiple of 16 and columns to a multiple of 128 with zero scales.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ik::backend::cuda {

constexpr int kLutRowBlock = 16;
constexpr int kLutChunk = 128;

constexpr int code_block_bytes(int bits) { return bits == 4 ? 1024 : bits == 3 ? 768 : 512; }
inline int groups_per_chunk(int group) { return group >= kLutChunk ? 1 : kLutChunk / group; }
// One (row block, chunk) block on the device: its codes, then its scale pairs.
inline int lut_block_bytes(int bits, int group) { return code_block_bytes(bits) + 32 * groups_per_chunk(group); }
// Device bytes of a packed rows x cols matrix: what one matmul streams.
inline size_t lut_packed_bytes(int64_t rows, int64_t cols, int bits, int group) {
  return size_t((rows + kLutRowBlock - 1) / kLutRowBlock) * size_t((cols + kLutChunk - 1) / kLutChunk) *
         size_t(lut_block_bytes(bits, group));
}

struct LutPacked {
  int bits = 4, group = 128;
  int64_t rows = 0, cols = 0;          // N, K as given
  int64_t row_blocks = 0, chunks = 0;  // padded N / 16, padded K / 128
  std::vector<uint8_t> codes;          // row_blocks * chunks blocks of code_block_bytes(bits)
  std::vector<uint16_t> scales;        // f16: [row_blocks][chunks][groups_per_chunk][8 gid][2 rows]
  std::vector<float> table;            // 2^bits values
};

// codes: [rows, cols], one code per byte (< 2^bits); scales_f16: [rows, ceil(cols/group)];
// table: 2^bits values. cols must be a multiple of 32 (the last group may be short).
// Throws ik::Error for other bit widths, group sizes or shapes.
LutPacked pack_lut(const uint8_t* codes, const uint16_t* scales_f16, const float* table, int64_t rows, int64_t cols,
                   int bits, int group);
// W_hat [rows, cols] = table[code] * scale, read from the packed layout lane by lane.
std::vector<float> unpack_lut(const LutPacked& p);

// The pair table: entry i = (table[lo], table[hi]) as (f16 or bf16) bit pairs packed in 32 bits.
std::vector<uint32_t> pair_table(const std::vector<float>& table, int bits, bool bf16);

}  // namespace ik::backend::cuda
