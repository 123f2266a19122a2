// Sampling on the device, one block per row of logits. Every filter is a threshold on the
// logit (top-k: the k-th largest logit; top-p: the largest cut whose mass reaches p; min-p: a
// fixed offset below the maximum), found by bisection with block reductions, so nothing is
// sorted. Then one draw by a block-wide prefix sum. Ties at a threshold are all kept.
// A first pass over many blocks finds each row's maximum, minimum and first argmax: one block
// alone reads a row of 128K logits at a fraction of the bandwidth (70 us on the 8B shape, where
// the greedy token now takes two short kernels).
#include <algorithm>
#include <climits>

#include "backend/cuda/common.cuh"

namespace ik::backend::cuda {

constexpr int kSampleThreads = 1024;
constexpr int kBisectSteps = 40;

__device__ __forceinline__ uint64_t hash64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Count and probability mass of logits >= t (mass at temperature T relative to the max).
__device__ void mass_above(const float* x, int n, float t, float mx, float inv_t, float* count, float* mass,
                           float* scratch) {
  float c = 0, s = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    if (x[i] >= t) {
      c += 1;
      s += __expf((x[i] - mx) * inv_t);
    }
  }
  *count = block_sum(c, scratch);
  *mass = block_sum(s, scratch);
}

// ---- first pass: extrema of chunks of each row -------------------------------------------------

constexpr int kExtremaChunks = 64;    // blocks per row
constexpr int kExtremaThreads = 256;
constexpr int kMaxExtremaRows = 1024;  // more rows: sample_kernel finds them itself

struct Extrema {
  float max, min;
  int argmax;  // the lowest index holding max; INT_MAX where the chunk has no number
};
__device__ Extrema g_extrema[kMaxExtremaRows * kExtremaChunks];  // sample() runs on one stream

// This thread's share x[i], i = begin, begin + step, ... < end: ascending, so of equal maxima
// the first stays.
__device__ __forceinline__ Extrema scan_extrema(const float* x, int begin, int end, int step) {
  Extrema e{-INFINITY, INFINITY, INT_MAX};
#pragma unroll 4
  for (int i = begin; i < end; i += step) {
    const float v = x[i];
    if (v > e.max) e.max = v, e.argmax = i;
    e.min = fminf(e.min, v);
  }
  return e;
}

// Keep the larger maximum, and of equal ones the lower index.
__device__ __forceinline__ void merge_extrema(Extrema& a, const Extrema& b) {
  if (b.max > a.max || (b.max == a.max && b.argmax < a.argmax)) {
    a.max = b.max;
    a.argmax = b.argmax;
  }
  a.min = fminf(a.min, b.min);
}

__device__ __forceinline__ Extrema warp_extrema(Extrema e) {
  for (int o = 16; o > 0; o >>= 1) {
    const Extrema other{__shfl_xor_sync(0xffffffffu, e.max, o), __shfl_xor_sync(0xffffffffu, e.min, o),
                        __shfl_xor_sync(0xffffffffu, e.argmax, o)};
    merge_extrema(e, other);
  }
  return e;
}

// Block (chunk, row).
__global__ void __launch_bounds__(kExtremaThreads) row_extrema_kernel(const float* logits, int n_vocab) {
  __shared__ Extrema warps[kExtremaThreads / 32];
  const int per = (n_vocab + kExtremaChunks - 1) / kExtremaChunks;
  const int begin = blockIdx.x * per, end = min(n_vocab, begin + per);
  const float* x = logits + size_t(blockIdx.y) * n_vocab;
  Extrema e = warp_extrema(scan_extrema(x, begin + threadIdx.x, end, kExtremaThreads));
  if ((threadIdx.x & 31) == 0) warps[threadIdx.x >> 5] = e;
  __syncthreads();
  if (threadIdx.x >= 32) return;
  e = threadIdx.x < kExtremaThreads / 32 ? warps[threadIdx.x] : Extrema{-INFINITY, INFINITY, INT_MAX};
  e = warp_extrema(e);
  if (threadIdx.x == 0) g_extrema[blockIdx.y * kExtremaChunks + blockIdx.x] = e;
}

// Row `row`'s extrema, its chunks' merged by one warp (every lane gets the result).
__device__ __forceinline__ Extrema merged_extrema(int row) {
  Extrema e{-INFINITY, INFINITY, INT_MAX};
  for (int c = threadIdx.x & 31; c < kExtremaChunks; c += 32) merge_extrema(e, g_extrema[row * kExtremaChunks + c]);
  return warp_extrema(e);
}

// Block (row), one warp: the greedy token, the lowest index holding the maximum (0 where the row
// holds no number above -inf, as a stable sort would put first).
__global__ void argmax_kernel(int n_vocab, int32_t* tokens) {
  const Extrema e = merged_extrema(blockIdx.x);
  if (threadIdx.x == 0) tokens[blockIdx.x] = e.argmax < n_vocab ? e.argmax : 0;
}

// ---- the draw -------------------------------------------------------------------------------

__global__ void __launch_bounds__(kSampleThreads)
    sample_kernel(const float* logits, int n_vocab, SamplingParams* params, int32_t* tokens, bool have_extrema) {
  __shared__ float scratch[32];
  __shared__ float chunk_mass[kSampleThreads];
  __shared__ int chosen;
  __shared__ Extrema row;
  const float* x = logits + size_t(blockIdx.x) * n_vocab;
  SamplingParams& p = params[blockIdx.x];
  const int tid = threadIdx.x;

  if (have_extrema) {  // the first pass's chunks, merged by warp 0
    if (tid < 32) {
      const Extrema e = merged_extrema(blockIdx.x);
      if (tid == 0) row = e;
    }
  } else {  // the whole row in this block
    const Extrema e = scan_extrema(x, tid, n_vocab, blockDim.x);
    const float row_max = block_max(e.max, scratch), row_min = -block_max(-e.min, scratch);
    if (tid == 0) row = Extrema{row_max, row_min, INT_MAX};
    __syncthreads();
    if (e.max == row_max) atomicMin(&row.argmax, e.argmax);
  }
  if (tid == 0) chosen = n_vocab;
  __syncthreads();
  const float mx = row.max, mn = row.min;

  if (p.temperature <= 0.0f) {  // greedy: the lowest index holding the maximum
    if (tid == 0) tokens[blockIdx.x] = row.argmax < n_vocab ? row.argmax : 0;
    return;
  }
  const float inv_t = 1.0f / p.temperature;
  float count, mass;

  // top-k: the largest threshold that keeps at least k logits.
  float cut = mn;
  if (p.top_k > 0 && p.top_k < n_vocab) {
    float lo = mn, hi = mx;
    for (int it = 0; it < kBisectSteps; ++it) {
      const float mid = 0.5f * (lo + hi);
      mass_above(x, n_vocab, mid, mx, inv_t, &count, &mass, scratch);
      if (count >= p.top_k) lo = mid;
      else hi = mid;
    }
    cut = lo;
  }
  // top-p over the survivors: the largest threshold whose mass still reaches p of theirs.
  if (p.top_p < 1.0f) {
    mass_above(x, n_vocab, cut, mx, inv_t, &count, &mass, scratch);
    const float target = p.top_p * mass;
    float lo = cut, hi = mx;
    for (int it = 0; it < kBisectSteps; ++it) {
      const float mid = 0.5f * (lo + hi);
      float c2, m2;
      mass_above(x, n_vocab, mid, mx, inv_t, &c2, &m2, scratch);
      if (m2 >= target) lo = mid;
      else hi = mid;
    }
    cut = lo;
  }
  // min-p: probability >= min_p * max  <=>  logit >= max + T log(min_p).
  if (p.min_p > 0.0f) cut = fmaxf(cut, mx + p.temperature * logf(p.min_p));
  cut = fminf(cut, mx);  // the maximum always survives

  // Draw: each thread owns a contiguous chunk; a prefix sum over chunk masses finds the chunk.
  const int per = (n_vocab + blockDim.x - 1) / blockDim.x;
  const int begin = min(n_vocab, tid * per), end = min(n_vocab, begin + per);
  float mine = 0;
  for (int i = begin; i < end; ++i)
    if (x[i] >= cut) mine += __expf((x[i] - mx) * inv_t);
  chunk_mass[tid] = mine;
  __syncthreads();
  for (int off = 1; off < blockDim.x; off <<= 1) {  // inclusive Hillis-Steele scan
    const float add = tid >= off ? chunk_mass[tid - off] : 0.0f;
    __syncthreads();
    chunk_mass[tid] += add;
    __syncthreads();
  }
  const float total = chunk_mass[blockDim.x - 1];
  const uint64_t h = hash64(p.seed ^ hash64(p.counter * 0x100000001b3ull + blockIdx.x));
  const float u = float(double(h >> 11) * (1.0 / 9007199254740992.0)) * total;
  const float before = tid > 0 ? chunk_mass[tid - 1] : 0.0f;
  if (mine > 0 && u >= before && (u < chunk_mass[tid] || chunk_mass[tid] >= total)) {
    float acc = before;
    int pick = -1;
    for (int i = begin; i < end; ++i) {
      if (x[i] < cut) continue;
      pick = i;
      acc += __expf((x[i] - mx) * inv_t);
      if (acc > u) break;
    }
    atomicMin(&chosen, pick);
  }
  __syncthreads();
  if (tid == 0) {
    tokens[blockIdx.x] = chosen < n_vocab ? chosen : 0;
    p.counter += 1;
  }
}

// The first pass over n <= kMaxExtremaRows rows into g_extrema.
static void row_extrema(const float* logits, int n, int n_vocab) {
  row_extrema_kernel<<<dim3(kExtremaChunks, n), kExtremaThreads, 0, ctx().stream>>>(logits, n_vocab);
  check_launch("row extrema");
}

void argmax_rows(const float* logits, int rows, int n_vocab, int32_t* tokens) {
  for (int r0 = 0; r0 < rows; r0 += kMaxExtremaRows) {  // as many rows as the chunk buffer holds at a time
    const int n = std::min(kMaxExtremaRows, rows - r0);
    row_extrema(logits + size_t(r0) * n_vocab, n, n_vocab);
    argmax_kernel<<<n, 32, 0, ctx().stream>>>(n_vocab, tokens + r0);
    check_launch("argmax_rows");
  }
}

void sample(const float* logits, int n, int n_vocab, SamplingParams* params, int32_t* tokens) {
  const bool extrema = n <= kMaxExtremaRows;
  if (extrema) row_extrema(logits, n, n_vocab);
  sample_kernel<<<n, kSampleThreads, 0, ctx().stream>>>(logits, n_vocab, params, tokens, extrema);
  check_launch("sample");
}

}  // namespace ik::backend::cuda
