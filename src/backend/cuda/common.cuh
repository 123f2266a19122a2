#pragma once
// Shared by the CUDA kernels of the backend: launch sizes, bf16 conversions, reductions.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cmath>
#include <cuda_runtime.h>

#include <string>

#include "backend/cuda/context.hpp"

namespace ik::backend::cuda {

// A failed precondition in a .cu file: raise() carries the message (fmt is not available here).
#define IK_CUDA_REQUIRE(cond, message) \
  do {                                 \
    if (!(cond)) raise(message);       \
  } while (0)

inline unsigned blocks_for(size_t n, unsigned threads) { return unsigned((n + threads - 1) / threads); }
// For grid-stride loops: enough blocks for n, at most `cap`.
inline unsigned capped_blocks(size_t n, unsigned threads, unsigned cap = 4096) {
  const unsigned b = blocks_for(n, threads);
  return b < cap ? b : cap;
}

__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ __nv_bfloat16 to_bf16(float x) { return __float2bfloat16(x); }

// splitmix64 of (seed, index): a value per index whatever the launch shape.
__device__ __forceinline__ uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Block-wide reductions for blockDim.x a multiple of 32 (up to 1024). scratch: 32 floats.
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < n_warps ? scratch[lane] : 0.0f;
  return warp_sum(v);
}
__device__ __forceinline__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < n_warps ? scratch[lane] : -INFINITY;
  return warp_max(v);
}

}  // namespace ik::backend::cuda
