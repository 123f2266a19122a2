#pragma once
// Timing of one GPU kernel call for the kernel benchmarks (bench-flute, bench-matvec): the call
// cycles through several weight sets inside one CUDA graph, so L2 holds none of them.
#include <algorithm>
#include <cstddef>

#include "backend/cuda/cuda.hpp"

namespace ik::cli {

// Enough copies of a weight matrix that together they are 4x the largest L2 we expect (60 MB).
inline int sets_for(size_t bytes) {
  return int(std::clamp<size_t>((size_t(256) << 20) / std::max<size_t>(bytes, 1) + 1, 2, 64));
}

// Microseconds per call, the calls cycling through the weight sets inside one graph.
template <class F>
double time_us(int sets, int reps, F&& call) {
  const double ms = backend::cuda::time_ms([&] { for (int s = 0; s < sets; ++s) call(s); }, reps);
  return ms * 1e3 / sets;
}

}  // namespace ik::cli
