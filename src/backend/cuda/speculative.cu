// Operations of speculative decoding with draft heads: the top candidates of logit rows, the
// draft heads' ResBlock activation, Hydra's head inputs, and the KV-cache compaction to an
// accepted path.
#include <climits>

#include "backend/cuda/common.cuh"

namespace ik::backend::cuda {

constexpr int kTopKThreads = 512;
constexpr unsigned kFullWarp = 0xffffffffu;

// Larger value first; equal values: the smaller index (as a stable sort on the host).
__device__ __forceinline__ bool better(float v, int i, float w, int j) { return v > w || (v == w && i < j); }

// A warp's best k kept in its lanes, sorted: lane j holds the j-th best (lanes >= k: unused).
// Inserting a candidate shifts the worse entries up one lane.
__device__ __forceinline__ void lane_list_insert(float& lv, int& li, float cv, int ci, int lane) {
  const float up_v = __shfl_up_sync(kFullWarp, lv, 1);
  const int up_i = __shfl_up_sync(kFullWarp, li, 1);
  if (better(lv, li, cv, ci)) return;
  if (lane == 0 || better(up_v, up_i, cv, ci)) lv = cv, li = ci;
  else lv = up_v, li = up_i;
}

// Each lane offers one value (when valid). Only values that beat the k-th entry are inserted,
// one at a time, lowest lane first; after a warm-up most offers are a ballot that comes back
// empty. Every lane runs every shuffle: the loop count is the warp-uniform ballot.
__device__ __forceinline__ void lane_list_offer(float& lv, int& li, float v, int i, bool valid, int k, int lane) {
  float kv = __shfl_sync(kFullWarp, lv, k - 1);
  int ki = __shfl_sync(kFullWarp, li, k - 1);
  bool want = valid && better(v, i, kv, ki);
  for (unsigned m = __ballot_sync(kFullWarp, want); m; m = __ballot_sync(kFullWarp, want)) {
    const int src = __ffs(m) - 1;
    lane_list_insert(lv, li, __shfl_sync(kFullWarp, v, src), __shfl_sync(kFullWarp, i, src), lane);
    kv = __shfl_sync(kFullWarp, lv, k - 1);
    ki = __shfl_sync(kFullWarp, li, k - 1);
    want = want && lane != src && better(v, i, kv, ki);
  }
}

// One block per row: each warp keeps the best k of its share in its lanes (16 loads in flight
// per lane: a lone block per row must hide the load latency), then warp 0 merges the warps'
// lists the same way.
__global__ void __launch_bounds__(kTopKThreads) top_k_kernel(const float* logits, int n_vocab, int k, int32_t* out) {
  constexpr int kWarps = kTopKThreads / 32, kBatch = 16;
  __shared__ float warp_v[kWarps][32];
  __shared__ int warp_i[kWarps][32];
  const float* x = logits + size_t(blockIdx.x) * n_vocab;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  float lv = -INFINITY;
  int li = INT_MAX;
  for (int base = warp * 32 * kBatch; base < n_vocab; base += kTopKThreads * kBatch) {
    float vb[kBatch];
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
      const int i = base + u * 32 + lane;
      vb[u] = i < n_vocab ? x[i] : -INFINITY;
    }
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
      const int i = base + u * 32 + lane;
      lane_list_offer(lv, li, vb[u], i, i < n_vocab, k, lane);
    }
  }
  warp_v[warp][lane] = lv, warp_i[warp][lane] = li;
  __syncthreads();
  if (warp != 0) return;
  lv = -INFINITY, li = INT_MAX;
  for (int w = 0; w < kWarps; ++w) lane_list_offer(lv, li, warp_v[w][lane], warp_i[w][lane], lane < k, k, lane);
  // A row without a single ordered value (all NaN) keeps the sentinel: emit token 0, in range.
  if (lane < k) out[size_t(blockIdx.x) * k + lane] = li == INT_MAX ? 0 : li;
}

void top_k_rows(const float* logits, int rows, int n_vocab, int k, int32_t* out) {
  IK_CUDA_REQUIRE(k >= 1 && k <= kMaxTopK && k <= n_vocab,
                  "top_k_rows: k = " + std::to_string(k) + " outside [1, " + std::to_string(kMaxTopK) + "]");
  if (k == 1) return argmax_rows(logits, rows, n_vocab, out);  // many blocks per row, not one
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

}  // namespace ik::backend::cuda
