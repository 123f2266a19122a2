// Prefill attention on tensor cores (flash-attention 2 style): a block owns 64 queries of one
// head, four warps of 16; key/value tiles of 64 rows stream through two shared-memory stages by
// cp.async (the next tile loads while this one is used); S = Q K^T and O += P V are bf16
// mma.sync.m16n8k16 with fp32 accumulation, K's and V's fragments read by ldmatrix; the online
// softmax stays in registers (the S accumulators become P's A fragments without leaving them),
// in log2 units (exp2), and checks visibility per score only on tiles that need it. Same
// contract as the CUDA-core kernel in attention.cu (visibility rule, mask, diag, bf16 or f32 +
// log-sum-exp output), which stays for short passes. A pass of few queries over a long cache (a
// draft tree's verification) would occupy one block per head, so it splits the keys over
// gridDim.z blocks (flash decoding): each writes its slice's max, sum and unnormalised output
// in the decode kernel's layout, and the decode merge combines them. Below it, decode attention
// on tensor cores (decode_tc_kernel: a GQA group's query heads as the rows of an MMA tile), which
// shares the K/V tile pipeline.
#include "backend/cuda/attention_tc.cuh"
#include "backend/cuda/tma.cuh"

#include <algorithm>

namespace ik::backend::cuda {

namespace {

constexpr int kQ = 64;      // queries per block (16 per warp)
constexpr int kKeys = 64;   // keys per tile
constexpr int kWarps = 4;
constexpr float kLn2 = 0.6931471805599453f;

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

// Four 8x8 bf16 matrices from shared memory, transposed: lane l gives the address of row l % 8 of
// matrix l / 8 and receives, from each, the pair (rows 2t, 2t+1; column g) - a B fragment of
// m16n8k16 when the matrix rows are the k dimension.
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(row)));
}

__device__ __forceinline__ void mma_bf16(float* c, const uint32_t* a, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Fragment coordinates (PTX ISA, m16n8k16): lane = 4 g + t. A: rows g, g+8; columns 2t, 2t+1 and
// 2t+8, 2t+9. B: k rows 2t, 2t+1 and 2t+8, 2t+9; column g. C: rows g, g+8; columns 2t, 2t+1.
enum class Output { Bf16, Normalised, Slices };  // out; o_f32 + lse; slices (key splits)

// 16-byte asynchronous copy global -> shared; src_bytes 0 fills the 16 bytes with zeros.
__device__ __forceinline__ void cp_async_16(void* dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(src_bytes)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}
// Four 8x8 bf16 matrices from shared memory, not transposed: lane l gives the address of row
// l % 8 of matrix l / 8 and receives, from each, row g's pair (2t, 2t+1) - K's B fragments of
// S = Q K^T when the matrix rows are keys.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(row)));
}
__device__ __forceinline__ float exp2_approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Shared memory of one block: two stages of (K tile, V tile), rows padded to HD + 8 values
// (conflict-free fragment reads).
__host__ __device__ constexpr int tile_stride(int hd) { return hd + 8; }
constexpr int tc_smem_bytes(int hd) { return 2 * 2 * kKeys * tile_stride(hd) * 2; }

// One stage of the K/V pipeline: kKeys rows x HD bf16 of K and of V, rows k0.. of the caches (row
// r at element base + r * kv_dim), in 16-byte cp.async pieces, one commit group; rows past k_end
// are zero.
template <int HD>
__device__ __forceinline__ void load_kv_tile(__nv_bfloat16* stage, const __nv_bfloat16* k_cache,
                                             const __nv_bfloat16* v_cache, size_t base, int kv_dim, int k0, int k_end) {
  constexpr int S = tile_stride(HD), TILE = kKeys * S;
  for (int e = threadIdx.x; e < kKeys * HD / 8; e += blockDim.x) {
    const int j = e / (HD / 8), d = (e % (HD / 8)) * 8, row = k0 + j;
    const size_t src = row < k_end ? base + size_t(row) * kv_dim + d : 0;
    const int bytes = row < k_end ? 16 : 0;
    cp_async_16(stage + j * S + d, k_cache + src, bytes);
    cp_async_16(stage + TILE + j * S + d, v_cache + src, bytes);
  }
  cp_async_commit();
}
// The tile at k0 (in `stage` of tiles: [2][K, V][kKeys][S]) ready for the whole block; the next
// one, if any, requested into the other stage first, so it streams in while this one is used
// (that stage was released by the __syncthreads that ended the previous tile).
template <int HD>
__device__ __forceinline__ const __nv_bfloat16* next_kv_tile(__nv_bfloat16* tiles, int stage,
                                                             const __nv_bfloat16* k_cache,
                                                             const __nv_bfloat16* v_cache, size_t base, int kv_dim,
                                                             int k0, int k_end) {
  constexpr int TILE = kKeys * tile_stride(HD);
  if (k0 + kKeys < k_end) {
    load_kv_tile<HD>(tiles + (stage ^ 1) * 2 * TILE, k_cache, v_cache, base, kv_dim, k0 + kKeys, k_end);
    cp_async_wait<1>();
  } else {
    cp_async_wait<0>();
  }
  __syncthreads();
  return tiles + stage * 2 * TILE;
}

template <int HD, Output kOut>
__global__ void __launch_bounds__(kWarps * 32)
    prefill_tc_kernel(const float* q, int q_stride, const __nv_bfloat16* k_cache, const __nv_bfloat16* v_cache,
                      __nv_bfloat16* out, int m, int n_past, int n_head, int n_kv, const uint8_t* mask, int diag,
                      float* o_f32, float* lse, const int32_t* n_past_dev) {
  if (n_past_dev) n_past = *n_past_dev;
  constexpr int S = tile_stride(HD), TILE = kKeys * S;
  constexpr int KSTEPS = HD / 16, DBLK = HD / 8, NBLK = kKeys / 8;
  extern __shared__ __align__(16) __nv_bfloat16 tiles[];  // [stage][K, V][kKeys][S]
  const int h = blockIdx.y, kvh = h / (n_head / n_kv), kv_dim = n_kv * HD;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  // Under a causal mask the last queries see the most keys: their blocks go first.
  const int qb = gridDim.x - 1 - blockIdx.x;
  const int q0 = qb * kQ + warp * 16;  // this warp's first query
  const int rows[2] = {q0 + g, q0 + g + 8};
  // Scores in log2 units (the softmax takes exp2): 1/sqrt(HD) * log2(e) folded into Q.
  const float scale = rsqrtf(float(HD)) * 1.4426950408889634f;

  // Q fragments for every k step, scaled and rounded to bf16 once.
  uint32_t qa[KSTEPS][4];
#pragma unroll
  for (int kk = 0; kk < KSTEPS; ++kk)
#pragma unroll
    for (int half = 0; half < 2; ++half) {  // columns 2t (+0) and 2t + 8
      const int d = kk * 16 + 2 * t + 8 * half;
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const bool ok = rows[r] < m;
        const float* src = q + size_t(ok ? rows[r] : 0) * q_stride + h * HD + d;
        qa[kk][2 * half + r] = ok ? pack_bf16(src[0] * scale, src[1] * scale) : 0u;
      }
    }

  float o[DBLK][4];
#pragma unroll
  for (int i = 0; i < DBLK; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
  float run_max[2] = {-INFINITY, -INFINITY}, run_sum[2] = {0.0f, 0.0f};

  // Keys past the block's last query (+ diag) are invisible under a causal mask.
  const int last_q = min(m, (qb + 1) * kQ) - 1;
  const int n_keys = n_past + (mask ? m : max(0, min(m, last_q + 1 + diag)));
  // This block's slice of the key tiles (all of them without a split).
  const int n_tiles = (n_keys + kKeys - 1) / kKeys, per_slice = (n_tiles + gridDim.z - 1) / gridDim.z;
  const int k_begin = blockIdx.z * per_slice * kKeys, k_end = min(n_keys, k_begin + per_slice * kKeys);

  const size_t kv_base = size_t(kvh) * HD;  // element offset of row 0 of this KV head
  if (k_begin < k_end) load_kv_tile<HD>(tiles, k_cache, v_cache, kv_base, kv_dim, k_begin, k_end);
  int stage = 0;
  for (int k0 = k_begin; k0 < k_end; k0 += kKeys, stage ^= 1) {
    const __nv_bfloat16* ks = next_kv_tile<HD>(tiles, stage, k_cache, v_cache, kv_base, kv_dim, k0, k_end);
    const __nv_bfloat16* vs = ks + TILE;
    if (q0 < m) {  // a warp past the last query only helps load
      float s[NBLK][4];
      // K's B fragments for two k steps at once: matrices (keys nb*8..+7) x (d + 0, 8, 16, 24).
      const __nv_bfloat16* k_lane = ks + (lane & 7) * S + (lane >> 3) * 8;
#pragma unroll
      for (int nb = 0; nb < NBLK; ++nb) {
        s[nb][0] = s[nb][1] = s[nb][2] = s[nb][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < KSTEPS; kk += 2) {
          uint32_t kb[4];
          ldmatrix_x4(kb, k_lane + nb * 8 * S + kk * 16);
          mma_bf16(s[nb], qa[kk], kb[0], kb[1]);
          mma_bf16(s[nb], qa[kk + 1], kb[2], kb[3]);
        }
      }
      // Visibility: only tiles that reach past k_end, the causal diagonal, into a masked tree
      // or hold rows past m need it per score; the rest is fully visible.
      const bool whole = k0 + kKeys <= k_end && q0 + 16 <= m &&
                         (k0 + kKeys <= n_past || (!mask && k0 + kKeys - 1 - n_past <= q0 + diag));
      if (!whole) {
#pragma unroll
        for (int nb = 0; nb < NBLK; ++nb)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int qi = rows[e / 2], key = k0 + nb * 8 + 2 * t + (e % 2);
            bool visible = qi < m && key < k_end;
            if (visible && key >= n_past) {
              const int jn = key - n_past;
              visible = mask ? mask[size_t(qi) * m + jn] != 0 : jn <= qi + diag;
            }
            s[nb][e] = visible ? s[nb][e] : -INFINITY;
          }
      }
      // The online softmax per row (rows g and g+8; a quad shares a row).
      float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int nb = 0; nb < NBLK; ++nb)
        tile_max[0] = fmaxf(tile_max[0], fmaxf(s[nb][0], s[nb][1])),
        tile_max[1] = fmaxf(tile_max[1], fmaxf(s[nb][2], s[nb][3]));
      float corr[2], base[2];
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 1));
        tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 2));
        const float new_max = fmaxf(run_max[r], tile_max[r]);
        corr[r] = new_max == -INFINITY ? 1.0f : exp2_approx(run_max[r] - new_max);
        base[r] = new_max == -INFINITY ? 0.0f : new_max;  // a row with nothing visible yet: p = exp2(-inf) = 0
        run_max[r] = new_max;
        run_sum[r] *= corr[r];
      }
#pragma unroll
      for (int i = 0; i < DBLK; ++i) o[i][0] *= corr[0], o[i][1] *= corr[0], o[i][2] *= corr[1], o[i][3] *= corr[1];
#pragma unroll
      for (int nb = 0; nb < NBLK; ++nb)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float p = exp2_approx(s[nb][e] - base[e / 2]);
          s[nb][e] = p;
          run_sum[e / 2] += p;  // this thread's share; the quad is summed at the end
        }
      // O += P V: P's A fragment for keys [16 kk, 16 kk + 16) is S's C fragments of blocks 2kk, 2kk+1.
#pragma unroll
      for (int kk = 0; kk < kKeys / 16; ++kk) {
        const uint32_t pa[4] = {pack_bf16(s[2 * kk][0], s[2 * kk][1]), pack_bf16(s[2 * kk][2], s[2 * kk][3]),
                                pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                                pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3])};
        // V's B fragments for two 8-column blocks at once: matrices (keys +0..7 | +8..15) x (d | d + 8).
        const __nv_bfloat16* v0 = vs + (kk * 16 + (lane & 7) + (lane & 8)) * S + (lane >> 4) * 8;
#pragma unroll
        for (int nd = 0; nd < DBLK; nd += 2) {
          uint32_t vb[4];
          ldmatrix_x4_trans(vb, v0 + nd * 8);
          mma_bf16(o[nd], pa, vb[0], vb[1]);
          mma_bf16(o[nd + 1], pa, vb[2], vb[3]);
        }
      }
    }
    __syncthreads();  // this stage is free for the tile after next
  }
  if (q0 >= m) return;
  float total[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    total[r] = run_sum[r] + __shfl_xor_sync(0xffffffffu, run_sum[r], 1);
    total[r] += __shfl_xor_sync(0xffffffffu, total[r], 2);
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int qi = rows[r];
    if (qi >= m) continue;
    if constexpr (kOut == Output::Slices) {  // [row][head][slice]: max, sum, unnormalised output
      float* p = o_f32 + ((size_t(qi) * n_head + h) * gridDim.z + blockIdx.z) * (HD + 2);
      if (t == 0) p[0] = total[r] > 0 ? run_max[r] * kLn2 : -INFINITY, p[1] = total[r];  // natural log units
#pragma unroll
      for (int nd = 0; nd < DBLK; ++nd)
        *reinterpret_cast<float2*>(p + 2 + nd * 8 + 2 * t) = make_float2(o[nd][2 * r], o[nd][2 * r + 1]);
      continue;
    }
    const float inv = total[r] > 0 ? 1.0f / total[r] : 0.0f;
    const size_t base = size_t(qi) * n_head * HD + h * HD + 2 * t;
#pragma unroll
    for (int nd = 0; nd < DBLK; ++nd) {
      const float a = o[nd][2 * r] * inv, b = o[nd][2 * r + 1] * inv;
      if constexpr (kOut == Output::Normalised) {
        o_f32[base + nd * 8] = a;
        o_f32[base + nd * 8 + 1] = b;
      } else {
        *reinterpret_cast<__nv_bfloat162*>(out + base + nd * 8) = __floats2bfloat162_rn(a, b);
      }
    }
    if constexpr (kOut == Output::Normalised)
      if (t == 0) lse[size_t(qi) * n_head + h] = total[r] > 0 ? run_max[r] * kLn2 + __logf(total[r]) : -INFINITY;
  }
}

// Decode attention on tensor cores: block (kv head, split, sequence), four warps. The group's
// query heads are the rows of one 16-row MMA tile (rows g < group; rows g + 8 stay empty), so
// every K and V element read serves all of them through the tensor cores instead of a warp's
// dot product and shuffle sum per key and head. 64-key tiles of the split stream through two
// stages (cp.async); warp w takes keys 16 w .. 16 w + 15 of each tile with its own online
// softmax, and the warps merge through shared memory at the end. Output as decode_kernel's:
// with one split the normalised row, else the split's max (natural log units), sum and
// unnormalised output for the decode merge. With inv_freq (rope_store_attention_decode), the
// new row's RoPE and cache store happen here as in decode_kernel; without, q is rotated and the
// caches are only read. kStages 1: one tile stage and four blocks per SM (launch_decode_tc).
template <int HD, int kStages>
__global__ void __launch_bounds__(kWarps * 32, kStages == 1 ? 4 : 1)
    decode_tc_kernel(const float* q, int q_stride, __nv_bfloat16* k_cache, __nv_bfloat16* v_cache,
                     const int32_t* n_past, int n_ctx, int n_head, int n_kv, float* partial, __nv_bfloat16* out,
                     const float* inv_freq, bool half_layout) {
  constexpr int S = tile_stride(HD), TILE = kKeys * S;
  constexpr int KSTEPS = HD / 16, DBLK = HD / 8;
  extern __shared__ __align__(16) __nv_bfloat16 tiles[];  // [stage][K, V][kKeys][S]; then the merge
  let_next_kernel_start();
  wait_for_previous_kernel();
  const int kvh = blockIdx.x, split = blockIdx.y, b = blockIdx.z, splits = gridDim.y;
  const int group = n_head / n_kv, kv_dim = n_kv * HD;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const float scale = rsqrtf(float(HD)) * 1.4426950408889634f;  // scores in log2 units
  const int n_keys = n_past[b] + 1;
  const int chunk = (n_keys + splits - 1) / splits;
  const int k_begin = split * chunk, k_end = min(n_keys, k_begin + chunk);
  const size_t seq = size_t(b) * n_ctx * kv_dim + size_t(kvh) * HD;  // row 0 of this sequence and KV head
  const int new_row = n_keys - 1;  // the step's row: its position, and where its key and value go

  // Fused RoPE (inv_freq not null): the angles at the new row's position, once per block; a
  // row's dim d as the rotation leaves it.
  const bool rope = inv_freq != nullptr;
  __shared__ float s_cos[HD / 2], s_sin[HD / 2];
  if (rope) {
    if (threadIdx.x < HD / 2) rope_sincos(new_row, inv_freq[threadIdx.x], &s_sin[threadIdx.x], &s_cos[threadIdx.x]);
    __syncthreads();
  }
  auto value = [&](const float* row, int d) { return rope ? rotated_dim<HD>(row, d, s_cos, s_sin, half_layout) : row[d]; };
  // The block whose slice holds the new row rotates its key and writes it and its value into the
  // cache before the first tile reads it (no other block reads that row).
  if (rope && k_begin <= new_row && new_row < k_end) {  // block-uniform
    const float* k_new = q + size_t(b) * q_stride + (size_t(n_head) + kvh) * HD;
    const size_t dst = seq + size_t(new_row) * kv_dim;
    for (int d = threadIdx.x; d < HD; d += blockDim.x) {
      k_cache[dst + d] = to_bf16(value(k_new, d));
      v_cache[dst + d] = to_bf16(k_new[kv_dim + d]);
    }
    __syncthreads();
  }

  // Row g of the A fragments: query head kvh * group + g, scaled and rounded to bf16 once.
  const float* qrow = q + size_t(b) * q_stride + (size_t(kvh) * group + g) * HD;
  uint32_t qa[KSTEPS][4];
#pragma unroll
  for (int kk = 0; kk < KSTEPS; ++kk)
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int d = kk * 16 + 2 * t + 8 * half;
      qa[kk][2 * half] = g < group ? pack_bf16(value(qrow, d) * scale, value(qrow, d + 1) * scale) : 0u;
      qa[kk][2 * half + 1] = 0u;  // row g + 8
    }
  float o[DBLK][4];
#pragma unroll
  for (int i = 0; i < DBLK; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
  float run_max = -INFINITY, run_sum = 0.0f;  // row g
  // This warp's 16 keys of a tile: K's B fragments (keys +0..7 | +8..15 x d +0 | +8), V's
  // (transposed: keys +0..7 | +8..15 x d | d + 8).
  const int k_lane = (warp * 16 + (lane & 7) + ((lane >> 4) << 3)) * S + (lane & 8);
  const int v_lane = (warp * 16 + (lane & 7) + (lane & 8)) * S + (lane >> 4) * 8;

  if (k_begin < k_end) load_kv_tile<HD>(tiles, k_cache, v_cache, seq, kv_dim, k_begin, k_end);
  int stage = 0;
  for (int k0 = k_begin; k0 < k_end; k0 += kKeys, stage ^= 1) {
    const __nv_bfloat16* ks = tiles;
    if constexpr (kStages == 2) {
      ks = next_kv_tile<HD>(tiles, stage, k_cache, v_cache, seq, kv_dim, k0, k_end);
    } else {  // one stage: the block waits for each tile; other resident blocks cover the wait
      if (k0 != k_begin) load_kv_tile<HD>(tiles, k_cache, v_cache, seq, kv_dim, k0, k_end);
      cp_async_wait<0>();
      __syncthreads();
    }
    if (k0 + warp * 16 < k_end) {  // warp-uniform: a warp past the slice's last key waits
      float s[2][4] = {};
#pragma unroll
      for (int kk = 0; kk < KSTEPS; ++kk) {
        uint32_t kb[4];
        ldmatrix_x4(kb, ks + k_lane + kk * 16);
        mma_bf16(s[0], qa[kk], kb[0], kb[1]);
        mma_bf16(s[1], qa[kk], kb[2], kb[3]);
      }
      float tile_max = -INFINITY;
#pragma unroll
      for (int nb = 0; nb < 2; ++nb)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int key = k0 + warp * 16 + nb * 8 + 2 * t + (e & 1);
          s[nb][e] = e < 2 && key < k_end ? s[nb][e] : -INFINITY;  // e >= 2: row g + 8
          tile_max = fmaxf(tile_max, s[nb][e]);
        }
      tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
      tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
      const float new_max = fmaxf(run_max, tile_max);
      const float corr = new_max == -INFINITY ? 1.0f : exp2_approx(run_max - new_max);
      const float base = new_max == -INFINITY ? 0.0f : new_max;
      run_max = new_max;
      run_sum *= corr;
#pragma unroll
      for (int i = 0; i < DBLK; ++i) o[i][0] *= corr, o[i][1] *= corr;
#pragma unroll
      for (int nb = 0; nb < 2; ++nb)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          s[nb][e] = exp2_approx(s[nb][e] - base);
          run_sum += s[nb][e];  // 0 for e >= 2
        }
      const uint32_t pa[4] = {pack_bf16(s[0][0], s[0][1]), pack_bf16(s[0][2], s[0][3]), pack_bf16(s[1][0], s[1][1]),
                              pack_bf16(s[1][2], s[1][3])};
      const __nv_bfloat16* vs = ks + TILE;
#pragma unroll
      for (int nd = 0; nd < DBLK; nd += 2) {
        uint32_t vb[4];
        ldmatrix_x4_trans(vb, vs + v_lane + nd * 8);
        mma_bf16(o[nd], pa, vb[0], vb[1]);
        mma_bf16(o[nd + 1], pa, vb[2], vb[3]);
      }
    }
    __syncthreads();  // this stage is free for the tile after next
  }
  cp_async_wait<0>();
  __syncthreads();  // the tiles' shared memory now holds the warps' results

  // Merge the warps: row g of each, then every (head, dim) of the group by one thread.
  float* s_max = reinterpret_cast<float*>(tiles);  // [kWarps][8]
  float* s_sum = s_max + kWarps * 8;               // [kWarps][8]
  float* s_out = s_sum + kWarps * 8;               // [kWarps][8][HD]
  const float total = run_sum + __shfl_xor_sync(0xffffffffu, run_sum, 1);
  const float total4 = total + __shfl_xor_sync(0xffffffffu, total, 2);
  if (g < group) {
    if (t == 0) s_max[warp * 8 + g] = run_max, s_sum[warp * 8 + g] = total4;
#pragma unroll
    for (int nd = 0; nd < DBLK; ++nd)
      s_out[(warp * 8 + g) * HD + nd * 8 + 2 * t] = o[nd][0], s_out[(warp * 8 + g) * HD + nd * 8 + 2 * t + 1] = o[nd][1];
  }
  __syncthreads();
  for (int e = threadIdx.x; e < group * HD; e += blockDim.x) {
    const int gg = e / HD, d = e % HD;
    float m_all = -INFINITY;
    for (int w = 0; w < kWarps; ++w) m_all = fmaxf(m_all, s_max[w * 8 + gg]);
    float l = 0.0f, acc = 0.0f;
    if (m_all != -INFINITY)
      for (int w = 0; w < kWarps; ++w) {
        const float c = exp2_approx(s_max[w * 8 + gg] - m_all);
        l += s_sum[w * 8 + gg] * c;
        acc += s_out[(w * 8 + gg) * HD + d] * c;
      }
    const int head = kvh * group + gg;
    if (splits == 1) {
      out[(size_t(b) * n_head + head) * HD + d] = to_bf16(l > 0 ? acc / l : 0.0f);
      continue;
    }
    float* p = partial + ((size_t(b) * n_head + head) * splits + split) * (HD + 2);
    p[2 + d] = acc;
    if (d == 0) p[0] = m_all == -INFINITY ? -INFINITY : m_all * kLn2, p[1] = l;
  }
}

// Both kernels take tc_smem_bytes(HD) of dynamic shared memory (the decode kernel's one-stage
// form half): past 48 KB a kernel must be allowed it, once.
template <auto kKernel, int HD>
void allow_tc_smem() {
  constexpr int smem = tc_smem_bytes(HD);
  static const bool allowed =
      smem <= 48 * 1024 ||
      (check(cudaFuncSetAttribute(kKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem), "cudaFuncSetAttribute"),
       true);
  (void)allowed;
}

template <int HD, Output kOut, typename... Args>
void launch_hd(dim3 grid, Args... args) {
  allow_tc_smem<prefill_tc_kernel<HD, kOut>, HD>();
  prefill_tc_kernel<HD, kOut><<<grid, kWarps * 32, tc_smem_bytes(HD), ctx().stream>>>(args...);
}

// Blocks of the two-stage decode kernel resident on the GPU at once (asked once, after letting
// the kernel have its shared memory).
template <int HD>
long long decode_tc_resident() {
  static const long long resident = [] {
    allow_tc_smem<decode_tc_kernel<HD, 2>, HD>();
    int per_sm = 0;
    check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, decode_tc_kernel<HD, 2>, kWarps * 32,
                                                        tc_smem_bytes(HD)),
          "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
    return (long long)std::max(per_sm, 1) * ctx().device.sm_count;
  }();
  return resident;
}

// More blocks than the two-stage kernel keeps resident (three per SM at head_dim 128): the
// one-stage form, half the shared memory and at most 128 registers, fits four per SM, so the
// blocks run in one wave instead of leaving a second one part full (Llama-3-8B batch 64: 512
// blocks). launch(kernel, shared memory bytes).
template <int HD, typename Launch>
void launch_decode_hd(long long blocks, Launch launch) {
  if (blocks > decode_tc_resident<HD>()) launch(decode_tc_kernel<HD, 1>, tc_smem_bytes(HD) / 2);
  else launch(decode_tc_kernel<HD, 2>, tc_smem_bytes(HD));
}

// inv_freq null: no RoPE (the caches are only read).
void launch_decode_tc(const float* q, int q_stride, bf16* k_cache, bf16* v_cache, bf16* out, int n,
                      const int32_t* n_past, int n_ctx, int n_head, int n_kv, int head_dim, float* scratch, int splits,
                      const float* inv_freq, bool half_layout) {
  IK_CUDA_REQUIRE((head_dim == 64 || head_dim == 128) && n_head % n_kv == 0 && n_head / n_kv <= 8 && splits >= 1 &&
                      splits <= kMaxKeySlices,
                  "tensor-core decode attention: head_dim 64 or 128, at most 8 query heads per KV head, 1-32 splits");
  auto kb = reinterpret_cast<__nv_bfloat16*>(k_cache);
  auto vb = reinterpret_cast<__nv_bfloat16*>(v_cache);
  auto ob = reinterpret_cast<__nv_bfloat16*>(out);
  const dim3 grid(n_kv, splits, n);
  auto launch = [&](auto kernel, int smem) {
    launch_chained(kernel, grid, dim3(kWarps * 32), smem, q, q_stride, kb, vb, n_past, n_ctx, n_head, n_kv, scratch, ob,
                   inv_freq, half_layout);
  };
  const long long blocks = (long long)n * n_kv * splits;
  head_dim == 64 ? launch_decode_hd<64>(blocks, launch) : launch_decode_hd<128>(blocks, launch);
  check_launch("attention_decode (tensor cores)");
  if (splits > 1) merge_key_slices(scratch, out, n, n_head, head_dim, splits);
}

template <Output kOut>
void launch_tc(const float* q, int q_stride, const bf16* k, const bf16* v, bf16* out, int m, int n_past, int n_head,
               int n_kv, int head_dim, const uint8_t* mask, int diag, float* o, float* lse,
               const int32_t* n_past_dev = nullptr, int slices = 1) {
  const dim3 grid((m + kQ - 1) / kQ, n_head, slices);
  auto kb = reinterpret_cast<const __nv_bfloat16*>(k);
  auto vb = reinterpret_cast<const __nv_bfloat16*>(v);
  auto ob = reinterpret_cast<__nv_bfloat16*>(out);
  if (head_dim == 64)
    launch_hd<64, kOut>(grid, q, q_stride, kb, vb, ob, m, n_past, n_head, n_kv, mask, diag, o, lse, n_past_dev);
  else
    launch_hd<128, kOut>(grid, q, q_stride, kb, vb, ob, m, n_past, n_head, n_kv, mask, diag, o, lse, n_past_dev);
  check_launch("attention (tensor cores)");
}

}  // namespace

bool decode_tensor_cores(int n, int64_t keys) {
  static const int setting = env_setting("IK_DECODE_TC", -1);  // 1: always, 0: never, unset: the rule
  return setting < 0 ? n >= 2 || keys >= kDecodeTensorCoreKeys : setting != 0;
}

void attention_decode_tc(const float* q, int q_stride, const bf16* k_cache, const bf16* v_cache, bf16* out, int n,
                         const int32_t* n_past, int n_ctx, int n_head, int n_kv, int head_dim, float* scratch,
                         int splits) {
  launch_decode_tc(q, q_stride, const_cast<bf16*>(k_cache), const_cast<bf16*>(v_cache), out, n, n_past, n_ctx, n_head,
                   n_kv, head_dim, scratch, splits, nullptr, false);
}

void rope_store_attention_decode_tc(const float* qkv, int qkv_stride, bf16* k_cache, bf16* v_cache, bf16* out, int n,
                                    const int32_t* n_past, int n_ctx, int n_head, int n_kv, int head_dim,
                                    float* scratch, int splits, const float* inv_freq, bool half_layout) {
  launch_decode_tc(qkv, qkv_stride, k_cache, v_cache, out, n, n_past, n_ctx, n_head, n_kv, head_dim, scratch, splits,
                   inv_freq, half_layout);
}

bool tensor_core_attention(int m, int head_dim) {
  static const bool off = std::getenv("IK_ATTN_CUDA_CORES") != nullptr;  // for comparisons
  return !off && m >= kTensorCoreMinRows && (head_dim == 64 || head_dim == 128);
}

int attention_key_slices(int m, int n_head) {
  static const bool off = std::getenv("IK_NO_KEY_SPLIT") != nullptr;  // for comparisons
  if (off) return 1;
  const int blocks = (m + kQ - 1) / kQ * n_head, sms = ctx().device.sm_count;
  return blocks >= sms ? 1 : std::min((sms + blocks - 1) / blocks, kMaxKeySlices);
}

void attention_prefill_tc(const float* q, int q_stride, const bf16* k, const bf16* v, bf16* out, int m, int n_past,
                          int n_head, int n_kv, int head_dim, const uint8_t* mask, int diag, const int32_t* n_past_dev,
                          float* scratch, int slices) {
  if (slices <= 1)
    return launch_tc<Output::Bf16>(q, q_stride, k, v, out, m, n_past, n_head, n_kv, head_dim, mask, diag, nullptr,
                                   nullptr, n_past_dev);
  launch_tc<Output::Slices>(q, q_stride, k, v, nullptr, m, n_past, n_head, n_kv, head_dim, mask, diag, scratch, nullptr,
                            n_past_dev, slices);
}

void attention_block_tc(const float* q, int q_stride, const bf16* k, const bf16* v, int m, int n_past, int n_head,
                        int n_kv, int head_dim, int diag, float* o, float* lse) {
  launch_tc<Output::Normalised>(q, q_stride, k, v, nullptr, m, n_past, n_head, n_kv, head_dim, nullptr, diag, o, lse);
}

}  // namespace ik::backend::cuda
