#pragma once
// Reading the GPU layout of lookup-table codes (lut_layout.hpp) on the device: what the GEMM
// kernel (lut_gemm.cu) and the dequantize kernel (lut_matrix.cu) share.
#include <cstdint>

#include "backend/cuda/lut_layout.hpp"

namespace ik::backend::cuda {

// Bytes of codes in one (row block, chunk) block, as a constant device code can use.
template <int BITS>
constexpr int kCodeBytes = code_block_bytes(BITS);

// A lane's code words of one chunk (4-bit: 8 words; 3-bit: 6 words, one stream; 2-bit: 4); the
// rest are 0.
template <int BITS>
__device__ __forceinline__ void load_codes(const uint8_t* cs, int lane, uint32_t (&c)[8]) {
  const uint4 c0 = *reinterpret_cast<const uint4*>(cs + lane * 16);
  c[0] = c0.x, c[1] = c0.y, c[2] = c0.z, c[3] = c0.w;
  c[4] = c[5] = c[6] = c[7] = 0;
  if constexpr (BITS == 4) {
    const uint4 c1 = *reinterpret_cast<const uint4*>(cs + 512 + lane * 16);
    c[4] = c1.x, c[5] = c1.y, c[6] = c1.z, c[7] = c1.w;
  } else if constexpr (BITS == 3) {
    const uint2 h = *reinterpret_cast<const uint2*>(cs + 512 + lane * 8);
    c[4] = h.x, c[5] = h.y;
  }
}

}  // namespace ik::backend::cuda
