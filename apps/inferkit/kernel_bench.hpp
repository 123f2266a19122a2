#pragma once
// Shared by the GPU kernel benchmarks (bench-flute, bench-matvec): weight shapes from the
// command line, and the timing of one kernel call, cycling through several weight sets inside
// one CUDA graph so that L2 holds none of them.
#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/cuda/cuda.hpp"
#include "core/error.hpp"

namespace ik::cli {

struct Shape {
  int n, k;
  std::string text;  // as given
};

// "NxK" from --shapes, with N > 0 and K a positive multiple of k_multiple.
inline Shape parse_shape(const std::string& s, int k_multiple) {
  const auto x = s.find('x');
  IK_CHECK(x != std::string::npos, "--shapes: '{}' is not NxK", s);
  try {
    const Shape sh{std::stoi(s.substr(0, x)), std::stoi(s.substr(x + 1)), s};
    IK_CHECK(sh.n > 0 && sh.k > 0 && sh.k % k_multiple == 0, "--shapes: {} needs N > 0 and K a positive multiple of {}",
             s, k_multiple);
    return sh;
  } catch (const std::logic_error&) {
    fail("--shapes: '{}' is not NxK", s);
  }
}

// Every --shapes entry, checked before any device work (a bad flag fails without a GPU).
inline std::vector<Shape> parse_shapes(const std::vector<std::string>& texts, int k_multiple) {
  std::vector<Shape> shapes;
  for (const auto& s : texts) shapes.push_back(parse_shape(s, k_multiple));
  return shapes;
}

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
