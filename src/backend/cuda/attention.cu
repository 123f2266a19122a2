// Attention over the bf16 KV cache: a flash-attention style prefill kernel (tiles of K and V
// in shared memory, online softmax, any mask over the new rows) and split-K flash decoding
// (each block reduces a slice of the keys; a second kernel merges the slices).
#include <algorithm>
#include <type_traits>

#include "backend/cuda/attention_tc.cuh"
#include "backend/cuda/common.cuh"

namespace ik::backend::cuda {

// ---- prefill --------------------------------------------------------------------------------

constexpr int kPrefillQueries = 32;   // queries per block
constexpr int kThreadsPerQuery = 4;   // each owns head_dim/4 interleaved dims (no bank conflicts)
constexpr int kKeyTile = 32;

// kPartial: write the normalised output in f32 to o_f32 and the log-sum-exp of the scores to
// lse (context-parallel blocks, merged later), instead of bf16 to out.
template <int HD, bool kPartial = false>
__global__ void __launch_bounds__(kPrefillQueries* kThreadsPerQuery)
    prefill_kernel(const float* q, int q_stride, const __nv_bfloat16* k_cache, const __nv_bfloat16* v_cache,
                   __nv_bfloat16* out, int m, int n_past, int n_head, int n_kv, const uint8_t* mask, int diag,
                   float* o_f32 = nullptr, float* lse = nullptr, const int32_t* n_past_dev = nullptr) {
  constexpr int D = HD / kThreadsPerQuery;
  if (n_past_dev) n_past = *n_past_dev;
  __shared__ float ks[kKeyTile][HD];
  __shared__ float vs[kKeyTile][HD];
  const int h = blockIdx.y, kvh = h / (n_head / n_kv), kv_dim = n_kv * HD;
  const int qi = blockIdx.x * kPrefillQueries + threadIdx.x / kThreadsPerQuery;
  const int part = threadIdx.x % kThreadsPerQuery;
  const bool active = qi < m;
  const float scale = rsqrtf(float(HD));

  float qr[D], o[D];
  for (int t = 0; t < D; ++t) {
    qr[t] = active ? q[size_t(qi) * q_stride + h * HD + part + kThreadsPerQuery * t] * scale : 0.0f;
    o[t] = 0.0f;
  }
  float run_max = -INFINITY, run_sum = 0.0f;
  // Keys past the block's last query (+ diag) are invisible under a causal mask.
  const int last_q = min(m, int(blockIdx.x + 1) * kPrefillQueries) - 1;
  const int n_keys = n_past + (mask ? m : max(0, min(m, last_q + 1 + diag)));

  for (int k0 = 0; k0 < n_keys; k0 += kKeyTile) {
    __syncthreads();
    for (int e = threadIdx.x; e < kKeyTile * HD; e += blockDim.x) {
      const int j = e / HD, d = e % HD, row = k0 + j;
      const size_t src = size_t(row) * kv_dim + size_t(kvh) * HD + d;
      ks[j][d] = row < n_keys ? to_f32(k_cache[src]) : 0.0f;
      vs[j][d] = row < n_keys ? to_f32(v_cache[src]) : 0.0f;
    }
    __syncthreads();
    float s[kKeyTile];
    float tile_max = -INFINITY;
#pragma unroll
    for (int j = 0; j < kKeyTile; ++j) {
      float dot = 0.0f;
#pragma unroll
      for (int t = 0; t < D; ++t) dot += qr[t] * ks[j][part + kThreadsPerQuery * t];
      dot += __shfl_xor_sync(0xffffffffu, dot, 1);
      dot += __shfl_xor_sync(0xffffffffu, dot, 2);
      const int row = k0 + j;
      bool visible = active && row < n_keys;
      if (visible && row >= n_past) {
        const int jn = row - n_past;
        visible = mask ? mask[size_t(qi) * m + jn] != 0 : jn <= qi + diag;
      }
      s[j] = visible ? dot : -INFINITY;
      tile_max = fmaxf(tile_max, s[j]);
    }
    if (tile_max == -INFINITY) continue;  // nothing visible in this tile for this query
    const float new_max = fmaxf(run_max, tile_max);
    const float corr = __expf(run_max - new_max);
    run_sum *= corr;
#pragma unroll
    for (int t = 0; t < D; ++t) o[t] *= corr;
#pragma unroll
    for (int j = 0; j < kKeyTile; ++j) {
      const float p = __expf(s[j] - new_max);
      run_sum += p;
#pragma unroll
      for (int t = 0; t < D; ++t) o[t] += p * vs[j][part + kThreadsPerQuery * t];
    }
    run_max = new_max;
  }
  if (!active) return;
  const float inv = run_sum > 0 ? 1.0f / run_sum : 0.0f;
  const size_t at = size_t(qi) * n_head * HD + h * HD + part;
  if constexpr (kPartial) {
    for (int t = 0; t < D; ++t) o_f32[at + kThreadsPerQuery * t] = o[t] * inv;
    // Scores were scaled by 1/sqrt(d) through q: lse = log(sum exp(s)) = max + log(sum).
    if (part == 0) lse[size_t(qi) * n_head + h] = run_sum > 0 ? run_max + __logf(run_sum) : -INFINITY;
  } else {
    for (int t = 0; t < D; ++t) out[at + kThreadsPerQuery * t] = to_bf16(o[t] * inv);
  }
}

// The CUDA-core kernel for either output (bf16 out, or f32 o with lse).
template <bool kPartial>
static void launch_prefill(const float* q, int q_stride, const bf16* k_cache, const bf16* v_cache, bf16* out, int m,
                           int n_past, int n_head, int n_kv, int head_dim, const uint8_t* mask, int diag, float* o,
                           float* lse, const int32_t* n_past_dev = nullptr) {
  const dim3 grid((m + kPrefillQueries - 1) / kPrefillQueries, n_head);
  const int threads = kPrefillQueries * kThreadsPerQuery;
  auto k = reinterpret_cast<const __nv_bfloat16*>(k_cache);
  auto v = reinterpret_cast<const __nv_bfloat16*>(v_cache);
  auto ob = reinterpret_cast<__nv_bfloat16*>(out);
  if (head_dim == 64)
    prefill_kernel<64, kPartial>
        <<<grid, threads, 0, ctx().stream>>>(q, q_stride, k, v, ob, m, n_past, n_head, n_kv, mask, diag, o, lse,
                                             n_past_dev);
  else if (head_dim == 128)
    prefill_kernel<128, kPartial>
        <<<grid, threads, 0, ctx().stream>>>(q, q_stride, k, v, ob, m, n_past, n_head, n_kv, mask, diag, o, lse,
                                             n_past_dev);
  else
    raise("CUDA attention supports head dimensions 64 and 128, not " + std::to_string(head_dim));
  check_launch("attention (CUDA cores)");
}

void attention_prefill(const float* q, int q_stride, const bf16* k_cache, const bf16* v_cache, bf16* out, int m,
                       int n_past, int n_head, int n_kv, int head_dim, const uint8_t* mask, int diag,
                       const int32_t* n_past_dev, float* scratch) {
  // A draft tree's pass (mask) of few rows over a long cache: the CUDA-core kernel, one block
  // per 4 queries and head walking every key, is several times slower there.
  if (tensor_core_attention(mask ? kTensorCoreMinRows : m, head_dim)) {
    const int slices = scratch ? attention_key_slices(m, n_head) : 1;
    attention_prefill_tc(q, q_stride, k_cache, v_cache, out, m, n_past, n_head, n_kv, head_dim, mask, diag,
                         n_past_dev, scratch, slices);
    if (slices > 1) merge_key_slices(scratch, out, m, n_head, head_dim, slices);
    return;
  }
  launch_prefill<false>(q, q_stride, k_cache, v_cache, out, m, n_past, n_head, n_kv, head_dim, mask, diag, nullptr,
                        nullptr, n_past_dev);
}

void attention_block(const float* q, int q_stride, const bf16* k, const bf16* v, int m, int n_past, int n_head,
                     int n_kv, int head_dim, int diag, float* o, float* lse) {
  if (tensor_core_attention(m, head_dim))
    return attention_block_tc(q, q_stride, k, v, m, n_past, n_head, n_kv, head_dim, diag, o, lse);
  launch_prefill<true>(q, q_stride, k, v, nullptr, m, n_past, n_head, n_kv, head_dim, nullptr, diag, o, lse);
}

// One thread per (row, head, dim): acc = acc * w_a + o * w_b with weights from the two
// log-sum-exps; the lse is updated by the head's dim-0 thread after a block-wide barrier.
__global__ void attention_merge_kernel(float* acc_o, float* acc_lse, const float* o, const float* lse, int n_head,
                                       int head_dim) {
  const int row = blockIdx.x, h = blockIdx.y, d = threadIdx.x;
  const float a = acc_lse[size_t(row) * n_head + h], b = lse[size_t(row) * n_head + h];
  const float mx = fmaxf(a, b);
  if (mx == -INFINITY) return;  // neither block has a visible key
  const float wa = __expf(a - mx), wb = __expf(b - mx), inv = 1.0f / (wa + wb);
  const size_t at = (size_t(row) * n_head + h) * head_dim + d;
  acc_o[at] = (a == -INFINITY ? 0.0f : acc_o[at] * wa * inv) + (b == -INFINITY ? 0.0f : o[at] * wb * inv);
  __syncthreads();  // every dim has read acc_lse
  if (d == 0) acc_lse[size_t(row) * n_head + h] = mx + __logf(wa + wb);
}

void attention_merge(float* acc_o, float* acc_lse, const float* o, const float* lse, int m, int n_head, int head_dim) {
  if (m == 0) return;
  attention_merge_kernel<<<dim3(m, n_head), head_dim, 0, ctx().stream>>>(acc_o, acc_lse, o, lse, n_head, head_dim);
  check_launch("attention_merge");
}

// ---- decode (split-K) -------------------------------------------------------------------------

constexpr int kDecodeWarps = 4;
constexpr int kMaxGroup = 8;  // query heads per KV head
constexpr int kHeadsAtOnce = 4;  // of a group, per pass over a round of keys (divides kMaxGroup)
static_assert(kDecodeWarps * 32 >= 64, "a decode block has a thread per RoPE angle (head_dim / 2 <= 64)");
constexpr int kMaxSplits = kMaxKeySlices;  // the merge reads one split per lane

// The fused RoPE of rope_store_attention_decode (absent: inv_freq null).
struct DecodeRope {
  const float* inv_freq = nullptr;
  bool half_layout = false;
};

// The rows of a draft tree (rope_store_attention_tree): all of one sequence, row i at cache row
// n_past + i, rotated at pos[i], seeing tree row j where mask[i * m + j] (device arrays).
struct DecodeTree {
  const int32_t* pos = nullptr;
  const uint8_t* mask = nullptr;
};

static int decode_splits(int n, int n_kv) {
  static const int max_splits = std::clamp(env_setting("IK_DECODE_SPLITS", kMaxSplits), 1, kMaxSplits);
  const int want = (2 * ctx().device.sm_count + n * n_kv - 1) / (n * n_kv);
  return std::clamp(want, 1, max_splits);
}

size_t attention_decode_scratch_floats(int n, int n_head, int head_dim) {
  return size_t(n) * n_head * kMaxSplits * (head_dim + 2);
}

// D consecutive bf16 (D = 2 or 4, aligned to 2D bytes) in one load, as f32.
template <int D>
__device__ __forceinline__ void load_bf16s(const __nv_bfloat16* p, float (&out)[D]) {
  static_assert(D == 2 || D == 4, "2 or 4 values");
  using Word = std::conditional_t<D == 4, uint2, uint32_t>;
  const Word word = *reinterpret_cast<const Word*>(p);
  const __nv_bfloat162* pairs = reinterpret_cast<const __nv_bfloat162*>(&word);
#pragma unroll
  for (int i = 0; i < D / 2; ++i) {
    const float2 f = __bfloat1622float2(pairs[i]);
    out[2 * i] = f.x;
    out[2 * i + 1] = f.y;
  }
}

// RoPE of one head held across a warp (lane l: dims l D .. l D + D - 1) at the angles cos, sin
// of each dim's frequency. Adjacent layout: pairs (2i, 2i + 1) inside a lane; half layout:
// pairs (i, i + HD / 2), lane l with lane l ^ 16. The same f32 arithmetic as rope_store_kernel.
template <int D>
__device__ __forceinline__ void rotate_head(float (&x)[D], const float (&cs)[D], const float (&sn)[D], bool half_layout,
                                            int lane) {
  if (half_layout) {
    const bool low = lane < 16;
#pragma unroll
    for (int t = 0; t < D; ++t) {
      const float other = __shfl_xor_sync(0xffffffffu, x[t], 16);
      x[t] = low ? x[t] * cs[t] - other * sn[t] : other * sn[t] + x[t] * cs[t];
    }
  } else {
#pragma unroll
    for (int t = 0; t < D; t += 2) {
      const float x0 = x[t], x1 = x[t + 1];
      x[t] = x0 * cs[t] - x1 * sn[t];
      x[t + 1] = x0 * sn[t] + x1 * cs[t];
    }
  }
}

// This lane's angles (dims lane D .. lane D + D - 1) from a row of HD / 2 cosines and sines, one
// per frequency: pairs (2i, 2i + 1) in the adjacent layout, (i, i + HD / 2) in the half layout.
template <int HD, int D>
__device__ __forceinline__ void lane_angles(const float* cos_row, const float* sin_row, bool half_layout, int lane,
                                            float (&cs)[D], float (&sn)[D]) {
#pragma unroll
  for (int t = 0; t < D; ++t) {
    const int d = lane * D + t, i = half_layout ? d % (HD / 2) : d / 2;
    cs[t] = cos_row[i], sn[t] = sin_row[i];
  }
}

// Block (kv head, split, sequence): every query head of the group over the split's keys.
// Lane l owns dims [l*HD/32, (l+1)*HD/32). Partial results: per (seq, head, split) the
// running max, the sum of exponentials and the unnormalised output; with one split, the
// normalised output itself (bf16 in out), so no merge kernel runs. kRope: see
// rope_store_attention_decode. kTree (with kRope): blockIdx.z is a row of one draft tree
// (rope_store_attention_tree); the splits share the sequence's cached rows [0, n_past[0]), and the
// last split also takes the tree rows the row sees, rotated from qkv itself, since the blocks
// that store them into the cache run concurrently with it.
template <int HD, int kKeysInFlight, bool kRope, bool kTree = false>
__global__ void __launch_bounds__(kDecodeWarps * 32)
    decode_kernel(const float* q, int q_stride, __nv_bfloat16* k_cache, __nv_bfloat16* v_cache,
                  const int32_t* n_past, int n_ctx, int n_head, int n_kv, float* partial, __nv_bfloat16* out,
                  DecodeRope rope, DecodeTree tree) {
  static_assert(kRope || !kTree, "tree rows are rotated in the kernel");
  constexpr int D = HD / 32;
  let_next_kernel_start();  // chained: see common.cuh
  wait_for_previous_kernel();
  const int kvh = blockIdx.x, split = blockIdx.y, b = blockIdx.z, splits = gridDim.y;
  const int group = n_head / n_kv, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int kv_dim = n_kv * HD;
  const float scale = rsqrtf(float(HD));
  const float* qrow = q + size_t(b) * q_stride;
  // The query heads do not depend on n_past: at head dimension 128 they are requested with it,
  // one global round trip before the RoPE angles fewer (Llama-3-8B batch 1 0.8-1.1% faster). At
  // 64 ptxas then schedules the key loop worse (SmolLM2 batch 64 1.65 -> 2.08 ms), so there they
  // wait for the angles as before (bench/cuda/results/early_query_ab_h200.txt).
  constexpr bool kEarlyQuery = HD == 128;
  float qr[kMaxGroup][D], o[kMaxGroup][D], mx[kMaxGroup], sum[kMaxGroup];
  auto query = [&](int g, int t) { return g < group ? qrow[(kvh * group + g) * HD + lane * D + t] : 0.0f; };
  if constexpr (kEarlyQuery) {
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g)
#pragma unroll
      for (int t = 0; t < D; ++t) qr[g][t] = query(g, t);
  }
  // Keys the splits share: a sequence's rows up to its new one; a tree's cached rows.
  const int n_keys = kTree ? n_past[0] : n_past[b] + 1;
  const int chunk = (n_keys + splits - 1) / splits;
  const int k_begin = split * chunk, k_end = min(n_keys, k_begin + chunk);

  // Fused RoPE: the angles at the new row's position, once per block.
  float cs[D], sn[D];
  constexpr int kTreeAngles = kTree ? kTreeDecodeRows : 1;
  __shared__ float s_tree_cos[kTreeAngles][HD / 2], s_tree_sin[kTreeAngles][HD / 2];
  if constexpr (kRope) {
    __shared__ float s_cos[HD / 2], s_sin[HD / 2];
    if (threadIdx.x < HD / 2) {
      const int position = kTree ? tree.pos[b] : n_past[b];
      rope_sincos(position, rope.inv_freq[threadIdx.x], &s_sin[threadIdx.x], &s_cos[threadIdx.x]);
    }
    // Tree: the last split also rotates the keys of the tree rows its row sees. Their angles
    // (a row of them per tree row) come from the whole block at once, not lane by lane.
    if constexpr (kTree) {
      if (split == splits - 1)
        for (int e = threadIdx.x; e < int(gridDim.z) * (HD / 2); e += blockDim.x) {
          const int r = e / (HD / 2), i = e % (HD / 2);
          rope_sincos(tree.pos[r], rope.inv_freq[i], &s_tree_sin[r][i], &s_tree_cos[r][i]);
        }
    }
    __syncthreads();
    lane_angles<HD, D>(s_cos, s_sin, rope.half_layout, lane, cs, sn);
  }
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    mx[g] = -INFINITY;
    sum[g] = 0.0f;
#pragma unroll
    for (int t = 0; t < D; ++t) {
      if constexpr (!kEarlyQuery) qr[g][t] = query(g, t);
      o[g][t] = 0.0f;
    }
    if constexpr (kRope)
      if (g < group) rotate_head<D>(qr[g], cs, sn, rope.half_layout, lane);
#pragma unroll
    for (int t = 0; t < D; ++t) qr[g][t] *= scale;
  }
  // One block writes the row's key (rotated) and value to the cache: for a sequence, the block
  // whose slice holds the new row, before any warp reads it (no other block reads that row); for
  // a tree row, the first split's (no block reads tree rows from the cache).
  if constexpr (kRope) {
    const int new_row = kTree ? n_keys + b : n_keys - 1;  // the row's cache row in its sequence
    if (kTree ? split == 0 : k_begin <= new_row && new_row < k_end) {
      if (warp == 0) {
        float kx[D];
        const float* src = qrow + n_head * HD + kvh * HD + lane * D;
#pragma unroll
        for (int t = 0; t < D; ++t) kx[t] = src[t];
        rotate_head<D>(kx, cs, sn, rope.half_layout, lane);
        const size_t dst = ((kTree ? 0 : size_t(b) * n_ctx) + new_row) * kv_dim + size_t(kvh) * HD + lane * D;
#pragma unroll
        for (int t = 0; t < D; ++t) {
          k_cache[dst + t] = to_bf16(kx[t]);
          v_cache[dst + t] = to_bf16(src[kv_dim + t]);
        }
      }
      if (!kTree) __syncthreads();
    }
  }
  // A round of keys, at least one of them valid, into every query head's online softmax:
  // kHeadsAtOnce heads at a time, the round's dot products first, then their warp sums
  // interleaved (independent shuffles rather than a 5-deep chain per key and head), then one
  // online-softmax update per head for the whole round.
  auto attend = [&](const float(&kr)[kKeysInFlight][D], const float(&vr)[kKeysInFlight][D],
                    const bool(&valid)[kKeysInFlight]) {
#pragma unroll
    for (int g0 = 0; g0 < kMaxGroup; g0 += kHeadsAtOnce) {
      if (g0 >= group) break;  // warp-uniform
      float dot[kKeysInFlight][kHeadsAtOnce];
#pragma unroll
      for (int u = 0; u < kKeysInFlight; ++u)
#pragma unroll
        for (int c = 0; c < kHeadsAtOnce; ++c) {
          float d = 0.0f;
#pragma unroll
          for (int t = 0; t < D; ++t) d += qr[g0 + c][t] * kr[u][t];
          dot[u][c] = d;
        }
#pragma unroll
      for (int offset = 16; offset > 0; offset >>= 1)
#pragma unroll
        for (int u = 0; u < kKeysInFlight; ++u)
#pragma unroll
          for (int c = 0; c < kHeadsAtOnce; ++c) dot[u][c] += __shfl_xor_sync(0xffffffffu, dot[u][c], offset);
#pragma unroll
      for (int c = 0; c < kHeadsAtOnce; ++c) {
        const int g = g0 + c;
        if (g >= group) break;
        float new_max = mx[g];
#pragma unroll
        for (int u = 0; u < kKeysInFlight; ++u)
          if (valid[u]) new_max = fmaxf(new_max, dot[u][c]);
        const float corr = __expf(mx[g] - new_max);  // finite new_max: a key is valid
        sum[g] *= corr;
#pragma unroll
        for (int t = 0; t < D; ++t) o[g][t] *= corr;
#pragma unroll
        for (int u = 0; u < kKeysInFlight; ++u) {
          const float p = valid[u] ? __expf(dot[u][c] - new_max) : 0.0f;
          sum[g] += p;
#pragma unroll
          for (int t = 0; t < D; ++t) o[g][t] += p * vr[u][t];
        }
        mx[g] = new_max;
      }
    }
  };
  const size_t sequence = kTree ? 0 : size_t(b) * n_ctx * kv_dim;  // a tree's caches are its sequence's
  const __nv_bfloat16* kbase = k_cache + sequence + size_t(kvh) * HD + lane * D;
  const __nv_bfloat16* vbase = v_cache + sequence + size_t(kvh) * HD + lane * D;
  // kKeysInFlight keys per warp at a time, all loaded before any is used: a short split costs
  // about one memory round trip instead of one per key. (4 when the keys are split over many
  // blocks; 2 when each block has a whole sequence, so 4 blocks fit an SM, which wins at batch
  // 64. 8 keys did worse: a slice of 17 keys leaves most of a round's dot products unused.)
  for (int j0 = k_begin + warp; j0 < k_end; j0 += kDecodeWarps * kKeysInFlight) {
    float kr[kKeysInFlight][D], vr[kKeysInFlight][D];
#pragma unroll
    for (int u = 0; u < kKeysInFlight; ++u) {
      const int j = min(j0 + u * kDecodeWarps, k_end - 1);  // past the end: a valid key, not used
      load_bf16s<D>(kbase + size_t(j) * kv_dim, kr[u]);
      load_bf16s<D>(vbase + size_t(j) * kv_dim, vr[u]);
    }
    bool valid[kKeysInFlight];
#pragma unroll
    for (int u = 0; u < kKeysInFlight; ++u) valid[u] = j0 + u * kDecodeWarps < k_end;  // u = 0 always
    attend(kr, vr, valid);
  }
  // The tree rows this row sees, in the last split: each key rotated at its row's position and
  // rounded to bf16, exactly as its own block stores it.
  if constexpr (kTree) {
    const int m = gridDim.z;
    for (int j0 = warp * kKeysInFlight; split == splits - 1 && j0 < m; j0 += kDecodeWarps * kKeysInFlight) {
      float kr[kKeysInFlight][D], vr[kKeysInFlight][D];
      bool valid[kKeysInFlight], any = false;
#pragma unroll
      for (int u = 0; u < kKeysInFlight; ++u) {
        const int j = j0 + u;
        valid[u] = j < m && tree.mask[size_t(b) * m + j] != 0;  // warp-uniform
        any = any || valid[u];
        if (!valid[u]) {  // finite values, weighted 0
#pragma unroll
          for (int t = 0; t < D; ++t) kr[u][t] = vr[u][t] = 0.0f;
          continue;
        }
        const float* src = q + size_t(j) * q_stride + n_head * HD + kvh * HD + lane * D;
        float kc[D], ks[D];
        lane_angles<HD, D>(s_tree_cos[j], s_tree_sin[j], rope.half_layout, lane, kc, ks);
#pragma unroll
        for (int t = 0; t < D; ++t) {
          kr[u][t] = src[t];
          vr[u][t] = to_f32(to_bf16(src[kv_dim + t]));
        }
        rotate_head<D>(kr[u], kc, ks, rope.half_layout, lane);
#pragma unroll
        for (int t = 0; t < D; ++t) kr[u][t] = to_f32(to_bf16(kr[u][t]));
      }
      if (any) attend(kr, vr, valid);
    }
  }
  // Merge the warps through shared memory, then write this split's partial result.
  __shared__ float s_max[kDecodeWarps][kMaxGroup], s_sum[kDecodeWarps][kMaxGroup];
  __shared__ float s_out[kDecodeWarps][kMaxGroup][HD];
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {  // unrolled: o[g] stays in registers
    if (g >= group) break;
    if (lane == 0) {
      s_max[warp][g] = mx[g];
      s_sum[warp][g] = sum[g];
    }
#pragma unroll
    for (int t = 0; t < D; ++t) s_out[warp][g][lane * D + t] = o[g][t];
  }
  __syncthreads();
  for (int e = threadIdx.x; e < group * HD; e += blockDim.x) {
    const int g = e / HD, d = e % HD;
    float m_all = -INFINITY;
    for (int w = 0; w < kDecodeWarps; ++w) m_all = fmaxf(m_all, s_max[w][g]);
    float l = 0.0f, acc = 0.0f;
    if (m_all != -INFINITY) {
      for (int w = 0; w < kDecodeWarps; ++w) {
        const float c = __expf(s_max[w][g] - m_all);
        l += s_sum[w][g] * c;
        acc += s_out[w][g][d] * c;
      }
    }
    const int head = kvh * group + g;
    if (splits == 1) {  // the block has all the keys: its result is the output, no merge
      out[(size_t(b) * n_head + head) * HD + d] = to_bf16(l > 0 ? acc / l : 0.0f);
      continue;
    }
    float* p = partial + ((size_t(b) * n_head + head) * splits + split) * (HD + 2);
    p[2 + d] = acc;
    if (d == 0) {
      p[0] = m_all;
      p[1] = l;
    }
  }
}

// Block (head, sequence), head_dim threads: merge the splits and normalise. Lane s of each warp
// reads split s's max and sum (splits <= 32), so the weights take one round trip; each thread
// then reads its dimension of every split with all loads independent.
__global__ void decode_merge_kernel(const float* partial, __nv_bfloat16* out, int n_head, int head_dim, int splits) {
  let_next_kernel_start();  // chained: see common.cuh
  wait_for_previous_kernel();
  const int h = blockIdx.x, b = blockIdx.y, d = threadIdx.x, lane = threadIdx.x & 31;
  const float* p = partial + (size_t(b) * n_head + h) * splits * (head_dim + 2);
  const float m_s = lane < splits ? p[lane * (head_dim + 2)] : -INFINITY;
  const float m_all = warp_max(m_s);
  const float c_s = m_s == -INFINITY ? 0.0f : __expf(m_s - m_all);
  const float l = warp_sum(lane < splits ? c_s * p[lane * (head_dim + 2) + 1] : 0.0f);
  float acc = 0.0f;
#pragma unroll
  for (int s = 0; s < kMaxSplits; ++s) {
    const float c = __shfl_sync(0xffffffffu, c_s, s);
    if (s < splits && c > 0.0f) acc += c * p[s * (head_dim + 2) + 2 + d];
  }
  out[(size_t(b) * n_head + h) * head_dim + d] = to_bf16(l > 0 ? acc / l : 0.0f);
}

void merge_key_slices(const float* scratch, bf16* out, int rows, int n_head, int head_dim, int slices) {
  launch_chained(decode_merge_kernel, dim3(n_head, rows), dim3(head_dim), 0, scratch,
                 reinterpret_cast<__nv_bfloat16*>(out), n_head, head_dim, slices);
  check_launch("attention merge of key slices");
}

template <bool kRope, bool kTree = false>
static void launch_decode(const float* q, int q_stride, bf16* k_cache, bf16* v_cache, bf16* out, int n,
                          const int32_t* n_past, int n_ctx, int n_head, int n_kv, int head_dim, float* scratch,
                          DecodeRope rope, DecodeTree tree = {}) {
  if (n_head % n_kv != 0 || n_head / n_kv > kMaxGroup)
    raise("CUDA decode attention supports up to " + std::to_string(kMaxGroup) + " query heads per KV head");
  const int splits = decode_splits(n, n_kv);
  const dim3 grid(n_kv, splits, n);
  auto k = reinterpret_cast<__nv_bfloat16*>(k_cache);
  auto v = reinterpret_cast<__nv_bfloat16*>(v_cache);
  auto launch = [&](auto kernel) {
    launch_chained(kernel, grid, dim3(kDecodeWarps * 32), 0, q, q_stride, k, v, n_past, n_ctx, n_head, n_kv, scratch,
                   reinterpret_cast<__nv_bfloat16*>(out), rope, tree);
  };
  const bool short_slices = splits > 1;
  if (head_dim == 64)
    short_slices ? launch(decode_kernel<64, 4, kRope, kTree>) : launch(decode_kernel<64, 2, kRope, kTree>);
  else if (head_dim == 128)
    short_slices ? launch(decode_kernel<128, 4, kRope, kTree>) : launch(decode_kernel<128, 2, kRope, kTree>);
  else
    raise("CUDA attention supports head dimensions 64 and 128, not " + std::to_string(head_dim));
  check_launch("attention_decode");
  if (splits > 1) merge_key_slices(scratch, out, n, n_head, head_dim, splits);
}

void attention_decode(const float* q, int q_stride, const bf16* k_cache, const bf16* v_cache, bf16* out, int n,
                      const int32_t* n_past, int n_ctx, int n_head, int n_kv, int head_dim, float* scratch,
                      bool tensor_cores) {
  if (tensor_cores)
    return attention_decode_tc(q, q_stride, k_cache, v_cache, out, n, n_past, n_ctx, n_head, n_kv, head_dim, scratch,
                               decode_splits(n, n_kv));
  // Without RoPE the kernel only reads the caches.
  launch_decode<false>(q, q_stride, const_cast<bf16*>(k_cache), const_cast<bf16*>(v_cache), out, n, n_past, n_ctx,
                       n_head, n_kv, head_dim, scratch, DecodeRope{});
}

void rope_store_attention_decode(float* qkv, int qkv_stride, bf16* k_cache, bf16* v_cache, bf16* out, int n,
                                 const int32_t* n_past, int n_ctx, int n_head, int n_kv, int head_dim, float* scratch,
                                 const float* inv_freq, bool half_layout, bool tensor_cores) {
  if (decode_fusion_off("rope")) {
    rope_and_store_kv(qkv, n, n_head, n_kv, head_dim, n_past, nullptr, n_past, inv_freq, half_layout, k_cache, v_cache,
                      n_ctx);
    return attention_decode(qkv, qkv_stride, k_cache, v_cache, out, n, n_past, n_ctx, n_head, n_kv, head_dim, scratch,
                            tensor_cores);
  }
  if (tensor_cores)
    return rope_store_attention_decode_tc(qkv, qkv_stride, k_cache, v_cache, out, n, n_past, n_ctx, n_head, n_kv,
                                          head_dim, scratch, decode_splits(n, n_kv), inv_freq, half_layout);
  launch_decode<true>(qkv, qkv_stride, k_cache, v_cache, out, n, n_past, n_ctx, n_head, n_kv, head_dim, scratch,
                      DecodeRope{inv_freq, half_layout});
}

int tree_decode_max_rows() {
  static const int rows = std::clamp(env_setting("IK_TREE_DECODE_ROWS", kTreeDecodeRows), 0, kTreeDecodeRows);
  return rows;
}

void rope_store_attention_tree(float* qkv, int qkv_stride, bf16* k_cache, bf16* v_cache, bf16* out, int m,
                               const int32_t* n_past, const int32_t* pos, const uint8_t* mask, int n_head, int n_kv,
                               int head_dim, float* scratch, const float* inv_freq, bool half_layout) {
  if (m < 1 || m > kTreeDecodeRows)
    raise("tree attention in the decode kernel takes 1-" + std::to_string(kTreeDecodeRows) + " rows, not " +
          std::to_string(m));
  launch_decode<true, true>(qkv, qkv_stride, k_cache, v_cache, out, m, n_past, 0, n_head, n_kv, head_dim, scratch,
                            DecodeRope{inv_freq, half_layout}, DecodeTree{pos, mask});
}

}  // namespace ik::backend::cuda
