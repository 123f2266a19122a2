#pragma once
// Helpers shared by the io tests.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "io/gguf.hpp"

namespace ik::test {

inline std::string fixture(const std::string& name) {
  return std::string(IK_SOURCE_DIR) + "/tests/io/fixtures/" + name;
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

inline uint32_t float_bits(float x) {
  uint32_t b;
  std::memcpy(&b, &x, 4);
  return b;
}

// Bit-for-bit equality of two float arrays; two NaNs count as equal (NaN payloads may differ
// between numpy's and our f16 conversion).
inline ::testing::AssertionResult same_bits(const float* got, const float* want, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (std::isnan(got[i]) && std::isnan(want[i])) continue;
    if (float_bits(got[i]) != float_bits(want[i]))
      return ::testing::AssertionFailure() << "element " << i << ": got " << got[i] << " (0x"
                                           << std::hex << float_bits(got[i]) << "), want "
                                           << want[i] << " (0x" << float_bits(want[i]) << ")";
  }
  return ::testing::AssertionSuccess();
}

// Dequantize a whole tensor, row by row.
inline std::vector<float> dequantize_all(const io::GgufTensorInfo& t) {
  std::vector<float> out(size_t(t.n_elements()));
  for (int64_t r = 0; r < t.rows(); ++r)
    io::dequantize(t.type, t.row_data(r), out.data() + r * t.row_len(), t.row_len());
  return out;
}

inline const float* f32_data(const io::GgufTensorInfo& t) {
  EXPECT_EQ(t.type, io::DType::F32) << t.name;
  return reinterpret_cast<const float*>(t.data);
}

}  // namespace ik::test
