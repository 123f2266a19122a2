#pragma once
// The integer lookup-table kernel, FLUTE's table-in-a-register idea on the int8 side: the
// 16-entry table quantized to int8 sits in one 128-bit lane (both lanes of a ymm), 32 4-bit
// codes become 32 byte indices, one vpshufb looks up 32 int8 weights, and they meet the
// activations (quantized to int8 per block of 32, as the Q4_1 path does) in an integer dot
// product: vpmaddubsw + vpmaddwd (AVX2) or vpdpbusd (AVX-512 VNNI). Each block's int32 sum is
// scaled once by (activation scale x group scale); the table's int8 scale multiplies the row.
// 2- and 3-bit codes are widened to 4 bits once at prepare time and take the same path.
//
// Approximation: the table is rounded to int8 (error <= max|table| / 254 per entry; exact for
// IQ4_NL, whose constants are int8) and activations are rounded to int8 per block of 32.
#include <cstdint>
#include <vector>

#include "backend/cpu/lut_matmul.hpp"

namespace ik::backend {

// Fills w's int8 form (table_i8, table_i8_scale, codes4 for 2/3 bits) and sets w.int8, unless
// cols is not a multiple of 32, the group not a power of two >= 32, or the environment sets IK_LUT_KERNEL=f32 (to measure the
// f32 kernel end to end); then matmul() keeps the f32 lut_matmul.
void lut_prepare_int8(LutWeights& w);

// y (M x N) = x (M x K) * W_hat^T with the int8 kernel (w prepared). Threads over N; weights
// looked up once per block for up to four activation rows.
void lut_matmul_int8(const LutWeights& w, const float* x, float* y, int64_t m);

using LutMatmulFn = void (*)(const LutWeights& w, const float* x, float* y, int64_t m);
struct LutInt8Kernel {
  const char* isa;
  LutMatmulFn fn;
};
// Every implementation this CPU can run, fastest first (tests check each); the first is used.
std::vector<LutInt8Kernel> lut_int8_kernels();

}  // namespace ik::backend
