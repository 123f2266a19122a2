// Operations of speculative decoding with draft heads: the top candidates of logit rows, the
// draft heads' ResBlock activation, Hydra's head inputs, and the KV-cache compaction to an
// accepted path.
#include <climits>

#include "backend/cuda/common.cuh"

namespace ik::backend::cuda {

constexpr int kTopKThreads = 512;

// Larger value first; equal values: the smaller index (as a stable sort on the host).
__device__ __forceinline__ bool better(float v, int i, float w, int j) { return v > w || (v == w && i < j); }

// One block per row, one pass over it: each thread keeps its own best k (sorted, in local
// memory; most values fail the comparison with its last entry, kept in registers), then k rounds
// of a warp arg-max merge each warp's lists (the winner's lane advances) and warp 0 merges the
// warps' lists the same way. (A faster design keeps each warp's list in its lanes: see the notes
// of issue 6; it is not validated on a GPU yet.)
__device__ __forceinline__ void warp_best(float& v, int& i) {
  for (int off = 16; off > 0; off >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, off);
    const int oi = __shfl_xor_sync(0xffffffffu, i, off);
    if (better(ov, oi, v, i)) v = ov, i = oi;
  }
}

__global__ void __launch_bounds__(kTopKThreads) top_k_kernel(const float* logits, int n_vocab, int k, int32_t* out) {
  constexpr int kWarps = kTopKThreads / 32;
  constexpr int kBatch = 8;  // loads in flight per thread: one block per row must hide latency
  __shared__ float warp_v[kWarps][kMaxTopK];
  __shared__ int warp_i[kWarps][kMaxTopK];
  const float* x = logits + size_t(blockIdx.x) * n_vocab;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  float lv[kMaxTopK];
  int li[kMaxTopK], n = 0;
  float cut_v = -INFINITY;
  int cut_i = INT_MAX;
  for (int base = threadIdx.x; base < n_vocab; base += kBatch * blockDim.x) {
    float vb[kBatch];
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
      const int i = base + u * blockDim.x;
      vb[u] = i < n_vocab ? x[i] : -INFINITY;
    }
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
      const int i = base + u * blockDim.x;
      const float v = vb[u];
      if (i >= n_vocab || (n == k && !better(v, i, cut_v, cut_i))) continue;
      int p = n < k ? n++ : k - 1;
      for (; p > 0 && better(v, i, lv[p - 1], li[p - 1]); --p) lv[p] = lv[p - 1], li[p] = li[p - 1];
      lv[p] = v, li[p] = i;
      if (n == k) cut_v = lv[k - 1], cut_i = li[k - 1];
    }
  }
  int pos = 0;
  for (int r = 0; r < k; ++r) {
    const float v = pos < n ? lv[pos] : -INFINITY;
    const int i = pos < n ? li[pos] : INT_MAX;
    float bv = v;
    int bi = i;
    warp_best(bv, bi);
    if (pos < n && bi == i) ++pos;
    if (lane == 0) warp_v[warp][r] = bv, warp_i[warp][r] = bi;
  }
  __syncthreads();
  if (warp != 0) return;
  pos = 0;
  for (int r = 0; r < k; ++r) {
    const bool have = lane < kWarps && pos < k;
    const float v = have ? warp_v[lane][pos] : -INFINITY;
    const int i = have ? warp_i[lane][pos] : INT_MAX;
    float bv = v;
    int bi = i;
    warp_best(bv, bi);
    if (have && bi == i) ++pos;
    if (lane == 0) out[size_t(blockIdx.x) * k + r] = bi;
  }
}

void top_k_rows(const float* logits, int rows, int n_vocab, int k, int32_t* out) {
  IK_CUDA_REQUIRE(k >= 1 && k <= kMaxTopK && k <= n_vocab,
                  "top_k_rows: k = " + std::to_string(k) + " outside [1, " + std::to_string(kMaxTopK) + "]");
  top_k_kernel<<<rows, kTopKThreads, 0, ctx().stream>>>(logits, n_vocab, k, out);
  check_launch("top_k_rows");
}

__global__ void bias_silu_add_kernel(const float* pre, const float* bias, float* y, size_t total, int n) {
  for (size_t e = blockIdx.x * size_t(blockDim.x) + threadIdx.x; e < total; e += size_t(gridDim.x) * blockDim.x) {
    const float z = pre[e] + bias[e % n];
    y[e] += z / (1.0f + __expf(-z));
  }
}

void bias_silu_add(const float* pre, const float* bias, float* y, int m, int n) {
  const size_t total = size_t(m) * n;
  bias_silu_add_kernel<<<capped_blocks(total, 256), 256, 0, ctx().stream>>>(pre, bias, y, total, n);
  check_launch("bias_silu_add");
}

// Row r: [h | E(tree_tokens[chain[r L]]) | ... | E(tree_tokens[chain[r L + L - 1]])].
__global__ void hydra_input_kernel(const float* h, const __nv_bfloat16* embd, const int32_t* tree_tokens,
                                   const int32_t* chain, int L, int d, float* x) {
  const int r = blockIdx.x, width = (L + 1) * d;
  float* row = x + size_t(r) * width;
  for (int e = threadIdx.x; e < width; e += blockDim.x) {
    const int part = e / d, col = e % d;
    row[e] = part == 0 ? h[col] : to_f32(embd[size_t(tree_tokens[chain[r * L + part - 1]]) * d + col]);
  }
}

void hydra_input(const float* h, const bf16* embd, const int32_t* tree_tokens, const int32_t* chain, int rows, int L,
                 int d, float* x) {
  hydra_input_kernel<<<rows, 256, 0, ctx().stream>>>(h, reinterpret_cast<const __nv_bfloat16*>(embd), tree_tokens,
                                                     chain, L, d, x);
  check_launch("hydra_input");
}

__global__ void scatter_candidates_kernel(const int32_t* topk, int k, const int32_t* plan, int n, int32_t* tree_tokens) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    tree_tokens[plan[i]] = topk[plan[n + i] * k + plan[2 * n + i]];
}

void scatter_candidates(const int32_t* topk, int k, const int32_t* plan, int n, int32_t* tree_tokens) {
  scatter_candidates_kernel<<<blocks_for(size_t(n), 128), 128, 0, ctx().stream>>>(topk, k, plan, n, tree_tokens);
  check_launch("scatter_candidates");
}

// One block per cache; rows move in order (row i's destination can be row j's source for j < i,
// never for j > i, since sources are increasing and at least their destinations).
__global__ void keep_rows_kernel(__nv_bfloat16* const* caches, int row_elems, const int32_t* src, int n, int dst0) {
  __nv_bfloat16* c = caches[blockIdx.x];
  for (int i = 0; i < n; ++i) {
    if (src[i] != dst0 + i)
      for (int e = threadIdx.x; e < row_elems; e += blockDim.x)
        c[size_t(dst0 + i) * row_elems + e] = c[size_t(src[i]) * row_elems + e];
    __syncthreads();
  }
}

void keep_cache_rows(bf16* const* caches, int n_caches, int row_elems, const int32_t* src_rows, int n, int dst_row0) {
  if (n_caches == 0 || n == 0) return;
  keep_rows_kernel<<<n_caches, 256, 0, ctx().stream>>>(reinterpret_cast<__nv_bfloat16* const*>(caches), row_elems,
                                                       src_rows, n, dst_row0);
  check_launch("keep_cache_rows");
}

__global__ void bf16_to_f32_kernel(const __nv_bfloat16* x, float* y, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    y[i] = to_f32(x[i]);
}

void convert_to_f32(const bf16* x, float* y, size_t n) {
  bf16_to_f32_kernel<<<capped_blocks(n, 256), 256, 0, ctx().stream>>>(reinterpret_cast<const __nv_bfloat16*>(x), y, n);
  check_launch("convert_to_f32");
}

}  // namespace ik::backend::cuda
