#pragma once
// Shared by the CUDA backend's tests: a fixture that skips without a GPU, and a device buffer
// that is poisoned (0xFF bytes: NaN in f32, bf16 and f16) when made, so unwritten outputs show.
#include <gtest/gtest.h>

#include <vector>

#include "backend/cuda/cuda.hpp"

class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!ik::backend::cuda::available()) GTEST_SKIP() << "no CUDA GPU";
    ik::backend::cuda::init(0);
  }
};

// Device buffer of T, freed at scope end.
template <class T>
struct Buf {
  T* p = nullptr;
  size_t n = 0;
  explicit Buf(size_t n_) : n(n_) {
    p = static_cast<T*>(ik::backend::cuda::alloc(n * sizeof(T), "test"));
    ik::backend::cuda::poison(p, n * sizeof(T));
  }
  explicit Buf(const std::vector<T>& v) : Buf(v.size()) { ik::backend::cuda::upload(p, v.data(), n * sizeof(T)); }
  ~Buf() { ik::backend::cuda::release(p); }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  std::vector<T> get() const {
    std::vector<T> v(n);
    ik::backend::cuda::download(v.data(), p, n * sizeof(T));
    return v;
  }
};
