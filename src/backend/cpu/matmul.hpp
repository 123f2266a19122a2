#pragma once
// Y[M,N] = X[M,K] * W[N,K]^T for a weight matrix in its stored format.
//  - F32: OpenBLAS sgemm for M > 1, a threaded SIMD gemv for M = 1.
//  - LUT (lookup-table codes + group scales, see lut_matmul.hpp): f32 activations, AVX2 lookups.
//  - Q4_0, Q4_1, Q8_0: activations quantized to 8 bits once, integer SIMD dot products
//    (AVX2, AVX-512 VNNI where present), threads over N.
// Other stored types are converted at load (see WeightMatrix::prepare) so every matmul
// takes one of these paths.
#include <cstdint>
#include <memory>
#include <vector>

#include "io/dtype.hpp"

namespace ik::backend {

struct LutWeights;  // backend/cpu/lut_matmul.hpp

struct WeightMatrix {
  io::DType type = io::DType::F32;
  int64_t rows = 0;  // N: output features
  int64_t cols = 0;  // K: input features
  const uint8_t* data = nullptr;
  size_t row_bytes = 0;
  std::shared_ptr<std::vector<uint8_t>> owned;  // set when converted at load
  // Set for lookup-table quantized weights (then `type` and `data` are unused and row_bytes
  // counts the codes plus the f16 scales of one row as stored).
  std::shared_ptr<const LutWeights> lut = nullptr;
  // Q4_1 rows repacked at load for the AVX-512 VNNI kernel (quant_dot.hpp, "Q4_1x4").
  bool q4_1x4 = false;

  // How to treat stored types without a fast kernel.
  enum class Mode {
    Fast,       // keep Q4_0/Q4_1/Q8_0/F32 as stored, IQ4_NL as LUT weights; convert the rest to Q8_0
    Reference,  // dequantize everything to F32 (exact f32 math on the stored values)
  };
  // A view of stored bytes, converted as the mode requires. Throws for unsupported types.
  static WeightMatrix prepare(io::DType type, int64_t rows, int64_t cols, const void* data,
                              Mode mode);
  size_t nbytes() const { return row_bytes * size_t(rows); }
};

// y (M x N, row-major) = x (M x K, row-major) * W^T. Uses OpenMP threads.
void matmul(const WeightMatrix& w, const float* x, float* y, int64_t m);

// Dequantize row r of a weight matrix into out[cols].
void weight_row(const WeightMatrix& w, int64_t r, float* out);

// Quantize f32 values to Q8_0 blocks (round to nearest, scale = absmax / 127).
void quantize_q8_0(const float* x, void* out, int64_t n);

}  // namespace ik::backend
