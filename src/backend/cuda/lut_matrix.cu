// LutMatrix on the device: upload of a packed matrix, random codes and scales for benchmarks,
// and dequantization (for long passes through cuBLAS, and as the tests' reference).
#include <cuda_fp16.h>

#include <algorithm>
#include <vector>

#include "backend/cuda/common.cuh"
#include "backend/cuda/lut_codes.cuh"
#include "backend/cuda/lut_gemm.hpp"

namespace ik::backend::cuda {

namespace {

__global__ void fill_random_bytes_kernel(uint8_t* dst, size_t n, uint64_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    dst[i] = uint8_t(mix64(seed * 0x9e3779b97f4a7c15ull + i) >> 56);
}

// Scales: f16 in [scale/2, scale], written over the scale slots of every block.
__global__ void fill_random_scales_kernel(uint8_t* blocks, size_t n_blocks, int code_bytes, int scale_bytes,
                                          uint64_t seed, float scale) {
  const size_t per_block = scale_bytes / 2;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n_blocks * per_block; i += size_t(gridDim.x) * blockDim.x) {
    const float u = float(mix64(seed * 0x9e3779b97f4a7c15ull + i) >> 40) * (1.0f / 16777216.0f);
    const __half h = __float2half(scale * (0.5f + 0.5f * u));
    const size_t b = i / per_block, j = i % per_block;
    *reinterpret_cast<__half*>(blocks + b * (code_bytes + scale_bytes) + code_bytes + 2 * j) = h;
  }
}

// One warp per (row block, chunk), reading the codes as the GEMM does: a lane holds, for each of
// its two rows, 8 consecutive columns in every 32-column block, so it writes them as one
// 16-byte store (a warp covers 8 rows x 64 contiguous bytes per store: whole sectors).
template <int BITS, class T>
__global__ void lut_dequantize_kernel(const uint8_t* blocks, const float* table, int chunks, int n, int k, int gpc,
                                      T* out) {
  const int blk = blockIdx.x, rb = blk / chunks, kc = blk % chunks, lane = threadIdx.x;
  const int gid = lane >> 2, tid = lane & 3;
  uint32_t c[8];
  const uint8_t* b = blocks + size_t(blk) * (kCodeBytes<BITS> + 32 * gpc);
  load_codes<BITS>(b, lane, c);
  const __half2* s = reinterpret_cast<const __half2*>(b + kCodeBytes<BITS>);
  auto code = [&](int t, int r, int e) -> int {  // code of element e of register r of tile t
    if (BITS == 4) return (c[t] >> (8 * r + 4 * e)) & 15;
    if (BITS == 2) return (c[t / 2] >> (16 * (t % 2) + 4 * r + 2 * e)) & 3;
    const int bit = 6 * (4 * t + r) + 3 * e;  // the 3-bit stream (lut_layout.hpp); c[6] is 0
    return int(__funnelshift_r(c[bit / 32], c[bit / 32 + 1], bit % 32) & 7);
  };
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int row = rb * kLutRowBlock + gid + 8 * h;
    if (row >= n) continue;
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const int col = kc * kLutChunk + q * 32 + tid * 8;
      if (col >= k) continue;
      const float2 sv = __half22float2(s[(q * 32 / (kLutChunk / gpc)) * 8 + gid]);
      const float sc = h ? sv.y : sv.x;
      alignas(16) T v[8];
#pragma unroll
      for (int j = 0; j < 8; ++j) {  // column j of the run: tile 2q + j/4, half (j/2)%2, element j%2
        const int t = 2 * q + j / 4, r = h + 2 * ((j / 2) % 2);
        v[j] = T(table[code(t, r, j % 2)] * sc);
      }
      *reinterpret_cast<uint4*>(out + size_t(row) * k + col) = *reinterpret_cast<const uint4*>(v);
    }
  }
}

}  // namespace

static LutMatrix allocate_lut(int n, int k, int bits, int group, const std::vector<float>& table) {
  LutMatrix w;
  w.bits = bits, w.group = group, w.n = n, w.k = k;
  w.row_blocks = (n + kLutRowBlock - 1) / kLutRowBlock;
  w.chunks = (k + kLutChunk - 1) / kLutChunk;
  w.block_bytes = lut_block_bytes(bits, group);
  const size_t bytes = size_t(w.row_blocks) * w.chunks * w.block_bytes;
  const auto t_bf16 = pair_table(table, bits, true), t_f16 = pair_table(table, bits, false);
  const size_t tb = t_bf16.size() * 4;
  uint8_t* base = static_cast<uint8_t*>(alloc(bytes + 2 * tb + 64, "lookup-table weights"));
  w.storage = base;
  w.blocks = base;
  w.table2_bf16 = reinterpret_cast<const uint32_t*>(base + bytes);
  w.table2_f16 = w.table2_bf16 + t_bf16.size();
  w.table = reinterpret_cast<const float*>(w.table2_f16 + t_f16.size());
  upload(base + bytes, t_bf16.data(), tb);
  upload(base + bytes + tb, t_f16.data(), tb);
  upload(base + bytes + 2 * tb, table.data(), table.size() * 4);
  return w;
}

LutMatrix upload_lut(const LutPacked& p) {
  IK_CUDA_REQUIRE(p.rows <= (1 << 30) && p.cols <= (1 << 30), "lookup-table matrix too large");
  LutMatrix w = allocate_lut(int(p.rows), int(p.cols), p.bits, p.group, p.table);
  // Interleave: each block's codes, then its scales, so one copy moves both.
  const size_t n_blocks = size_t(w.row_blocks) * w.chunks, cb = code_block_bytes(p.bits), sb = w.block_bytes - cb;
  std::vector<uint8_t> host(n_blocks * w.block_bytes);
  const auto* scales = reinterpret_cast<const uint8_t*>(p.scales.data());
  for (size_t b = 0; b < n_blocks; ++b) {
    std::copy_n(p.codes.data() + b * cb, cb, host.data() + b * w.block_bytes);
    std::copy_n(scales + b * sb, sb, host.data() + b * w.block_bytes + cb);
  }
  upload(const_cast<uint8_t*>(w.blocks), host.data(), host.size());
  return w;
}

LutMatrix random_lut(int n, int k, int bits, int group, const std::vector<float>& table, uint64_t seed, float scale) {
  IK_CUDA_REQUIRE(n > 0 && k > 0 && k % 32 == 0, "random lookup-table matrix: bad shape");
  LutMatrix w = allocate_lut(n, k, bits, group, table);
  auto* blocks = const_cast<uint8_t*>(w.blocks);
  const size_t n_blocks = size_t(w.row_blocks) * w.chunks;
  fill_random_bytes_kernel<<<1024, 256, 0, ctx().stream>>>(blocks, w.stream_bytes(), seed);
  const int cb = code_block_bytes(bits);
  fill_random_scales_kernel<<<256, 256, 0, ctx().stream>>>(blocks, n_blocks, cb, w.block_bytes - cb, seed + 1, scale);
  check_launch("random_lut");
  return w;
}

void free_lut(LutMatrix& w) {
  release(w.storage);
  w = LutMatrix{};
}

template <class T>
static void dequantize_as(const LutMatrix& w, T* o) {
  const unsigned blocks = unsigned(w.row_blocks) * w.chunks;
  const int gpc = groups_per_chunk(w.group);
  auto kernel = w.bits == 4 ? lut_dequantize_kernel<4, T> : w.bits == 3 ? lut_dequantize_kernel<3, T> : lut_dequantize_kernel<2, T>;
  kernel<<<blocks, 32, 0, ctx().stream>>>(w.blocks, w.table, w.chunks, w.n, w.k, gpc, o);
  check_launch("lut_dequantize");
}

void lut_dequantize(const LutMatrix& w, uint16_t* out, bool f16) {
  if (f16)
    dequantize_as(w, reinterpret_cast<__half*>(out));
  else
    dequantize_as(w, reinterpret_cast<__nv_bfloat16*>(out));
}

}  // namespace ik::backend::cuda
