#pragma once
// Slicing a loaded weight matrix for tensor parallelism (Megatron-style):
//  - rows (output features: column-parallel wq/wk/wv/w_gate/w_up, the vocab-parallel LM head):
//    a view of the same bytes, so the engine's fast kernels (Q4_1x4, Q4_0, Q8_0, F32) run as is;
//  - columns (input features: row-parallel wo/w_down): whole quantization blocks are copied
//    (exactly the stored values, same kernel); a slice that cuts blocks is dequantized to f32
//    (Reference mode) or requantized to Q8_0 (Fast mode).
#include <cstdint>

#include "backend/cpu/matmul.hpp"

namespace ik::llm {

// Bounds [first, last) of part `part` of `parts` when splitting n items in units of `unit`
// (a boundary always falls on a multiple of unit when n is one; the parts differ by at most a unit).
struct Range {
  int64_t first = 0, last = 0;
  int64_t size() const { return last - first; }
};
Range split_range(int64_t n, int parts, int part, int64_t unit = 1);

backend::WeightMatrix slice_rows(const backend::WeightMatrix& w, Range rows, backend::WeightMatrix::Mode mode);
backend::WeightMatrix slice_cols(const backend::WeightMatrix& w, Range cols, backend::WeightMatrix::Mode mode);

}  // namespace ik::llm
