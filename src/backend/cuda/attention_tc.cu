// Prefill attention on tensor cores (flash-attention 2 style): a block owns 64 queries of one
// head, four warps of 16; key/value tiles of 64 rows go to shared memory; S = Q K^T and O += P V
// are bf16 mma.sync.m16n8k16 with fp32 accumulation; the online softmax stays in registers (the
// S accumulators become P's A fragments without leaving them). Same contract as the CUDA-core
// kernel in attention.cu (visibility rule, mask, diag, bf16 or f32 + log-sum-exp output), which
// stays for short passes. A pass of few queries over a long cache (a draft tree's verification)
// would occupy one block per head, so it splits the keys over gridDim.z blocks (flash decoding):
// each writes its slice's max, sum and unnormalised output in the decode kernel's layout, and
// the decode merge combines them.
#include "backend/cuda/attention_tc.cuh"
#include "backend/cuda/tma.cuh"

#include <algorithm>

namespace ik::backend::cuda {

namespace {

constexpr int kQ = 64;      // queries per block (16 per warp)
constexpr int kKeys = 64;   // keys per tile
constexpr int kWarps = 4;

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

template <int HD, Output kOut>
__global__ void __launch_bounds__(kWarps * 32)
    prefill_tc_kernel(const float* q, int q_stride, const __nv_bfloat16* k_cache, const __nv_bfloat16* v_cache,
                      __nv_bfloat16* out, int m, int n_past, int n_head, int n_kv, const uint8_t* mask, int diag,
                      float* o_f32, float* lse, const int32_t* n_past_dev) {
  if (n_past_dev) n_past = *n_past_dev;
  constexpr int S = HD + 8;  // shared row stride in bf16: conflict-free fragment reads
  constexpr int KSTEPS = HD / 16, DBLK = HD / 8, NBLK = kKeys / 8;
  __shared__ __align__(16) __nv_bfloat16 ks[kKeys * S];
  __shared__ __align__(16) __nv_bfloat16 vs[kKeys * S];
  const int h = blockIdx.y, kvh = h / (n_head / n_kv), kv_dim = n_kv * HD;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int q0 = blockIdx.x * kQ + warp * 16;  // this warp's first query
  const int rows[2] = {q0 + g, q0 + g + 8};
  const float scale = rsqrtf(float(HD));

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
  const int last_q = min(m, int(blockIdx.x + 1) * kQ) - 1;
  const int n_keys = n_past + (mask ? m : max(0, min(m, last_q + 1 + diag)));
  // This block's slice of the key tiles (all of them without a split).
  const int tiles = (n_keys + kKeys - 1) / kKeys, per_slice = (tiles + gridDim.z - 1) / gridDim.z;
  const int k_begin = blockIdx.z * per_slice * kKeys, k_end = min(n_keys, k_begin + per_slice * kKeys);

  for (int k0 = k_begin; k0 < k_end; k0 += kKeys) {
    __syncthreads();
    // 64 rows x HD bf16 of K and of V, 16-byte pieces; rows past n_keys are zero.
    constexpr int PIECES = kKeys * HD / 8;
    for (int e = threadIdx.x; e < PIECES; e += blockDim.x) {
      const int j = e / (HD / 8), d = (e % (HD / 8)) * 8, row = k0 + j;
      uint4 kv4 = make_uint4(0, 0, 0, 0), vv4 = make_uint4(0, 0, 0, 0);
      if (row < k_end) {
        const size_t src = size_t(row) * kv_dim + size_t(kvh) * HD + d;
        kv4 = *reinterpret_cast<const uint4*>(k_cache + src);
        vv4 = *reinterpret_cast<const uint4*>(v_cache + src);
      }
      *reinterpret_cast<uint4*>(ks + j * S + d) = kv4;
      *reinterpret_cast<uint4*>(vs + j * S + d) = vv4;
    }
    __syncthreads();
    if (q0 >= m) continue;  // a warp past the last query only helps load

    float s[NBLK][4];
#pragma unroll
    for (int nb = 0; nb < NBLK; ++nb) {
      s[nb][0] = s[nb][1] = s[nb][2] = s[nb][3] = 0.0f;
      const __nv_bfloat16* krow = ks + (nb * 8 + g) * S + 2 * t;
#pragma unroll
      for (int kk = 0; kk < KSTEPS; ++kk) {
        const uint32_t b0 = *reinterpret_cast<const uint32_t*>(krow + kk * 16);
        const uint32_t b1 = *reinterpret_cast<const uint32_t*>(krow + kk * 16 + 8);
        mma_bf16(s[nb], qa[kk], b0, b1);
      }
    }
    // Visibility, then the online softmax per row (rows g and g+8; a quad shares a row).
    float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int nb = 0; nb < NBLK; ++nb)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = e / 2, qi = rows[r], key = k0 + nb * 8 + 2 * t + (e % 2);
        bool visible = qi < m && key < k_end;
        if (visible && key >= n_past) {
          const int jn = key - n_past;
          visible = mask ? mask[size_t(qi) * m + jn] != 0 : jn <= qi + diag;
        }
        s[nb][e] = visible ? s[nb][e] : -INFINITY;
        tile_max[r] = fmaxf(tile_max[r], s[nb][e]);
      }
    float corr[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 1));
      tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 2));
      const float new_max = fmaxf(run_max[r], tile_max[r]);
      corr[r] = new_max == -INFINITY ? 1.0f : __expf(run_max[r] - new_max);
      run_max[r] = new_max;
      run_sum[r] *= corr[r];
    }
#pragma unroll
    for (int i = 0; i < DBLK; ++i) o[i][0] *= corr[0], o[i][1] *= corr[0], o[i][2] *= corr[1], o[i][3] *= corr[1];
#pragma unroll
    for (int nb = 0; nb < NBLK; ++nb)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = e / 2;
        const float p = s[nb][e] == -INFINITY ? 0.0f : __expf(s[nb][e] - run_max[r]);
        s[nb][e] = p;
        run_sum[r] += p;  // this thread's share; the quad is summed at the end
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
      if (t == 0) p[0] = total[r] > 0 ? run_max[r] : -INFINITY, p[1] = total[r];
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
      if (t == 0) lse[size_t(qi) * n_head + h] = total[r] > 0 ? run_max[r] + __logf(total[r]) : -INFINITY;
  }
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
    prefill_tc_kernel<64, kOut><<<grid, kWarps * 32, 0, ctx().stream>>>(q, q_stride, kb, vb, ob, m, n_past, n_head,
                                                                        n_kv, mask, diag, o, lse, n_past_dev);
  else
    prefill_tc_kernel<128, kOut><<<grid, kWarps * 32, 0, ctx().stream>>>(q, q_stride, kb, vb, ob, m, n_past, n_head,
                                                                         n_kv, mask, diag, o, lse, n_past_dev);
  check_launch("attention (tensor cores)");
}

}  // namespace

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
