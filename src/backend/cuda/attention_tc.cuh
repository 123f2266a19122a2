#pragma once
// The tensor-core attention kernels (attention_tc.cu), called by attention.cu's entry points, and
// the RoPE pieces the two files share.
#include <cstdlib>

#include "backend/cuda/common.cuh"

namespace ik::backend::cuda {

// Passes of at least this many queries use tensor cores (a 64-query block: shorter ones waste it).
constexpr int kTensorCoreMinRows = 16;
// True when the tensor-core kernel handles this pass (IK_ATTN_CUDA_CORES=1 forces the other).
bool tensor_core_attention(int m, int head_dim);
// Key slices for a pass of m queries: enough blocks to cover the SMs (1: no split), at most
// kMaxKeySlices (the decode merge's limit). IK_NO_KEY_SPLIT=1: 1, for comparisons.
constexpr int kMaxKeySlices = 32;
int attention_key_slices(int m, int n_head);
// With slices > 1 the slices' partial results go to scratch (the decode kernel's layout, rows
// m, kMaxKeySlices slices); the caller merges them (decode_merge_kernel).
void attention_prefill_tc(const float* q, int q_stride, const bf16* k, const bf16* v, bf16* out, int m, int n_past,
                          int n_head, int n_kv, int head_dim, const uint8_t* mask, int diag,
                          const int32_t* n_past_dev = nullptr, float* scratch = nullptr, int slices = 1);
// The key slices' partial results in scratch (the decode layout) merged into out, normalised
// (the decode merge kernel, attention.cu).
void merge_key_slices(const float* scratch, bf16* out, int rows, int n_head, int head_dim, int slices);
// rope_store_attention_decode (cuda.hpp) on the tensor-core kernel: its RoPE and cache store
// fused in the same way.
void rope_store_attention_decode_tc(const float* qkv, int qkv_stride, bf16* k_cache, bf16* v_cache, bf16* out, int n,
                                    const int32_t* n_past, int n_ctx, int n_head, int n_kv, int head_dim,
                                    float* scratch, int splits, const float* inv_freq, bool half_layout);

// RoPE angle of a position at one frequency: formed and reduced to [-pi, pi] in double (as
// exact as the CPU backend's double sincos), then sincosf (a double sincos per lane and dimension
// was a third of the decode kernel's time).
__device__ __forceinline__ void rope_sincos(int position, float inv_freq, float* s, float* c) {
  const double angle = double(position) * double(inv_freq);
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  sincosf(float(angle - kTwoPi * rint(angle / kTwoPi)), s, c);
}
// Dim d of a head's row (f32) rotated at the angles cos_f, sin_f (one per frequency): pairs
// (2i, 2i + 1), or (i, i + HD / 2) in the half layout. The same f32 arithmetic as rope_store_kernel.
template <int HD>
__device__ __forceinline__ float rotated_dim(const float* row, int d, const float* cos_f, const float* sin_f,
                                             bool half_layout) {
  constexpr int H = HD / 2;
  const int i = half_layout ? d % H : d / 2;
  const int a = half_layout ? i : 2 * i, b = a + (half_layout ? H : 1);
  const float x0 = row[a], x1 = row[b], c = cos_f[i], s = sin_f[i];
  return d == a ? x0 * c - x1 * s : x0 * s + x1 * c;
}
void attention_block_tc(const float* q, int q_stride, const bf16* k, const bf16* v, int m, int n_past, int n_head,
                        int n_kv, int head_dim, int diag, float* o, float* lse);

}  // namespace ik::backend::cuda
