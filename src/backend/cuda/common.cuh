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

// Whether p may be read in pieces of `bytes` (vector loads).
inline bool aligned_to(const void* p, uintptr_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

inline unsigned blocks_for(size_t n, unsigned threads) { return unsigned((n + threads - 1) / threads); }
// For grid-stride loops: enough blocks for n, at most `cap`.
inline unsigned capped_blocks(size_t n, unsigned threads, unsigned cap = 4096) {
  const unsigned b = blocks_for(n, threads);
  return b < cap ? b : cap;
}

__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ __nv_bfloat16 to_bf16(float x) { return __float2bfloat16(x); }

// Programmatic dependent launch (Hopper): a kernel launched with launch_chained() may start
// while the previous kernel in the stream still runs, so it can fetch what does not depend on
// that kernel (weights) early. It must call wait_for_previous_kernel() before it reads the
// previous kernel's results or writes anything. let_next_kernel_start() lets the following
// chained kernel launch now instead of at this kernel's exit. Both are no-ops without a
// chained launch, and before sm_90.
__device__ __forceinline__ void wait_for_previous_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void let_next_kernel_start() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" :::);
#endif
}

// Launches `kernel` chained to the previous kernel in the stream (see above); a plain launch
// where chaining is off. The kernel must call wait_for_previous_kernel() before its dependent work.
template <typename... Params, typename... Args>
void launch_chained(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, Args... args) {
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = ctx().stream;
  cudaLaunchAttribute attribute[1];
  attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute[0].val.programmaticStreamSerializationAllowed = 1;
  config.attrs = attribute;
  config.numAttrs = chained_launches_enabled() ? 1 : 0;
  check(cudaLaunchKernelEx(&config, kernel, Params(args)...), "cudaLaunchKernelEx");
}

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

// RMSNorm of one row of n floats (n a multiple of 4; row, w and out aligned for vector access)
// by the whole block, into bf16: the sum of squares, then x * scale * w. Shared by rms_norm and
// the matvec that fuses it (matvec_rms_norm). scratch: 32 floats of shared memory.
__device__ __forceinline__ void rms_norm_row(const float* row, const float* w, __nv_bfloat16* out, int n, float eps,
                                             float* scratch) {
  const float4* row4 = reinterpret_cast<const float4*>(row);
  const float4* w4 = reinterpret_cast<const float4*>(w);
  float ss = 0.0f;
  for (int i = threadIdx.x; i < n / 4; i += blockDim.x) {
    const float4 v = row4[i];
    ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
  }
  const float scale = rsqrtf(block_sum(ss, scratch) / n + eps);
  for (int i = threadIdx.x; i < n / 4; i += blockDim.x) {
    const float4 v = row4[i], g = w4[i];
    __nv_bfloat162* d = reinterpret_cast<__nv_bfloat162*>(out + 4 * i);
    d[0] = __floats2bfloat162_rn(v.x * scale * g.x, v.y * scale * g.y);
    d[1] = __floats2bfloat162_rn(v.z * scale * g.z, v.w * scale * g.w);
  }
}

}  // namespace ik::backend::cuda
