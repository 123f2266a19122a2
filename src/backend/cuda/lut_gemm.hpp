#pragma once
// Lookup-table weights on the GPU (FLUTE: lut_gemm.cu, lut_matrix.cu, lut_layout.hpp): upload a
// packed matrix once, then multiply activations by it without ever materialising the dequantized
// weights. Plain host functions like cuda.hpp; no CUDA headers.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "backend/cuda/cuda.hpp"
#include "backend/cuda/lut_layout.hpp"

namespace ik::backend::cuda {

// A packed lookup-table matrix in device memory (one allocation: blocks, then the tables).
// Block (rb, kc) = its codes (code_block_bytes) followed by its scale pairs (lut_layout.hpp).
struct LutMatrix {
  int bits = 4, group = 128, n = 0, k = 0, row_blocks = 0, chunks = 0, block_bytes = 0;
  const uint8_t* blocks = nullptr;
  const uint32_t* table2_bf16 = nullptr;  // pair tables for bf16 and f16 inputs
  const uint32_t* table2_f16 = nullptr;
  const float* table = nullptr;  // the 2^bits values
  void* storage = nullptr;
  size_t stream_bytes() const { return size_t(row_blocks) * chunks * block_bytes; }  // what one matmul reads
};

LutMatrix upload_lut(const LutPacked& p);
// Random codes and scales in [scale/2, scale] generated on the device (benchmarks).
LutMatrix random_lut(int n, int k, int bits, int group, const std::vector<float>& table, uint64_t seed, float scale);
void free_lut(LutMatrix& w);

// Kernel shape: consumer warps per block, chunks of 128 columns per pipeline stage, stages in
// the shared-memory ring, blocks per SM (0: as many as fit), row blocks of 16 rows per warp (1,
// or 2, used up to 16 tokens: each X fragment then serves both; then at most 15 warps, 11 at 9-16
// tokens).
struct LutKernelConfig {
  int warps = 8, unit_chunks = 2, stages = 4, blocks_per_sm = 0, row_blocks_per_warp = 1;
};
// Dynamic shared memory the kernel needs for m rows of X (m <= 32 per launch): the pipeline
// stages, their barriers and the pair table (2^(2 bits) entries x 32 copies x 4 bytes).
size_t lut_smem_bytes(int bits, int group, int m, const LutKernelConfig& c);
// The configuration tuned for this shape (`inferkit bench-flute --tune` writes the table,
// src/backend/cuda/lut_tuned.inc; IK_LUT_TUNED=FILE reads one at run time instead), else a
// default. nt: 8-token tiles per launch (1, 2 or 4).
LutKernelConfig tuned_lut_config(int n, int k, int bits, int group, int nt);
// One line of the table: {n, k, bits, group, nt, warps, unit_chunks, stages, blocks_per_sm,
// row_blocks_per_warp},
struct LutTunedEntry {
  int n = 0, k = 0, bits = 0, group = 0, nt = 0, warps = 0, unit_chunks = 0, stages = 0, blocks_per_sm = 0,
      row_blocks_per_warp = 1;
};
// The table's text (// comments and blank lines skipped); a malformed line throws, naming
// `name` and the line.
std::vector<LutTunedEntry> parse_lut_tuned(const std::string& text, const std::string& name);

// y[i, j] (row stride ldy) = (accumulate ? y : 0) + sum_k x[i, k] W_hat[j, k] for m rows of x
// (row stride w.k, bf16 or f16 bits). fp32 accumulation; y receives fp32 atomic adds, so the
// last bits depend on the order blocks finish. Runs in launches of up to 32 rows.
void lut_matmul(const void* x, bool x_bf16, const LutMatrix& w, float* y, int ldy, int m, bool accumulate,
                const LutKernelConfig* config = nullptr);
// W_hat [n, k] in bf16 (or f16): for large m, dequantize once and use cuBLAS.
void lut_dequantize(const LutMatrix& w, uint16_t* out, bool f16 = false);

}  // namespace ik::backend::cuda
