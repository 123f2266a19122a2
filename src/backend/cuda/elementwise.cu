// Element-wise and row-wise operations: embedding gather, RMSNorm, RoPE with the KV-cache
// store, SwiGLU, fills and conversions.
#include <algorithm>

#include "backend/cuda/common.cuh"

namespace ik::backend::cuda {

// ---- fills and conversions ------------------------------------------------------------------

// Element i of the seeded uniform(-scale, scale) stream.
__device__ __forceinline__ __nv_bfloat16 uniform_at(uint64_t seed, size_t i, float scale) {
  const uint64_t h = mix64(seed * 0x9e3779b97f4a7c15ull + i);
  const float u = float(h >> 40) * (1.0f / 16777216.0f);  // [0, 1)
  return to_bf16((2.0f * u - 1.0f) * scale);
}

__global__ void fill_uniform_bf16_kernel(__nv_bfloat16* dst, size_t n, uint64_t seed, float scale) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    dst[i] = uniform_at(seed, i, scale);
}

void fill_uniform_bf16(bf16* dst, size_t n, uint64_t seed, float scale) {
  fill_uniform_bf16_kernel<<<1024, 256, 0, ctx().stream>>>(reinterpret_cast<__nv_bfloat16*>(dst), n, seed, scale);
  check_launch("fill_uniform_bf16");
}

// Block [row0, row0+rows) x [col0, col0+cols) of the virtual matrix that fill_uniform_bf16 would
// write with row stride ld: a tensor-parallel shard holds exactly the values of its slice.
__global__ void fill_uniform_block_kernel(__nv_bfloat16* dst, int rows, int cols, uint64_t seed, float scale,
                                          size_t row0, size_t col0, size_t ld) {
  const size_t n = size_t(rows) * cols;
  for (size_t e = blockIdx.x * size_t(blockDim.x) + threadIdx.x; e < n; e += size_t(gridDim.x) * blockDim.x) {
    dst[e] = uniform_at(seed, (row0 + e / cols) * ld + col0 + e % cols, scale);
  }
}

void fill_uniform_bf16_block(bf16* dst, int rows, int cols, uint64_t seed, float scale, int64_t row0, int64_t col0,
                             int64_t ld) {
  fill_uniform_block_kernel<<<1024, 256, 0, ctx().stream>>>(reinterpret_cast<__nv_bfloat16*>(dst), rows, cols, seed,
                                                            scale, size_t(row0), size_t(col0), size_t(ld));
  check_launch("fill_uniform_bf16_block");
}

__global__ void add_kernel(float* x, const float* y, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) x[i] += y[i];
}

void add_inplace(float* x, const float* y, size_t n) {
  add_kernel<<<capped_blocks(n, 256), 256, 0, ctx().stream>>>(x, y, n);
  check_launch("add_inplace");
}

__global__ void convert_bf16_kernel(const float* x, __nv_bfloat16* y, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    y[i] = to_bf16(x[i]);
}

void convert_to_bf16(const float* x, bf16* y, size_t n) {
  convert_bf16_kernel<<<capped_blocks(n, 256), 256, 0, ctx().stream>>>(x, reinterpret_cast<__nv_bfloat16*>(y), n);
  check_launch("convert_to_bf16");
}

__global__ void bf16_to_f32_kernel(const __nv_bfloat16* x, float* y, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    y[i] = to_f32(x[i]);
}

void convert_to_f32(const bf16* x, float* y, size_t n) {
  bf16_to_f32_kernel<<<capped_blocks(n, 256), 256, 0, ctx().stream>>>(reinterpret_cast<const __nv_bfloat16*>(x), y, n);
  check_launch("convert_to_f32");
}

__global__ void fill_f32_kernel(float* dst, size_t n, float v) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) dst[i] = v;
}

void fill_f32(float* dst, size_t n, float value) {
  fill_f32_kernel<<<256, 256, 0, ctx().stream>>>(dst, n, value);
  check_launch("fill_f32");
}

__global__ void increment_kernel(int32_t* n, int count, int by) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < count) n[i] += by;
}

void increment(int32_t* n, int count, int by) {
  increment_kernel<<<blocks_for(count, 128), 128, 0, ctx().stream>>>(n, count, by);
  check_launch("increment");
}

// ---- embedding and norms --------------------------------------------------------------------

__global__ void embed_kernel(const __nv_bfloat16* table, const int32_t* tokens, int n_embd, float* out) {
  const int row = blockIdx.x;
  const __nv_bfloat16* src = table + size_t(tokens[row]) * n_embd;
  for (int i = threadIdx.x; i < n_embd; i += blockDim.x) out[size_t(row) * n_embd + i] = to_f32(src[i]);
}

void embed(const bf16* table, const int32_t* tokens, int m, int n_embd, float* out) {
  embed_kernel<<<m, 256, 0, ctx().stream>>>(reinterpret_cast<const __nv_bfloat16*>(table), tokens, n_embd, out);
  check_launch("embed");
}

// One block per row. With `vec` (rows a multiple of 4 long, operands aligned) rows are read as
// float4 by up to 1024 threads, so a 4096-wide row is one load per thread: the kernel costs
// about one memory round trip (it sits between two matrix products on the decode path).
// clear: also zero the block's row of it (clear_n floats of a row of ld_clear), for a product
// that adds into its output next.
__global__ void rms_norm_kernel(const float* x, const float* w, __nv_bfloat16* out, int n, float eps, bool vec,
                                float* clear, int clear_n, int ld_clear) {
  __shared__ float scratch[32];
  let_next_kernel_start();  // chained: see common.cuh
  wait_for_previous_kernel();
  const float* row = x + size_t(blockIdx.x) * n;
  __nv_bfloat16* dst = out + size_t(blockIdx.x) * n;
  if (clear)
    for (int i = threadIdx.x; i < clear_n; i += blockDim.x) clear[size_t(blockIdx.x) * ld_clear + i] = 0.0f;
  if (vec) return rms_norm_row(row, w, dst, n, eps, scratch);
  float ss = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) ss += row[i] * row[i];
  const float scale = rsqrtf(block_sum(ss, scratch) / n + eps);
  for (int i = threadIdx.x; i < n; i += blockDim.x) dst[i] = to_bf16(row[i] * scale * w[i]);
}

void rms_norm(const float* x, const float* w, bf16* out, int rows, int n, float eps, float* clear, int clear_n,
              int ld_clear) {
  const bool vec = n % 4 == 0 && aligned_to(x, 16) && aligned_to(w, 16) && aligned_to(out, 8);
  const unsigned threads = std::clamp(unsigned(blocks_for(n, vec ? 128 : 32)) * 32, 32u, 1024u);
  launch_chained(rms_norm_kernel, dim3(rows), dim3(threads), 0, x, w, reinterpret_cast<__nv_bfloat16*>(out), n, eps,
                 vec, clear, clear_n, ld_clear);
  check_launch("rms_norm");
}

// ---- RoPE + KV store ------------------------------------------------------------------------

constexpr int kMaxHalfDim = 128;  // head_dim <= 256

// One block per row. Threads walk the rotation pairs of all q and k heads, then copy v.
__global__ void rope_store_kernel(float* qkv, int n_head, int n_kv, int head_dim, const int32_t* pos,
                                  const int32_t* seq, const int32_t* cache_row, const float* inv_freq,
                                  bool half_layout, __nv_bfloat16* k_cache, __nv_bfloat16* v_cache, int n_ctx) {
  let_next_kernel_start();  // chained: see common.cuh
  wait_for_previous_kernel();
  const int r = blockIdx.x;
  const int half = head_dim / 2, q_dim = n_head * head_dim, kv_dim = n_kv * head_dim;
  float* row = qkv + size_t(r) * (q_dim + 2 * kv_dim);
  const size_t dst = (size_t(seq ? seq[r] : r) * n_ctx + cache_row[r]) * kv_dim;
  // The angles in double (as the CPU backend), once per frequency rather than once per head.
  __shared__ float s_sin[kMaxHalfDim], s_cos[kMaxHalfDim];
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    double sn, cs;
    sincos(double(pos[r]) * double(inv_freq[i]), &sn, &cs);
    s_sin[i] = float(sn);
    s_cos[i] = float(cs);
  }
  __syncthreads();
  for (int t = threadIdx.x; t < (n_head + n_kv) * half; t += blockDim.x) {
    const int h = t / half, i = t % half;
    const bool is_k = h >= n_head;
    float* v = row + size_t(h) * head_dim;  // k heads follow the q heads in the row
    const float s = s_sin[i], c = s_cos[i];
    const int a = half_layout ? i : 2 * i, b = half_layout ? i + half : 2 * i + 1;
    const float x0 = v[a], x1 = v[b];
    const float y0 = x0 * c - x1 * s, y1 = x0 * s + x1 * c;
    if (is_k) {
      const size_t o = dst + size_t(h - n_head) * head_dim;
      k_cache[o + a] = to_bf16(y0);
      k_cache[o + b] = to_bf16(y1);
    } else {
      v[a] = y0;
      v[b] = y1;
    }
  }
  const float* vsrc = row + q_dim + kv_dim;
  for (int i = threadIdx.x; i < kv_dim; i += blockDim.x) v_cache[dst + i] = to_bf16(vsrc[i]);
}

void rope_and_store_kv(float* qkv, int m, int n_head, int n_kv, int head_dim, const int32_t* pos, const int32_t* seq,
                       const int32_t* cache_row, const float* inv_freq, bool half_layout, bf16* k_cache,
                       bf16* v_cache, int n_ctx) {
  IK_CUDA_REQUIRE(head_dim % 2 == 0 && head_dim / 2 <= kMaxHalfDim, "RoPE: head dimension above 256 or odd");
  launch_chained(rope_store_kernel, dim3(m), dim3(256), 0, qkv, n_head, n_kv, head_dim, pos, seq, cache_row, inv_freq,
                 half_layout, reinterpret_cast<__nv_bfloat16*>(k_cache), reinterpret_cast<__nv_bfloat16*>(v_cache),
                 n_ctx);
  check_launch("rope_and_store_kv");
}

// ---- SwiGLU ----------------------------------------------------------------------------------

__global__ void silu_mul_kernel(const float* gu, __nv_bfloat16* out, int m, int n_ff) {
  let_next_kernel_start();  // chained: see common.cuh
  wait_for_previous_kernel();
  const size_t n = size_t(m) * n_ff;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const size_t r = i / n_ff, j = i % n_ff;
    const float g = gu[r * 2 * n_ff + j], u = gu[r * 2 * n_ff + n_ff + j];
    out[i] = to_bf16(g / (1.0f + __expf(-g)) * u);
  }
}

void silu_mul(const float* gu, bf16* out, int m, int n_ff) {
  const size_t n = size_t(m) * n_ff;
  const unsigned blocks = unsigned(std::min<size_t>(blocks_for(n, 256), 4096));
  launch_chained(silu_mul_kernel, dim3(blocks), dim3(256), 0, gu, reinterpret_cast<__nv_bfloat16*>(out), m, n_ff);
  check_launch("silu_mul");
}

}  // namespace ik::backend::cuda
