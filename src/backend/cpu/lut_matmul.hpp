#pragma once
// Lookup-table (LUT) quantized weights, FLUTE's format: W_hat[n,k] = table[Q[n,k]] * s[n, k/G],
// with b-bit codes Q (b = 2, 3, 4), a table of 2^b floats and one scale per group of G
// consecutive inputs of a row (G = 32, 64, 128, 256).
//
// Code layout (the one stored in GGUF and the one the kernel streams): each row is an
// LSB-first bit stream of K codes, so every 8 consecutive codes fill exactly b bytes
// (3-bit: 8 codes in 3 bytes, no wasted bits). The kernel reads 8 codes with one 32-bit
// load, spreads them over 8 lanes with a variable shift, and looks the values up with
// vpermps over the table held in registers (two permutes + a blend for 16 entries).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace ik::backend {

struct LutWeights {
  int bits = 4;
  int group = 128;
  int64_t rows = 0;  // N
  int64_t cols = 0;  // K: a multiple of group, or the last group is shorter (a multiple of 16)
  std::vector<float> table;    // 2^bits entries
  std::vector<float> scales;   // [rows, groups_per_row()], converted to f32 once at load
  std::vector<uint8_t> codes;  // [rows, code_row_bytes()] + 4 bytes of padding for the 32-bit loads

  // The int8 kernel's form (lut_int8.hpp), filled by lut_prepare_int8; matmul() then uses it.
  bool int8 = false;
  int8_t table_i8[16] = {};     // round(table / table_i8_scale), zero past 2^bits entries
  float table_i8_scale = 1;     // max |table| / 127
  std::vector<uint8_t> codes4;  // 2- and 3-bit codes widened to 4 bits ([rows, cols/2]); empty for 4-bit

  size_t code_row_bytes() const { return size_t(cols) * bits / 8; }
  int64_t groups_per_row() const { return (cols + group - 1) / group; }
  const uint8_t* row_codes(int64_t r) const { return codes.data() + size_t(r) * code_row_bytes(); }
  const float* row_scales(int64_t r) const { return scales.data() + size_t(r) * groups_per_row(); }
};

// y (M x N) = x (M x K) * W_hat^T. AVX2 when compiled for it, threads over N.
void lut_matmul(const LutWeights& w, const float* x, float* y, int64_t m);
// The portable scalar kernel (same arithmetic order per group: sum table*x, then times s).
void lut_matmul_portable(const LutWeights& w, const float* x, float* y, int64_t m);
// Row r of W_hat.
void lut_dequant_row(const LutWeights& w, int64_t r, float* out);
// GGUF's IQ4_NL blocks (f16 d, 16 bytes of nibbles: elements j and j+16 in byte j) as LUT
// weights: bits 4, group 32, table = the 16 IQ4_NL constants (as io dequantizes them), scale d.
// Exact: table[q] * d is the stored weight. cols a multiple of 32. Prepared for the int8 kernel.
std::shared_ptr<LutWeights> lut_from_iq4_nl(const void* blocks, int64_t rows, int64_t cols);

// Code i of a packed row (any bit width), and the inverse; used by packing and tests.
inline int lut_code(const uint8_t* row, int bits, int64_t i) {
  const int64_t bit = i * bits;
  const int shift = int(bit & 7);
  unsigned v = row[bit >> 3];
  if (shift + bits > 8) v |= unsigned(row[(bit >> 3) + 1]) << 8;  // a 3-bit code across two bytes
  return int(v >> shift) & ((1 << bits) - 1);
}

}  // namespace ik::backend
