// Matrix-vector products for decode (a few rows of x against bf16 weights) on small matrices,
// where cuBLAS's kernels cost several microseconds of latency more than the bytes need
// (SmolLM2's layers: 1.5-2.5 us here against 3.2-4.8 us; bench-matvec). One warp per output
// row; each lane keeps the next 16-byte pieces of the row in flight while it uses the current
// ones, across row boundaries, and rows are dealt evenly over the warps. A chained launch: the
// first pieces are loaded before waiting for the previous kernel (the weights do not depend
// on it). Large matrices go to the streaming kernel below at one row (TMA copies: closer to the
// bandwidth limit than these loads) and to cuBLAS at 2-4 rows.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "backend/cuda/common.cuh"
#include "backend/cuda/tma.cuh"

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

// ---- Streaming matvec (1-2 rows, large matrices): TMA copies instead of loads -------------
// Each warp owns a contiguous range of whole rows (so every row's sum is one warp's, written
// once: deterministic, no atomics) and streams it through its own ring of shared-memory slots,
// 4 KB each, filled by TMA bulk copies its lane 0 requests: the copy engine keeps more bytes in
// flight than 16-byte loads per lane do (Llama-3-8B's matrices at one row: 84-105% of the copy
// bandwidth against 71-93% for matvec_kernel and 63-100% for cuBLAS; bench-matvec). The first
// ring is requested before waiting for the previous kernel (weights do not depend on it); x
// sits in shared memory. From 3 rows on the dot products from shared memory bound it (0.5-0.8x
// cuBLAS at 4), so matmul streams 1-2 rows (matvec_streams).
constexpr int kStreamChunk = 2048;  // bf16 values per copy: 4 KB
constexpr int kStreamChunkBytes = kStreamChunk * 2;
constexpr size_t kStreamMaxXBytes = size_t(64) << 10;

// kNorm: x is rms_norm(norm.x) * norm.weight, which each block computes into shared memory
// instead of copying x there (a block reduction per row: cheap beside the copies of one block
// per SM; the separate norm kernel it replaces was 3 us a launch).
template <int M, bool kNorm>
__global__ void __launch_bounds__(1024) stream_matvec_kernel(const bf16* __restrict__ w, const bf16* __restrict__ x,
                                                             float* __restrict__ y, int n, int k, int ldy,
                                                             bool accumulate, int rows_per_warp, int slots,
                                                             NormedInput norm) {
  extern __shared__ __align__(128) uint8_t smem[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const size_t x_bytes = size_t(M) * k * 2;
  uint4* xs = reinterpret_cast<uint4*>(smem);
  uint8_t* ring = smem + x_bytes + size_t(warp) * slots * kStreamChunkBytes;
  uint64_t* bars =
      reinterpret_cast<uint64_t*>(smem + x_bytes + size_t(warps) * slots * kStreamChunkBytes) + warp * slots;
  const int row0 = (blockIdx.x * warps + warp) * rows_per_warp;
  const int rows = max(0, min(n - row0, rows_per_warp));
  const int per_row = k / kStreamChunk, total = rows * per_row;
  const bf16* src = w + size_t(row0) * k;
  auto request = [&](int t, int s) {  // lane 0: chunk t into slot s
    mbar_arrive_expect_tx(bars + s, kStreamChunkBytes);
    bulk_copy(ring + s * kStreamChunkBytes, src + size_t(t) * kStreamChunk, kStreamChunkBytes, bars + s);
  };
  if (lane == 0) {
    for (int s = 0; s < slots; ++s) mbar_init(bars + s, 1);
    mbar_init_fence();
    for (int t = 0; t < min(slots, total); ++t) request(t, t);
  }
  __syncwarp();
  wait_for_previous_kernel();
  if constexpr (kNorm) {
    normalise_rows<M>(norm, k, reinterpret_cast<__nv_bfloat16*>(xs));
  } else {
    const uint4* x4 = reinterpret_cast<const uint4*>(x);
    for (int i = threadIdx.x; i < M * k / 8; i += blockDim.x) xs[i] = x4[i];
    __syncthreads();
  }
  let_next_kernel_start();
  float acc[M];
#pragma unroll
  for (int b = 0; b < M; ++b) acc[b] = 0.0f;
  const int k8 = k / 8;
  int s = 0, col8 = 0, row = row0;
  unsigned phase = 0;
  for (int t = 0; t < total; ++t) {
    mbar_wait(bars + s, phase);
    const uint4* piece = reinterpret_cast<const uint4*>(ring + s * kStreamChunkBytes);
    uint4 v[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) v[j] = piece[j * 32 + lane];
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
      for (int b = 0; b < M; ++b) acc[b] = dot8(v[j], xs[b * k8 + col8 + j * 32 + lane], acc[b]);
    __syncwarp();  // every lane has read the slot (its values are used above) before it is refilled
    if (lane == 0 && t + slots < total) request(t + slots, s);
    if (++s == slots) s = 0, phase ^= 1;
    if ((col8 += kStreamChunk / 8) == k8) {
      store_row<M>(acc, y, row, ldy, accumulate, lane);
      col8 = 0;
      ++row;
    }
  }
}

// Warps per block and ring slots per warp. 16 x 2 was the fastest of 4-32 warps x 1-8 slots on
// the 8B matrices and in the 8B step (bench/cuda/results/stream_matvec_ab_h200.txt).
struct StreamShape {
  int warps = 16, slots = 2;
};

// IK_MATVEC_STREAM (comparisons): "off" sends what the streaming kernel would take to matvec /
// cuBLAS as before; "WxS" sets its shape. Unparsable values leave the default.
static const StreamShape* stream_shape() {
  static const std::optional<StreamShape> shape = []() -> std::optional<StreamShape> {
    StreamShape sh;
    const char* e = std::getenv("IK_MATVEC_STREAM");
    if (!e) return sh;
    if (std::strcmp(e, "off") == 0) return std::nullopt;
    int w = 0, sl = 0;
    if (std::sscanf(e, "%dx%d", &w, &sl) == 2 && w >= 1 && w <= 32 && sl >= 1 && sl <= 16) sh.warps = w, sh.slots = sl;
    return sh;
  }();
  return shape ? &*shape : nullptr;
}

static int max_smem_per_block() {
  static const int bytes = [] {
    int b = 0;
    check(cudaDeviceGetAttribute(&b, cudaDevAttrMaxSharedMemoryPerBlockOptin, ctx().device.ordinal),
          "cudaDeviceGetAttribute");
    return b;
  }();
  return bytes;
}

static size_t stream_smem_bytes(int warps, int slots, int m, int k) {
  return size_t(m) * k * 2 + size_t(warps) * slots * (kStreamChunkBytes + 8);
}

bool stream_matvec_fits(const bf16* x, const bf16* w, int m, int n, int k) {
  return m >= 1 && m <= kMatvecMaxRows && n >= 1 && k % kStreamChunk == 0 && size_t(m) * k * 2 <= kStreamMaxXBytes &&
         aligned_to(x, 16) && aligned_to(w, 16);
}

template <int M, bool kNorm>
static void launch_stream(StreamShape sh, const bf16* x, const bf16* w, float* y, int n, int k, bool accumulate,
                          int ldy, NormedInput norm) {
  // A ring too deep for x's rows beside it (IK_MATVEC_STREAM shapes) is shortened.
  const size_t limit = size_t(max_smem_per_block()) - 1024;  // less the norm's static scratch
  while (sh.slots > 1 && stream_smem_bytes(sh.warps, sh.slots, M, k) > limit) --sh.slots;
  const size_t smem = stream_smem_bytes(sh.warps, sh.slots, M, k);
  IK_CUDA_REQUIRE(smem <= limit, "stream_matvec: the ring does not fit in shared memory");
  static size_t opted_in = 0;  // dynamic shared memory this kernel may use (static scratch aside)
  if (smem > opted_in) {
    check(cudaFuncSetAttribute(stream_matvec_kernel<M, kNorm>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
          "cudaFuncSetAttribute");
    opted_in = smem;
  }
  int blocks_per_sm = 0;
  const auto kernel = stream_matvec_kernel<M, kNorm>;
  check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks_per_sm, kernel, sh.warps * 32, smem),
        "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
  // At most one resident wave, and as few warps as give every warp the same number of rows. (Rows
  // dealt evenly over all SMs instead, some warps one row fewer, was no faster: 8B batch 1 equal,
  // batch 2 1% slower.)
  const int max_warps = std::max(blocks_per_sm, 1) * ctx().device.sm_count * sh.warps;
  const int per_warp = (n + max_warps - 1) / max_warps;
  const int warps = (n + per_warp - 1) / per_warp;
  launch_chained(kernel, dim3((warps + sh.warps - 1) / sh.warps), dim3(sh.warps * 32), smem, w, x, y, n, k, ldy,
                 accumulate, per_warp, sh.slots, norm);
}

template <bool kNorm>
static void dispatch_stream(const bf16* x, const bf16* w, float* y, int m, int n, int k, bool accumulate, int ldy,
                            NormedInput norm) {
  const StreamShape sh = stream_shape() ? *stream_shape() : StreamShape{};
  switch (m) {
    case 1: return launch_stream<1, kNorm>(sh, x, w, y, n, k, accumulate, ldy, norm);
    case 2: return launch_stream<2, kNorm>(sh, x, w, y, n, k, accumulate, ldy, norm);
    case 3: return launch_stream<3, kNorm>(sh, x, w, y, n, k, accumulate, ldy, norm);
    default: return launch_stream<4, kNorm>(sh, x, w, y, n, k, accumulate, ldy, norm);
  }
}

void stream_matvec(const bf16* x, const bf16* w, float* y, int m, int n, int k, bool accumulate, int ldy) {
  IK_CUDA_REQUIRE(stream_matvec_fits(x, w, m, n, k),
                  "stream_matvec: 1-4 rows, k a multiple of 2048, rows of x of at most 64 KB, 16-byte aligned");
  dispatch_stream<false>(x, w, y, m, n, k, accumulate, ldy, NormedInput{});
}

// Up to 2 rows: at 2 the Llama-3-8B step gains 5% (4.70 -> 4.48 ms), at 3 it loses (4.78 -> 4.81;
// bench/cuda/results/stream_rows_norm_ab_h200.txt); IK_MATVEC_STREAM_ROWS=N (comparisons) streams
// up to N.
bool matvec_streams(const bf16* x, const bf16* w, int m, int n, int k) {
  static const int max_rows = env_setting("IK_MATVEC_STREAM_ROWS", 2);
  return stream_shape() && m <= max_rows && size_t(n) * k * 2 > kMatvecMaxBytes && stream_matvec_fits(x, w, m, n, k);
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
  if (off) return false;
  if (matvec_streams(x, w, m, n, k)) return true;
  return m >= 1 && m <= kMatvecMaxRows && k % 8 == 0 &&
         (m == 1 ? one_row_fits(n, k) : size_t(n) * k * 2 <= kMatvecMaxBytes) && aligned_to(x, 16) &&
         aligned_to(w, 16);
}

void matvec(const bf16* x, const bf16* w, float* y, int m, int n, int k, bool accumulate, int ldy) {
  IK_CUDA_REQUIRE(m >= 1 && m <= kMatvecMaxRows && k % 8 == 0 && aligned_to(x, 16) && aligned_to(w, 16),
                  "matvec: 1-4 rows, k a multiple of 8 and 16-byte aligned operands");
  if (matvec_streams(x, w, m, n, k)) return stream_matvec(x, w, y, m, n, k, accumulate, ldy);
  dispatch_rows<false>(x, w, y, m, n, k, accumulate, ldy, NormedInput{});
}

// The normalised rows sit in shared memory: at most 48 KB without opting in to more.
constexpr size_t kMaxNormedBytes = size_t(48) << 10;

// Small matrices: one row only: every block normalises all of its rows again, and from 2 rows on
// that costs more than the separate norm saves (SmolLM2 shape: 0.668 against 0.715 ms at batch 1,
// 0.787 against 0.776 at batch 2, 1.028 against 0.908 at batch 4). Streamed products (one block
// per SM): one row as well; Llama-3-8B batch 1 4.144 -> 4.125 ms, batch 2 4.41 -> 4.45 with two
// (bench/cuda/results/stream_rows_norm_ab_h200.txt).
bool matvec_rms_norm_fits(const float* x, const float* norm_w, const bf16* w, int m, int n, int k) {
  const bf16* xb = reinterpret_cast<const bf16*>(x);
  if (m != 1 || decode_fusion_off("norm") || !aligned_to(norm_w, 16) || !matvec_fits(xb, w, m, n, k)) return false;
  return matvec_streams(xb, w, m, n, k) ||
         (size_t(n) * k * 2 <= kMatvecMaxBytes && size_t(m) * k * 2 <= kMaxNormedBytes);
}

void matvec_rms_norm(const float* x, const float* norm_w, float eps, const bf16* w, float* y, int m, int n, int k,
                     bool accumulate, int ldy) {
  if (matvec_streams(reinterpret_cast<const bf16*>(x), w, m, n, k) && aligned_to(norm_w, 16))
    return dispatch_stream<true>(nullptr, w, y, m, n, k, accumulate, ldy, NormedInput{x, norm_w, eps});
  IK_CUDA_REQUIRE(m >= 1 && m <= kMatvecMaxRows && k % 8 == 0 && aligned_to(x, 16) && aligned_to(norm_w, 16) &&
                      aligned_to(w, 16) && size_t(m) * k * 2 <= kMaxNormedBytes,
                  "matvec_rms_norm: 1-4 rows, k a multiple of 8, 16-byte aligned operands, rows of at most 48 KB");
  dispatch_rows<true>(nullptr, w, y, m, n, k, accumulate, ldy, NormedInput{x, norm_w, eps});
}

}  // namespace ik::backend::cuda
