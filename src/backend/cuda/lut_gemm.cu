// The lookup-table GEMM (FLUTE on Hopper): Y[m, n] += X[m, k] W_hat[n, k]^T with W_hat = table[code] *
// scale never materialised. Read lut_layout.hpp first: it fixes which codes each lane holds.
//
// Shape of the computation: the weights are the MMA's A operand (16 output rows per tile), the
// tokens its B operand (8 per tile), so m = 1 wastes columns of a tile, not rows of weights.
// A block has W consumer warps and one producer warp. The block walks a contiguous range of
// units (W row blocks x U chunks), Stream-K style: every block gets the same number of units
// whatever the shape, and a warp flushes its partial sums with fp32 atomics whenever the range
// leaves a row group. The producer's lane 0 moves each unit into a ring of S shared-memory
// stages with TMA bulk copies (codes and scales of each warp's row block, contiguous in the
// packed layout, and the unit's columns of X), signalling a "full" mbarrier; consumers
// release a stage through an "empty" mbarrier. No __syncthreads in the loop: loads run S - 1
// units ahead, as deep as shared memory allows, which is what HBM3e needs to be saturated.
// The pair table sits in shared memory 32 times over, so lane l reads copy l and lookups
// never conflict on banks. Scales multiply the fp32 MMA results once per group.
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <tuple>

#include "backend/cuda/common.cuh"
#include "backend/cuda/lut_codes.cuh"
#include "backend/cuda/lut_gemm.hpp"
#include "backend/cuda/tma.cuh"

namespace ik::backend::cuda {

namespace {

constexpr int kMaxStages = 16;
constexpr int kBarrierBytes = 2 * kMaxStages * 8;
constexpr unsigned kDynamicSmemBase = 1024;  // where sm_90 places dynamic shared memory (1 KB reserved)

// Where things sit in dynamic shared memory. The table starts at a shared address that is a
// multiple of its size, so a lookup address is (index * 128) | (table | lane * 4): one LOP3, no
// add. Stages fill the space below the table first (whole stages), the rest go above it.
struct SmemLayout {
  int table, barriers, n_low, high, total;
  __host__ __device__ int stage(int s, int stage_bytes) const {
    return s < n_low ? kBarrierBytes + s * stage_bytes : high + (s - n_low) * stage_bytes;
  }
};
__host__ __device__ inline SmemLayout smem_layout(unsigned base, int table_bytes, int stage_bytes, int stages) {
  SmemLayout L;
  L.table = int((table_bytes - base % table_bytes) % table_bytes);
  if (L.table >= kBarrierBytes) {
    L.barriers = 0;
    L.n_low = (L.table - kBarrierBytes) / stage_bytes;
    L.n_low = L.n_low < stages ? L.n_low : stages;
    L.high = L.table + table_bytes;
  } else {
    L.barriers = L.table + table_bytes;
    L.n_low = 0;
    L.high = L.barriers + kBarrierBytes;
  }
  L.total = L.high + (stages - L.n_low) * stage_bytes;
  return L;
}

struct Params {
  const uint8_t* blocks;   // per (row block, chunk): codes, then the f16 scale pairs
  const uint32_t* table2;  // pair table, 2^(2 bits) entries
  const uint16_t* x;
  float* y;
  int ldx, ldy, m, n, k;   // m <= 8 * NT rows of x in this launch
  int chunks, row_blocks;
  int unit_chunks, units_per_row_group;
  long long units;         // row groups * units per row group
  int stages, stage_bytes, smem_bytes;
  int diag;                // IK_LUT_DIAG: 1 = copy (no math: the memory pipeline alone), 2 = math (codes not copied)
};

// The pair table in shared memory: 2^(2 bits) entries, 32 copies of 4 bytes each.
__host__ __device__ constexpr int table_bytes(int bits) { return (1 << (2 * bits)) * 128; }
// A stage's row of X: unit_chunks x 128 columns of 2 bytes, padded by 64 bytes. A warp's 16-byte
// X loads are served 8 lanes (two tokens' rows, 64 bytes each) per wavefront: with the rows 64
// bytes apart modulo 128 the two fall on disjoint banks (16 bytes apart, they conflicted 2-way).
__host__ __device__ constexpr int x_row_bytes(int unit_chunks) { return unit_chunks * 256 + 64; }

template <bool BF16>
__device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (BF16)
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// x >> s for a compile-time s of either sign.
template <int S>
__device__ __forceinline__ uint32_t shift_right(uint32_t x) {
  if constexpr (S >= 0) return x >> S;
  else return x << -S;
}

// Shared-memory address of register q of tile t's pair (see lut_layout.hpp) in this lane's copy
// of the table: entry index * 128 (the 32 copies of an entry are adjacent words) ORed into
// lane_table = table address | lane * 4. One shift (a funnel shift where a 3-bit field straddles
// two words) and one LOP3 per lookup.
template <int BITS, int T, int Q>
__device__ __forceinline__ uint32_t pair_address(const uint32_t (&c)[8], uint32_t lane_table) {
  if constexpr (BITS == 4) {
    return (shift_right<8 * Q - 7>(c[T]) & 0x7F80u) | lane_table;
  } else if constexpr (BITS == 2) {
    return (shift_right<16 * (T % 2) + 4 * Q - 7>(c[T / 2]) & 0x780u) | lane_table;
  } else {
    constexpr int bit = 6 * (4 * T + Q), w = bit / 32, b = bit % 32;
    if constexpr (b <= 32 - 6) return (shift_right<b - 7>(c[w]) & 0x1F80u) | lane_table;
    else return (__funnelshift_r(c[w], c[w + 1], b - 7) & 0x1F80u) | lane_table;
  }
}

__device__ __forceinline__ uint32_t lds32(uint32_t address) {
  uint32_t v;
  asm("ld.shared.b32 %0, [%1];\n" : "=r"(v) : "r"(address));
  return v;
}

// Tile T's A fragment: four pair lookups in this lane's copy of the table.
template <int BITS, int T>
__device__ __forceinline__ void lookup(const uint32_t (&c)[8], uint32_t lane_table, uint32_t (&a)[4]) {
  a[0] = lds32(pair_address<BITS, T, 0>(c, lane_table));
  a[1] = lds32(pair_address<BITS, T, 1>(c, lane_table));
  a[2] = lds32(pair_address<BITS, T, 2>(c, lane_table));
  a[3] = lds32(pair_address<BITS, T, 3>(c, lane_table));
}
// The same for a tile index t known only after unrolling (register arrays need constant indices:
// the switch folds away).
template <int BITS>
__device__ __forceinline__ void lookup(int t, const uint32_t (&c)[8], uint32_t lane_table, uint32_t (&a)[4]) {
  switch (t) {
    case 0: return lookup<BITS, 0>(c, lane_table, a);
    case 1: return lookup<BITS, 1>(c, lane_table, a);
    case 2: return lookup<BITS, 2>(c, lane_table, a);
    case 3: return lookup<BITS, 3>(c, lane_table, a);
    case 4: return lookup<BITS, 4>(c, lane_table, a);
    case 5: return lookup<BITS, 5>(c, lane_table, a);
    case 6: return lookup<BITS, 6>(c, lane_table, a);
    default: return lookup<BITS, 7>(c, lane_table, a);
  }
}

// One chunk of RB row blocks (one warp's): acc[j][nt] += X_tile(nt) . W_hat(j)^T over 128 columns.
// block: row block 0's codes then scales, row block j's block_stride bytes further on.
// xs: this lane's X row (token gid) at the chunk, rows of 8-token tiles x_tile_bytes apart.
// Lanes whose token is past m use zeros instead of loading (shared-memory wavefronts are the
// scarce resource). Each X fragment serves all RB row blocks: at 9-16 tokens the X loads are as
// many wavefronts as the lookups, so two row blocks per warp halve them per weight.
template <int BITS, int NT, int GPC, bool BF16, int RB>
__device__ __forceinline__ void chunk_mma(const uint8_t* block, int block_stride, const uint8_t* xs,
                                          int x_tile_bytes, const bool (&x_valid)[NT], uint32_t lane_table, int lane,
                                          float (&acc)[RB][NT][4]) {
  constexpr int CB = kCodeBytes<BITS>;
  const int gid = lane >> 2;
  uint32_t c[RB][8];
#pragma unroll
  for (int j = 0; j < RB; ++j) load_codes<BITS>(block + j * block_stride, lane, c[j]);
  float d[RB][NT][4] = {};
#pragma unroll
  for (int q = 0; q < 4; ++q) {  // 32-column blocks: tiles 2q and 2q + 1
    uint4 xv[NT];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
      xv[nt] = x_valid[nt] ? *reinterpret_cast<const uint4*>(xs + nt * x_tile_bytes + q * 64) : make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int j = 0; j < RB; ++j) {
      uint32_t a[4];
      lookup<BITS>(2 * q, c[j], lane_table, a);
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) mma<BF16>(d[j][nt], a, xv[nt].x, xv[nt].y);
      lookup<BITS>(2 * q + 1, c[j], lane_table, a);
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) mma<BF16>(d[j][nt], a, xv[nt].z, xv[nt].w);
    }
    constexpr int kBlocksPerGroup = 4 / GPC;
    if ((q + 1) % kBlocksPerGroup == 0) {  // end of a group: scale the rows, fold into acc
#pragma unroll
      for (int j = 0; j < RB; ++j) {
        const uint8_t* ss = block + j * block_stride + CB;
        const float2 f = __half22float2(*reinterpret_cast<const __half2*>(ss + ((q / kBlocksPerGroup) * 8 + gid) * 4));
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          acc[j][nt][0] += f.x * d[j][nt][0], acc[j][nt][1] += f.x * d[j][nt][1];
          acc[j][nt][2] += f.y * d[j][nt][2], acc[j][nt][3] += f.y * d[j][nt][3];
          d[j][nt][0] = d[j][nt][1] = d[j][nt][2] = d[j][nt][3] = 0.0f;
        }
      }
    }
  }
}

// Consumer warps per block (the producer is one more). ptxas divides the registers by the warps
// of the busiest of the SM's four schedulers: 17 warps leave 96 registers a thread, 16 leave 128,
// 12 leave 168. Two row blocks per warp double the codes and accumulators: about 95 registers at
// one token (so at most 15 warps, without spilling), about 136 at 9-16 tokens (at most 11).
constexpr int max_warps(int rb, int nt) { return rb == 1 ? 16 : nt == 1 ? 15 : 11; }
// Each kernel is compiled for the largest block it runs (MAXW consumer warps): small blocks (up to
// kSmallBlockWarps) are bounded so that three fit per SM (128 registers), larger ones for one per
// SM. Many small blocks or few large ones is the tuner's choice: a large block shares one table
// and one ring among all its warps.
constexpr int kSmallBlockWarps = 4;
constexpr int min_blocks(int maxw) { return maxw <= kSmallBlockWarps ? 3 : 1; }

template <int BITS, int NT, int GPC, bool BF16, int RB, int MAXW>
__global__ void __launch_bounds__(32 * (MAXW + 1), min_blocks(MAXW)) lut_gemm_kernel(Params p) {
  constexpr int CB = kCodeBytes<BITS>, BB = CB + 32 * GPC, TABLE = 1 << (2 * BITS);
  extern __shared__ __align__(128) uint8_t smem[];
  let_next_kernel_start();  // chained (see common.cuh): the set-up below overlaps the previous kernel
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, W = (blockDim.x >> 5) - 1;
  const int gid = lane >> 2, tid = lane & 3;
  const int U = p.unit_chunks, S = p.stages;
  const SmemLayout L = smem_layout(smem_addr(smem), table_bytes(BITS), p.stage_bytes, S);
  if (L.total > p.smem_bytes) __trap();  // dynamic shared memory not where the host assumed
  uint32_t* table = reinterpret_cast<uint32_t*>(smem + L.table);
  uint64_t* full = reinterpret_cast<uint64_t*>(smem + L.barriers);
  uint64_t* empty = full + kMaxStages;
  const int x_offset = W * RB * U * BB, x_row = x_row_bytes(U);

  const long long per_block = p.units / gridDim.x, extra = p.units % gridDim.x;
  const long long begin = blockIdx.x * per_block + min((long long)blockIdx.x, extra);
  const long long end = begin + per_block + (blockIdx.x < extra ? 1 : 0);

  // Position of the first unit: row group and first chunk (counters advance without division,
  // which would cost more than the math of a unit).
  const int upr = p.units_per_row_group;
  const int rg0 = int(begin / upr), c00 = int(begin % upr) * U;
  const int n_units = int(end - begin);

  // Producer: lane w < W copies warp w's blocks, lanes W.. copy the rows of X. Unit i at (rg, c0)
  // into stage s: its codes and/or its rows of X.
  const bool codes = p.diag != 2;
  auto copy_unit = [&](int rg, int c0, int s, bool copy_codes, bool copy_x) {
    const int nu = min(U, p.chunks - c0), k0 = c0 * kLutChunk, xk = min(nu * kLutChunk, p.k - k0);
    const int first_rb = rg * W * RB, blocks_here = min(W * RB, p.row_blocks - first_rb);
    if (copy_codes && lane == 0)
      mbar_arrive_expect_tx(full + s, unsigned((codes ? blocks_here * nu * BB : 0) + p.m * xk * 2));
    __syncwarp();
    uint8_t* st = smem + L.stage(s, p.stage_bytes);
#pragma unroll
    for (int j = 0; j < RB; ++j) {  // lane w copies warp w's row blocks
      const int b = lane * RB + j;
      if (copy_codes && codes && lane < W && b < blocks_here)
        bulk_copy(st + b * U * BB, p.blocks + (size_t(first_rb + b) * p.chunks + c0) * BB, nu * BB, full + s);
    }
    for (int t = lane - W; copy_x && lane >= W && t < p.m; t += 32 - W)
      bulk_copy(st + x_offset + t * x_row, p.x + size_t(t) * p.ldx + k0, xk * 2, full + s);
  };
  // The first ring of units, codes or rows of X.
  const int early = min(S, n_units);
  auto copy_first_ring = [&](bool copy_codes, bool copy_x) {
    int rg = rg0, c0 = c00;
    for (int i = 0; i < early; ++i) {
      copy_unit(rg, c0, i, copy_codes, copy_x);
      if ((c0 += U) >= p.chunks) c0 = 0, ++rg;
    }
  };

  // Set-up. The producer initialises the barriers and at once requests the codes of the first
  // ring: they depend neither on the table nor on the previous kernel (chained launch), and the
  // first bytes then arrive while the consumers build the table (a microsecond, which is half
  // the floor of a 4096x4096 product). The consumers write the table (32 copies: entry i of copy
  // c at word 32 i + c; each thread starts at its own lane's bank so a warp's stores never
  // collide) and zero the X rows (columns past k are never copied and must read as 0; the
  // copies of X wait for the __syncthreads below).
  if (warp == W) {
    if (lane == 0) {
      for (int s = 0; s < S; ++s) mbar_init(full + s, 1), mbar_init(empty + s, W);
      mbar_init_fence();
    }
    __syncwarp();
    copy_first_ring(true, false);
  } else {
    const int consumers = W * 32;
    for (int i = threadIdx.x; i < TABLE; i += consumers) {
      const uint32_t v = p.table2[i];
#pragma unroll
      for (int c = 0; c < 32; ++c) table[i * 32 + ((c + lane) & 31)] = v;
    }
    for (int s = 0; s < S; ++s)
      for (int i = threadIdx.x * 16; i < NT * 8 * x_row; i += consumers * 16)
        *reinterpret_cast<uint4*>(smem + L.stage(s, p.stage_bytes) + x_offset + i) = make_uint4(0, 0, 0, 0);
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");  // the zeroes before any TMA write
  }
  __syncthreads();

  if (warp == W) {
    wait_for_previous_kernel();  // X is the previous kernel's output
    copy_first_ring(false, true);
    int rg = rg0, c0 = c00, s = 0;
    unsigned phase = 0;
    for (int i = 0; i < n_units; ++i) {
      if (i >= S) {
        mbar_wait(empty + s, phase ^ 1);
        copy_unit(rg, c0, s, true, true);
      }
      if ((c0 += U) >= p.chunks) c0 = 0, ++rg;
      if (++s == S) s = 0, phase ^= 1;
    }
    return;
  }

  // consumers: Y (atomic adds) is the previous kernel's to write until it completes.
  wait_for_previous_kernel();
  const uint32_t lane_table = smem_addr(table) | uint32_t(lane) * 4;
  bool x_valid[NT];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) x_valid[nt] = nt * 8 + gid < p.m;
  float acc[RB][NT][4] = {};
  int rg = rg0, c0 = c00, s = 0;
  unsigned phase = 0;
  for (int i = 0; i < n_units; ++i) {
    mbar_wait(full + s, phase);
    const int rb = (rg * W + warp) * RB, nu = min(U, p.chunks - c0);  // this warp's first row block
    const uint8_t* st = smem + L.stage(s, p.stage_bytes);
    if (rb < p.row_blocks && p.diag != 1) {  // a second row block past the last one computes on stale data, unused
      const uint8_t* xs = st + x_offset + gid * x_row + tid * 16;
      for (int u = 0; u < nu; ++u)
        chunk_mma<BITS, NT, GPC, BF16, RB>(st + (warp * RB * U + u) * BB, U * BB, xs + u * 256, 8 * x_row, x_valid,
                                           lane_table, lane, acc);
    }
    __syncwarp();
    if (lane == 0) mbar_arrive(empty + s);
    if (++s == S) s = 0, phase ^= 1;

    // Leaving a row group (or the range): add this warp's partial sums to Y.
    const bool row_group_done = (c0 += U) >= p.chunks;
    if (row_group_done || i + 1 == n_units) {
#pragma unroll
      for (int j = 0; j < RB; ++j)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
          for (int c = 0; c < 4; ++c) {
            const int row = (rb + j) * kLutRowBlock + gid + 8 * (c >> 1), tok = nt * 8 + tid * 2 + (c & 1);
            if (rb + j < p.row_blocks && row < p.n && tok < p.m)
              atomicAdd(p.y + size_t(tok) * p.ldy + row, acc[j][nt][c]);
            acc[j][nt][c] = 0.0f;
          }
    }
    if (row_group_done) c0 = 0, ++rg;
  }
}

// ---- dispatch ---------------------------------------------------------------------------------

using KernelFn = void (*)(Params);

// Two row blocks per warp only up to 16 tokens: at 32 the doubled accumulators would spill.
template <int BITS, int NT, int GPC, bool BF16>
KernelFn pick_rb(int rb, int warps) {
  if constexpr (NT <= 2)
    if (rb == 2)
      return warps <= kSmallBlockWarps ? lut_gemm_kernel<BITS, NT, GPC, BF16, 2, kSmallBlockWarps>
                                       : lut_gemm_kernel<BITS, NT, GPC, BF16, 2, max_warps(2, NT)>;
  return lut_gemm_kernel<BITS, NT, GPC, BF16, 1, max_warps(1, NT)>;
}
template <int BITS, int NT, int GPC>
KernelFn pick_dtype(bool bf16, int rb, int warps) {
  return bf16 ? pick_rb<BITS, NT, GPC, true>(rb, warps) : pick_rb<BITS, NT, GPC, false>(rb, warps);
}
template <int BITS, int NT>
KernelFn pick_gpc(int gpc, bool bf16, int rb, int warps) {
  return gpc == 1   ? pick_dtype<BITS, NT, 1>(bf16, rb, warps)
         : gpc == 2 ? pick_dtype<BITS, NT, 2>(bf16, rb, warps)
                    : pick_dtype<BITS, NT, 4>(bf16, rb, warps);
}
template <int BITS>
KernelFn pick_nt(int nt, int gpc, bool bf16, int rb, int warps) {
  return nt == 1   ? pick_gpc<BITS, 1>(gpc, bf16, rb, warps)
         : nt == 2 ? pick_gpc<BITS, 2>(gpc, bf16, rb, warps)
                   : pick_gpc<BITS, 4>(gpc, bf16, rb, warps);
}
KernelFn pick_kernel(int bits, int nt, int gpc, bool bf16, int rb, int warps) {
  return bits == 4   ? pick_nt<4>(nt, gpc, bf16, rb, warps)
         : bits == 3 ? pick_nt<3>(nt, gpc, bf16, rb, warps)
                     : pick_nt<2>(nt, gpc, bf16, rb, warps);
}

// Blocks of one configuration that fit on an SM (computed once per kernel and shape of block);
// 0 when it does not fit at all. The kernel's shared-memory limit only ever grows: lowering it
// for a smaller launch would make a cached larger configuration fail to launch.
int occupancy(KernelFn fn, int threads, size_t smem) {
  static std::map<std::tuple<KernelFn, int, size_t>, int> cache;
  static std::map<KernelFn, size_t> limit;
  const auto key = std::make_tuple(fn, threads, smem);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  int blocks = 0;
  size_t& lim = limit[fn];
  if (smem > lim && cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)) != cudaSuccess) {
    cudaGetLastError();  // too much shared memory: not an error of the stream
    return cache[key] = 0;
  }
  lim = std::max(lim, smem);
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, fn, threads, smem) != cudaSuccess) {
    cudaGetLastError();
    blocks = 0;
  }
  return cache[key] = blocks;
}

// y[i, 0..n) = 0 for the rows of a strided output (one block per row).
__global__ void zero_rows_kernel(float* y, int ldy, int n) {
  let_next_kernel_start();  // chained: see common.cuh
  wait_for_previous_kernel();
  for (int j = threadIdx.x; j < n; j += blockDim.x) y[size_t(blockIdx.x) * ldy + j] = 0.0f;
}

}  // namespace

namespace {
// 8-token tiles for a launch of m <= 32 rows.
int token_tiles(int m) { return m <= 8 ? 1 : m <= 16 ? 2 : 4; }
// Row blocks per warp as launched: several only up to 16 tokens (pick_rb).
int launched_row_blocks(const LutKernelConfig& c, int nt) { return nt > 2 ? 1 : c.row_blocks_per_warp; }
// One pipeline stage: each warp's code blocks for the unit, then the unit's rows of X.
int stage_bytes(int bits, int group, int nt, const LutKernelConfig& c) {
  return c.warps * launched_row_blocks(c, nt) * c.unit_chunks * lut_block_bytes(bits, group) +
         nt * 8 * x_row_bytes(c.unit_chunks);
}
}  // namespace

size_t lut_smem_bytes(int bits, int group, int m, const LutKernelConfig& c) {
  return size_t(smem_layout(kDynamicSmemBase, table_bytes(bits), stage_bytes(bits, group, token_tiles(m), c), c.stages)
                    .total);
}

void lut_matmul(const void* x, bool x_bf16, const LutMatrix& w, float* y, int ldy, int m, bool accumulate,
                const LutKernelConfig* config) {
  IK_CUDA_REQUIRE(m >= 1 && ldy >= w.n, "lut_matmul: bad row count or output stride");
  if (!accumulate) {
    launch_chained(zero_rows_kernel, dim3(m), dim3(256), 0, y, ldy, w.n);
    check_launch("lut_matmul (zero)");
  }
  static const int diag = [] {
    const char* e = std::getenv("IK_LUT_DIAG");
    return !e ? 0 : std::string(e) == "copy" ? 1 : std::string(e) == "math" ? 2 : 0;
  }();
  // IK_LUT_ROW_BLOCKS=1|2 (comparisons): row blocks per warp instead of the table's, with the
  // warps halved or doubled so that a stage holds as many row blocks as the table's.
  static const int rb_override = env_setting("IK_LUT_ROW_BLOCKS", 0);
  const int gpc = groups_per_chunk(w.group);
  for (int m0 = 0; m0 < m; m0 += 32) {
    const int mc = std::min(32, m - m0);
    const int nt = token_tiles(mc);
    LutKernelConfig c = config ? *config : tuned_lut_config(w.n, w.k, w.bits, w.group, nt);
    if (!config && rb_override == 2 && c.row_blocks_per_warp == 1)
      c.row_blocks_per_warp = 2, c.warps = std::clamp(c.warps / 2, 1, max_warps(2, nt));
    if (!config && rb_override == 1 && c.row_blocks_per_warp == 2)
      c.row_blocks_per_warp = 1, c.warps = std::min(max_warps(1, nt), c.warps * 2);
    c.row_blocks_per_warp = launched_row_blocks(c, nt);
    IK_CUDA_REQUIRE((c.row_blocks_per_warp == 1 || c.row_blocks_per_warp == 2) && c.warps >= 1 &&
                        c.warps <= max_warps(c.row_blocks_per_warp, nt) && c.unit_chunks >= 1 && c.unit_chunks <= 8 &&
                        c.stages >= 2 && c.stages <= kMaxStages && c.blocks_per_sm >= 0,
                    "lut_matmul: bad kernel configuration");
    const int rb = c.row_blocks_per_warp;
    const KernelFn fn = pick_kernel(w.bits, nt, gpc, x_bf16, rb, c.warps);
    const int threads = 32 * (c.warps + 1);
    size_t smem = lut_smem_bytes(w.bits, w.group, mc, c);
    int fit = occupancy(fn, threads, smem);
    while (!config && fit == 0 && c.stages > 2) {  // a tuned or default ring too deep for this m: shorten it
      --c.stages;
      smem = lut_smem_bytes(w.bits, w.group, mc, c);
      fit = occupancy(fn, threads, smem);
    }
    IK_CUDA_REQUIRE(fit >= 1, "lut_matmul: the kernel configuration needs more shared memory than an SM has");
    const int per_sm = c.blocks_per_sm > 0 ? std::min(c.blocks_per_sm, fit) : fit;
    Params p;
    p.blocks = w.blocks, p.table2 = x_bf16 ? w.table2_bf16 : w.table2_f16;
    p.x = static_cast<const uint16_t*>(x) + size_t(m0) * w.k;
    p.y = y + size_t(m0) * ldy;
    p.ldx = w.k, p.ldy = ldy, p.m = mc, p.n = w.n, p.k = w.k;
    p.chunks = w.chunks, p.row_blocks = w.row_blocks;
    p.unit_chunks = c.unit_chunks;
    p.units_per_row_group = (w.chunks + c.unit_chunks - 1) / c.unit_chunks;
    p.units = (long long)((w.row_blocks + c.warps * rb - 1) / (c.warps * rb)) * p.units_per_row_group;
    p.stages = c.stages;
    p.stage_bytes = stage_bytes(w.bits, w.group, nt, c);
    p.smem_bytes = int(smem);
    p.diag = diag;
    const long long grid = std::min<long long>(p.units, (long long)ctx().device.sm_count * per_sm);
    launch_chained(fn, dim3(unsigned(grid)), dim3(threads), smem, p);
    check_launch("lut_matmul");
  }
}

}  // namespace ik::backend::cuda
