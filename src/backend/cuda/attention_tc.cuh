#pragma once
// The tensor-core prefill attention (attention_tc.cu), called by attention.cu's entry points.
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
// Whether attention_decode of n sequences takes the tensor-core kernel (attention_decode_tc,
// cuda.hpp): from two sequences on. At one it keeps the CUDA-core kernel, whose fused RoPE and
// cache store save a launch per layer, which wins at short contexts (Llama-3-8B context 512
// 4.13 against 4.23 ms; at 16k the tensor cores win, 4.83 against 5.77 ms:
// bench/cuda/results/decode_tc_ab_h200.txt). IK_DECODE_TC=1 / 0: always / never.
bool decode_tensor_cores(int n);
void attention_block_tc(const float* q, int q_stride, const bf16* k, const bf16* v, int m, int n_past, int n_head,
                        int n_kv, int head_dim, int diag, float* o, float* lse);

}  // namespace ik::backend::cuda
