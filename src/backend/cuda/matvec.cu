// Matrix-vector products for decode (a few rows of x against bf16 weights) on small matrices,
// where cuBLAS's kernels cost several microseconds of latency more than the bytes need
// (SmolLM2's layers: 1.5-2.5 us here against 3.2-4.8 us; bench-matvec). One warp per output
// row; each lane keeps the next 16-byte pieces of the row in flight while it uses the current
// ones, across row boundaries, and rows are dealt evenly over the warps. A chained launch: the
// first pieces are loaded before waiting for the previous kernel (the weights do not depend
// on it). Large matrices stay with cuBLAS, which streams them closer to the bandwidth limit
// and does not compete with the attention kernels for memory while it waits.
#include <algorithm>
#include <cstdlib>

#include "backend/cuda/common.cuh"

namespace ik::backend::cuda {

constexpr int kMatvecWarps = 4;    // per block
constexpr int kPieces = 4;         // 16-byte pieces per lane per step (two steps in flight)
constexpr int kMatvecMaxRows = 4;  // rows of x
constexpr size_t kMatvecMaxBytes = size_t(16) << 20;  // larger weights go to cuBLAS
// One row: up to 32 MiB (Llama-3-8B's 4096 x 4096 output projection: 11.2 us against cuBLAS's
// 12.3 plus 2.9 for its split-K reduction). Beyond, and for more rows, cuBLAS streams faster.
constexpr size_t kMatvecMaxBytesOneRow = size_t(32) << 20;
// One row of short rows (k <= 1024: small models' LM heads) at any size: there cuBLAS is faster
// alone (SmolLM2's 49152 x 576 head: 16.2 against 20.4 us, bench-matvec), yet the decode step
// is faster with the matvec (0.613 -> 0.582 ms; bench/cuda/results/lm_head_matvec_ab_h200.txt).
constexpr int kMatvecShortRow = 1024;

__device__ __forceinline__ float dot8(uint4 a, uint4 b, float acc) {
  const __nv_bfloat162* pa = reinterpret_cast<const __nv_bfloat162*>(&a);
  const __nv_bfloat162* pb = reinterpret_cast<const __nv_bfloat162*>(&b);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 fa = __bfloat1622float2(pa[i]), fb = __bfloat1622float2(pb[i]);
    acc = fmaf(fa.x, fb.x, acc);
    acc = fmaf(fa.y, fb.y, acc);
  }
  return acc;
}

// Pieces c0 + j*32 + lane of a row of k8 pieces, streamed past L1 (read once); zero past the end.
__device__ __forceinline__ void load_pieces(uint4 (&w)[kPieces], const uint4* row, int c0, int k8, int lane) {
#pragma unroll
  for (int j = 0; j < kPieces; ++j) {
    const int i = c0 + j * 32 + lane;
    if (i < k8) {
      asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
                   : "=r"(w[j].x), "=r"(w[j].y), "=r"(w[j].z), "=r"(w[j].w)
                   : "l"(row + i));
    } else {
      w[j] = make_uint4(0, 0, 0, 0);
    }
  }
}

template <int M>
__device__ __forceinline__ void accumulate_pieces(const uint4 (&w)[kPieces], const uint4* __restrict__ x, int c0,
                                                  int k8, int lane, float (&acc)[M]) {
#pragma unroll
  for (int j = 0; j < kPieces; ++j) {
    const int i = c0 + j * 32 + lane;
    if (i < k8) {
#pragma unroll
      for (int b = 0; b < M; ++b) acc[b] = dot8(w[j], x[size_t(b) * k8 + i], acc[b]);
    }
  }
}

template <int M>
__device__ __forceinline__ void store_row(float (&acc)[M], float* y, int row, int ldy, bool accumulate, int lane) {
#pragma unroll
  for (int b = 0; b < M; ++b) {
    const float s = warp_sum(acc[b]);
    acc[b] = 0.0f;
    if (lane == 0) y[size_t(b) * ldy + row] = accumulate ? y[size_t(b) * ldy + row] + s : s;
  }
}

// The RMSNorm that matvec_rms_norm fuses in front of the product: x (f32 rows) and its weight.
struct NormedInput {
  const float* x = nullptr;
  const float* weight = nullptr;
  float eps = 0.0f;
};

// Rows b < M of norm.x (k floats each) normalised into out (bf16) as rms_norm does.
template <int M>
__device__ __forceinline__ void normalise_rows(const NormedInput& norm, int k, __nv_bfloat16* out) {
  __shared__ float scratch[32];
#pragma unroll
  for (int b = 0; b < M; ++b) rms_norm_row(norm.x + size_t(b) * k, norm.weight, out + size_t(b) * k, k, norm.eps, scratch);
  __syncthreads();
}

// y[b, row] (+)= sum_i w[row, i] x[b, i] for b < M; rows of x k8 pieces apart, of y ldy floats.
// Warp w takes rows w, w + stride, ...; its work is a sequence of steps (row, chunk of
// kPieces * 32 pieces), loaded one step ahead into the other register buffer. kNorm: x is
// instead rms_norm(norm.x) * norm.weight, which the block computes into shared memory first
// (while its first weight pieces are in flight).
template <int M, bool kNorm>
__global__ void __launch_bounds__(kMatvecWarps * 32)
    matvec_kernel(const uint4* __restrict__ w, const uint4* __restrict__ x, float* __restrict__ y, int n, int k8,
                  int ldy, bool accumulate, NormedInput norm) {
  extern __shared__ uint4 normed[];  // kNorm: M rows of k8 pieces
  const int lane = threadIdx.x & 31;
  const int first = blockIdx.x * kMatvecWarps + (threadIdx.x >> 5), stride = gridDim.x * kMatvecWarps;
  const int chunks = (k8 + kPieces * 32 - 1) / (kPieces * 32);
  const int steps = first < n ? (n - first + stride - 1) / stride * chunks : 0;
  auto row_of = [&](int t) { return first + (t / chunks) * stride; };
  auto col_of = [&](int t) { return (t % chunks) * kPieces * 32; };
  uint4 a[kPieces], b[kPieces];
  float acc[M];
#pragma unroll
  for (int i = 0; i < M; ++i) acc[i] = 0.0f;
  if (steps > 0) load_pieces(a, w + size_t(row_of(0)) * k8, col_of(0), k8, lane);
  wait_for_previous_kernel();
  let_next_kernel_start();
  if constexpr (kNorm) {
    normalise_rows<M>(norm, k8 * 8, reinterpret_cast<__nv_bfloat16*>(normed));
    x = normed;
  }
  for (int t = 0; t < steps; t += 2) {
    if (t + 1 < steps) load_pieces(b, w + size_t(row_of(t + 1)) * k8, col_of(t + 1), k8, lane);
    accumulate_pieces<M>(a, x, col_of(t), k8, lane, acc);
    if ((t + 1) % chunks == 0) store_row<M>(acc, y, row_of(t), ldy, accumulate, lane);
    if (t + 1 >= steps) break;
    if (t + 2 < steps) load_pieces(a, w + size_t(row_of(t + 2)) * k8, col_of(t + 2), k8, lane);
    accumulate_pieces<M>(b, x, col_of(t + 1), k8, lane, acc);
    if ((t + 2) % chunks == 0) store_row<M>(acc, y, row_of(t + 1), ldy, accumulate, lane);
  }
}

template <int M, bool kNorm>
static void launch_matvec(const bf16* x, const bf16* w, float* y, int n, int k, bool accumulate, int ldy,
                          NormedInput norm = {}) {
  static const int blocks_per_sm = [] {
    int b = 0;
    check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&b, matvec_kernel<M, kNorm>, kMatvecWarps * 32, 0),
          "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
    return std::max(b, 1);
  }();
  // At most one resident wave, and as few warps as give every warp the same number of rows.
  const int max_warps = blocks_per_sm * ctx().device.sm_count * kMatvecWarps;
  const int per_warp = (n + max_warps - 1) / max_warps;
  const int warps = (n + per_warp - 1) / per_warp;
  launch_chained(matvec_kernel<M, kNorm>, dim3((warps + kMatvecWarps - 1) / kMatvecWarps), dim3(kMatvecWarps * 32),
                 kNorm ? size_t(M) * k * 2 : 0, reinterpret_cast<const uint4*>(w), reinterpret_cast<const uint4*>(x), y,
                 n, k / 8, ldy, accumulate, norm);
}

template <bool kNorm>
static void dispatch_rows(const bf16* x, const bf16* w, float* y, int m, int n, int k, bool accumulate, int ldy,
                          NormedInput norm) {
  switch (m) {
    case 1: return launch_matvec<1, kNorm>(x, w, y, n, k, accumulate, ldy, norm);
    case 2: return launch_matvec<2, kNorm>(x, w, y, n, k, accumulate, ldy, norm);
    case 3: return launch_matvec<3, kNorm>(x, w, y, n, k, accumulate, ldy, norm);
    default: return launch_matvec<4, kNorm>(x, w, y, n, k, accumulate, ldy, norm);
  }
}

// Whether one row of x against w (n x k) goes to the matvec. IK_MATVEC_ONE_ROW_MB=N (comparisons):
// up to N MiB of weights instead, whatever k.
static bool one_row_fits(int n, int k) {
  static const int limit_mb = env_setting("IK_MATVEC_ONE_ROW_MB", -1);
  const size_t bytes = size_t(n) * k * 2;
  if (limit_mb >= 0) return bytes <= size_t(limit_mb) << 20;
  return bytes <= kMatvecMaxBytesOneRow || k <= kMatvecShortRow;
}

bool matvec_fits(const bf16* x, const bf16* w, int m, int n, int k) {
  static const bool off = std::getenv("IK_MATVEC_CUBLAS") != nullptr;  // to compare with cuBLAS
  return !off && m >= 1 && m <= kMatvecMaxRows && k % 8 == 0 &&
         (m == 1 ? one_row_fits(n, k) : size_t(n) * k * 2 <= kMatvecMaxBytes) && aligned_to(x, 16) &&
         aligned_to(w, 16);
}

void matvec(const bf16* x, const bf16* w, float* y, int m, int n, int k, bool accumulate, int ldy) {
  IK_CUDA_REQUIRE(m >= 1 && m <= kMatvecMaxRows && k % 8 == 0 && aligned_to(x, 16) && aligned_to(w, 16),
                  "matvec: 1-4 rows, k a multiple of 8 and 16-byte aligned operands");
  dispatch_rows<false>(x, w, y, m, n, k, accumulate, ldy, NormedInput{});
}

// The normalised rows sit in shared memory: at most 48 KB without opting in to more.
constexpr size_t kMaxNormedBytes = size_t(48) << 10;

// One row only: every block normalises all of its rows again, and from 2 rows on that costs more
// than the separate norm saves (SmolLM2 shape: 0.668 against 0.715 ms at batch 1, 0.787 against
// 0.776 at batch 2, 1.028 against 0.908 at batch 4).
bool matvec_rms_norm_fits(const float* x, const float* norm_w, const bf16* w, int m, int n, int k) {
  return m == 1 && !decode_fusion_off("norm") && matvec_fits(reinterpret_cast<const bf16*>(x), w, m, n, k) &&
         size_t(n) * k * 2 <= kMatvecMaxBytes && aligned_to(norm_w, 16) && size_t(m) * k * 2 <= kMaxNormedBytes;
}

void matvec_rms_norm(const float* x, const float* norm_w, float eps, const bf16* w, float* y, int m, int n, int k,
                     bool accumulate, int ldy) {
  IK_CUDA_REQUIRE(m >= 1 && m <= kMatvecMaxRows && k % 8 == 0 && aligned_to(x, 16) && aligned_to(norm_w, 16) &&
                      aligned_to(w, 16) && size_t(m) * k * 2 <= kMaxNormedBytes,
                  "matvec_rms_norm: 1-4 rows, k a multiple of 8, 16-byte aligned operands, rows of at most 48 KB");
  dispatch_rows<true>(nullptr, w, y, m, n, k, accumulate, ldy, NormedInput{x, norm_w, eps});
}

}  // namespace ik::backend::cuda
