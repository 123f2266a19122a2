#pragma once
// Integer dot products between quantized weight rows and activations quantized to 8 bits,
// as llama.cpp does: a weight row in Q4_0 / Q4_1 / Q8_0 blocks of 32 against the activation
// row in ActQ8 blocks of 32 (one f32 scale, the scaled sum for offset formats, 32 int8).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "io/dtype.hpp"

namespace ik::backend {

constexpr int kQBlock = 32;

struct BlockQ4_0 { uint16_t d; uint8_t qs[16]; };              // w = (q - 8) * d
struct BlockQ4_1 { uint16_t d, m; uint8_t qs[16]; };           // w = q * d + m
struct BlockQ8_0 { uint16_t d; int8_t qs[32]; };               // w = q * d
struct ActQ8 { float d; float s; int8_t qs[32]; };             // x = q * d, s = d * sum(q)
static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ8_0) == 34);

// Quantize k floats (k a multiple of 32) to ActQ8 blocks: per-block absmax / 127, round to nearest.
void quantize_act_q8(const float* x, ActQ8* out, int64_t k);

// Dot of one weight row (nb = k/32 blocks) with one quantized activation row.
using QuantDotFn = float (*)(const void* w_row, const ActQ8* x, int64_t nb);
struct QuantDotKernel {
  const char* isa;
  QuantDotFn fn;
};
// Every implementation of the weight type's dot that this CPU can run, fastest first
// (empty for types without one). Tests check each against the scalar one.
std::vector<QuantDotKernel> quant_dot_kernels(io::DType t);
// The fastest (chosen once), or nullptr.
QuantDotFn quant_dot(io::DType t);

// Q4_1 repacked at load for AVX-512 VNNI ("Q4_1x4"): per row, f16 d[nb], f16 m[nb], then
// the nb 16-byte nibble arrays back to back, so one 64-byte load holds four blocks. Same size
// as the stored row. The activation side uses ActQ8x4: scales and sums as f32 arrays, and the
// quants of each group of four blocks split into low halves (elements 0-15 of each block)
// and high halves (16-31), matching the nibble order.
bool q4_1x4_available();
void repack_q4_1x4(const void* stored_row, uint8_t* out, int64_t nb);
size_t act_q8x4_bytes(int64_t k);
void quantize_act_q8x4(const float* x, uint8_t* out, int64_t k);
float dot_q4_1x4(const uint8_t* w_row, const uint8_t* x, int64_t nb);
// The same for four activation rows at once (each weight group unpacked once).
void dot_q4_1x4_rows4(const uint8_t* w_row, const uint8_t* const x[4], int64_t nb, float out[4]);

}  // namespace ik::backend
