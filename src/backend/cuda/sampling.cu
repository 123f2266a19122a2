// Sampling on the device, one block per row of logits. Every filter is a threshold on the
// logit (top-k: the k-th largest logit; top-p: the largest cut whose mass reaches p; min-p: a
// fixed offset below the maximum), found by bisection with block reductions, so nothing is
// sorted. Then one draw by a block-wide prefix sum. Ties at a threshold are all kept.
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

__global__ void __launch_bounds__(kSampleThreads)
    sample_kernel(const float* logits, int n_vocab, SamplingParams* params, int32_t* tokens) {
  __shared__ float scratch[32];
  __shared__ float chunk_mass[kSampleThreads];
  __shared__ int chosen;
  const float* x = logits + size_t(blockIdx.x) * n_vocab;
  SamplingParams& p = params[blockIdx.x];
  const int tid = threadIdx.x;

  float mx = -INFINITY, mn = INFINITY;
  for (int i = tid; i < n_vocab; i += blockDim.x) {
    mx = fmaxf(mx, x[i]);
    mn = fminf(mn, x[i]);
  }
  mx = block_max(mx, scratch);
  mn = -block_max(-mn, scratch);
  if (tid == 0) chosen = n_vocab;
  __syncthreads();

  if (p.temperature <= 0.0f) {  // greedy: the lowest index holding the maximum
    for (int i = tid; i < n_vocab; i += blockDim.x)
      if (x[i] == mx) atomicMin(&chosen, i);
    __syncthreads();
    if (tid == 0) tokens[blockIdx.x] = chosen < n_vocab ? chosen : 0;
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

void sample(const float* logits, int n, int n_vocab, SamplingParams* params, int32_t* tokens) {
  sample_kernel<<<n, kSampleThreads, 0, ctx().stream>>>(logits, n_vocab, params, tokens);
  check_launch("sample");
}

}  // namespace ik::backend::cuda
